"""One pass over the inputs: every row's contact key and tag pieces, vectorised.

Per row, cheap expressions only (:func:`_rows`): the ID parsed to a 128-bit key (one
regex, one parse), whether the tags cells hold text, the cells split into pieces (a
cell without a separator is its one piece). The pieces leave the pass categorical, so
trimming, casing, prefixing and judging a tag is done once per distinct piece
(:func:`tags`), not per row; the reason a row is rejected is worked out afterwards for
the few rows that are not sure to be usable (:func:`problems`). The pass is one
``collect_all`` over one scan per input (:func:`read_pieces`); the pairs come out in
parts by contact (:func:`parts_for`), which bounds the memory of grouping them.
:mod:`bulktag.plan.build` turns what this gives into the plan, the rejects and the counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import polars as pl

from bulktag.config import ReadOptions
from bulktag.read.csvlines import input_error
from bulktag.read.frame import InputFrame, tag_name
from bulktag.read.normalise import (
    cell_has_text,
    cell_pieces,
    contact_key,
    finish_tag,
    id_reason,
    is_marker,
    list_has_tags,
    list_pieces,
    listed,
    not_a_tag,
    split_cell,
    tag_problem,
    trim_tag,
    unsplit,
    uuid_text,
)
from bulktag.read.ownfiles import DONE_BEFORE
from bulktag.read.parts import cell_too_large, csv_chunks, largest
from bulktag.read.rules import (
    MARKER_CELL,
    MISSING_ID,
    NO_TAGS,
    NUMERIC_ID,
    RAGGED,
)

__all__ = ["PLACE", "Pass", "per_input", "problems", "read_pieces", "tags"]

#: A row's place, one number that sorts rows in input order: input * PLACE + line.
PLACE = 1 << 40


def _rows(item: InputFrame, index: int) -> pl.LazyFrame:
    """Per input row: ``src, line``, the contact's ``key`` (null when the ID is not usable),
    whether the row is ``sure`` to be usable (a usable ID, text in a tags cell) and whether
    it ``may`` be (a usable ID and, instead of text, a double quote: ``", "`` is the tag
    ``,``, ``""`` none), the ``piece`` list (the tags cells, split, where it may be usable)
    and, for the rows that are not sure, what the reason for rejecting them is made of.

    Every expression is vectorised over the whole column and only cheap ones are computed
    for every row: the reason itself is worked out afterwards for the few rows that need it
    (:func:`problems`); a regex costs the same on a column that is null where it is not
    needed. The steps are columns of their own: polars does not share a sub-expression
    between the branches of a ``when``.
    """
    separators = item.options.tag_separators
    text = [i for i, is_list in enumerate(item.tag_lists) if not is_list]
    cell = {i: pl.col(f"__cell{i}") for i in text}
    whole = {i: pl.col(f"__whole{i}") for i in text}
    # a text cell that is a JSON or Python list literal: read as that list, never split;
    # one that is a null marker or an error value: an empty cell
    lists = {i: pl.col(f"__list{i}") for i in text}
    markers = {i: pl.col(f"__marker{i}") for i in text}
    has_text = [
        _list_has_tags(pl.col(tag_name(i)), separators)
        if is_list
        else (cell_has_text(cell[i], separators) & ~lists[i] & ~markers[i])
        | list_has_tags(pl.when(lists[i]).then(cell[i]), separators)
        for i, is_list in enumerate(item.tag_lists)
    ]
    quoted = {i: pl.col(f"__quoted{i}") for i in text}
    extra = pl.col("extra").str.strip_chars()
    fine = (
        pl.col("key").is_not_null() & (extra.is_null() | (extra == "")) & pl.col("held").is_null()
    )
    may = pl.col("may")
    pieces = [
        pl.when(may).then(pl.col(tag_name(i)))
        if is_list
        else pl.when(lists[i])
        .then(list_pieces(pl.when(may & lists[i]).then(cell[i])))
        .otherwise(
            cell_pieces(pl.when(may & ~markers[i]).then(cell[i]), whole[i], quoted[i], separators)
        )
        for i, is_list in enumerate(item.tag_lists)
    ]
    unsure = ~pl.col("sure")
    frame = (
        item.frame.with_columns(large=cell_too_large(item))
        .with_columns(
            # a cell too large to be tags is never split (a bomb of 22M tags would be), nor
            # copied: the row keeps only why (the plan refuses the input for it)
            held=pl.coalesce("large", "held"),
            id=pl.when(pl.col("large").is_null()).then("id"),
            **{
                tag_name(i): pl.when(pl.col("large").is_null()).then(tag_name(i))
                for i in range(len(item.tag_lists))
            },
        )
        .with_columns(
            src=pl.lit(index, dtype=pl.Int32),
            **{f"__cell{i}": item.unquote(pl.col(tag_name(i))) for i in text},
        )
        .with_columns(
            **{f"__list{i}": listed(cell[i]) for i in text},
            **{f"__marker{i}": is_marker(cell[i]) for i in text},
        )
        .with_columns(
            # a cell a spreadsheet typed as a number is never a contact, whatever its digits
            key=pl.when(~pl.col("id_number").fill_null(value=False)).then(
                contact_key(pl.col("id"), apostrophe=item.quoted)
            ),
            has_text=pl.any_horizontal(has_text),
            **{f"__whole{i}": unsplit(cell[i], separators) & ~lists[i] for i in text},
        )
        .with_columns(
            # a cell that is one piece has no quote (on a long file: nearly none to look at)
            **{
                f"__quoted{i}": _has_quote(pl.when(~whole[i] & ~lists[i]).then(cell[i]))
                for i in text
            }
        )
        .with_columns(quoted=pl.any_horizontal(quoted.values()) if quoted else pl.lit(value=False))
        .with_columns(sure=fine & pl.col("has_text"), may=fine & (pl.col("has_text") | "quoted"))
        .with_columns(
            piece=pieces[0] if len(pieces) == 1 else _joined(pieces),
            raw_id=item.raw_id(only=unsure),
            raw_tags=item.raw_tags(only=unsure),
            # the tags cells of a row without text but with quotes, to tell afterwards
            quotes=pl.when(unsure & ~pl.col("has_text") & pl.col("quoted")).then(
                pl.concat_str([cell[i] for i in text], separator="\n", ignore_nulls=True)
                if text
                else pl.lit(None, dtype=pl.String)
            ),
        )
    )
    return frame.select(
        "src",
        "line",
        "key",
        "sure",
        "may",
        "piece",
        "raw_id",
        "raw_tags",
        "quotes",
        "has_text",
        "extra",
        "held",
        "id_number",
    )


def per_input(
    inputs: Sequence[InputFrame], make: Callable[[ReadOptions], pl.Expr], src: pl.Expr
) -> pl.Expr:
    """``make(options)`` with the options of each row's input (``src``, its index): one
    expression when every input is read alike (a person's inputs always are; bulktag's own
    files are read with their own options, :mod:`bulktag.read.ownfiles`)."""
    groups: dict[ReadOptions, list[int]] = {}
    for index, item in enumerate(inputs):
        groups.setdefault(item.options, []).append(index)
    if not groups:
        return make(ReadOptions())
    *first, (last, _) = groups.items()
    if not first:
        return make(last)
    chain: Any = pl
    for options, indexes in first:
        chain = chain.when(src.is_in(indexes)).then(make(options))
    expr: pl.Expr = chain.otherwise(make(last))
    return expr


def problems(frame: pl.DataFrame, inputs: Sequence[InputFrame]) -> pl.DataFrame:
    """The rows not sure to be usable (:func:`_rows`), with their ``problem`` (null: usable
    after all) and whether they are ``blank`` (no ID and no tag: a blank line or an empty
    spreadsheet row, counted, never rejected) or ``done`` (a results file's row that is done:
    counted, not sent); for a few rows, cheap to compute exactly."""
    text = pl.col("quotes")

    def exact_tags(options: ReadOptions) -> pl.Expr:
        separators = options.tag_separators
        split = split_cell(text, separators)
        return split.list.eval(trim_tag(pl.element(), separators) != "").list.any()

    exact = per_input(inputs, exact_tags, pl.col("src"))
    has_tags = pl.col("has_text") | exact.fill_null(value=False)
    extra = pl.col("extra").str.strip_chars()
    held = pl.col("held")
    problem = (
        pl.when(extra.is_not_null() & (extra != ""))
        .then(pl.lit(RAGGED))
        .when(held.is_not_null())
        .then(held)
        .when(pl.col("key").is_not_null())
        .then(
            pl.when(~pl.col("has_tags")).then(
                pl.when(is_marker(pl.col("raw_tags").str.strip_chars()))
                .then(pl.lit(MARKER_CELL))
                .otherwise(pl.lit(NO_TAGS))
            )
        )
        .when(pl.col("id_number").fill_null(value=False))
        .then(pl.lit(NUMERIC_ID))
        .otherwise(id_reason(pl.col("raw_id")))
    )
    return (
        frame.lazy()
        .with_columns(has_tags=has_tags)
        .with_columns(problem=problem)
        .filter(pl.col("problem").is_not_null())
        .select(
            "src",
            "line",
            "problem",
            "raw_id",
            "raw_tags",
            blank=(pl.col("problem") == MISSING_ID) & ~pl.col("has_tags"),
            done=pl.col("problem") == DONE_BEFORE,
        )
        .collect()
    )


def _has_quote(cell: pl.Expr) -> pl.Expr:
    """Whether a text cell holds a double quote (false for a null)."""
    return cell.str.contains('"', literal=True).fill_null(value=False)


def _joined(pieces: list[pl.Expr]) -> pl.Expr:
    """The pieces of several tag cells, in order, as one list."""
    empty = pl.lit([], dtype=pl.List(pl.String))
    return pl.concat_list([piece.fill_null(empty) for piece in pieces])


def _list_has_tags(cell: pl.Expr, separators: str) -> pl.Expr:
    """Whether a list cell (Parquet, NDJSON) holds a tag (its elements are not split)."""
    kept = cell.list.eval(trim_tag(pl.element(), separators) != "")
    return kept.list.any().fill_null(value=False)


_Frame = TypeVar("_Frame", pl.LazyFrame, pl.DataFrame)


@dataclass(frozen=True, slots=True)
class Pass(Generic[_Frame]):
    """What one pass over the inputs gives: the queries, then their results."""

    unsure: _Frame  #: the rows not sure to be usable (:func:`problems` tells which are not)
    pieces: list[_Frame]  #: ``key, place, piece`` of the rows that may be, in parts by contact


def _queries(inputs: Sequence[InputFrame], parts: int) -> Pass[pl.LazyFrame]:
    """What one pass over the inputs gives: the rows not sure to be usable, and the pieces
    of the rows that may be (``key, place, piece``: one row per piece of a tags cell, the
    piece as written, categorical) in ``parts`` by contact.

    A piece is only split off here: trimming and judging it is done once per distinct piece
    afterwards (:func:`tags`); the pieces of a file are few (a few hundred tags, written a
    few ways), its pairs many. Nothing else is computed (a count is one more consumer of the
    scan, and a streaming group-by among several consumers makes polars buffer the others):
    the counts follow from the rest."""
    rows = pl.concat(
        [_rows(item, i) for i, item in enumerate(inputs)],
        how="vertical_relaxed",
    ).cache()
    pieces = (
        rows.filter(pl.col("may"))
        .select("key", "piece", place=pl.col("src").cast(pl.Int64) * PLACE + pl.col("line"))
        .explode("piece")
        .with_columns(pl.col("piece").cast(pl.Categorical))
    )
    owned = ("raw_id", "raw_tags", "quotes", "extra", "held")
    unsure = rows.filter(~pl.col("sure")).select(
        "src", "line", "key", "has_text", "id_number", *(_own(name) for name in owned)
    )
    return Pass(unsure, _in_parts(pieces, parts))


def _judged(pieces: pl.LazyFrame, options: ReadOptions) -> pl.LazyFrame:
    """``piece`` trimmed, cased and prefixed as ``tag`` (empty ones dropped), and why the
    tag cannot be sent (``problem``, null when it can)."""
    finish = partial(finish_tag, lower=options.tag_case == "lower", prefix=options.tag_prefix)
    text = trim_tag(pl.col("piece").cast(pl.String), options.tag_separators)
    return (
        pieces.with_columns(tag=text, odd=not_a_tag(pl.col("piece").cast(pl.String)))
        .filter(pl.col("tag") != "")
        .with_columns(tag=finish(pl.col("tag")))
        .with_columns(problem=pl.coalesce("odd", tag_problem(pl.col("tag"))))
        .drop("odd")
    )


def tags(
    parts: list[pl.DataFrame], inputs: Sequence[InputFrame]
) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """The pairs (``key, tag, place``, in input order) from the pieces, in the same parts,
    and the tag rejects (``src, line, problem, raw_id, tag``).

    Each distinct piece is trimmed, cased, prefixed and judged once, with its input's
    options; the pieces then get their tag by a lookup of the categorical (a number), or,
    when inputs are read differently (one of bulktag's own files among them, whose tags are
    final), by a join on the piece and the way it is read. An empty piece gives no pair. A
    tag reject names the contact by its canonical ID: its row's ID was usable."""
    ways = list(dict.fromkeys(item.options for item in inputs)) or [ReadOptions()]
    if len(ways) == 1:
        find, bad, on = _by_lookup(parts, ways[0])
    else:
        way = per_input(inputs, lambda o: pl.lit(ways.index(o)), pl.col("place") // PLACE)
        parts[:] = [part.with_columns(way=way) for part in parts]
        find, bad, on = _by_join(parts, ways)
    pairs, rejects = [], []
    for part in parts:
        pairs.append(find(part))
        if bad.height:
            found = part.join(bad, on=on, maintain_order="left")
            rejects.append(
                found.select(
                    src=(pl.col("place") // PLACE).cast(pl.Int32),
                    line=pl.col("place") % PLACE,
                    problem="problem",
                    raw_id=uuid_text(pl.col("key")),
                    tag="tag",
                )
            )
    parts.clear()
    columns = ("src", "line", "problem", "raw_id", "tag")
    types = (pl.Int32, pl.Int64, pl.String, pl.String, pl.String)
    none = pl.DataFrame(schema=dict(zip(columns, types, strict=True)))
    return pairs, pl.concat(rejects) if rejects else none


_Find = Callable[[pl.DataFrame], pl.DataFrame]


def _by_lookup(
    parts: list[pl.DataFrame], options: ReadOptions
) -> tuple[_Find, pl.DataFrame, list[str]]:
    """Every input read alike: each distinct piece judged once, a part's pairs by a lookup
    of the categorical; the bad pieces (to join on ``piece``)."""
    distinct = pl.concat([part.lazy().select("piece") for part in parts]).unique().collect()
    judged = _judged(distinct.lazy(), options).collect()
    valid = judged.filter(pl.col("problem").is_null())
    tag = _lookup(distinct["piece"], valid["piece"], valid["tag"])
    every = valid.height == distinct.height  # no piece empty, none rejected

    def find(part: pl.DataFrame) -> pl.DataFrame:
        found = part.select("key", "place", tag=tag)
        return found if every else found.filter(pl.col("tag").is_not_null())

    return find, judged.filter(pl.col("problem").is_not_null()), ["piece"]


def _by_join(
    parts: list[pl.DataFrame], ways: list[ReadOptions]
) -> tuple[_Find, pl.DataFrame, list[str]]:
    """Inputs read in several ``ways`` (a part's ``way``: its index): each distinct piece
    judged once per way, a part's pairs by a join on both; the bad pieces (to join on both)."""
    on = ["piece", "way"]
    distinct = pl.concat([part.lazy().select(*on) for part in parts]).unique().collect()
    judged = pl.concat(
        [_judged(distinct.lazy().filter(pl.col("way") == i), o) for i, o in enumerate(ways)]
    ).collect()
    valid = judged.filter(pl.col("problem").is_null()).select(
        *on, tag=pl.col("tag").cast(pl.Categorical)
    )

    def find(part: pl.DataFrame) -> pl.DataFrame:
        found = part.join(valid, on=on, how="left", maintain_order="left")
        return found.filter(pl.col("tag").is_not_null()).select("key", "place", "tag")

    return find, judged.filter(pl.col("problem").is_not_null()), on


def _lookup(pieces: pl.Series, old: pl.Series, new: pl.Series) -> pl.Expr:
    """``piece`` (categorical) as ``new`` where it is in ``old``, else null: a gather by
    the piece's category number, six times faster than ``replace_strict`` (0.05 s against
    0.3 s for 10M pieces). ``cat.to`` (unstable in polars 2.1) makes numbers categories."""
    size = largest(pieces.to_physical().to_frame("code"), "code") + 1
    table = pl.repeat(None, size, dtype=pl.UInt32, eager=True)
    table = table.scatter(old.to_physical(), new.cast(pl.Categorical).to_physical())
    number = pl.lit(table).gather(pl.col("piece").to_physical())
    return number.cat.to(pl.Categorical)


def _in_parts(pieces: pl.LazyFrame, parts: int) -> list[pl.LazyFrame]:
    """``pieces`` in ``parts`` by contact."""
    if parts == 1:
        return [pieces]
    pieces = pieces.with_columns(part=(pl.col("key") % parts).cast(pl.UInt8)).cache()
    return [pieces.filter(pl.col("part") == k).drop("part") for k in range(parts)]


#: polars 2.1's common-subplan elimination drops a ``cache()`` under two chained
#: ``with_columns`` and then finds nothing in common: each query scanned and computed the
#: rows again (1.9 s instead of 1.15 s for 3M rows). Without it, the cache is kept.
_SHARED_SCAN = pl.QueryOptFlags(comm_subplan_elim=False)


def read_pieces(inputs: Sequence[InputFrame], parts: int) -> Pass[pl.DataFrame]:
    """One pass over the inputs (:func:`_queries`), collected."""
    queries = _queries(inputs, parts)
    try:
        with csv_chunks():
            unsure, *pieces = pl.collect_all(
                [queries.unsure, *queries.pieces], optimizations=_SHARED_SCAN
            )
            return Pass(unsure, pieces)
    except pl.exceptions.PolarsError as exc:
        raise input_error(inputs, exc) from None


def _own(column: str) -> pl.Expr:
    """A copy of a text column. The few rows a filter keeps still point into the text
    buffers of their whole batch: a few reject rows held in memory would hold the input."""
    return (pl.col(column) + pl.lit("")).alias(column)
