"""The straightforward polars script a user would write instead of bulktag: prep's baseline.

``python bench/plain_polars.py SHAPE FILE`` turns FILE into a plan (one row per contact,
in order of first appearance, tags de-duplicated in first-seen order, the contact's first
line), reads the plan's rows one by one as a dispatcher would, and prints the counts as
JSON. SHAPE is ``long`` (``contact_id,tag``: one tag a row) or ``wide`` (``contact_id,tags``:
a cell of tags separated by ``,`` ``;`` or ``|``); FILE is a CSV (line numbers: header = 1),
an XLSX workbook (sheet row numbers: header = 1) or a Parquet file (record numbers from 1).

The rules: the ID stripped, lower-cased, its braces (``{...}``) off, kept when it is a
canonical UUID; the tags split (wide), stripped, empty ones dropped. Nothing but polars is
imported, so that running it as a process costs what a user's own script would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
SHAPES = ("long", "wide")


def build(path: Path, shape: str) -> pl.DataFrame:
    """The plan: ``seq, contact_id, tags, line``, one row per contact."""
    if path.suffix == ".xlsx":
        rows = pl.read_excel(path).lazy().with_row_index("line", offset=2)
    elif path.suffix == ".parquet":
        rows = pl.scan_parquet(path).with_row_index("line", offset=1)
    else:
        rows = pl.scan_csv(path, infer_schema=False).with_row_index("line", offset=2)
    contact = pl.col("contact_id").cast(pl.String).str.strip_chars().str.to_lowercase()
    contact = contact.str.strip_prefix("{").str.strip_suffix("}")
    if shape == "long":
        pairs = rows.select("line", id=contact, tag=pl.col("tag").cast(pl.String))
    else:
        cell = pl.col("tags").cast(pl.String).str.replace_all(r"[;|]", ",")
        pairs = rows.select("line", id=contact, tag=cell.str.split(",")).explode("tag")
    valid = pairs.with_columns(pl.col("tag").str.strip_chars()).filter(
        pl.col("id").str.contains(UUID_RE) & (pl.col("tag") != "")
    )
    return (
        valid.group_by("id", maintain_order=True)
        .agg(tags=pl.col("tag").unique(maintain_order=True), line=pl.col("line").first())
        .select(
            seq=pl.int_range(pl.len(), dtype=pl.Int64),
            contact_id="id",
            tags="tags",
            line=pl.col("line").cast(pl.Int64),
        )
        .collect()
    )


def read_rows(plan: pl.DataFrame) -> None:
    """Every row of the plan, one at a time: what a dispatcher reads."""
    for _ in plan.iter_rows():
        pass


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(f"usage: python {sys.argv[0]} {{{','.join(SHAPES)}}} FILE")
    plan = build(Path(sys.argv[2]), sys.argv[1])
    read_rows(plan)
    pairs = int(plan["tags"].list.len().sum() or 0)
    print(json.dumps({"contacts": plan.height, "pairs": pairs}))


if __name__ == "__main__":
    main()
