"""Before polars reads a file: which format, which encoding, which delimiter, which header.

Polars scans UTF-8 only, so a file in another encoding (cp1252 from Excel's
"CSV", UTF-16 from Excel's "Unicode text") is transcoded once, in chunks, into a
UTF-8 file in the run's work folder. Everything here reads a bounded sample,
except that transcoding and the strict UTF-8 check of files up to
``FULL_CHECK_BYTES`` read the whole file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bulktag.errors import InputError

__all__ = ["Format", "SniffedCsv", "detect_format", "sniff_csv"]

Format = Literal["csv", "parquet", "xlsx", "ndjson"]

SAMPLE_BYTES = 256 * 1024
FULL_CHECK_BYTES = 64 * 1024 * 1024
CANDIDATES = (",", ";", "\t", "|")
_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xlsx",
    ".xlsb": "xlsx",
    ".ods": "xlsx",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_SEP_LINE = re.compile(r"^sep=(.)\r?$")


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """cp1252 leaves five bytes undefined; read them as their Latin-1 characters."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("latin-1"), error.end


codecs.register_error("bulktag-latin1", _latin1_fallback)


def detect_format(path: Path) -> Format:
    """By extension, else by the first bytes (PAR1, a ZIP, a JSON object), else CSV."""
    known = _EXTENSIONS.get(path.suffix.lower())
    if known is not None:
        return known
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", source=str(path)) from None
    if head == b"PAR1":
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.lstrip()[:1] == b"{":
        return "ndjson"
    return "csv"


@dataclass(frozen=True, slots=True)
class SniffedCsv:
    """A CSV ready for polars: a UTF-8 path, its delimiter, its header, where data starts."""

    path: Path  #: the file polars scans (a UTF-8 copy when the input was not UTF-8)
    encoding: str  #: the input's encoding, as used
    encoding_detected: bool
    delimiter: str
    header: list[str]
    skip_rows: int  #: records before the first data row (the header, and Excel's "sep=" line)


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _is_utf8(path: Path, sample: bytes, size: int) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        if size <= FULL_CHECK_BYTES:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    # ASCII is UTF-8: only decode (slower) what is not, or ends a sequence
                    if not (chunk.isascii() and not decoder.getstate()[0]):
                        decoder.decode(chunk)
            decoder.decode(b"", final=True)
        else:
            decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path, sample: bytes, size: int) -> str:
    """BOM; else UTF-16 by its NUL bytes; else UTF-8 if valid; else cp1252."""
    found = _bom_encoding(sample)
    if found:
        return found
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be"
    return "utf-8" if _is_utf8(path, sample, size) else "cp1252"


def _transcode(path: Path, encoding: str, target: Path, source: str) -> None:
    errors = "bulktag-latin1" if codecs.lookup(encoding).name == "cp1252" else "strict"
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    try:
        with path.open("rb") as raw, target.open("wb") as out:
            while chunk := raw.read(1 << 20):
                out.write(decoder.decode(chunk).encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid {encoding} text (byte {exc.start} of a chunk: {exc.reason}); "
            "pass --encoding with the file's real encoding",
            source=source,
        ) from None


def _rows(lines: list[str], delimiter: str) -> list[list[str]]:
    rows: list[list[str]] = []
    # A cell over the csv module's 128 KiB limit: judge by the rows before it.
    with contextlib.suppress(csv.Error):
        rows.extend(r for r in csv.reader(lines, delimiter=delimiter) if r)
    return rows


def _sniff_delimiter(lines: list[str]) -> str:
    best, best_score = ",", (0.0, 0)
    for candidate in CANDIDATES:
        rows = _rows(lines, candidate)
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        consistent = sum(len(r) == width for r in rows) / len(rows)
        score = (consistent, width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def sniff_csv(
    path: Path,
    source: str,
    workdir: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> SniffedCsv:
    """Find encoding, delimiter and header; transcode to UTF-8 when needed."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", source=source) from None
    if not sample.strip():
        raise InputError("the file is empty: expected a header row and data", source=source)
    detected = encoding is None
    if encoding is None:
        encoding = detect_encoding(path, sample, size)
    else:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r}", source=source) from None
    scanned = path
    if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
        workdir.mkdir(parents=True, exist_ok=True)
        handle_fd, name = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=".utf8.csv", dir=workdir)
        os.close(handle_fd)
        scanned = Path(name)
        _transcode(path, encoding, scanned, source)
        with scanned.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    text = sample.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if len(sample) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample may be partial
    skip = 0
    sep_line = _SEP_LINE.match(lines[0]) if lines else None
    if sep_line:  # Excel's "sep=;" first line
        delimiter = delimiter or sep_line.group(1)
        lines, skip = lines[1:], 1
    if delimiter is None:
        delimiter = _sniff_delimiter(lines[:50])
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise InputError(
            f"delimiter {delimiter!r} must be one character, not a quote", source=source
        )
    try:
        header = next(csv.reader(io.StringIO("\n".join(lines[:50])), delimiter=delimiter), [])
    except csv.Error as exc:
        raise InputError(
            f"the header row cannot be read ({exc}): an unbalanced quote?",
            source=source,
            line=1 + skip,
        ) from None
    if not any(h.strip() for h in header):
        raise InputError(
            "the first row is empty: expected a header row", source=source, line=1 + skip
        )
    return SniffedCsv(scanned, encoding, detected, delimiter, header, skip + 1)
