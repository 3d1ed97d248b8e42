"""One input read: a lazy frame in the one shape every format is read into (`line, id,
id_number, extra, tag0...`), with what was learnt while reading it, and the expressions
that build the shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    pass

from bulktag.config import ReadOptions
from bulktag.read.columns import (
    ColumnMap,
)
from bulktag.read.ownfiles import OwnKind
from bulktag.read.sniff import Format, Kind, SniffedCsv

__all__ = ["InputFrame", "joined_tags", "strip_apostrophe", "tag_name", "where_only"]


def tag_name(index: int) -> str:
    """The frame's column for the ``index``-th tag cell."""
    return f"tag{index}"


@dataclass(frozen=True, slots=True)
class InputFrame:
    """One input, read lazily into the common shape.

    The frame's columns: ``line, id, id_number, held, extra, tag0...`` (``id_number``:
    the ID cell was typed as a number, a spreadsheet's doing, never a contact; ``held``:
    why a row is not used whatever it holds: the reject reason of a bulktag failures file's
    permanent failure, a line cut while the file was being written; or, for a results
    file's row that is done, :data:`~bulktag.read.ownfiles.DONE_BEFORE`).
    """

    source: str
    format: Format
    frame: pl.LazyFrame
    columns: ColumnMap
    encoding: str | None = None
    encoding_detected: bool = False
    csv: SniffedCsv | None = None
    #: Cells may start with Excel's text marker, an apostrophe, dropped once (CSV, XLSX).
    quoted: bool = False
    #: Per tag cell: True when it is a list of text (Parquet, NDJSON), False for text.
    tag_lists: tuple[bool, ...] = (False,)
    kind: Kind = "csv"  #: what the file is (an ODS, an XLS... is read as a workbook)
    header_line: int | None = None  #: the header's line (CSV) or row (sheet)
    #: What the plan tells about how the file was read (encoding, format, ID column).
    notes: tuple[str, ...] = ()
    #: Which of bulktag's own files this is (None: a person's); its tags are final.
    own: OwnKind | None = None
    #: How this input is read: the run's options, or for bulktag's own files, theirs.
    options: ReadOptions = field(default_factory=ReadOptions)

    @property
    def single_text_tags(self) -> bool:
        """One text tag cell: its trimmed text may already be the row's one tag."""
        return self.tag_lists == (False,)

    def unquote(self, cell: pl.Expr) -> pl.Expr:
        """``cell`` less Excel's apostrophe, where the format may carry one."""
        return strip_apostrophe(cell) if self.quoted else cell

    def raw_id(self, only: pl.Expr | None = None) -> pl.Expr:
        """The ID cell as the user wrote it (less Excel's apostrophe); null where not ``only``."""
        return self.unquote(where_only(pl.col("id"), only))

    def raw_tags(self, only: pl.Expr | None = None) -> pl.Expr:
        """The tag cells as written, joined with ", "; null where not ``only``."""
        raws = []
        for i, is_list in enumerate(self.tag_lists):
            cell = where_only(pl.col(tag_name(i)), only)
            raws.append(cell.list.join(", ") if is_list else self.unquote(cell))
        return joined_tags(raws)


def where_only(expr: pl.Expr, only: pl.Expr | None) -> pl.Expr:
    return expr if only is None else pl.when(only).then(expr)


def strip_apostrophe(cell: pl.Expr) -> pl.Expr:
    """Drop one leading apostrophe: Excel's text marker, and how bulktag's CSVs escape formulas."""
    return cell.str.strip_prefix("'")


def joined_tags(cells: list[pl.Expr]) -> pl.Expr:
    if len(cells) == 1:
        return cells[0]
    return pl.concat_str(cells, separator=", ", ignore_nulls=True)
