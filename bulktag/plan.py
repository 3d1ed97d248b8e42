"""From input rows to a plan: valid (contact, tag) pairs grouped per contact, and rejects.

Every input row is counted exactly once, as *grouped* (it gives at least one
valid tag to a contact) or *rejected*; each problem becomes a reject row with
the source, line, column, raw values and reason. The plan is written to a
Parquet file (one row per contact: ``seq, contact_id, tags, source, line``, in
order of first appearance, tags de-duplicated in first-seen order) and read back
in slices by the dispatcher, so no stage holds all contacts as Python objects.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.leadlex import MAX_TAGS_PER_REQUEST
from bulktag.normalise import NO_TAGS, RAGGED, canonical_id, id_problem, normalise_tag, tag_problem
from bulktag.read import InputFrame
from bulktag.sniff import SniffedCsv

__all__ = ["InputSummary", "Plan", "PlanStats", "build_plan", "chunks"]

REJECT_SCHEMA = {
    "contact_id": pl.String,
    "tags": pl.String,
    "source": pl.String,
    "line": pl.Int64,
    "column": pl.String,
    "reason": pl.String,
}


def chunks(tags: Sequence[str], size: int = MAX_TAGS_PER_REQUEST) -> list[list[str]]:
    """Tags split into requests of at most ``size``."""
    return [list(tags[i : i + size]) for i in range(0, len(tags), size)] or [[]]


@dataclass(frozen=True, slots=True)
class InputSummary:
    source: str
    format: str
    encoding: str | None
    encoding_detected: bool
    id_column: str
    tag_columns: tuple[str, ...]
    rows: int


@dataclass(frozen=True, slots=True)
class PlanStats:
    """What the plan holds; known before the first request."""

    rows_read: int  #: data rows (blank lines and empty sheet rows are not counted)
    rows_grouped: int
    rows_rejected: int
    rejects: int
    rejects_by_reason: dict[str, int]
    pairs: int  #: valid (contact, tag) pairs, repeats included
    duplicate_pairs: int
    contacts: int
    requests: int
    inputs: tuple[InputSummary, ...] = field(default_factory=tuple)
    blank_rows: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "rows_grouped": self.rows_grouped,
            "rows_rejected": self.rows_rejected,
            "blank_rows": self.blank_rows,
            "rejects": self.rejects,
            "rejects_by_reason": dict(self.rejects_by_reason),
            "pairs": self.pairs,
            "duplicate_pairs": self.duplicate_pairs,
            "contacts": self.contacts,
            "requests": self.requests,
            "inputs": [
                {
                    "source": i.source,
                    "format": i.format,
                    "encoding": i.encoding,
                    "encoding_detected": i.encoding_detected,
                    "id_column": i.id_column,
                    "tag_columns": list(i.tag_columns),
                    "rows": i.rows,
                }
                for i in self.inputs
            ],
        }


@dataclass(frozen=True, slots=True)
class Plan:
    path: Path  #: plan Parquet: seq, contact_id, tags, source, line
    rejects_path: Path  #: rejects Parquet, columns of REJECT_SCHEMA
    stats: PlanStats

    def batches(self, size: int = 10_000, *, offset: int = 0) -> Iterator[pl.DataFrame]:
        """The plan in slices of ``size`` contacts, in order."""
        frame = pl.scan_parquet(self.path)
        if offset:
            frame = frame.slice(offset)
        yield from frame.collect_batches(chunk_size=size)


def _rows(item: InputFrame, index: int, options: ReadOptions) -> pl.LazyFrame:
    """Per input row: canonical id, normalised tags, the row's problem, its valid tag count."""
    lower = options.tag_case == "lower"
    tags = (
        pl.col("pieces")
        .list.eval(normalise_tag(pl.element(), lower=lower, prefix=options.tag_prefix))
        .list.eval(pl.element().filter(pl.element() != ""))
    )
    extra = pl.col("extra").str.strip_chars()
    return (
        item.frame.with_columns(src=pl.lit(index, dtype=pl.Int32), tags=tags)
        .with_columns(
            id=canonical_id(pl.col("raw_id")),
            row_problem=pl.when(extra.is_not_null() & (extra != ""))
            .then(pl.lit(RAGGED))
            .otherwise(id_problem(pl.col("raw_id")))
            .fill_null(pl.when(pl.col("tags").list.len() == 0).then(pl.lit(NO_TAGS))),
            good=pl.col("tags").list.eval(tag_problem(pl.element()).is_null()).list.sum(),
        )
        .drop("pieces", "extra")
    )


