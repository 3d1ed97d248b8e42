"""A text file's encoding, and how sure bulktag is of it.

A tag sent is in the CRM for good, so a file is never read on a guess:

- *certain*: ``--encoding``; a byte order mark; UTF-16 or UTF-32 told by where its NUL
  bytes fall; valid UTF-8 (the whole file up to :data:`FULL_CHECK_BYTES`, else its start
  and its end); valid UTF-8 but for a character cut at the very end (the file was copied
  while it was being written: its last line becomes a reject, the rest is read);
- *detected*: two detectors read the lines that hold non-ASCII bytes: chardetng
  (Firefox's detector: the web's legacy encodings, Japanese, Chinese, Korean, Cyrillic)
  and chardet 7 (its Mac encodings too). When both read those lines as the same text,
  that is the encoding, and the plan says so. When they differ between a Windows and a
  Mac Western encoding, the reading whose accented letters sit inside words wins, if it
  clearly does (``MŸnchen`` is not a word, ``München`` is);
- otherwise *uncertain*: nothing is sent. The reader stops (exit 65) with a few tags as
  each candidate reads them, and ``--encoding``.

Why two detectors: on the corpus in ``tests/fixtures/encodings/`` (38 files in 26 encodings
written by LibreOffice and iconv), chardet 7 alone reads 37 right but reads EUC-JP as
GB18030 (plausible Chinese: nothing looks wrong), chardetng alone 33 (it knows no Mac
encoding nor UTF-16), charset-normalizer 34; no single one is never wrong. Their agreement
is: every file is read right or, for the one EUC-JP file they disagree on, refused
(``bench/encodings.py`` measures it again, with the time per MB).
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bulktag.errors import InputError

__all__ = [
    "FULL_CHECK_BYTES",
    "Choice",
    "Scan",
    "bom_encoding",
    "choose",
    "scan",
    "utf16_guess",
]

#: Files up to this size are checked as UTF-8 whole; larger ones by their start and end.
FULL_CHECK_BYTES = 64 * 1024 * 1024
#: Bytes of lines with non-ASCII text the detectors read, at most.
DETECT_BYTES = 64 * 1024
#: The file's last bytes checked as UTF-8 when it is too large to check whole.
TAIL_BYTES = 64 * 1024
#: How much more word-like one reading must score than the next to be taken.
CLEARLY = 2


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """cp1252 leaves five bytes undefined; read them as their Latin-1 characters."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("latin-1"), error.end


codecs.register_error("bulktag-latin1", _latin1_fallback)


@dataclass(frozen=True, slots=True)
class Choice:
    """The encoding to read a file with, and how it was chosen."""

    encoding: str  #: a Python codec name
    note: str  #: for the plan: "valid UTF-8", "detected: chardetng and chardet agree"
    detected: bool  #: not given with --encoding
    #: the readings two detectors disagree on (nothing may be sent), else empty
    uncertain: tuple[str, ...] = ()
    cut_end: bool = False  #: valid UTF-8 but for a character cut at the very end


def bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def utf16_guess(sample: bytes) -> str | None:
    """UTF-16 without a BOM, by where its NUL bytes fall (ASCII text: every other byte)."""
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


@dataclass
class Scan:
    """What one pass over the raw bytes found."""

    utf8: bool = True  #: valid UTF-8 (what was checked of it)
    cut_end: bool = False  #: valid UTF-8 but for an incomplete character at the very end
    cr: int = 0  #: carriage returns
    crlf: int = 0  #: CR LF pairs
    lf: int = 0  #: line feeds

    @property
    def lone_cr(self) -> bool:
        return self.cr > self.crlf

    @property
    def line_endings(self) -> str:
        lone_cr, lone_lf = self.cr - self.crlf, self.lf - self.crlf
        kinds = [name for name, n in (("CR", lone_cr), ("LF", lone_lf), ("CRLF", self.crlf)) if n]
        return "mixed" if len(kinds) > 1 else (kinds[0] if kinds else "LF")


