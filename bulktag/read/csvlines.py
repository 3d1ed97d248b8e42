"""CSV records and the physical lines they came from, and what polars could not split.

polars numbers a CSV's records; a person counts lines. They differ where quoted cells
hold line breaks (Alt+Enter in a spreadsheet): :func:`fix_csv_lines` maps record
numbers to physical lines in the plan and the rejects, from the file's quoting, so every
``line`` a user reads is the line their editor shows. When polars cannot read a CSV,
:func:`input_error` names the file and, for a quoting mistake, the line and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from bulktag.errors import InputError
from bulktag.read.frame import InputFrame
from bulktag.read.rules import MAX_CELL_BYTES
from bulktag.read.sniff import SniffedCsv

__all__ = ["count_lines", "fix_csv_lines", "input_error"]

_UNCLOSED = 'a quoted cell is not closed: its quote (") runs to the end of the file'
_STRAY = (
    'a quote (") inside a cell that does not start with one: '
    'quote the whole cell and double the quote ("")'
)
_AFTER = 'text after the closing quote (") of a cell: quote the whole cell, double inner quotes'


def input_error(inputs: Sequence[InputFrame], exc: pl.exceptions.PolarsError) -> InputError:
    """Name the input that polars could not read, with the line when it can be told."""
    for item in inputs:
        try:
            # Every column, so that the rows are really split and decoded (a count is not).
            item.frame.select(pl.all().null_count()).collect()
        except pl.exceptions.PolarsError as own:
            message = str(own).strip().splitlines()[0]
            line = None
            if "invalid utf-8" in message:
                message += " (pass --encoding, e.g. --encoding cp1252)"
            elif item.csv is not None and (problem := _quote_problem(item.csv)) is not None:
                line, message = problem[0], f"cannot split this row into fields: {problem[1]}"
            return InputError(message, source=item.source, line=line)
    source = inputs[0].source if len(inputs) == 1 else None
    return InputError(str(exc).strip().splitlines()[0], source=source)


def _quote_problem(sniffed: SniffedCsv) -> tuple[int, str] | None:
    """The first line whose quoting polars cannot split, and what is wrong with it."""
    start, quoted = 1, False
    with sniffed.path.open(encoding="utf-8-sig", errors="replace", newline="\n") as handle:
        for number, text in enumerate(handle, start=1):
            if not quoted:
                start = number
                if '"' not in text:
                    continue
            quoted, problem = _scan_quotes(text.rstrip("\r\n"), sniffed.delimiter, quoted)
            if problem:
                return start, problem
    return (start, _UNCLOSED) if quoted else None


def _scan_quotes(text: str, delimiter: str, quoted: bool) -> tuple[bool, str | None]:
    """RFC 4180 quoting of one line: (still inside a quoted cell, the problem found)."""
    at, size = 0, len(text)
    while True:
        if quoted:  # find the closing quote; a doubled quote is a quote in the cell
            end = text.find('"', at)
            while end != -1 and text.startswith('""', end):
                end = text.find('"', end + 2)
            if end == -1:
                return True, None
            at = end + 1
            if at < size and text[at] != delimiter:
                return False, _AFTER
            quoted, at = False, at + 1
            if at > size:
                return False, None
        elif at < size and text[at] == '"':
            quoted, at = True, at + 1
        else:  # an unquoted cell: an odd number of quotes opens a cell polars never closes
            end = text.find(delimiter, at)
            if text[at : size if end == -1 else end].count('"') % 2:
                return False, _STRAY
            if end == -1:
                return False, None
            at = end + 1


def count_lines(inputs: Sequence[InputFrame]) -> list[int | None]:
    """Per input: the lines of the CSV polars read (``None`` when not a CSV): line breaks,
    and a last line without one, counted a MiB at a time (0.6 s a GB). polars counting its
    records (quotes off, one column) was ten times faster, and held 8 GiB for a line of
    200 MB: a hostile file's memory is bounded first."""
    return [
        None if item.csv is None else _count_line_breaks(item.csv.path, item.source)
        for item in inputs
    ]


#: A line longer than this is no row of contacts and tags (256 cells of the most a cell may
#: hold): refused before polars holds it (a line of 200 MB cost it 1 GiB).
MAX_LINE_BYTES = 256 * MAX_CELL_BYTES


def _count_line_breaks(path: Path, source: str = "") -> int:
    """Line breaks, and a last line without one; InputError (65) at a line longer than
    :data:`MAX_LINE_BYTES` (only a line that spans chunks can be: each is 1 MiB)."""
    newlines, last, run = 0, b"\n", 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            first = chunk.find(b"\n")
            ended = run + (len(chunk) if first == -1 else first)  # the line running on
            run = ended if first == -1 else len(chunk) - chunk.rfind(b"\n") - 1
            if max(ended, run) > MAX_LINE_BYTES:
                raise InputError(
                    f"a line of more than {MAX_LINE_BYTES:,} bytes: no row of contacts and tags "
                    f"is that long (a cell holds at most {MAX_CELL_BYTES:,}); nothing was sent",
                    source=source or str(path),
                    line=newlines + 1,
                )
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return newlines + (last != b"\n")  # a last line without a break is a line too


def _line_shifts(item: InputFrame, records: int, lines: int | None) -> pl.DataFrame | None:
    """A CSV whose quoted cells hold line breaks: from which record line on, by how much its
    physical line is further down; ``None`` when record numbers are line numbers.

    ``records``: the data records polars read (blank lines included); ``lines``: the file's.
    """
    sniffed = item.csv
    if sniffed is None or lines is None or lines <= records + (item.header_line or 1):
        return None
    starts: list[int] = []
    shifts: list[int] = []
    record, shift, quoted = 0, 0, False
    # Not the csv module: it refuses cells over 128 KiB, which polars reads (and rejects).
    with sniffed.path.open(encoding="utf-8-sig", errors="replace", newline="\n") as handle:
        for number, text in enumerate(handle, start=1):
            if not quoted:  # a record starts on this line
                record += 1
                if number - record != shift:
                    shift = number - record
                    starts.append(record)
                    shifts.append(shift)
                if '"' not in text:
                    continue
            quoted = _scan_quotes(text.rstrip("\r\n"), sniffed.delimiter, quoted)[0]
    return pl.DataFrame(
        {"source": item.source, "line": starts, "__shift": shifts},
        schema={"source": pl.String, "line": pl.Int64, "__shift": pl.Int64},
    )


def fix_csv_lines(
    inputs: Sequence[InputFrame],
    records: Sequence[int],
    lines: Sequence[int | None],
    plan_path: Path | None,
    rejects_path: Path,
) -> None:
    """Record numbers are line numbers unless quoted cells hold line breaks: map those, in the
    plan and in the rejects."""
    found = [
        shifts
        for item, count, total in zip(inputs, records, lines, strict=True)
        if (shifts := _line_shifts(item, count, total)) is not None
    ]
    if not found:
        return
    by_line = pl.concat(found).unique().sort("line").lazy()
    for path in (rejects_path,) if plan_path is None else (plan_path, rejects_path):
        fixed = (
            pl.scan_parquet(path)
            .with_row_index("__order")
            .sort("line")
            .join_asof(by_line, on="line", by="source", strategy="backward", check_sortedness=False)
            .with_columns(pl.col("line") + pl.col("__shift").fill_null(0))
            .sort("__order")
            .drop("__order", "__shift")
        )
        temporary = path.with_name(path.name + ".lines")
        fixed.sink_parquet(temporary)
        temporary.replace(path)
