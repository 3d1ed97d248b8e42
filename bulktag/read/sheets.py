"""Workbooks (XLSX, XLSB, XLS, ODS): the sheet a person means, its cells as text.

Read through fastexcel (calamine), every cell as text. Which sheet:

- ``--sheet`` (a name or a number from 1), checked against the workbook's sheets;
- else the first visible sheet, when it holds a table of contacts (a header naming an ID
  column, or a column of UUIDs, and a tags column);
- else the one other sheet that does, visible sheets before hidden ones: a template whose
  first sheet is "Instructions" is read from its data sheet, and the plan says which. A
  hidden sheet is never read silently (a warning says so). When several could be meant,
  nothing is read: exit 65 names each sheet, what it holds, and ``--sheet``.

A merged cell (XLSX: a ``Segment`` label merged down a group's rows) gives its value to
every cell it spans, as the person sees it on each row; calamine gives it to the first only.

A workbook is a ZIP of XML (XLSX, ODS) that calamine inflates and holds whole: a 4 MiB file
can inflate to 4 GiB. Before calamine opens it, each part it would read is bounded
(:func:`check_inflation`): by the sizes the ZIP declares, and where a part could inflate
past the bound whatever it declares (deflate inflates at most 1032 times), by inflating it
once, counting. A larger one is refused (exit 65), with the advice to save it as CSV.
"""

from __future__ import annotations

import difflib
import logging
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import polars as pl

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.read.columns import HEADER_SEARCH_ROWS, SAMPLE_ROWS, header_index, map_columns
from bulktag.read.ownfiles import OwnKind, reading

if TYPE_CHECKING:
    import fastexcel

__all__ = ["SAVE_AGAIN", "Sheet", "header_row", "open_sheet", "typed_ids"]

log = logging.getLogger("bulktag")

SAVE_AGAIN = (
    "open it in Excel, LibreOffice or Google Sheets and save it as XLSX or CSV, or export it "
    "again if the file is cut short"
)


@dataclass(frozen=True, slots=True)
class Sheet:
    """The sheet read: its cells as text (a row's index is its sheet row number - 1)."""

    reader: fastexcel.ExcelReader
    index: int  #: in the workbook, from 0
    name: str
    table: pl.DataFrame
    own: OwnKind | None  #: which of bulktag's files it is (None: a person's)
    options: ReadOptions  #: how it is read
    note: str | None = None  #: for the plan: which sheet, and why it


#: The XML of one part of a workbook (a sheet, its shared strings) bulktag inflates: a
#: full sheet of 1,048,576 rows of an ID and tags is about 190 MiB.
MAX_PART_BYTES = 256 << 20
#: The parts together (the sheets are looked at one after another).
MAX_BOOK_BYTES = 1 << 30
#: How much deflate can inflate a byte, at most.
_DEFLATE_RATIO = 1032
_BIG_PARTS = re.compile(r"(^|/)(sheet\d*|sharedStrings|content|styles)\.xml$", re.IGNORECASE)


def check_inflation(path: Path, source: str) -> None:
    """InputError (65) for a workbook whose XML would inflate past :data:`MAX_PART_BYTES` a
    part or :data:`MAX_BOOK_BYTES` in all (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # not a ZIP (XLS, XLSB's container is one): calamine says what it is
    with archive:
        total = 0
        for info in archive.infolist():
            if not _BIG_PARTS.search(info.filename):
                continue
            size = info.file_size
            if size <= MAX_PART_BYTES and info.compress_size * _DEFLATE_RATIO > MAX_PART_BYTES:
                size = max(size, _inflated(path, info))  # it may hold more than it says
            total += size
            if size > MAX_PART_BYTES or total > MAX_BOOK_BYTES:
                raise InputError(
                    f"the workbook's {info.filename} inflates to more than "
                    f"{min(size, total) / (1 << 20):,.0f} MiB (bulktag reads at most "
                    f"{MAX_PART_BYTES >> 20} MiB a part, {MAX_BOOK_BYTES >> 30} GiB in all, "
                    "from a file of "
                    f"{path.stat().st_size / (1 << 20):,.1f} MiB): save the sheet as CSV "
                    "(CSV UTF-8), which bulktag reads as it goes; nothing was sent",
                    source=source,
                )


def _inflated(path: Path, info: zipfile.ZipInfo) -> int:
    """``info``'s size once inflated, counted up to just past :data:`MAX_PART_BYTES`, from
    its raw deflate stream: what it declares is not trusted (zipfile would stop there)."""
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return info.compress_size
    counted = 0
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        with path.open("rb") as handle:
            handle.seek(info.header_offset)
            header = handle.read(30)
            name, extra = struct.unpack("<HH", header[26:30])
            handle.seek(info.header_offset + 30 + name + extra)
            left = info.compress_size
            while left > 0 and counted <= MAX_PART_BYTES:
                data = handle.read(min(left, 1 << 16))
                if not data:
                    break
                left -= len(data)
                while data and counted <= MAX_PART_BYTES:
                    counted += len(inflate.decompress(data, 1 << 20))
                    data = inflate.unconsumed_tail
    except (OSError, zlib.error, struct.error):
        pass  # a damaged part: calamine says so
    return counted


def open_sheet(path: Path, kind: str, options: ReadOptions, source: str) -> Sheet:
    """The workbook's sheet to read (see the module docstring), its merged cells filled."""
    import fastexcel  # noqa: PLC0415  (polars' calamine engine; only workbooks need it)

    check_inflation(path, source)

    # calamine goes by the extension; from the bytes it tells the format by content.
    named = path.suffix.lower().lstrip(".") in (kind, "xlsm" if kind == "xlsx" else kind)
    reader = fastexcel.read_excel(path if named else path.read_bytes())
    own, options = reading(_first_row(reader, 0), path.name, options)
    index, note = _choose(reader, options, source)
    # skip_rows=0: keep leading empty rows, so a row's index is its sheet row number - 1.
    loaded = reader.load_sheet(index, header_row=None, skip_rows=0, dtypes="string")
    table = loaded.to_polars()
    if kind == "xlsx":
        columns = [c.absolute_index for c in loaded.available_columns()]
        table = _merged(path, index, table, columns)
    return Sheet(reader, index, reader.sheet_names[index], table, own, options, note)


