"""How big things may grow: a cell (one over ``MAX_CELL_BYTES`` makes its row a reject),
and a pass over the inputs: the parts a large input is read in (pairs per part, CSV
chunks), and the largest input."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import polars as pl

from bulktag.read.frame import InputFrame, tag_name
from bulktag.read.rules import CELL_TOO_LARGE, MAX_CELL_BYTES

__all__ = [
    "CSV_CHUNK_BYTES",
    "PAIRS_PER_PART",
    "cell_too_large",
    "csv_chunks",
    "largest",
    "parts_for",
]


#: The plan is built in parts, by contact, of about this many pairs: that bounds the memory
#: its hash tables and sorts take.
PAIRS_PER_PART = 2_500_000


#: Bytes of input per (contact, tag) pair, a low guess per format, to size the parts.
_BYTES_PER_PAIR = {"csv": 40, "ndjson": 40, "parquet": 16, "xlsx": 16}


def parts_for(inputs: Sequence[InputFrame]) -> int:
    """In how many parts to build the plan, from the inputs' sizes: a text file's from its
    bytes, a columnar file's (Parquet, Arrow) from its rows and lists, which its metadata
    and the lists' lengths tell in a fraction of a second. Its bytes do not: a job's
    carry-over of 10M pairs compresses to 2.4 MB and was taken for 155,000 pairs, so a
    night's 20M pairs went in parts sized for half as many."""
    pairs = 0
    for item in inputs:
        if item.format == "parquet":
            pairs += _columnar_pairs(item)
            continue
        path = item.csv.path if item.csv is not None else Path(item.source)
        with suppress(OSError):
            pairs += path.stat().st_size // _BYTES_PER_PAIR[item.format]
    return max(1, min(16, -(-pairs // PAIRS_PER_PART)))


def _columnar_pairs(item: InputFrame) -> int:
    """A columnar input's pairs, at least: its lists' elements, one a text cell."""
    lists = [
        pl.col(tag_name(i)).list.len().sum() for i, is_list in enumerate(item.tag_lists) if is_list
    ]
    texts = len(item.tag_lists) - len(lists)
    try:
        rows, *elements = item.frame.select(pl.len(), *lists).collect().row(0)
    except (pl.exceptions.PolarsError, OSError):  # told when the file is read
        return 0
    return int(rows) * texts + sum(int(n or 0) for n in elements)


#: How much CSV polars reads at once (POLARS_CSV_CHUNK_SIZE, which it reads per query). Its
#: default held ~200 MiB more for a 500 MB file, for no gain in speed.
CSV_CHUNK_BYTES = 1 << 22


@contextmanager
def csv_chunks() -> Iterator[None]:
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


def largest(frame: pl.DataFrame, column: str) -> int:
    """The column's largest value; 0 for none (or no such column)."""
    if column not in frame:
        return 0
    return int(frame.select(pl.col(column).max()).item() or 0)


def cell_too_large(item: InputFrame) -> pl.Expr:
    """For a row whose ID or tags cell holds more than :data:`~bulktag.read.rules.MAX_CELL_BYTES`
    (a list cell: its elements together, two bytes an element at least), why:
    ``CELL_TOO_LARGE (COLUMN: N bytes)``, the first such cell's; null otherwise."""
    sizes = [(item.columns.id_name, pl.col("id").str.len_bytes())]
    for i, is_list in enumerate(item.tag_lists):
        cell = pl.col(tag_name(i))
        name = item.columns.tag_names[i] if i < len(item.columns.tag_names) else tag_name(i)
        if is_list:
            elements = cell.list.eval(pl.element().str.len_bytes()).list.sum()
            sizes.append((name, pl.max_horizontal(cell.list.len() * 2, elements)))
        else:
            sizes.append((name, cell.str.len_bytes()))
    return pl.coalesce(
        pl.when(size > MAX_CELL_BYTES).then(
            pl.format(f"{CELL_TOO_LARGE} ({{}}: {{}} bytes)", pl.lit(name), size)
        )
        for name, size in sizes
    )
