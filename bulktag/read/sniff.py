"""Before polars reads a file: what it really is, its encoding, line endings and delimiter.

The content decides, not the extension: a CSV saved as ``.xlsx`` is read as CSV, an
XLSX saved as ``.csv`` as a workbook, and what bulktag cannot read (an HTML table
saved as ``.xls``, as Salesforce Classic and many web apps export; a PDF; a
password-protected workbook; a ZIP of something else) stops with a message that
says what the file is and how to save it.

Polars scans UTF-8 with LF or CRLF line endings only, so a file in another encoding
(cp1252 or Mac Roman from Excel's "CSV", UTF-16 from its "Unicode text", Shift-JIS,
Windows-1251...), or with CR-only line endings (Excel for Mac's "CSV (Macintosh)"), is
rewritten once, in chunks, into a UTF-8 file with LF line endings in the run's work
folder; line numbers do not change (every CR, LF or CRLF ends one line). Which encoding,
and how sure, is :mod:`bulktag.read.encoding`: a file it is not sure of is not rewritten, and
carries each candidate's reading of its sample for the message that stops the run.
Everything here reads a bounded sample, except that the rewrite and the strict UTF-8
check of files up to ``FULL_CHECK_BYTES`` read the whole file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bulktag.config import OutputFormat
from bulktag.errors import InputError
from bulktag.read.encoding import bom_encoding, choose, scan, utf16_guess
from bulktag.state.rundir import RunPaths

__all__ = ["Detected", "Format", "SampleRow", "SniffedCsv", "detect_format", "sniff_csv"]

#: How a file is read (and the family of its outputs).
Format = OutputFormat
#: What a file is, as a person names it (a spreadsheet may be XLSX, XLSB, XLS or ODS).
Kind = Literal["csv", "parquet", "xlsx", "xlsb", "xls", "ods", "ndjson", "json", "arrow"]

SAMPLE_BYTES = 256 * 1024
#: Records of the sample kept for the header search and the ID column's content.
SAMPLE_RECORDS = 1_000
CANDIDATES = (",", ";", "\t", "|")
_SEP_LINE = re.compile(r"^sep=(.)\r?$")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
_SAVE_AS = "open it in Excel, LibreOffice or Google Sheets and save it as XLSX or CSV"


@dataclass(frozen=True, slots=True)
class Detected:
    """What a file is, from its first bytes."""

    format: Format  #: how it is read
    kind: Kind  #: what it is
    note: str | None = None  #: set when the extension says something else


_EXTENSION_KINDS: dict[str, Kind] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xlsb": "xlsb",
    ".xls": "xls",
    ".ods": "ods",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
_READ_AS: dict[Kind, Format] = {
    "csv": "csv",
    "parquet": "parquet",
    "xlsx": "xlsx",
    "xlsb": "xlsx",
    "xls": "xlsx",
    "ods": "xlsx",
    "ndjson": "ndjson",
    "json": "ndjson",
    "arrow": "parquet",
}
_KIND_NAMES = {
    "csv": "a text (CSV) file",
    "parquet": "a Parquet file",
    "xlsx": "an XLSX workbook",
    "xlsb": "an XLSB workbook",
    "xls": "a legacy XLS workbook",
    "ods": "an OpenDocument (ODS) spreadsheet",
    "ndjson": "an NDJSON file",
    "json": "a JSON array of records",
    "arrow": "an Arrow IPC (Feather) file",
}


def _unusable(source: str, what: str, fix: str = _SAVE_AS) -> InputError:
    return InputError(f"this file is {what}, which bulktag cannot read: {fix}", source=source)


def detect_format(path: Path, source: str | None = None) -> Detected:
    """What the file is, by its first bytes (never by its extension alone).

    Raises :class:`InputError` (exit 65) for what bulktag cannot read, saying what the
    file is and how to save it instead.
    """
    source = source or str(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(SAMPLE_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", source=source) from None
    kind = _kind(path, head, source)
    named = _EXTENSION_KINDS.get(path.suffix.lower())
    note = None
    if named is not None and named != kind:
        note = f"named {path.suffix} but is {_KIND_NAMES[kind]}: read as such"
    return Detected(_READ_AS[kind], kind, note)


#: What bulktag does not read, told by its first bytes: (magic, what it is, the fix).
_REFUSED = (
    (b"%PDF", "a PDF document", "export the table itself as CSV or XLSX"),
    (
        b"SQLite format 3\x00",
        "a SQLite database",
        "export the table as CSV, e.g. sqlite3 -header -csv FILE 'SELECT * FROM contacts' "
        "> contacts.csv",
    ),
    (b"FEA1", "a Feather v1 file", "write it as an Arrow IPC file (Feather v2), Parquet or CSV"),
    (
        b"\xff\xff\xff\xff",
        "an Arrow IPC stream",
        "write it as an Arrow IPC file (Feather v2), Parquet or CSV",
    ),
)


def _kind(path: Path, head: bytes, source: str) -> Kind:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "arrow"
    for magic, what, fix in _REFUSED:
        if head.startswith(magic):
            raise _unusable(source, what, fix)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(path, source)
    if head.startswith(_OLE2):
        if _ENCRYPTED in head or _ENCRYPTED in _tail(path):
            raise _unusable(
                source,
                "a password-protected workbook",
                "remove the password (File > Info > Protect Workbook in Excel) and save again",
            )
        return "xls"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in head:
            raise _unusable(source, "an Excel 2003 XML spreadsheet")
        what = "an HTML page" if b"<html" in text or b"<table" in text else "an XML document"
        raise _unusable(
            source,
            f"{what} (web apps and Salesforce Classic save HTML tables as .xls)",
        )
    if text.startswith(b"{"):
        _refuse_summary(path, text, source)
        return "ndjson"
    if text.startswith(b"[") and text[1:].lstrip(b" \t\r\n").startswith((b"{", b"]")):
        return "json"  # a JSON array of records (pandas' to_json(orient="records"))
    _refuse_nul_padding(path, head, source)
    start = head[:8192]
    binary = start.count(0) >= max(2, len(start) // 100)  # NULs in 1 % of it: not text
    if binary and bom_encoding(head) is None and utf16_guess(head) is None:
        raise _unusable(source, "binary data, not a table", "export the data as CSV or XLSX")
    return "csv"


_SUMMARY = re.compile(rb'^\{\s*"bulktag"\s*:\s*"[^"]*",\s*"run_id"\s*:')


def _refuse_summary(path: Path, text: bytes, source: str) -> None:
    """A run's ``summary.json`` is not a list of contacts: refused, with the file to use."""
    if not _SUMMARY.match(text):
        return
    instead = RunPaths(path.parent).failures_or_default()
    raise InputError(
        f"this is a run's summary.json, not a list of contacts: what that run could not do "
        f"is in its failures file: bulktag run {instead}",
        source=source,
    )


