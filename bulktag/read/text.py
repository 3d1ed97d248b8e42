"""Text inputs into the one shape: CSV and TSV (the header found, physical lines kept, an
encoding the detectors disagree on refused), NDJSON and JSON records."""

from __future__ import annotations

import codecs
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    pass

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.read.columns import (
    ColumnMap,
    header_index,
    map_columns,
)
from bulktag.read.frame import InputFrame, tag_name
from bulktag.read.ownfiles import reading
from bulktag.read.paths import GLOB, check_own, first_line, held
from bulktag.read.rules import CUT_CHARACTER, CUT_LINE
from bulktag.read.sniff import SniffedCsv, peek_header, sniff_csv

__all__ = ["at_line", "read_csv", "read_json_records", "read_ndjson"]


def _csv_header(sniffed: SniffedCsv, source: str, options: ReadOptions) -> int:
    """The index in ``sniffed.rows`` of the header (``--header-row`` names its line)."""
    rows = sniffed.rows
    if options.header_row is not None:
        for index, row in enumerate(rows):
            if row.line == options.header_row:
                return index
        raise InputError(
            f"--header-row {options.header_row}: no row starts on that line "
            f"(the sample holds lines 1 to {rows[-1].line if rows else 0})",
            source=source,
        )
    found = header_index([row.cells for row in rows], options)
    if found is None:
        raise InputError("no header row: the first lines are empty", source=source)
    return found


def read_csv(path: Path, source: str, options: ReadOptions, workdir: Path) -> InputFrame:
    own, options = reading(peek_header(path), path.name, options)
    sniffed = sniff_csv(
        path, source, workdir, encoding=options.encoding, delimiter=options.delimiter
    )
    at = _csv_header(sniffed, source, options)
    header = sniffed.rows[at].cells
    if not any(h.strip() for h in header):
        raise InputError(
            "the header row is empty: expected column names",
            source=source,
            line=sniffed.rows[at].line,
        )
    samples = [row.cells for row in sniffed.rows[at + 1 :]]
    check_own(own, header, samples, source)
    try:
        columns = map_columns(header, source, options, samples)
    except InputError as exc:
        raise at_line(exc, sniffed.rows[at].line) from None
    if sniffed.uncertain:
        raise _not_sure(sniffed, at, columns, source)
    skip = sniffed.first_record + at + 1  # records before the data: "sep=", titles, header
    width = len(header)
    names = [f"c{i}" for i in range(width + 1)]  # one more: catches ragged rows
    scan = pl.scan_csv(
        sniffed.path,
        glob=False,  # "export [2].csv" is a file name (globs are expanded by expand_inputs)
        has_header=False,
        skip_rows=skip,
        separator=sniffed.delimiter,
        schema=dict.fromkeys(names, pl.String),
        truncate_ragged_lines=True,
        extra_columns="ignore",  # else a first data row two fields too long fails the whole file
        missing_columns="insert",
        row_index_name="__record",
        quote_char='"',
        # a file cut inside its last character: the rest is UTF-8, its last row a reject
        encoding="utf8-lossy" if sniffed.cut_end else "utf8",
    )
    reason = held(own, header, options, lambda i: pl.col(names[i]))
    cut = CUT_CHARACTER if sniffed.cut_end else None
    if cut is None and source in options.cut_suspects:
        cut = CUT_LINE
    if cut is not None:  # cut while being written: its last row is a reject, never tags
        last = pl.col("__record") == pl.col("__record").max()
        reason = pl.when(last).then(pl.lit(cut)).otherwise(reason)
    frame = scan.select(
        line=(pl.col("__record").cast(pl.Int64) + skip + 1),
        id=pl.col(names[columns.id_index]),
        id_number=pl.lit(value=False),
        held=reason,
        extra=pl.col(names[width]),
        **{tag_name(j): pl.col(names[i]) for j, i in enumerate(columns.tag_indexes)},
    )
    notes = (
        [f"{sniffed.line_endings} line endings"] if sniffed.line_endings in ("CR", "mixed") else []
    )
    return InputFrame(
        source,
        "csv",
        frame,
        columns,
        sniffed.encoding,
        sniffed.encoding_detected,
        sniffed,
        quoted=True,
        tag_lists=(False,) * len(columns.tag_indexes),
        header_line=sniffed.rows[at].line,
        notes=tuple(notes),
        own=own,
        options=options,
    )


def _not_sure(sniffed: SniffedCsv, at: int, columns: ColumnMap, source: str) -> InputError:
    """A file whose encoding is not certain: nothing is sent; a few tags as each candidate
    reads them, and the fix."""
    readings = []
    for encoding, rows in sniffed.uncertain.items():
        cells = [
            row.cells[i]
            for row in rows[at + 1 :]
            for i in columns.tag_indexes
            if i < len(row.cells)
        ]
        shown = [c for c in cells if not c.isascii()][:3] or cells[:3]
        readings.append(f"as {encoding}: " + ", ".join(repr(c[:40]) for c in shown))
    first = next(iter(sniffed.uncertain))
    return InputError(
        "the encoding is not certain (not UTF-8, no byte order mark, and two detectors read it "
        "differently): " + "; ".join(readings) + ". Nothing was sent: give the right one with "
        f'--encoding {first} (or encoding = "{first}" under [read] in a job file)',
        source=source,
    )


def at_line(exc: InputError, line: int) -> InputError:
    """The error, placed on the header's line."""
    message = str(exc).removeprefix(f"{exc.source}: ") if exc.source else str(exc)
    return InputError(message, source=exc.source, line=line)


def read_ndjson(path: Path, workdir: Path) -> Path:
    """``path`` as polars' ``scan_ndjson`` can take it: a copy without its UTF-8 byte order
    mark (Windows PowerShell 5.1 writes one; polars stops at it), or a link without glob
    characters (polars 2.1's ``scan_ndjson`` has no ``glob=False`` and would take
    "export [2].ndjson" for a pattern)."""
    with path.open("rb") as handle:
        bom = handle.read(3) == codecs.BOM_UTF8
        if bom:
            workdir.mkdir(parents=True, exist_ok=True)
            copy = workdir / f"input-{len(list(workdir.glob('input-*')))}.ndjson"
            with copy.open("wb") as out:
                shutil.copyfileobj(handle, out, 1 << 20)
            return copy
    if not GLOB.search(str(path)):
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    link = workdir / f"input-{len(list(workdir.glob('input-*')))}.ndjson"
    link.symlink_to(path.resolve())
    return link


def read_json_records(path: Path, source: str) -> pl.LazyFrame:
    """A JSON array of records (``to_json(orient="records")``) as a frame: by polars when
    it can, else by Python's json with every value text (lists as JSON text, read then as
    lists of tags), as NDJSON's mixed columns are."""
    try:
        return pl.read_json(path, infer_schema_length=10_000).lazy()
    except pl.exceptions.PolarsError:
        pass
    try:
        records = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a JSON array of records: {first_line(exc)}", source=source) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError("not a JSON array of records (objects)", source=source)
    names = list(dict.fromkeys(key for record in records for key in record))

    def text(value: object) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)

    columns = {n: [text(r.get(n)) for r in records] for n in names}
    return pl.LazyFrame(columns, schema=dict.fromkeys(names, pl.String))
