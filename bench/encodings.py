"""Encoding detectors on real legacy files: files read right, wrong or refused, and ms per MB.

The corpus is ``tests/fixtures/encodings/``: 38 contact exports in 26 encodings written by
LibreOffice Calc and GNU iconv (Windows-125x, Mac Roman, ISO-8859-x, KOI8-R/U, Shift-JIS and
CP932, EUC-JP, GB18030, Big5, EUC-KR and CP949, UTF-16 without a BOM), each with the tags the
person wrote. A file is *right* when the encoding given decodes every contact's tags as
written (another encoding that decodes them the same counts: Windows-1252 for ISO-8859-1 text
without its differing bytes), *wrong* when it decodes other tags or fails, *refused* when the
candidate says it cannot tell. Candidates:

- each library alone, taken at its word: chardetng-py (Firefox's detector), chardet 7,
  charset-normalizer;
- bulktag before this change: BOM, UTF-16's NULs, valid UTF-8, else Windows-1252 or Mac Roman;
- bulktag now (``bulktag.read.encoding.choose``): certain marks, then chardetng and chardet
  together, their disagreements weighed by how the letters read, else refused.

Time: one detection of a 1 MB sample made of the file repeated, median of 5, per library
(bulktag reads at most 64 KB of lines with non-ASCII bytes, so its cost per file is bounded).

``python -m bench --only encodings``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, Section, median
from bulktag.read.encoding import choose, plausibility, scan

CORPUS = ROOT / "tests" / "fixtures" / "encodings"
Guess = Callable[[bytes, Path], str | None]  #: an encoding, or None: refused


def _chardetng(data: bytes, path: Path) -> str | None:
    import chardetng_py

    detector = chardetng_py.EncodingDetector()
    detector.feed(data, last=True)
    return str(detector.guess(tld=None, allow_utf8=True))


def _chardet(data: bytes, path: Path) -> str | None:
    import chardet

    found = chardet.detect(data).get("encoding")
    return None if found is None else str(found)


def _charset_normalizer(data: bytes, path: Path) -> str | None:
    import charset_normalizer

    best = charset_normalizer.from_bytes(data).best()
    return None if best is None else str(best.encoding)


def _bulktag_before(data: bytes, path: Path) -> str | None:
    """bulktag's hand-written guess before chardetng and chardet (sniff._choose_encoding)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    even, odd = data[0::2], data[1::2]
    if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        windows = plausibility(data.decode("cp1252", errors="bulktag-latin1"))
        mac = plausibility(data.decode("mac-roman"))
        cr = data.count(b"\r") > data.count(b"\r\n")
        return "mac-roman" if mac > windows or (mac == windows and cr) else "cp1252"
    return "utf-8"


def _bulktag_now(data: bytes, path: Path) -> str | None:
    choice = choose(None, data[: 256 * 1024], scan(path, data[: 256 * 1024], len(data)), "")
    return None if choice.uncertain else choice.encoding


CANDIDATES: dict[str, Guess] = {
    "chardetng-py 0.3": _chardetng,
    "chardet 7": _chardet,
    "charset-normalizer 3": _charset_normalizer,
    "bulktag before (hand-written guess)": _bulktag_before,
    "bulktag now (chardetng + chardet, weighed)": _bulktag_now,
}


def _verdict(data: bytes, encoding: str | None, expected: dict[str, list[str]]) -> str:
    if encoding is None:
        return "refused"
    try:
        text = data.decode(encoding, errors="bulktag-latin1" if encoding == "cp1252" else "strict")
    except (UnicodeDecodeError, LookupError):
        return "wrong"
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff").replace("\r\n", "\n"))))
    got = {row[0]: row[4].split(",") for row in rows[1:] if len(row) > 4}
    return "right" if got == expected else "wrong"


def _ms_per_mb(guess: Guess, data: bytes, path: Path) -> float:
    sample = (data * (1_000_000 // len(data) + 1))[:1_000_000]
    times = []
    for _ in range(5):
        started = time.perf_counter()
        guess(sample, path)
        times.append(time.perf_counter() - started)
    return median(times) * 1000


def run(*, quick: bool = False) -> Section:
    files = sorted(CORPUS.glob("*.csv"))
    expected = {
        f: json.loads(f.with_name(f.name + ".expected.json").read_text(encoding="utf-8"))
        for f in files
    }
    timed = [
        CORPUS / n for n in ("libreoffice_german_cp1252.csv", "libreoffice_japanese_cp932.csv")
    ]
    section = Section(
        "encodings",
        "Encoding detectors on real legacy files",
        __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0] if __doc__ else "",
        ["candidate", "right", "wrong", "refused", "wrong files", "ms per MB (German, Japanese)"],
    )
    for name, guess in CANDIDATES.items():
        verdicts = {
            f: _verdict(f.read_bytes(), guess(f.read_bytes(), f), expected[f]["contacts"])
            for f in files
        }
        wrong = [f.name.removesuffix(".csv") for f, v in verdicts.items() if v == "wrong"]
        counts = [
            sum(v == kind for v in verdicts.values()) for kind in ("right", "wrong", "refused")
        ]
        speed = " / ".join(f"{_ms_per_mb(guess, t.read_bytes(), t):.0f}" for t in timed)
        section.rows.append(
            [name, *counts, ", ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else "") or "-", speed]
        )
        section.figures[name] = dict(zip(("right", "wrong", "refused"), counts, strict=True))
    section.notes.append(
        "Taken: bulktag now, the one candidate never wrong on the corpus; it refuses what the "
        "two detectors read as different text and the letters cannot settle (nothing is sent: "
        "exit 65 with the tags each reading gives, and --encoding)."
    )
    return section
