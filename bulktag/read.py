"""Read input files into one shape: polars lazy frames of ``line, id, extra, tag0, tag1...``.

Whatever the format (CSV/TSV, Parquet, XLSX, NDJSON) and the shape (long: one
tag per row; wide: a tags cell split on ``,`` ``;`` ``|``; several tag columns),
each input row becomes one row here:

- ``line``: where a human finds the row (CSV: the line number, header = line 1;
  XLSX: the sheet's row number; Parquet / NDJSON: the record number from 1)
- ``id``: the ID cell as text, never inferred as a number (as written: CSV and XLSX
  cells may still carry Excel's leading apostrophe, see :meth:`InputFrame.raw_id`)
- ``extra``: CSV only, text found beyond the header's last column (a ragged row)
- ``tag0``, ``tag1``...: the tag cells, as text or lists of text (as written)

:class:`InputFrame` turns these into the raw ID and tags (for reject rows) and the
tags, split but not yet normalised (``pieces``).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.sniff import Format, SniffedCsv, detect_format, sniff_csv

__all__ = ["ColumnMap", "InputFrame", "expand_inputs", "map_columns", "read_input", "tag_name"]

ID_ALIASES = (
    "contact_id",
    "contactid",
    "contact_uuid",
    "leadlex_id",
    "leadlex_contact_id",
    "crm_id",
    "id",
    "uuid",
    "guid",
    "contact",
    "record_id",
    # Localised spreadsheet exports
    "kontakt_id",
    "id_contact",
    "id_du_contact",
    "id_contacto",
    "id_contatto",
)
TAG_ALIASES = (
    "tags",
    "tag",
    "tag_list",
    "tags_list",
    "labels",
    "label",
    "segments",
    "segment",
    "schlagwörter",
    "schlagworte",
    "étiquettes",
    "etiquettes",
    "etiquetas",
)
_NUMBERED_TAG = re.compile(r"^(?:tags?|labels?)_?(\d+)$")
_ZERO_WIDTH_OR_BOM = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_GLOB = re.compile(r"[*?\[]")


def normalise_header(name: str) -> str:
    """Trim, case-fold, spaces / dashes / dots to ``_``: "Contact ID" -> "contact_id"."""
    cleaned = _ZERO_WIDTH_OR_BOM.sub("", name).strip().casefold()
    return re.sub(r"[\s\-./]+", "_", cleaned).strip("_")


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which header columns hold the contact ID and the tags."""

    header: tuple[str, ...]
    id_index: int
    tag_indexes: tuple[int, ...]

    @property
    def id_name(self) -> str:
        return self.header[self.id_index]

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(self.header[i] for i in self.tag_indexes)


def _find(
    normalised: list[str], wanted: str, header: Sequence[str], source: str, role: str
) -> int | None:
    hits = [i for i, name in enumerate(normalised) if name == wanted]
    if len(hits) > 1:
        places = " and ".join(str(i + 1) for i in hits)
        raise InputError(
            f"the {role} column {header[hits[0]]!r} appears {len(hits)} times (columns {places}); "
            f"rename one or name the column to use",
            source=source,
            line=1,
        )
    return hits[0] if hits else None


def map_columns(header: Sequence[str], source: str, options: ReadOptions) -> ColumnMap:
    """Match the header through normalisation and the alias tables (or the options)."""
    normalised = [normalise_header(h) for h in header]
    found = ", ".join(repr(h) for h in header) or "none"
    id_index: int | None = None
    if options.id_column:
        id_index = _find(normalised, normalise_header(options.id_column), header, source, "ID")
        if id_index is None:
            raise InputError(
                f"no column {options.id_column!r} (from --id-column); columns found: {found}",
                source=source,
                line=1,
            )
    else:
        for alias in ID_ALIASES:
            id_index = _find(normalised, alias, header, source, "ID")
            if id_index is not None:
                break
    if id_index is None:
        raise InputError(
            f"no contact ID column (looked for {', '.join(ID_ALIASES[:4])}, ...); columns found: "
            f"{found}. Name it with --id-column",
            source=source,
            line=1,
        )
    tag_indexes = [
        i for i in _tag_columns(normalised, header, source, options, found) if i != id_index
    ]
    if not tag_indexes:
        raise InputError(
            f"no tags column (looked for tags, tag, labels, tag1, tag2, ...); columns found: "
            f"{found}. Name it with --tags-column",
            source=source,
            line=1,
        )
    return ColumnMap(tuple(header), id_index, tuple(tag_indexes))