#: NUL bytes a text file may end with before it is taken for one a crash padded.
_NUL_RUN = 16


def _refuse_nul_padding(path: Path, head: bytes, source: str) -> None:
    """A text file that ends in a run of NUL bytes: what a file system leaves when the
    program writing it crashed (or a copy of a file still being written). Refused: the
    last rows cannot be trusted."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        tail = handle.read()
    padding = len(tail) - len(tail.rstrip(b"\x00"))
    text = head[: max(0, size - padding)][:8192]
    if padding >= _NUL_RUN and text and not text.count(0):  # NULs at the end alone
        raise InputError(
            f"the file ends with {padding:,} NUL bytes: written by a program that crashed, "
            "or copied while it was still being written, so its last rows cannot be trusted; "
            "nothing was sent. Export it again",
            source=source,
        )


def _tail(path: Path) -> bytes:
    """The start of an OLE2 file's directory, where an encrypted package names its stream."""
    with path.open("rb") as handle:
        return handle.read(4 * 1024 * 1024)


def _zip_kind(path: Path, source: str) -> Kind:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype") if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, KeyError, EOFError):
        raise InputError(
            "the file is cut short or damaged (a ZIP-based workbook that does not open; a "
            "download that stopped?): export or download it again",
            source=source,
        ) from None
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
        return "ods"
    if "word/document.xml" in names or mimetype.startswith(b"application/vnd.oasis.opendoc"):
        raise _unusable(source, "a text document, not a spreadsheet", "export the table as CSV")
    raise _unusable(source, "a ZIP archive", "extract the CSV or XLSX file inside and give that")


@dataclass(frozen=True, slots=True)
class SampleRow:
    """One record of a CSV's sample: its first physical line and its cells."""

    line: int
    cells: list[str]


@dataclass(frozen=True, slots=True)
class SniffedCsv:
    """A CSV ready for polars: a UTF-8 path with LF or CRLF line endings, its delimiter,
    and the first records (for the header search and the ID column's content)."""

    path: Path  #: the file polars scans (a rewritten copy when the input needed one)
    encoding: str  #: the input's encoding, as used
    encoding_detected: bool
    encoding_note: str  #: how the encoding was chosen (a BOM, valid UTF-8, a guess and why)
    delimiter: str
    rows: list[SampleRow]  #: the sample's records after a "sep=" line, blank ones included
    first_record: int  #: records before ``rows`` (1 for Excel's "sep=;" line, else 0)
    line_endings: str  #: what the file uses: "LF", "CRLF", "CR" or "mixed"
    #: Not sure of the encoding: each candidate's reading of the sample (``rows`` is the
    #: first's), and nothing may be sent (:func:`bulktag.read.inputs` says so, with the tags).
    uncertain: dict[str, list[SampleRow]] = field(default_factory=dict)
    #: UTF-8 but for a character cut at the very end: the last record is a reject.
    cut_end: bool = False


