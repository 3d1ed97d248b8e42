"""From input rows to a plan: valid (contact, tag) pairs grouped per contact, and rejects.

Every input row is counted exactly once, as *grouped* (it gives at least one
valid tag to a contact) or *rejected*; each problem becomes a reject row with
the source, line, column, raw values and reason. The plan is written to a
Parquet file, one row per contact in order of first appearance: ``seq, contact_id,
tags`` (de-duplicated in first-seen order, the static tags added), ``source, line``
(where the contact was first seen) and ``input_tags`` (the tags as the inputs gave
them, for the job's carry-over); :mod:`bulktag.plan.skip` adds ``send`` (the tags still
to send) and ``skip_reason`` (why a contact needs no call), the plan's eight columns;
a run matching by email adds a ninth, ``email`` (the address as given, after
``contact_id``: :func:`bulktag.run.matching.with_emails`). It is read back in slices by
the dispatcher, so no stage holds all contacts as Python objects.

How, for tens of millions of rows in well under a gigabyte: one pass over the inputs,
vectorised for every row (:mod:`bulktag.read.pieces`), gives the rows that may be rejects
and the valid pairs (key, tag, place) in parts by contact; here each part is grouped by
a hash of fixed-width values, the plan is written by first place, the rejects with
their physical lines (:mod:`bulktag.read.csvlines`), and every row is counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from bulktag.config import ReadOptions
from bulktag.leadlex import MAX_TAGS_PER_REQUEST
from bulktag.outcomes import FailureType
from bulktag.plan.rejects import (
    refuse_silent_nothing,
    refuse_too_large,
    refuse_too_many,
    write_rejects,
)
from bulktag.read.csvlines import count_lines, fix_csv_lines
from bulktag.read.frame import InputFrame
from bulktag.read.inputs import read_input
from bulktag.read.normalise import uuid_text
from bulktag.read.parts import parts_for
from bulktag.read.pieces import PLACE, problems, read_pieces, tags

__all__ = [
    "PLAN_COLUMNS",
    "InputSummary",
    "Plan",
    "PlanStats",
    "Survey",
    "TagDemand",
    "build_plan",
    "prepare_plan",
    "survey",
]


@dataclass(frozen=True, slots=True)
class TagDemand:
    """A tag the plan would send, and to how many contacts (what the pre-check weighs)."""

    tag: str
    contacts: int


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
    own: str | None = None  #: which of bulktag's own files it is (None: a person's)
    done_rows: int = 0  #: rows of a bulktag results file that were done: counted, not sent
    match: str = "id"  #: what its ID column holds: contact IDs, or addresses ("email")


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
    #: Rows of bulktag results files whose contact was done (ok or skipped) in the run that
    #: wrote them: counted, neither grouped nor rejected, as blank rows are.
    done_rows: int = 0
    #: Matching by email: distinct ``addresses``, the directory's ``contacts``, this run's
    #: ``export_calls``, ``kept_since`` (a job's kept directory), ``unknown`` and
    #: ``ambiguous`` addresses. None: no input was matched by email.
    by_email: dict[str, Any] | None = None

    @property
    def waiting_rows(self) -> int:
        """Rejects that wait (``rate_limited``: matched by email, the directory not read
        whole tonight): work left, not a row to fix."""
        waits = str(FailureType.RATE_LIMITED)
        return sum(n for reason, n in self.rejects_by_reason.items() if reason.startswith(waits))

    def as_json(self) -> dict[str, object]:
        return {
            "by_email": None if self.by_email is None else dict(self.by_email),
            "waiting_rows": self.waiting_rows,
            "rows_read": self.rows_read,
            "rows_grouped": self.rows_grouped,
            "rows_rejected": self.rows_rejected,
            "blank_rows": self.blank_rows,
            "done_rows": self.done_rows,
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
                    "own": i.own,
                    "done_rows": i.done_rows,
                    "match": i.match,
                }
                for i in self.inputs
            ],
        }


@dataclass(frozen=True, slots=True)
class Plan:
    path: Path  #: plan Parquet: seq, contact_id, tags, source, line
    rejects_path: Path  #: rejects Parquet, columns of REJECT_SCHEMA
    stats: PlanStats


@dataclass(frozen=True, slots=True)
class Survey:
    """What reading the inputs tells without writing a plan (``bulktag validate``)."""

    rejects_path: Path  #: rejects Parquet, columns of REJECT_SCHEMA
    stats: PlanStats
    demand: tuple[TagDemand, ...]  #: each tag, by the contacts it would go to


#: What a run does to the opened inputs before they are planned (matching by email).
Matcher = Callable[[list[InputFrame]], list[InputFrame]]


def prepare_plan(
    files: Sequence[str],
    options: ReadOptions,
    work: Path,
    plan_path: Path,
    rejects_path: Path,
    *,
    match: Matcher | None = None,
) -> tuple[list[InputFrame], Plan]:
    """Read every input file (globs expanded once, by the caller: ``expand_inputs``; its
    scratch files in ``work``) and write the plan and the rejects to the paths given;
    raises InputError (exit 65) before any request. ``match`` takes the opened inputs and
    gives them back ready to plan (their addresses matched to contacts). The frames come
    back for what only they know: the format the inputs were read as."""
    frames = _open(files, options, work)
    if match is not None:
        frames = match(frames)
    return frames, build_plan(frames, options, plan_path, rejects_path)


def survey(
    files: Sequence[str],
    options: ReadOptions,
    work: Path,
    rejects_path: Path,
    *,
    match: Matcher | None = None,
) -> Survey:
    """:func:`prepare_plan` without the plan: the counts, the rejects and each tag's demand
    (no plan file written and read back: a third of the time for a file of long rows)."""
    frames = _open(files, options, work)
    if match is not None:
        frames = match(frames)
    return _survey(frames, options, None, rejects_path)


def _open(files: Sequence[str], options: ReadOptions, work: Path) -> list[InputFrame]:
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    return [read_input(name, options, work) for name in files]


def build_plan(
    inputs: Sequence[InputFrame], options: ReadOptions, plan_path: Path, rejects_path: Path
) -> Plan:
    """Read every input once: write the plan and the rejects, return the counts."""
    found = _survey(inputs, options, plan_path, rejects_path)
    return Plan(plan_path, rejects_path, found.stats)


def _survey(
    inputs: Sequence[InputFrame],
    options: ReadOptions,
    plan_path: Path | None,
    rejects_path: Path,
) -> Survey:
    """Read every input once: write the rejects and, given a path, the plan."""
    # First, while little memory is in use: polars maps the whole file to count its lines.
    lines = count_lines(inputs)
    parts = parts_for(inputs)
    found = read_pieces(inputs, parts)
    unusable = problems(found.unsure, inputs)
    refuse_too_large(inputs, unusable)
    pairs, tag_rejects = tags(found.pieces, inputs)
    del found
    reject_frame = write_rejects(inputs, unusable, tag_rejects, rejects_path)
    read, blank, done, grouped = _row_counts(len(inputs), unusable, tag_rejects, pairs)
    del unusable, tag_rejects
    pair_n = sum(frame.height for frame in pairs)
    fresh = [i for i, item in enumerate(inputs) if item.own is None]
    contacts = _contacts(pairs, options, fresh, len(inputs), ordered=plan_path is not None)
    del pairs
    refuse_too_many(inputs, contacts)
    if plan_path is not None:
        _write_plan(contacts, [i.source for i in inputs], plan_path)
    records = [read[i] + blank[i] + done[i] for i in range(len(inputs))]
    for item, count in zip(inputs, records, strict=True):
        refuse_silent_nothing(item, count)
    fix_csv_lines(inputs, records, lines, plan_path, rejects_path)
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
            own=None if item.own is None else str(item.own),
            done_rows=done[i],
            match=item.columns.match,
        )
        for i, item in enumerate(inputs)
    )
    rows_read = sum(s.rows for s in summaries)
    rows_grouped = sum(grouped.values())
    unique_pairs = int(contacts["input_tags"].sum() or 0)
    requests = (contacts["tags"].list.len() / MAX_TAGS_PER_REQUEST).ceil().sum()
    stats = PlanStats(
        rows_read=rows_read,
        rows_grouped=rows_grouped,
        rows_rejected=rows_read - rows_grouped,
        rejects=reject_frame.height,
        rejects_by_reason=dict(Counter(reject_frame["reason"].to_list()).most_common()),
        pairs=pair_n,
        duplicate_pairs=pair_n - unique_pairs,
        contacts=contacts.height,
        requests=int(requests or 0),
        inputs=summaries,
        blank_rows=sum(blank.values()),
        done_rows=sum(done.values()),
    )
    return Survey(rejects_path, stats, _demand(contacts) if plan_path is None else ())


def _row_counts(
    inputs: int, problems: pl.DataFrame, tag_rejects: pl.DataFrame, pairs: list[pl.DataFrame]
) -> tuple[Counter[int], Counter[int], Counter[int], Counter[int]]:
    """Per input: the rows read (blank and done ones aside), the blank rows, the rows done (a
    results file's), the rows grouped (that give a contact a valid tag).

    A row without a problem holds a tag (else it would have one: no tags), which is a pair
    or a tag reject: the rows grouped are the places of the pairs, and the usable rows
    those and the places of tag rejects that no pair has (every tag of the row rejected).
    """
    count = partial(_per_input, inputs=inputs)
    place = pl.col("src").cast(pl.Int64) * PLACE + pl.col("line")
    rejected = tag_rejects.select(place=place).unique()
    # a part's pairs are in input order: a row's pairs are next to each other
    first = pl.col("place") != pl.col("place").shift(1)
    grouped = count([frame.lazy().filter(first.fill_null(value=True)) for frame in pairs])
    if rejected.height:
        some_pair = pl.concat(
            frame.lazy().select("place").filter(pl.col("place").is_in(rejected["place"].implode()))
            for frame in pairs
        )
        rejected = rejected.filter(~pl.col("place").is_in(some_pair.collect()["place"].implode()))
    blank = count([problems.lazy()], pl.col("blank"))
    done = count([problems.lazy()], pl.col("done"))
    rows = ~pl.col("blank") & ~pl.col("done")
    read = grouped + count([rejected.lazy()]) + count([problems.lazy()], rows)
    return read, blank, done, grouped


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


def _per_input(
    frames: Sequence[pl.LazyFrame], where: pl.Expr | None = None, *, inputs: int
) -> Counter[int]:
    """Rows (``where`` true) per input (``src``, or the input in ``place``) in ``frames``."""
    counts: Counter[int] = Counter()
    for frame in frames:
        rows = frame if where is None else frame.filter(where)
        if inputs == 1:
            counts[0] += int(rows.select(pl.len()).collect().item())
            continue
        src = pl.col("src") if "src" in frame.collect_schema() else pl.col("place") // PLACE
        for index, n in rows.group_by(src=src).agg(pl.len()).collect().iter_rows():
            counts[int(index)] += int(n)
    return counts


def _contacts(
    parts: list[pl.DataFrame],
    options: ReadOptions,
    fresh: Sequence[int],
    inputs: int,
    *,
    ordered: bool = True,
) -> pl.DataFrame:
    """One row per contact (``key, place, tags, input_tags``), in order of first appearance,
    tags de-duplicated in first-seen order (categorical), the static tags added to the
    contacts of a person's inputs (``fresh``, by index; of ``inputs``): a contact only in
    bulktag's own files has its final tags already.

    ``parts``: frames of pairs (key, tag, place), in input order, in parts by contact. It is
    emptied: each part goes once grouped, by a hash of fixed-width values (keys are numbers,
    tags categorical). Not ``ordered`` (what counts and demand need, not a plan): ``key,
    tags, input_tags``, the contacts and their tags in no order, a quarter faster.
    """
    done = []

    def unique(lists: pl.Expr) -> pl.Expr:
        return lists.list.unique(maintain_order=ordered)

    some_own = bool(options.static_tags) and len(fresh) < inputs
    while parts:
        part = parts.pop(0)
        # In memory (not streamed): each group's tags in input order, as a hash group-by
        # gathers them; the contacts ordered by first place afterwards, across the parts.
        first: list[pl.Expr] = [pl.col("place").first()] if ordered else []
        if some_own:
            first.append((pl.col("place") // PLACE).is_in(list(fresh)).any().alias("fresh"))
        by_contact = part.lazy().group_by("key").agg("tag", *first)
        tags = unique(pl.col("tag"))  # (faster than in the group-by)
        done.append(by_contact.select(pl.exclude("tag"), tags=tags).collect(engine="in-memory"))
        del part
    contacts = pl.concat(done).lazy()
    del done
    tags = pl.col("tags")
    if options.static_tags and fresh:
        static = pl.lit(list(options.static_tags), dtype=pl.List(pl.String))
        added = unique(pl.concat_list(tags.cast(pl.List(pl.String)), static))
        if some_own:
            added = pl.when(pl.col("fresh")).then(added).otherwise(tags.cast(pl.List(pl.String)))
        tags = added
    return (
        (contacts.sort("place") if ordered else contacts)
        .select(pl.exclude("tags", "fresh"), tags=tags, input_tags=pl.col("tags").list.len())
        .collect()
    )


#: The plan file's columns as written here; :mod:`bulktag.plan.skip` adds the last two.
_WRITTEN = ("seq", "contact_id", "tags", "source", "line", "input_tags")
PLAN_COLUMNS = (*_WRITTEN, "send", "skip_reason")


def _write_plan(contacts: pl.DataFrame, sources: Sequence[str], path: Path) -> None:
    """The plan Parquet: ``seq, contact_id, tags, source, line, input_tags``."""
    plan = contacts.lazy().select(
        seq=pl.int_range(pl.len(), dtype=pl.Int64),
        contact_id=uuid_text(pl.col("key")),
        tags=pl.col("tags").cast(pl.List(pl.String)),
        line=pl.col("place") % PLACE,
        input_tags="input_tags",
        src=(pl.col("place") // PLACE).cast(pl.Int32),
    )
    _with_source(plan, sources).select(*_WRITTEN).sink_parquet(
        path, compression="lz4", statistics=False
    )


def _demand(contacts: pl.DataFrame) -> tuple[TagDemand, ...]:
    """Each tag, by the number of contacts it would go to, most first (as
    :func:`bulktag.send.precheck.tag_demand` reads it from a plan file)."""
    counts = (
        contacts.lazy()
        .select(tag=pl.col("tags").explode())
        .group_by("tag")
        .agg(contacts=pl.len())
        .select(pl.col("tag").cast(pl.String), "contacts")
        .sort("contacts", "tag", descending=[True, False])
        .collect()
    )
    return tuple(TagDemand(tag, n) for tag, n in counts.iter_rows())