def scan(path: Path, sample: bytes, size: int) -> Scan:
    """Strict UTF-8 check and line-ending counts: of the whole file up to
    :data:`FULL_CHECK_BYTES`, else of its start (``sample``) and its end."""
    found = Scan()
    decoder = codecs.getincrementaldecoder("utf-8")()
    whole = size <= FULL_CHECK_BYTES
    chunks = _chunks(path) if whole else iter([sample])
    previous = b""
    for chunk in chunks:
        found.cr += chunk.count(b"\r")
        found.lf += chunk.count(b"\n")
        found.crlf += chunk.count(b"\r\n") + (previous == b"\r" and chunk[:1] == b"\n")
        previous = chunk[-1:]
        if found.utf8:
            try:
                # ASCII is UTF-8: only decode (slower) what is not, or ends a sequence
                if not (chunk.isascii() and not decoder.getstate()[0]):
                    decoder.decode(chunk)
            except UnicodeDecodeError:
                found.utf8 = False
    if found.utf8:
        pending = decoder.getstate()[0] if whole else _tail_pending(path, size)
        if pending is None:
            found.utf8 = False
        elif pending:
            found.cut_end = _cut_character(pending)
            found.utf8 = found.cut_end
    return found


def _tail_pending(path: Path, size: int) -> bytes | None:
    """The incomplete character a large file ends with (b"": none; None: its end is not
    UTF-8). Decoded from a line start within its last :data:`TAIL_BYTES`."""
    with path.open("rb") as handle:
        handle.seek(max(0, size - TAIL_BYTES))
        tail = handle.read()
    start = tail.find(b"\n") + 1 if size > TAIL_BYTES else 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(tail[start:])
    except UnicodeDecodeError:
        return None
    pending: bytes = decoder.getstate()[0]
    return pending


def _cut_character(pending: bytes) -> bool:
    """Whether the bytes left over at the end are the start of a UTF-8 character."""
    return 0 < len(pending) < 4 and 0xC2 <= pending[0] <= 0xF4


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


def choose(given: str | None, sample: bytes, found: Scan, source: str) -> Choice:
    """The encoding of a text file from its ``sample`` (its start) and what :func:`scan`
    found; see the module docstring. InputError for an unknown ``--encoding``."""
    if given is not None:
        try:
            return Choice(codecs.lookup(given).name, "given with --encoding", detected=False)
        except LookupError:
            raise InputError(f"unknown encoding {given!r}", source=source) from None
    if (bom := bom_encoding(sample)) is not None:
        return Choice(bom, "byte order mark", detected=True)
    if (wide := utf16_guess(sample)) is not None:
        return Choice(wide, "UTF-16 without a byte order mark (its NUL bytes)", detected=True)
    if found.cut_end:
        note = "UTF-8, cut inside its last character (still being written?)"
        return Choice("utf-8", note, detected=True, cut_end=True)
    if found.utf8:
        return Choice("utf-8", "valid UTF-8", detected=True)
    return _detect(_non_ascii_lines(sample), found.line_endings)


def _non_ascii_lines(sample: bytes) -> bytes:
    """The sample's lines that hold non-ASCII bytes, up to :data:`DETECT_BYTES`: what tells
    encodings apart (a file of UUIDs and a few accented tags is mostly ASCII)."""
    kept, size = [], 0
    for line in sample.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not line.isascii():
            kept.append(line)
            size += len(line) + 1
            if size >= DETECT_BYTES:
                break
    return b"\n".join(kept)


#: Detectors' names for what Python calls otherwise (WHATWG's Shift_JIS is Windows-31J...).
_PYTHON_NAMES = {
    "shift_jis": "cp932",
    "euc-kr": "cp949",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "x-mac-cyrillic": "mac_cyrillic",
    "windows-874": "cp874",
}
_WINDOWS_WESTERN = frozenset(codecs.lookup(n).name for n in ("cp1252", "latin_1", "iso8859_15"))
_MAC_WESTERN = frozenset(codecs.lookup(n).name for n in ("mac_roman", "mac_latin2", "mac_iceland"))