def _first_row(reader: fastexcel.ExcelReader, index: int) -> list[str]:
    first = reader.load_sheet(index, header_row=None, n_rows=1, dtypes="string").to_polars()
    return [str(v) for v in first.row(0) if v is not None] if first.height else []


@dataclass(frozen=True, slots=True)
class _Look:
    """What a sheet holds, from its first rows."""

    index: int
    name: str
    visible: bool
    holds: str | None  #: "the ID column 'X', N rows": a table of contacts; None: not one


def _look(reader: fastexcel.ExcelReader, index: int, options: ReadOptions) -> _Look:
    sample = reader.load_sheet(
        index,
        header_row=None,
        skip_rows=0,
        n_rows=HEADER_SEARCH_ROWS + SAMPLE_ROWS,
        dtypes="string",
    )
    table = sample.to_polars()
    holds = None
    at = header_index([table.row(i) for i in range(min(table.height, HEADER_SEARCH_ROWS))], options)
    if at is not None:
        header = ["" if v is None else str(v) for v in table.row(at)]
        rows = [table.row(i) for i in range(at + 1, table.height)]
        try:
            found = map_columns(header, reader.sheet_names[index], options, rows)
        except InputError:
            found = None
        if found is not None:
            data = max(0, sample.total_height - at - 1)
            holds = f"ID column {found.id_name!r}, {data:,} rows"
    return _Look(index, reader.sheet_names[index], sample.visible == "visible", holds)