def _rewrite(path: Path, encoding: str, target: Path, source: str) -> None:
    """``path`` decoded from ``encoding`` into UTF-8 with LF line endings (CR and CRLF each
    become one LF: line numbers stay)."""
    errors = "bulktag-latin1" if codecs.lookup(encoding).name == "cp1252" else "strict"
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    pending = ""
    try:
        with path.open("rb") as raw, target.open("w", encoding="utf-8", newline="") as out:
            while chunk := raw.read(1 << 20):
                text = pending + decoder.decode(chunk)
                pending = "\r" if text.endswith("\r") else ""  # its LF may start the next chunk
                text = text.removesuffix("\r") if pending else text
                out.write(text.replace("\r\n", "\n").replace("\r", "\n"))
            out.write((pending + decoder.decode(b"", final=True)).replace("\r", "\n"))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid {encoding} text (byte {exc.start} of a chunk: {exc.reason}); "
            "pass --encoding with the file's real encoding",
            source=source,
        ) from None


def _records(text: str, delimiter: str, limit: int) -> list[SampleRow]:
    """The first ``limit`` records of ``text``, each with its first physical line."""
    rows: list[SampleRow] = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    line = 1
    # A cell over the csv module's 128 KiB limit, or a quote the sample cuts: judge by the
    # records before it.
    with contextlib.suppress(csv.Error):
        for cells in reader:
            rows.append(SampleRow(line, cells))
            line = reader.line_num + 1
            if len(rows) >= limit:
                break
    return rows


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the most of the first records into the same number (> 1)
    of fields: title lines above the header do not count against it (the modal width
    decides)."""
    best, best_score = ",", (0.0, 0)
    for candidate in CANDIDATES:
        widths = Counter(len(r.cells) for r in _records(text, candidate, 50) if r.cells)
        if not widths:
            continue
        width, count = max(widths.items(), key=lambda item: (item[1], item[0]))
        if width < 2:
            continue
        score = (count / sum(widths.values()), width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def peek_header(path: Path) -> list[str]:
    """The first record of a text file, read without options (a BOM, else UTF-8 with
    replacement; Excel's ``sep=`` line skipped; the most frequent candidate delimiter): enough
    to tell one of bulktag's own files before the options meant for a person's file apply."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return []
    text = head.decode(bom_encoding(head) or "utf-8", errors="replace").lstrip("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and _SEP_LINE.match(lines[0]):
        lines = lines[1:]
    first = lines[0] if lines else ""
    delimiter = max(CANDIDATES, key=first.count)
    return next(csv.reader([first], delimiter=delimiter), [])


def sniff_csv(
    path: Path,
    source: str,
    workdir: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> SniffedCsv:
    """Find encoding, line endings and delimiter; rewrite into UTF-8 with LF when needed."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", source=source) from None
    if not sample.strip():
        raise InputError("the file is empty: expected a header row and data", source=source)
    found = scan(path, sample, size)
    choice = choose(encoding, sample, found, source)
    readings = {e: sample.decode(e, errors="replace") for e in choice.uncertain}
    wide_text = codecs.lookup(choice.encoding).name.startswith(("utf-16", "utf-32"))
    scanned = path
    needs_rewrite = codecs.lookup(choice.encoding).name not in ("utf-8", "utf-8-sig") or (
        found.lone_cr and not wide_text
    )
    if needs_rewrite and not readings:
        workdir.mkdir(parents=True, exist_ok=True)
        handle_fd, name = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=".utf8.csv", dir=workdir)
        os.close(handle_fd)
        scanned = Path(name)
        _rewrite(path, choice.encoding, scanned, source)
        with scanned.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    text = readings.get(choice.encoding) or sample.decode("utf-8", errors="replace")
    first_record, delimiter, rows = _sample_rows(text, len(sample), delimiter, source)
    return SniffedCsv(
        scanned,
        choice.encoding,
        choice.detected,
        choice.note,
        delimiter,
        rows,
        first_record,
        found.line_endings,
        uncertain={
            e: _sample_rows(t, len(sample), delimiter, source)[2] for e, t in readings.items()
        },
        cut_end=choice.cut_end,
    )


def _sample_rows(
    text: str, size: int, delimiter: str | None, source: str
) -> tuple[int, str, list[SampleRow]]:
    """The sample's records (after Excel's ``sep=`` line, counted in the first value), and
    the delimiter (sniffed unless given)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if size == SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # the last line of a cut sample may be partial
    first_record = 0
    sep_line = _SEP_LINE.match(text.split("\n", 1)[0])
    if sep_line:  # Excel's "sep=;" first line
        delimiter = delimiter or sep_line.group(1)
        text, first_record = text.split("\n", 1)[1] if "\n" in text else "", 1
    if delimiter is None:
        delimiter = _sniff_delimiter("".join(text.splitlines(keepends=True)[:50]))
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise InputError(
            f"delimiter {delimiter!r} must be one character, not a quote", source=source
        )
    rows = [
        SampleRow(row.line + first_record, row.cells)
        for row in _records(text, delimiter, SAMPLE_RECORDS)
    ]
    return first_record, delimiter, rows
