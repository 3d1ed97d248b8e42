"""Columnar inputs and workbooks into the one shape: Parquet, Arrow and NDJSON columns as
text, XLSX, XLS and ODS through calamine (gnumeric's ODS compacted first)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    pass

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.read.columns import (
    SAMPLE_ROWS,
    map_columns,
)
from bulktag.read.frame import InputFrame, tag_name
from bulktag.read.ownfiles import reading
from bulktag.read.paths import check_own, first_line, held
from bulktag.read.sheets import SAVE_AGAIN, header_row, open_sheet, typed_ids
from bulktag.read.sniff import Format, Kind
from bulktag.read.text import at_line

__all__ = ["read_columnar", "read_excel"]


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if dtype == pl.String:
        return column
    if isinstance(dtype, pl.Binary):
        hexed = column.bin.encode("hex")
        return (
            pl.when(column.bin.size() == 16)
            .then(
                pl.concat_str(
                    [
                        hexed.str.slice(a, b - a)
                        for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
                    ],
                    separator="-",
                )
            )
            .otherwise(hexed)
        )
    return column.cast(pl.String)


def _may_hold_text(dtype: pl.DataType) -> bool:
    """A column that may hold contact IDs or tags as text: text, a category, 16 bytes (a
    UUID), a number (a spreadsheet's damage, rejected) or a list of text (tags)."""
    if isinstance(dtype, pl.List | pl.Array):
        return False  # tags as lists: read as such, never sampled as text
    return (
        dtype in (pl.String, pl.Binary)
        or isinstance(dtype, pl.Categorical | pl.Enum | pl.Decimal)
        or dtype.is_numeric()
    )


def read_columnar(
    scan: pl.LazyFrame, source: str, fmt: Format, options: ReadOptions, kind: Kind | None = None
) -> InputFrame:
    try:
        schema = scan.collect_schema()
        # only the columns that may hold IDs or tags as text: another column's type (a
        # struct, a map, an interval) can never break a read
        texts = {n: _as_text(n, t) for n, t in schema.items() if _may_hold_text(t)}
        head = scan.head(SAMPLE_ROWS).select(**texts).collect() if texts else pl.DataFrame()
    except (pl.exceptions.PolarsError, OSError, pl.exceptions.PanicException) as exc:
        raise InputError(f"cannot read this {fmt} file: {first_line(exc)}", source=source) from None
    names = list(schema.names())
    samples = (
        [[row.get(name) for name in names] for row in head.iter_rows(named=True)]
        if head.height
        else []
    )
    own, options = reading(names, Path(source).name, options)
    check_own(own, names, samples, source)
    columns = map_columns(names, source, options, samples)
    lists = tuple(isinstance(schema[name], pl.List | pl.Array) for name in columns.tag_names)
    cells = {
        tag_name(j): (
            pl.col(name).cast(pl.List(pl.String)).list.drop_nulls()
            if is_list
            else _as_text(name, schema[name])
        )
        for j, (name, is_list) in enumerate(zip(columns.tag_names, lists, strict=True))
    }
    id_dtype = schema[columns.id_name]
    frame = scan.with_row_index("__record").select(
        line=pl.col("__record").cast(pl.Int64) + 1,
        id=_as_text(columns.id_name, id_dtype),
        # a number column is never a UUID, whatever its digits
        id_number=pl.lit(id_dtype.is_numeric() or isinstance(id_dtype, pl.Decimal))
        & pl.col(columns.id_name).is_not_null(),
        held=held(own, names, options, lambda i: _as_text(names[i], schema[names[i]])),
        extra=pl.lit(None, dtype=pl.String),
        **cells,
    )
    return InputFrame(
        source, fmt, frame, columns, tag_lists=lists, kind=kind or fmt, own=own, options=options
    )


def _compact_ods(path: Path, workdir: Path) -> Path:
    """An ODS whose content.xml calamine can read: gnumeric indents its XML (calamine stops
    at the white space between cells) and breaks lines in a cell with ``<text:line-break/>``
    (which calamine drops): without the indentation, each break a paragraph of its own."""
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"{path.stem}-compact.ods"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(target, "w") as compact:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "content.xml":
                data = re.sub(rb">\s+<", b"><", data)
                data = data.replace(b"<text:line-break/>", b"</text:p><text:p>")
            compact.writestr(info, data)
    return target


def read_excel(
    path: Path, source: str, options: ReadOptions, kind: Kind, workdir: Path
) -> InputFrame:
    try:
        try:
            book = open_sheet(path, kind, options, source)
        except InputError:
            raise
        except Exception:
            if kind != "ods":
                raise
            book = open_sheet(_compact_ods(path, workdir), kind, options, source)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001  (fastexcel raises its own tree; all mean "unreadable")
        raise InputError(
            f"cannot read this {kind.upper()} file ({first_line(exc)}): {SAVE_AGAIN}",
            source=source,
        ) from None
    table, options = book.table, book.options
    at = header_row(table, options, source)
    header = ["" if v is None else str(v) for v in table.row(at)]
    samples = [table.row(i) for i in range(at + 1, min(table.height, at + 1 + SAMPLE_ROWS))]
    check_own(book.own, header, samples, source)
    try:
        columns = map_columns(header, source, options, samples)
    except InputError as exc:
        raise at_line(exc, at + 1) from None
    names = table.columns
    ids = table.get_column(names[columns.id_index])
    typed = typed_ids(book.reader, book.index, ids, columns.id_index)
    frame = (
        table.lazy()
        .with_row_index("__record")
        .with_columns(__typed=typed)
        .slice(at + 1)
        .select(
            line=pl.col("__record").cast(pl.Int64) + 1,
            id=pl.col(names[columns.id_index]),
            id_number=pl.col("__typed"),
            held=held(book.own, header, options, lambda i: pl.col(names[i])),
            extra=pl.lit(None, dtype=pl.String),
            **{tag_name(j): pl.col(names[i]) for j, i in enumerate(columns.tag_indexes)},
        )
    )
    return InputFrame(
        source,
        "xlsx",
        frame,
        columns,
        quoted=True,
        tag_lists=(False,) * len(columns.tag_indexes),
        kind=kind,
        header_line=at + 1,
        notes=() if book.note is None else (book.note,),
        own=book.own,
        options=options,
    )