def _choose(
    reader: fastexcel.ExcelReader, options: ReadOptions, source: str
) -> tuple[int, str | None]:
    """The sheet to read, and what the plan says of the choice (None: nothing to say)."""
    names = reader.sheet_names
    if options.sheet:
        return _given(names, options.sheet, source), None
    if len(names) == 1:
        return 0, None
    looks = [_look(reader, i, options) for i in range(len(names))]
    visible = [look for look in looks if look.visible]
    first = visible[0] if visible else looks[0]
    if first.holds:
        skipped = [look.name for look in looks[: first.index]]
        note = f"sheet {first.name!r} (before it, hidden: {_names(skipped)})" if skipped else None
        return first.index, note
    others = [look for look in looks if look.holds and look is not first]
    shown = [look for look in others if look.visible] or others
    if len(shown) == 1:
        chosen = shown[0]
        why = f"the first sheet {first.name!r} holds no table of contacts"
        if not chosen.visible:
            log.warning("%s: reading the hidden sheet %r: %s", source, chosen.name, why)
            return chosen.index, f"the HIDDEN sheet {chosen.name!r} ({chosen.holds}): {why}"
        return chosen.index, f"sheet {chosen.name!r} ({chosen.holds}): {why}"
    listed = "; ".join(
        f"{look.name!r}{'' if look.visible else ' (hidden)'}: "
        + (look.holds or "no table of contacts")
        for look in looks
    )
    if shown:
        raise InputError(
            f"the first sheet {first.name!r} holds no table of contacts and several sheets do "
            f"({listed}): name the one to read with --sheet",
            source=source,
        )
    raise InputError(
        f"no sheet holds a table of contacts (a contact ID column and a tags column): "
        f"{listed}. Name the sheet with --sheet and its columns with --id-column and "
        "--tags-column",
        source=source,
    )


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _given(names: list[str], sheet: str, source: str) -> int:
    """``--sheet`` as a 1-based number or a name, checked."""
    if sheet.isdigit():
        number = int(sheet)
        if not 1 <= number <= len(names):
            raise InputError(
                f"--sheet {sheet}: the workbook has {len(names)} sheet(s), numbered from 1: "
                + ", ".join(f"{i} {n!r}" for i, n in enumerate(names, start=1)),
                source=source,
            )
        return number - 1
    if sheet in names:
        return names.index(sheet)
    close = difflib.get_close_matches(sheet, names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(f"no sheet {sheet!r}{hint} Sheets: {_names(names)}", source=source)


def header_row(table: pl.DataFrame, options: ReadOptions, source: str) -> int:
    """The header's index in the table: ``--header-row``, else searched."""
    rows = [table.row(i) for i in range(min(table.height, HEADER_SEARCH_ROWS))]
    if options.header_row is not None:
        if not 1 <= options.header_row <= table.height:
            raise InputError(
                f"--header-row {options.header_row}: the sheet has {table.height} row(s)",
                source=source,
            )
        return int(options.header_row) - 1
    found = header_index(rows, options)
    if found is None:
        raise InputError("the sheet is empty: expected a header row and data", source=source)
    return found


def typed_ids(reader: fastexcel.ExcelReader, sheet: int, ids: pl.Series, index: int) -> pl.Series:
    """Per row: whether the ID cell is typed as a number (or a date, a boolean), not text.

    A number cell reads as its digits: as text, most cannot pass for a UUID (the ID rules
    reject them as numbers), but a bare-hex UUID made only of digits becomes a float whose
    32 digits (float noise in the last ones) would, and the largest floats read "inf".
    Only then is the sheet's ID column read again, as booleans: fastexcel gives a value
    for a number, date or boolean cell and none for text, whatever the text holds.
    """
    ambiguous = ids.str.contains(r"(?i)^\s*(?:\d{32}|[+-]?inf|nan)\s*$").fill_null(value=False)
    if not ambiguous.any():
        return pl.repeat(value=False, n=ids.len(), dtype=pl.Boolean, eager=True)
    kinds = reader.load_sheet(
        sheet, header_row=None, skip_rows=0, dtypes={index: "boolean"}, use_columns=[index]
    )
    typed: pl.Series = kinds.to_polars().to_series().is_not_null()
    return typed


# -- merged cells (XLSX) ---------------------------------------------------------------

_MERGE = re.compile(rb'<mergeCell\s[^>]*ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')
_SHEET = re.compile(rb"<sheet\s[^>]*>")
_ATTRIBUTE = re.compile(rb'([\w:]+)="([^"]*)"')
_TARGET = re.compile(rb"<Relationship\s[^>]*>")


def _column(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number - 1


def _sheet_xml(archive: zipfile.ZipFile, index: int) -> str | None:
    """The worksheet part of the ``index``-th sheet (xl/workbook.xml, then its rels)."""
    try:
        sheets = _SHEET.findall(archive.read("xl/workbook.xml"))
        rels = _TARGET.findall(archive.read("xl/_rels/workbook.xml.rels"))
    except KeyError:
        return None
    if index >= len(sheets):
        return None
    attributes = dict(_ATTRIBUTE.findall(sheets[index]))
    rid = next((v for k, v in attributes.items() if k.endswith(b":id")), None)
    for rel in rels:
        found = dict(_ATTRIBUTE.findall(rel))
        if found.get(b"Id") == rid:
            target = found[b"Target"].decode()
            return (
                target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl", target))
            )
    return None


def _merged_ranges(path: Path, index: int) -> set[tuple[int, int, int, int]]:
    """The sheet's merged ranges, as (first row, first column, last row, last column) from
    0; its XML read in chunks (the ranges come after every cell)."""
    found: set[tuple[int, int, int, int]] = set()
    try:
        with zipfile.ZipFile(path) as archive:
            part = _sheet_xml(archive, index)
            if part is None:
                return found
            with archive.open(part) as xml:
                carry = b""
                while chunk := xml.read(1 << 20):
                    text = carry + chunk
                    for c1, r1, c2, r2 in _MERGE.findall(text):
                        found.add((int(r1) - 1, _column(c1), int(r2) - 1, _column(c2)))
                    carry = text[-256:]
    except (zipfile.BadZipFile, KeyError, OSError):
        return set()
    return found


def _merged(path: Path, index: int, table: pl.DataFrame, columns: list[int]) -> pl.DataFrame:
    """``table`` with each merged range's value (its first cell's) in every cell it spans
    that calamine left empty. ``columns``: each table column's index in the sheet."""
    ranges = _merged_ranges(path, index)
    if not ranges:
        return table
    at = dict(zip(columns, table.columns, strict=True))
    fills: dict[str, tuple[list[int], list[str]]] = {}
    for r1, c1, r2, c2 in ranges:
        if c1 not in at or r1 >= table.height:
            continue
        value = table[r1, at[c1]]
        if value is None:
            continue
        for column in range(c1, c2 + 1):
            name = at.get(column)
            if name is None:
                continue
            rows, values = fills.setdefault(name, ([], []))
            for row in range(r1, min(r2, table.height - 1) + 1):
                if (row, column) != (r1, c1) and table[row, name] is None:
                    rows.append(row)
                    values.append(value)
    return table.with_columns(
        table.get_column(name).clone().scatter(rows, values)
        for name, (rows, values) in fills.items()
    )
