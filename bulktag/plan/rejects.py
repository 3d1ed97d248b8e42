"""Rows that cannot be used become rejects: written with their file, line, column and
reason; a value too long kept as its start, length and hash; hostile sizes refused; a
file that yields no row said so."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from bulktag.errors import InputError
from bulktag.leadlex import MAX_TAG_LENGTH, MAX_TAGS_PER_REQUEST
from bulktag.read.frame import InputFrame
from bulktag.read.normalise import uuid_text
from bulktag.read.pieces import PLACE
from bulktag.read.rules import (
    CELL_TOO_LARGE,
    MARKER_CELL,
    MAX_CELL_BYTES,
    MAX_RAW_CHARS,
    MAX_TAGS_PER_CONTACT,
    NO_TAGS,
    PERMANENT_BEFORE,
    WHOLE_ROW,
)

__all__ = [
    "REJECT_SCHEMA",
    "refuse_silent_nothing",
    "refuse_too_large",
    "refuse_too_many",
    "write_rejects",
]


REJECT_SCHEMA = {
    "contact_id": pl.String,
    "tags": pl.String,
    "source": pl.String,
    "line": pl.Int64,
    "column": pl.String,
    "reason": pl.String,
}


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


def write_rejects(
    inputs: Sequence[InputFrame], problems: pl.DataFrame, tag_rejects: pl.DataFrame, path: Path
) -> pl.DataFrame:
    """Row and tag rejects, by input and line, as Parquet; returns them."""
    source, id_column, tag_column = _column_names(inputs)
    problem = pl.col("problem")
    rows = problems.filter(~pl.col("blank") & ~pl.col("done"))
    rejects = (
        pl.concat(
            [
                rows.select(
                    contact_id=pl.col("raw_id"),
                    tags=pl.col("raw_tags"),
                    source=source,
                    line=pl.col("line"),
                    column=pl.when(problem.is_in([NO_TAGS, MARKER_CELL]))
                    .then(tag_column)
                    .when(problem.is_in(WHOLE_ROW))
                    .then(pl.lit(None, dtype=pl.String))
                    .when(problem.str.ends_with(PERMANENT_BEFORE))
                    .then(pl.lit("retryable"))
                    .otherwise(id_column),
                    reason=problem,
                ),
                tag_rejects.select(
                    contact_id=pl.col("raw_id"),
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
    rejects = _short_raw_values(rejects)
    rejects.write_parquet(path)
    return rejects


def _short_raw_values(rejects: pl.DataFrame) -> pl.DataFrame:
    """A raw value longer than :data:`~bulktag.read.rules.MAX_RAW_CHARS` kept as its start, its
    length and its SHA-256 (``sha256sum`` of the cell's UTF-8 finds it again): a rejects
    file never grows with a hostile cell."""
    for name in ("contact_id", "tags"):
        long = rejects[name].str.len_chars() > MAX_RAW_CHARS
        if long.any():
            values = [
                _shortened(value) if too_long else value
                for value, too_long in zip(rejects[name], long, strict=True)
            ]
            rejects = rejects.with_columns(pl.Series(name, values, dtype=pl.String))
    return rejects


def _shortened(value: str) -> str:
    data = value.encode()
    digest = hashlib.sha256(data).hexdigest()
    return f"{value[:100]}... ({len(data):,} bytes in all, sha256 {digest})"


def refuse_too_large(inputs: Sequence[InputFrame], problems: pl.DataFrame) -> None:
    """A cell larger than :data:`~bulktag.read.rules.MAX_CELL_BYTES`: the input is no list of
    contacts and their tags (a bomb, a column of documents): InputError (65), nothing sent."""
    found = problems.filter(pl.col("problem").str.starts_with(CELL_TOO_LARGE)).head(1)
    if not found.height:
        return
    row = found.row(0, named=True)
    item = inputs[row["src"]]
    column, _, size_text = row["problem"].removeprefix(f"{CELL_TOO_LARGE} (").rpartition(": ")
    size = int(size_text.split()[0])
    raise InputError(
        f"a cell of {size:,} bytes, more than the {MAX_CELL_BYTES:,} a cell of tags may hold "
        f"(LeadLex takes at most {MAX_TAGS_PER_REQUEST} tags of {MAX_TAG_LENGTH} characters a "
        "call): not a list of tags a person wrote; nothing was sent",
        source=item.source,
        line=row["line"],
        column=column,
    )


def refuse_too_many(inputs: Sequence[InputFrame], contacts: pl.DataFrame) -> None:
    """A contact given more than :data:`~bulktag.read.rules.MAX_TAGS_PER_CONTACT` tags: not what
    a person meant (another kind of column taken for tags?): InputError (65), nothing sent."""
    many = contacts.filter(pl.col("tags").list.len() > MAX_TAGS_PER_CONTACT).head(1)
    if not many.height:
        return
    row = many.row(0, named=True)
    contact = many.select(uuid_text(pl.col("key"))).item()
    item = inputs[row["place"] // PLACE]
    raise InputError(
        f"the contact {contact} gets {len(row['tags']):,} tags, more than the "
        f"{MAX_TAGS_PER_CONTACT:,} a run gives one contact "
        f"({MAX_TAGS_PER_CONTACT // MAX_TAGS_PER_REQUEST} calls): not what a person meant "
        "(another kind of column taken for tags?); nothing was sent",
        source=item.source,
        line=row["place"] % PLACE,
        column=", ".join(item.columns.tag_names),
    )


def refuse_silent_nothing(item: InputFrame, records: int) -> None:
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