def _codec(name: str | None) -> str | None:
    """A detector's encoding as a Python codec name (None: unknown to Python)."""
    if not name:
        return None
    name = _PYTHON_NAMES.get(name.lower(), name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _reads(text: bytes, encoding: str | None) -> str | None:
    if encoding is None:
        return None
    try:
        return text.decode(encoding)
    except UnicodeDecodeError:
        return None


def _detected(text: bytes) -> tuple[str | None, str | None]:
    """What chardetng and chardet make of ``text``."""
    import chardet  # noqa: PLC0415  (a text file that is not UTF-8 is rare: pay for it then)
    import chardetng_py  # noqa: PLC0415

    detector = chardetng_py.EncodingDetector()
    detector.feed(text, last=True)
    firefox = _codec(detector.guess(tld=None, allow_utf8=False))
    return firefox, _codec(chardet.detect(text).get("encoding"))


def _detect(text: bytes, line_endings: str) -> Choice:
    """Two detectors on the non-ASCII lines; see the module docstring."""
    firefox, other = _detected(text)
    named = [e for e in dict.fromkeys((firefox, other)) if e is not None]
    readings = {e: r for e in named if (r := _reads(text, e)) is not None}
    agree = len(readings) == len(named) and len(set(readings.values())) == 1
    if named and agree:
        encoding = named[0]
        why = "chardetng and chardet agree" if firefox == other else "both detectors read it alike"
        return Choice(encoding, f"detected: {why}", detected=True)
    judged = _by_words(text, line_endings, named)
    if judged is not None:
        return judged
    candidates = tuple(named) or ("cp1252",)
    return Choice(candidates[0], "uncertain", detected=True, uncertain=candidates)


def _single_byte(encoding: str) -> bool:
    return codecs.lookup(encoding).name not in _MULTI_BYTE


_MULTI_BYTE = frozenset(
    codecs.lookup(n).name
    for n in ("cp932", "cp949", "gb18030", "big5hkscs", "euc_jp", "shift_jis", "big5", "gbk")
)


def _by_words(text: bytes, line_endings: str, named: list[str]) -> Choice | None:
    """Detectors that disagree on single-byte encodings: the reading whose letters read as
    words, if clearly so (Windows-1252 and Mac Roman are always among the readings weighed
    when a Western one is, or when lines end with CR alone, the Mac's own). None when the
    readings are multi-byte or none is clearly the best."""
    if not named or not all(_single_byte(e) for e in named):
        return None
    weighed = list(named)
    if line_endings == "CR" or set(named) & (_WINDOWS_WESTERN | _MAC_WESTERN):
        weighed += [e for e in ("cp1252", "mac-roman") if e not in weighed]
    readings: dict[str, str] = {}  # one encoding per distinct reading (the usual first)
    for encoding in sorted(weighed, key=lambda e: e not in ("cp1252", "mac-roman")):
        errors = "bulktag-latin1" if encoding == "cp1252" else "strict"
        try:
            reading = text.decode(encoding, errors=errors)
        except UnicodeDecodeError:
            continue
        readings.setdefault(reading, encoding)
    scores = {encoding: plausibility(reading) for reading, encoding in readings.items()}
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    if not ranked or (len(ranked) > 1 and ranked[0][1] - ranked[1][1] < CLEARLY):
        return None
    best = ranked[0][0]
    others = ", ".join(e for e, _ in ranked[1:])
    return Choice(best, f"detected: its letters read as words, not as {others}", detected=True)


def plausibility(text: str) -> int:
    """How much the non-ASCII letters of ``text`` read like words: letters inside words
    count for, capitals and symbols in the middle of a word against ("MŸnchen", "Stra§e")."""
    score = 0
    for index, char in enumerate(text):
        if char.isascii():
            continue
        before = text[index - 1] if index else " "
        after = text[index + 1] if index + 1 < len(text) else " "
        category = unicodedata.category(char)
        if "\x80" <= char <= "\x9f":  # a byte cp1252 leaves undefined
            score -= 2
        elif category == "Ll" or (category == "Lu" and not before.isalpha()):
            score += 1
        elif (category == "Lu" and (before.islower() or after.islower())) or (
            category[0] in "SP" and before.isalpha() and after.isalpha()
        ):
            score -= 1
    return score