def _column_names(inputs: Sequence[InputFrame]) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    sources = pl.Series([i.source for i in inputs], dtype=pl.String)
    id_columns = pl.Series([i.columns.id_name for i in inputs], dtype=pl.String)
    tag_columns = pl.Series([", ".join(i.columns.tag_names) for i in inputs], dtype=pl.String)
    return (
        pl.col("src").replace_strict(range(len(inputs)), sources, return_dtype=pl.String),
        pl.col("src").replace_strict(range(len(inputs)), id_columns, return_dtype=pl.String),
        pl.col("src").replace_strict(range(len(inputs)), tag_columns, return_dtype=pl.String),
    )


def build_plan(
    inputs: Sequence[InputFrame], options: ReadOptions, plan_path: Path, rejects_path: Path
) -> Plan:
    """Read every input once: write the plan and the rejects, return the counts."""
    every_row = pl.concat(
        [_rows(item, i, options) for i, item in enumerate(inputs)], how="vertical"
    )
    # Blank lines and empty spreadsheet rows are not input rows: counted, never rejected.
    blank = (
        (pl.col("raw_id").is_null() | (pl.col("raw_id").str.strip_chars() == ""))
        & (pl.col("tags").list.len() == 0)
        & (pl.col("row_problem") != RAGGED)
    )
    every_row = every_row.with_columns(blank=blank)
    rows = every_row.filter(~pl.col("blank"))
    source, id_column, tag_column = _column_names(inputs)
    row_rejects = rows.filter(pl.col("row_problem").is_not_null()).select(
        contact_id=pl.col("raw_id"),
        tags=pl.col("raw_tags"),
        source=source,
        line=pl.col("line"),
        column=pl.when(pl.col("row_problem") == NO_TAGS)
        .then(tag_column)
        .when(pl.col("row_problem") == RAGGED)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(id_column),
        reason=pl.col("row_problem"),
    )
    usable = rows.filter(pl.col("row_problem").is_null()).explode("tags")
    tag_rejects = (
        usable.with_columns(problem=tag_problem(pl.col("tags")))
        .filter(pl.col("problem").is_not_null())
        .select(
            contact_id=pl.col("raw_id"),
            tags=pl.col("tags"),
            source=source,
            line=pl.col("line"),
            column=tag_column,
            reason=pl.col("problem"),
        )
    )
    pairs = usable.filter(tag_problem(pl.col("tags")).is_null()).select(
        "id", tag="tags", src="src", line="line"
    )
    grouped = (
        pairs.with_row_index("order")
        .group_by("id")
        .agg(
            tags=pl.col("tag").unique(maintain_order=True),
            first=pl.col("order").min(),
            src=pl.col("src").first(),
            line=pl.col("line").first(),
        )
        .sort("first")
        .with_columns(input_tags=pl.col("tags").list.len())
    )
    if options.static_tags:
        static = pl.lit(list(options.static_tags), dtype=pl.List(pl.String))
        grouped = grouped.with_columns(
            tags=pl.concat_list("tags", static).list.unique(maintain_order=True)
        )
    plan = grouped.select(
        seq=pl.int_range(pl.len(), dtype=pl.Int64),
        contact_id=pl.col("id"),
        tags=pl.col("tags"),
        source=source,
        line=pl.col("line"),
        input_tags=pl.col("input_tags"),
    )
    per_input = every_row.group_by("src").agg(
        read=(~pl.col("blank")).sum(),
        blank=pl.col("blank").sum(),
        grouped=(pl.col("row_problem").is_null() & (pl.col("good") > 0)).sum(),
    )
    pair_count = pairs.select(pl.len())
    rejects = pl.concat([row_rejects, tag_rejects]).sort("source", "line", maintain_order=True)
    try:
        _, _, counts, pair_total = pl.collect_all(
            [
                plan.sink_parquet(plan_path, lazy=True),
                rejects.sink_parquet(rejects_path, lazy=True),
                per_input,
                pair_count,
            ]
        )
    except pl.exceptions.PolarsError as exc:
        raise _input_error(inputs, exc) from None
    _fix_csv_lines(inputs, plan_path, rejects_path)
    reject_frame = pl.read_parquet(rejects_path)
    planned = (
        pl.scan_parquet(plan_path)
        .select(
            contacts=pl.len(),
            unique_pairs=pl.col("input_tags").sum(),
            requests=(pl.col("tags").list.len() / MAX_TAGS_PER_REQUEST).ceil().sum(),
        )
        .collect()
    )
    by_src = {row["src"]: row for row in counts.iter_rows(named=True)}
    summaries = tuple(
        InputSummary(
            source=item.source,
            format=item.format,
            encoding=item.encoding,
            encoding_detected=item.encoding_detected,
            id_column=item.columns.id_name,
            tag_columns=item.columns.tag_names,
            rows=int(by_src.get(i, {}).get("read", 0)),
        )
        for i, item in enumerate(inputs)
    )
    rows_read = sum(s.rows for s in summaries)
    rows_grouped = int(sum(r["grouped"] for r in by_src.values()))
    pair_n = int(pair_total.item())
    stats = PlanStats(
        rows_read=rows_read,
        rows_grouped=rows_grouped,
        rows_rejected=rows_read - rows_grouped,
        rejects=reject_frame.height,
        rejects_by_reason=dict(Counter(reject_frame["reason"].to_list()).most_common()),
        pairs=pair_n,
        duplicate_pairs=pair_n - int(planned["unique_pairs"].item() or 0),
        contacts=int(planned["contacts"].item()),
        requests=int(planned["requests"].item() or 0),
        inputs=summaries,
        blank_rows=int(sum(r["blank"] for r in by_src.values())),
    )
    return Plan(plan_path, rejects_path, stats)