def _tag_columns(
    normalised: list[str], header: Sequence[str], source: str, options: ReadOptions, found: str
) -> list[int]:
    """Named columns; else the first alias; else numbered columns (tag1, tag2, ...) in order."""
    if options.tags_columns:
        indexes = []
        for name in options.tags_columns:
            index = _find(normalised, normalise_header(name), header, source, "tags")
            if index is None:
                raise InputError(
                    f"no column {name!r} (from --tags-column); columns found: {found}",
                    source=source,
                    line=1,
                )
            indexes.append(index)
        return indexes
    for alias in TAG_ALIASES:
        index = _find(normalised, alias, header, source, "tags")
        if index is not None:
            return [index]
    numbered = [
        (int(m.group(1)), i)
        for i, name in enumerate(normalised)
        if (m := _NUMBERED_TAG.match(name))
    ]
    return [i for _, i in sorted(numbered)]


def tag_name(index: int) -> str:
    """The frame's column for the ``index``-th tag cell."""
    return f"tag{index}"


@dataclass(frozen=True, slots=True)
class InputFrame:
    """One input, read lazily into the common shape."""

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

    @property
    def single_text_tags(self) -> bool:
        """One text tag cell: its trimmed text may already be the row's one tag."""
        return self.tag_lists == (False,)

    def unquote(self, cell: pl.Expr) -> pl.Expr:
        """``cell`` less Excel's apostrophe, where the format may carry one."""
        return _unquote(cell) if self.quoted else cell

    def raw_id(self) -> pl.Expr:
        """The ID cell as the user wrote it (less Excel's apostrophe)."""
        return self.unquote(pl.col("id"))

    def raw_tags(self, only: pl.Expr | None = None) -> pl.Expr:
        """The tag cells as written, joined with ", "; null where not ``only``."""
        raws = []
        for i, is_list in enumerate(self.tag_lists):
            cell = _only(pl.col(tag_name(i)), only)
            raws.append(cell.list.join(", ") if is_list else self.unquote(cell))
        return _raw_tags(raws)

    def pieces(self, separators: str) -> pl.Expr:
        """The tags, split but not normalised."""
        parts = []
        for i, is_list in enumerate(self.tag_lists):
            cell = pl.col(tag_name(i))
            if is_list:
                parts.append(cell.fill_null(pl.lit([], dtype=pl.List(pl.String))))
            else:
                parts.append(_split([self.unquote(cell)], separators))
        return parts[0] if len(parts) == 1 else pl.concat_list(parts)


