"""From input rows to a plan: valid (contact, tag) pairs grouped per contact, and rejects.

Every input row is counted exactly once, as *grouped* (it gives at least one
valid tag to a contact) or *rejected*; each problem becomes a reject row with
the source, line, column, raw values and reason. The plan is written to a
Parquet file (one row per contact: ``seq, contact_id, tags, source, line``, in
order of first appearance, tags de-duplicated in first-seen order) and read back
in slices by the dispatcher, so no stage holds all contacts as Python objects.

How, for tens of millions of rows in well under a gigabyte: one pass over the inputs
(polars' streaming engine, one scan each). A row whose ID is already canonical and
whose tags cell is one tag as it stands (nearly every row of a long file) takes a
fast path: a regex each, the ID parsed to a 128-bit key, the tag categorical. The
others take the general path (split, trim, canonical IDs, reasons): streamed, or,
when a sample shows them to be few, held and run at once after the pass. The valid
pairs (key, tag, place) stay in memory in parts by contact; each part is grouped by
hashes and sorts of fixed-width numbers, and the plan is written by first place.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import polars as pl

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.leadlex import MAX_TAGS_PER_REQUEST
from bulktag.normalise import (
    MISSING_ID,
    NO_TAGS,
    NUMERIC_ID,
    PERMANENT_BEFORE,
    RAGGED,
    UUID_PATTERN,
    canonical_id,
    clean_tag_pattern,
    finish_tag,
    has_control,
    id_reason,
    tag_problem,
    trim_tag,
    uuid_key,
    uuid_text,
)
from bulktag.read import InputFrame, tag_name
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
    format: str  #: what the file is: csv, xlsx, xls, ods, parquet, ndjson
    encoding: str | None
    encoding_detected: bool  #: not given with --encoding
    id_column: str
    tag_columns: tuple[str, ...]
    rows: int
    header_line: int | None = None  #: the header's line (text) or row (sheet)
    notes: tuple[str, ...] = ()  #: how the file was read: format, line endings, ID column
    encoding_note: str | None = None  #: how the encoding was chosen (BOM, a guess and why)
    header: tuple[str, ...] = ()  #: every column the header names


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
                    "header_line": i.header_line,
                    "notes": list(i.notes),
                    "encoding_note": i.encoding_note,
                    "header": list(i.header),
                }
                for i in self.inputs
            ],
        }


@dataclass(frozen=True, slots=True)
class Plan:
    path: Path  #: plan Parquet: seq, contact_id, tags, source, line
    rejects_path: Path  #: rejects Parquet, columns of REJECT_SCHEMA
    stats: PlanStats


def slices(frame: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    """``frame`` ``rows`` at a time, in order, each slice read when it is asked for.

    For a scan of Parquet files and a projection: the slice goes down to the
    reader, which decodes only the row groups it needs (2.45M contacts in 1.75 s
    at 10,000 a slice). ``LazyFrame.collect_batches`` would run the query ahead of
    its reader without bound (polars 2.1): iterating a 2.45M-contact plan held
    400 MiB; this holds a slice.
    """
    offset = 0
    while True:
        batch = frame.slice(offset, rows).collect()
        if batch.height:
            yield batch
        if batch.height < rows:
            return
        offset += rows


#: A row's place, one number that sorts rows in input order: input * _PLACE + line.
_PLACE = 1 << 40


@dataclass(frozen=True, slots=True)
class _Branches:
    """An input's rows, in branches over one scan.

    ``fast`` rows (``src, line, id, tag``) hold an ID already in canonical form and a tags
    cell that is one tag, already trimmed: a regex each tells them, and nearly every row of
    a long input is one. The others take the general path (:func:`_rows`): ``general``,
    streamed; or, when a sample shows them to be few, ``held``: their cells, collected
    (``src, line, id, extra, tag0``), to take the general path at once afterwards (it costs
    the same for a batch of a few rows as for a full one).
    """

    fast: pl.LazyFrame | None = None
    general: pl.LazyFrame | None = None
    held: pl.LazyFrame | None = None


#: Rows read to judge whether an input's rows are nearly all fast ones.
FAST_SAMPLE_ROWS = 20_000
#: The share of fast rows in the sample above which the others are held.
FAST_SHARE = 0.9


def _branches(item: InputFrame, index: int, options: ReadOptions) -> _Branches:
    """The input's rows in branches (:class:`_Branches`)."""
    frame = item.frame.with_columns(src=pl.lit(index, dtype=pl.Int32))
    pattern = clean_tag_pattern(options.tag_separators) if item.single_text_tags else None
    if pattern is None:
        return _Branches(general=_rows(item, frame, options.tag_separators))
    cell = pl.col(tag_name(0))
    fast = (
        pl.col("id").str.contains(UUID_PATTERN)
        & cell.str.contains(pattern)
        & pl.col("extra").is_null()
        & pl.col("earlier").is_null()
    ).fill_null(value=False)
    try:
        share = frame.head(FAST_SAMPLE_ROWS).select(fast.mean()).collect().item()
    except pl.exceptions.PolarsError:  # the full read will tell what is wrong
        share = None
    # cache(): the branches read one scan (else each filter is pushed into a scan of its own)
    frame = frame.with_columns(__fast=fast).cache()
    fast_rows = frame.filter(pl.col("__fast")).select("src", "line", "id", tag=cell)
    others = frame.filter(~pl.col("__fast"))
    if (share or 0) < FAST_SHARE:
        return _Branches(fast=fast_rows, general=_rows(item, others, options.tag_separators))
    cells = {name: _own(name) for name in ("id", "extra", tag_name(0))}
    held = others.select("src", "line", "id_number", "earlier", **cells)
    return _Branches(fast=fast_rows, held=held)