_UNCLOSED = 'a quoted cell is not closed: its quote (") runs to the end of the file'
_STRAY = (
    'a quote (") inside a cell that does not start with one: '
    'quote the whole cell and double the quote ("")'
)
_AFTER = 'text after the closing quote (") of a cell: quote the whole cell, double inner quotes'


def _input_error(inputs: Sequence[InputFrame], exc: pl.exceptions.PolarsError) -> InputError:
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


def _line_shifts(item: InputFrame) -> pl.DataFrame | None:
    """A CSV whose quoted cells hold line breaks: from which record line on, by how much its
    physical line is further down; ``None`` when record numbers are line numbers."""
    sniffed = item.csv
    if sniffed is None:
        return None
    newlines, last = 0, b"\n"
    with sniffed.path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    lines = newlines + (last != b"\n")  # a last line without a line break is a line too
    records = item.frame.select(pl.len()).collect().item() + sniffed.skip_rows
    if lines <= records:
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


def _fix_csv_lines(inputs: Sequence[InputFrame], plan_path: Path, rejects_path: Path) -> None:
    """Record numbers are line numbers unless quoted cells hold line breaks: map those, in the
    plan and in the rejects."""
    found = [shifts for item in inputs if (shifts := _line_shifts(item)) is not None]
    if not found:
        return
    by_line = pl.concat(found).unique().sort("line").lazy()
    for path in (plan_path, rejects_path):
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


def estimate_days(requests: int, per_day: int | None) -> int:
    """Days of quota a plan needs at the plan's daily figure."""
    return 1 if not per_day else max(1, math.ceil(requests / per_day))