def _only(expr: pl.Expr, only: pl.Expr | None) -> pl.Expr:
    return expr if only is None else pl.when(only).then(expr)


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Paths and globs -> existing files, in order; ``-`` stays (stdin)."""
    files: list[str] = []
    for pattern in patterns:
        if pattern == "-":
            files.append(pattern)
            continue
        if _GLOB.search(pattern) and not Path(pattern).expanduser().exists():
            base = Path(pattern).expanduser()
            anchor = Path(base.anchor) if base.is_absolute() else Path()
            relative = str(base.relative_to(anchor)) if base.is_absolute() else pattern
            matches = sorted(str(p) for p in anchor.glob(relative) if p.is_file())
            if not matches:
                raise InputError(f"no file matches {pattern!r}")
            files.extend(matches)
            continue
        path = Path(pattern).expanduser()
        if not path.exists():
            raise InputError("no such file", source=pattern)
        if path.is_dir():
            raise InputError(
                "is a folder; give files or a glob such as 'folder/*.csv'", source=pattern
            )
        files.append(str(path))
    if not files:
        raise InputError("no input files given")
    return files


def _unquote(cell: pl.Expr) -> pl.Expr:
    """Drop one leading apostrophe: Excel's text marker, and how bulktag's CSVs escape formulas."""
    return cell.str.strip_prefix("'")


def _split(cells: list[pl.Expr], separators: str) -> pl.Expr:
    if not separators:
        return pl.concat_list(cells).list.drop_nulls()
    pattern = "[^" + re.escape(separators) + "]+"
    empty = pl.lit([], dtype=pl.List(pl.String))
    return pl.concat_list([c.str.extract_all(pattern).fill_null(empty) for c in cells])


def _raw_tags(cells: list[pl.Expr]) -> pl.Expr:
    if len(cells) == 1:
        return cells[0]
    return pl.concat_str(cells, separator=", ", ignore_nulls=True)


def _read_csv(path: Path, source: str, options: ReadOptions, workdir: Path) -> InputFrame:
    sniffed = sniff_csv(
        path, source, workdir, encoding=options.encoding, delimiter=options.delimiter
    )
    columns = map_columns(sniffed.header, source, options)
    width = len(sniffed.header)
    names = [f"c{i}" for i in range(width + 1)]  # one more: catches ragged rows
    scan = pl.scan_csv(
        sniffed.path,
        has_header=False,
        skip_rows=sniffed.skip_rows,
        separator=sniffed.delimiter,
        schema=dict.fromkeys(names, pl.String),
        truncate_ragged_lines=True,
        extra_columns="ignore",  # else a first data row two fields too long fails the whole file
        missing_columns="insert",
        row_index_name="__record",
        quote_char='"',
    )
    frame = scan.select(
        line=(pl.col("__record").cast(pl.Int64) + sniffed.skip_rows + 1),
        id=pl.col(names[columns.id_index]),
        extra=pl.col(names[width]),
        **{tag_name(j): pl.col(names[i]) for j, i in enumerate(columns.tag_indexes)},
    )
    return InputFrame(
        source,
        "csv",
        frame,
        columns,
        sniffed.encoding,
        sniffed.encoding_detected,
        sniffed,
        quoted=True,
        tag_lists=(False,) * len(columns.tag_indexes),
    )


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


def _read_columnar(
    scan: pl.LazyFrame, source: str, fmt: Format, options: ReadOptions
) -> InputFrame:
    try:
        schema = scan.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(
            f"cannot read this {fmt} file: {_first_line(exc)}", source=source
        ) from None
    columns = map_columns(list(schema.names()), source, options)
    lists = tuple(isinstance(schema[name], pl.List | pl.Array) for name in columns.tag_names)
    cells = {
        tag_name(j): (
            pl.col(name).cast(pl.List(pl.String)).list.drop_nulls()
            if is_list
            else _as_text(name, schema[name])
        )
        for j, (name, is_list) in enumerate(zip(columns.tag_names, lists, strict=True))
    }
    frame = scan.with_row_index("__record").select(
        line=pl.col("__record").cast(pl.Int64) + 1,
        id=_as_text(columns.id_name, schema[columns.id_name]),
        extra=pl.lit(None, dtype=pl.String),
        **cells,
    )
    return InputFrame(source, fmt, frame, columns, tag_lists=lists)


def _read_excel(path: Path, source: str, options: ReadOptions) -> InputFrame:
    sheet = options.sheet or "1"
    if sheet.isdigit() and int(sheet) < 1:
        raise InputError(f"sheet {sheet}: sheets are numbered from 1", source=source)
    # skip_rows=0: keep leading empty rows, so that a row's index is its sheet row number - 1.
    read_options = {"dtypes": "string", "header_row": None, "skip_rows": 0}
    try:
        if sheet.isdigit():
            table = pl.read_excel(
                path,
                sheet_id=int(sheet),
                engine="calamine",
                has_header=False,
                drop_empty_rows=False,
                drop_empty_cols=False,
                read_options=read_options,
            )
        else:
            table = pl.read_excel(
                path,
                sheet_name=sheet,
                engine="calamine",
                has_header=False,
                drop_empty_rows=False,
                drop_empty_cols=False,
                read_options=read_options,
            )
    except Exception as exc:  # noqa: BLE001  (fastexcel raises its own tree; all mean "unreadable")
        raise InputError(
            f"cannot read this spreadsheet: {_first_line(exc)}", source=source
        ) from None
    first = next(
        (i for i, row in enumerate(table.iter_rows()) if any(v and v.strip() for v in row)), None
    )
    if first is None:
        raise InputError("the sheet is empty: expected a header row and data", source=source)
    header = ["" if v is None else str(v) for v in table.row(first)]
    columns = map_columns(header, source, options)
    names = table.columns
    frame = (
        table.lazy()
        .with_row_index("__record")
        .slice(first + 1)
        .select(
            line=pl.col("__record").cast(pl.Int64) + 1,
            id=pl.col(names[columns.id_index]),
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
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_input(name: str, options: ReadOptions, workdir: Path) -> InputFrame:
    """One input file (or ``-``, CSV on stdin) as an :class:`InputFrame`."""
    if name == "-":
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "stdin.csv"
        with path.open("wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle)
        return _read_csv(path, "<stdin>", options, workdir)
    path = Path(name)
    fmt = detect_format(path)
    if fmt == "csv":
        return _read_csv(path, name, options, workdir)
    if fmt == "xlsx":
        return _read_excel(path, name, options)
    if fmt == "parquet":
        return _read_columnar(pl.scan_parquet(path), name, fmt, options)
    return _read_columnar(pl.scan_ndjson(path, infer_schema_length=10_000), name, fmt, options)