def _rows(item: InputFrame, frame: pl.LazyFrame, separators: str) -> pl.LazyFrame:
    """The general path, per input row: the contact's key, the tags (trimmed and split; not
    yet cased or prefixed), the row's problem, the raw cells for reject rows."""
    raw, canonical = pl.col("__raw"), pl.col("__canonical")
    number = pl.col("id_number").fill_null(value=False)
    frame = frame.with_columns(__raw=item.raw_id())
    # a cell a spreadsheet typed as a number is never a contact, whatever its digits
    frame = frame.with_columns(__canonical=pl.when(~number).then(canonical_id(raw)))
    tags = (
        item.pieces(separators)
        .list.eval(trim_tag(pl.element(), separators))
        .list.eval(pl.element().filter(pl.element() != ""))
    )
    frame = frame.with_columns(key=uuid_key(canonical), tags=tags)
    extra = pl.col("extra").str.strip_chars()
    count = pl.col("tags").list.len()
    earlier = pl.col("earlier")
    problem = (
        pl.when(extra.is_not_null() & (extra != ""))
        .then(pl.lit(RAGGED))
        .when(earlier.is_not_null())
        .then(pl.concat_str(earlier, pl.lit(PERMANENT_BEFORE)))
        .when(canonical.is_not_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(number)
        .then(pl.lit(NUMERIC_ID))
        .otherwise(id_reason(raw))
        .fill_null(pl.when(count == 0).then(pl.lit(NO_TAGS)))
    )
    frame = frame.with_columns(problem=problem)
    return frame.select(
        "src",
        "line",
        "key",
        "tags",
        n=count,
        problem=pl.col("problem"),
        # Blank lines and empty spreadsheet rows are not input rows: counted, never rejected.
        blank=((pl.col("problem") == MISSING_ID) & (count == 0)).fill_null(value=False),
        raw_id=raw,
        raw_tags=item.raw_tags(only=pl.col("problem").is_not_null()),
    )


def _column_names(inputs: Sequence[InputFrame]) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Per row (``src``): its input's name, ID column and tag columns. For frames in memory
    only (see :func:`_with_source`)."""
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
    # First, while little memory is in use: polars maps the whole file to count its lines.
    lines = _count_lines(inputs)
    parts = _parts(inputs)
    frames = _read(inputs, options, parts)
    pairs = [
        [frames.pop(name) for name in list(frames) if name.startswith(f"pairs {k} ")]
        for k in range(parts)
    ]
    fast = [frame for part in pairs for frame in part if "bad" in frame]
    if fast:  # a fast row's ID is the key's text
        frames["fast_rejects"] = pl.concat([frame.filter("bad") for frame in fast]).select(
            src=(pl.col("place") // _PLACE).cast(pl.Int32),
            line=pl.col("place") % _PLACE,
            id=uuid_text(pl.col("key")),
            tag=pl.col("tag").cast(pl.String),
            problem=tag_problem(pl.col("tag").cast(pl.String)),
        )
    reject_frame = _write_rejects(inputs, frames, rejects_path)
    read, blank, grouped = _row_counts(len(inputs), frames, pairs)
    del frames, fast
    pair_n = sum(
        frame.height - (int(frame["bad"].sum()) if "bad" in frame else 0)
        for part in pairs
        for frame in part
    )
    contacts, unique_pairs, requests = _write_plan(
        pairs, options, [i.source for i in inputs], plan_path
    )
    records = [read[i] + blank[i] for i in range(len(inputs))]
    for item, count in zip(inputs, records, strict=True):
        _refuse_silent_nothing(item, count)
    _fix_csv_lines(inputs, records, lines, plan_path, rejects_path)
    summaries = tuple(
        InputSummary(
            source=item.source,
            format=item.kind,
            encoding=item.encoding,
            encoding_detected=item.encoding_detected,
            id_column=item.columns.id_name,
            tag_columns=item.columns.tag_names,
            rows=read[i],
            header_line=item.header_line,
            notes=item.notes,
            encoding_note=item.csv.encoding_note if item.csv else None,
            header=item.columns.header,
        )
        for i, item in enumerate(inputs)
    )
    rows_read = sum(s.rows for s in summaries)
    rows_grouped = sum(grouped.values())
    return Plan(
        plan_path,
        rejects_path,
        PlanStats(
            rows_read=rows_read,
            rows_grouped=rows_grouped,
            rows_rejected=rows_read - rows_grouped,
            rejects=reject_frame.height,
            rejects_by_reason=dict(Counter(reject_frame["reason"].to_list()).most_common()),
            pairs=pair_n,
            duplicate_pairs=pair_n - unique_pairs,
            contacts=contacts,
            requests=requests,
            inputs=summaries,
            blank_rows=sum(blank.values()),
        ),
    )


def _read(
    inputs: Sequence[InputFrame], options: ReadOptions, parts: int
) -> dict[str, pl.DataFrame]:
    """One pass over the inputs (:func:`_queries`), then the general path for the rows held
    back: reject rows and pairs, by name."""
    queries, branches = _queries(inputs, options, parts)
    try:
        with _csv_chunks():
            frames = dict(zip(queries, pl.collect_all(queries.values()), strict=True))
    except pl.exceptions.PolarsError as exc:
        raise _input_error(inputs, exc) from None
    held = [
        _rows(item, frames.pop(f"held {i}").lazy(), options.tag_separators)
        for i, item in enumerate(inputs)
        if branches[i].held is not None
    ]
    if held:  # the general path, at once, for the rows held
        later = _general_queries(pl.concat(held), options, parts)
        for name, frame in zip(later, pl.collect_all(later.values()), strict=True):
            frames[name] = pl.concat([frames[name], frame]) if name in frames else frame
    return frames


def _row_counts(
    inputs: int, frames: dict[str, pl.DataFrame], pairs: list[list[pl.DataFrame]]
) -> tuple[Counter[int], Counter[int], Counter[int]]:
    """Per input: the rows read (blank ones aside), the blank rows, the rows grouped (that
    give a contact a valid tag).

    A usable row (without a row problem) gives pairs and tag rejects, its first one at pos 0;
    a fast row gives one pair, maybe bad (its tag rejected).
    """
    count = partial(_per_input, inputs=inputs)
    first = pl.col("pos") == 0
    problems, tags = frames["problems"], frames["tag_rejects"]
    fast = [frame for part in pairs for frame in part if "bad" in frame]
    general = [frame for part in pairs for frame in part if "pos" in frame]
    usable = count(fast, ~pl.col("bad")) + count(general, first) + count([tags], first)
    blank = count([problems], pl.col("blank"))
    read = usable + count([problems], ~pl.col("blank")) + count(fast, pl.col("bad"))
    every_tag_rejected = (
        tags.group_by("src", "line")
        .agg(rejected=pl.len(), n=pl.col("n").first())
        .filter(pl.col("rejected") == pl.col("n"))
    )
    return read, blank, usable - count([every_tag_rejected])


def _queries(
    inputs: Sequence[InputFrame], options: ReadOptions, parts: int
) -> tuple[dict[str, pl.LazyFrame], list[_Branches]]:
    """What one pass over the inputs gives, by name: reject rows, the pairs (key, tag, place,
    and pos for the general path, bad for the fast one) in ``parts`` by contact ("pairs K
    ..."), and the rows held for the general path ("held I"); and the inputs' branches.

    Nothing else (a count is one more consumer of the scan, and a streaming group-by among
    several consumers makes polars buffer the others): the counts follow from the rest."""
    branches = [_branches(item, i, options) for i, item in enumerate(inputs)]
    finish = partial(finish_tag, lower=options.tag_case == "lower", prefix=options.tag_prefix)
    place = pl.col("src").cast(pl.Int64) * _PLACE + pl.col("line")
    general = [b.general for b in branches if b.general is not None]
    queries = _general_queries(pl.concat(general), options, parts) if general else {}
    queries.update({f"held {i}": b.held for i, b in enumerate(branches) if b.held is not None})
    # the fast path: one tag per row, the ID as it is; tags to reject stay, marked "bad"
    fasts = [b.fast for b in branches if b.fast is not None]
    if fasts:
        tag = finish(pl.col("tag"))
        fast = pl.concat(fasts, how="vertical").select(
            key=uuid_key(pl.col("id")),
            tag=tag.cast(pl.Categorical),
            place=place,
            # fast cells hold no control character: only a prefix could bring one
            bad=tag_problem(tag, control=has_control(options.tag_prefix)).is_not_null(),
        )
        queries.update(_in_parts("fast", fast, parts))
    return queries, branches


def _general_queries(
    rows: pl.LazyFrame, options: ReadOptions, parts: int
) -> dict[str, pl.LazyFrame]:
    """The general path's reject rows and pairs, from :func:`_rows`."""
    finish = partial(finish_tag, lower=options.tag_case == "lower", prefix=options.tag_prefix)
    problem = pl.col("problem")
    rows = rows.cache()
    usable = (
        rows.filter(problem.is_null())
        .select(
            "src",
            "line",
            "key",
            "n",
            "raw_id",
            tag="tags",
            pos=pl.int_ranges(pl.col("n"), dtype=pl.UInt32),
        )
        .explode("tag", "pos")
        .with_columns(tag=finish(pl.col("tag")))
        .with_columns(problem=tag_problem(pl.col("tag")))
        .cache()
    )
    return {
        # blank rows too: counted, never rejected
        "problems": rows.filter(problem.is_not_null()).select(
            "src", "line", "problem", "blank", raw_id=_own("raw_id"), raw_tags=_own("raw_tags")
        ),
        "tag_rejects": usable.filter(problem.is_not_null()).select(
            "src", "line", "n", "pos", "problem", raw_id=_own("raw_id"), tag=_own("tag")
        ),
        **_in_parts(
            "general",
            usable.filter(problem.is_null()).select(
                "key",
                "pos",
                tag=pl.col("tag").cast(pl.Categorical),
                place=pl.col("src").cast(pl.Int64) * _PLACE + pl.col("line"),
            ),
            parts,
        ),
    }


def _in_parts(name: str, pairs: pl.LazyFrame, parts: int) -> dict[str, pl.LazyFrame]:
    """``pairs`` in ``parts`` by contact, named "pairs K NAME"."""
    if parts == 1:
        return {f"pairs 0 {name}": pairs}
    pairs = pairs.with_columns(part=(pl.col("key") % parts).cast(pl.UInt8)).cache()
    return {
        f"pairs {k} {name}": pairs.filter(pl.col("part") == k).drop("part") for k in range(parts)
    }


#: The plan is built in parts, by contact, of about this many pairs: that bounds the memory
#: its hash tables and sorts take.
PAIRS_PER_PART = 2_500_000
#: Bytes of input per (contact, tag) pair, a low guess per format, to size the parts.
_BYTES_PER_PAIR = {"csv": 40, "ndjson": 40, "parquet": 16, "xlsx": 16}


def _parts(inputs: Sequence[InputFrame]) -> int:
    """In how many parts to build the plan, from the inputs' sizes."""
    pairs = 0
    for item in inputs:
        path = item.csv.path if item.csv is not None else Path(item.source)
        with suppress(OSError):
            pairs += path.stat().st_size // _BYTES_PER_PAIR[item.format]
    return max(1, min(16, -(-pairs // PAIRS_PER_PART)))


#: How much CSV polars reads at once (POLARS_CSV_CHUNK_SIZE, which it reads per query). Its
#: default held ~200 MiB more for a 500 MB file, for no gain in speed.
CSV_CHUNK_BYTES = 1 << 22


@contextmanager
def _csv_chunks() -> Iterator[None]:
    """polars' CSV chunk size, for this query, unless the user set one."""
    name = "POLARS_CSV_CHUNK_SIZE"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(CSV_CHUNK_BYTES)
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _with_source(frame: pl.LazyFrame, sources: Sequence[str]) -> pl.LazyFrame:
    """``source``, the name of each row's input (``src``): by a join, as a streaming query
    would zip a literal series (``replace_strict``) in step with its input, buffering it."""
    if len(sources) == 1:
        return frame.with_columns(source=pl.lit(sources[0], dtype=pl.String))
    names = pl.LazyFrame(
        {"src": range(len(sources)), "source": sources},
        schema={"src": pl.Int32, "source": pl.String},
    )
    return frame.join(names, on="src", how="left", maintain_order="left")


def _own(column: str) -> pl.Expr:
    """A copy of a text column. The few rows a filter keeps still point into the text
    buffers of their whole batch: a few reject rows held in memory would hold the input."""
    return pl.col(column) + pl.lit("")


def _largest(frame: pl.DataFrame, column: str) -> int:
    """The column's largest value; 0 for none (or no such column)."""
    if column not in frame:
        return 0
    return int(frame.select(pl.col(column).max()).item() or 0)


def _per_input(
    frames: Sequence[pl.DataFrame], where: pl.Expr | None = None, *, inputs: int
) -> Counter[int]:
    """Rows (``where`` true) per input (``src``, or the input in ``place``) in ``frames``."""
    counts: Counter[int] = Counter()
    for frame in frames:
        rows = frame.lazy() if where is None else frame.lazy().filter(where)
        if inputs == 1:
            counts[0] += int(rows.select(pl.len()).collect().item())
            continue
        src = pl.col("src") if "src" in frame else pl.col("place") // _PLACE
        for index, n in rows.group_by(src=src).agg(pl.len()).collect().iter_rows():
            counts[int(index)] += int(n)
    return counts


def _write_rejects(
    inputs: Sequence[InputFrame], frames: dict[str, pl.DataFrame], path: Path
) -> pl.DataFrame:
    """Row and tag rejects, by input and line, as Parquet; returns them."""
    source, id_column, tag_column = _column_names(inputs)
    problem = pl.col("problem")
    rows = frames["problems"].filter(~pl.col("blank"))
    tags = [frames["tag_rejects"].select("src", "line", "problem", "tag", contact_id="raw_id")]
    if "fast_rejects" in frames:
        tags.append(frames["fast_rejects"].select("src", "line", "problem", "tag", contact_id="id"))
    rejects = (
        pl.concat(
            [
                rows.select(
                    contact_id=pl.col("raw_id"),
                    tags=pl.col("raw_tags"),
                    source=source,
                    line=pl.col("line"),
                    column=pl.when(problem == NO_TAGS)
                    .then(tag_column)
                    .when(problem == RAGGED)
                    .then(pl.lit(None, dtype=pl.String))
                    .when(problem.str.ends_with(PERMANENT_BEFORE))
                    .then(pl.lit("retryable"))
                    .otherwise(id_column),
                    reason=problem,
                ),
                pl.concat(tags).select(
                    "contact_id",
                    tags=pl.col("tag"),
                    source=source,
                    line=pl.col("line"),
                    column=tag_column,
                    reason=problem,
                ),
            ]
        )
        .select(pl.col(name).cast(dtype) for name, dtype in REJECT_SCHEMA.items())
        .sort("source", "line", maintain_order=True)
    )
    rejects.write_parquet(path)
    return rejects


def _refuse_silent_nothing(item: InputFrame, records: int) -> None:
    """A file with text below its header never becomes zero rows without a word: exit 65."""
    sniffed = item.csv
    if records or sniffed is None or item.header_line is None:
        return
    below = [
        r for r in sniffed.rows if r.line > item.header_line and any(c.strip() for c in r.cells)
    ]
    if below:
        raise InputError(
            f"text follows the header (line {below[0].line}: {below[0].cells[:3]!r}...) but no "
            f"row could be read from it ({sniffed.line_endings} line endings, delimiter "
            f"{sniffed.delimiter!r}, {sniffed.encoding}); nothing was sent. Save it again as "
            "CSV, or pass --delimiter / --encoding",
            source=item.source,
        )


def _write_plan(
    parts: list[list[pl.DataFrame]], options: ReadOptions, sources: Sequence[str], path: Path
) -> tuple[int, int, int]:
    """One row per contact, in order of first appearance, tags de-duplicated in first-seen
    order; returns (contacts, unique pairs, requests).

    ``parts``: frames of pairs (key, tag, place and, for cells of several tags, pos), in
    parts by contact. It is emptied: each part goes once grouped. Keys are numbers and tags
    categorical: each step is a hash or a sort of fixed-width values.
    """
    done = []
    while parts:
        frames = parts.pop(0)
        mine = pl.concat(
            [
                (frame.lazy().filter(~pl.col("bad")) if "bad" in frame else frame.lazy()).select(
                    "key",
                    "tag",
                    "place",
                    pos=pl.col("pos") if "pos" in frame else pl.lit(0, pl.UInt32),
                )
                for frame in frames
            ],
            how="vertical_relaxed",
        )
        contacts = mine.group_by("key").agg(pl.col("place").min()).with_row_index("local").collect()
        # each pair's contact; the pairs by contact, then by place in the input (one number)
        place_bits = max(_largest(frame, "place") for frame in frames).bit_length()
        pos_bits = max(_largest(frame, "pos") for frame in frames).bit_length()
        wide = contacts.height.bit_length() + place_bits + pos_bits > 64
        number = pl.UInt128 if wide else pl.UInt64
        del frames
        ordered = (
            mine.join(contacts.lazy().select("key", "local"), on="key")
            .select(
                "tag",
                order=pl.col("local").cast(number) * pl.lit(1 << (place_bits + pos_bits), number)
                + pl.col("place").cast(number) * pl.lit(1 << pos_bits, number)
                + pl.col("pos").cast(number),
            )
            .sort("order")
            .collect()
        )
        del mine
        tags = (
            ordered.select(
                local=(pl.col("order") // pl.lit(1 << (place_bits + pos_bits), number))
                .cast(pl.UInt32)
                .set_sorted(),
                tags="tag",
            )
            .group_by("local", maintain_order=True)
            .agg(pl.col("tags").unique(maintain_order=True))
        )
        del ordered
        done.append(contacts.select("key", "place", tags=tags["tags"]))
        del contacts, tags
    grouped = pl.concat(done)
    del done
    lengths = grouped["tags"].list.len()
    plan_tags = pl.col("tags").cast(pl.List(pl.String))
    if options.static_tags:
        static = pl.lit(list(options.static_tags), dtype=pl.List(pl.String))
        plan_tags = pl.concat_list(plan_tags, static).list.unique(maintain_order=True)
    plan = (
        grouped.lazy()
        .sort("place")
        .select(
            seq=pl.int_range(pl.len(), dtype=pl.Int64),
            contact_id=uuid_text(pl.col("key")),
            tags=plan_tags,
            line=pl.col("place") % _PLACE,
            input_tags=pl.col("tags").list.len(),
            src=(pl.col("place") // _PLACE).cast(pl.Int32),
        )
    )
    _with_source(plan, sources).select(
        "seq", "contact_id", "tags", "source", "line", "input_tags"
    ).sink_parquet(path, compression="lz4", statistics=False)
    sizes = (
        pl.scan_parquet(path).select(pl.col("tags").list.len()).collect().to_series()
        if options.static_tags
        else lengths
    )
    requests = (sizes / MAX_TAGS_PER_REQUEST).ceil().sum()
    unique = int(lengths.sum() or 0)
    return grouped.height, unique, int(requests or 0)


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


def _count_lines(inputs: Sequence[InputFrame]) -> list[int | None]:
    """Per input: the lines of the CSV polars read (``None`` when not a CSV): line breaks,
    and a last line without one. polars counts them (quotes off, one column: a record is a
    line), in parallel, many times faster than Python."""
    counts: list[int | None] = []
    for item in inputs:
        if item.csv is None:
            counts.append(None)
            continue
        lines = pl.scan_csv(
            item.csv.path,
            has_header=False,
            quote_char=None,
            separator="\x1f",
            schema={"line": pl.String},
            truncate_ragged_lines=True,
        )
        try:
            counts.append(int(lines.select(pl.len()).collect().item()))
        except pl.exceptions.PolarsError:
            counts.append(_count_line_breaks(item.csv.path))
    return counts


def _count_line_breaks(path: Path) -> int:
    newlines, last = 0, b"\n"
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
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


def _fix_csv_lines(
    inputs: Sequence[InputFrame],
    records: Sequence[int],
    lines: Sequence[int | None],
    plan_path: Path,
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
