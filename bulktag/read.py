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

:class:`InputFrame` turns these into the raw ID and tags (for reject rows); splitting
and normalising are done in :mod:`bulktag.pieces`. Which columns are the ID and the tags is
:mod:`bulktag.columns`; what a file is and how it is encoded, :mod:`bulktag.sniff`.
"""

from __future__ import annotations

import difflib
import re
import shutil
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import fastexcel

from bulktag.columns import (
    HEADER_SEARCH_ROWS,
    ColumnMap,
    header_index,
    map_columns,
    normalise_header,
)
from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.ownfiles import DONE_BEFORE, MARK, OwnKind, check_marks, own_options, recognise
from bulktag.rules import CUT_CHARACTER, PERMANENT_BEFORE
from bulktag.sniff import Format, Kind, SniffedCsv, detect_format, peek_header, sniff_csv

__all__ = ["InputFrame", "expand_inputs", "read_input", "tag_name"]

_GLOB = re.compile(r"[*?\[]")


def held(
    own: OwnKind | None,
    header: Sequence[str],
    options: ReadOptions,
    cell: Callable[[int], pl.Expr],
) -> pl.Expr:
    """Per row of a bulktag failures or results file, why it is not sent again: its reject
    reason when the earlier run's failure was permanent (``retryable`` false; never with
    ``--retry-permanent``), or :data:`~bulktag.ownfiles.DONE_BEFORE` for a results row that
    ended ``ok`` or ``skipped``; null for a row to send. ``cell(i)``: the text of column
    ``i``."""
    if own not in (OwnKind.FAILURES, OwnKind.RESULTS):
        return pl.lit(None, dtype=pl.String)
    names = [normalise_header(h) for h in header]

    def text(name: str) -> pl.Expr:
        return _unquote(cell(names.index(name))).str.strip_chars()

    permanent = (
        pl.lit(None, dtype=pl.String)
        if options.retry_permanent
        else pl.when(text("retryable").str.to_lowercase() == "false").then(
            pl.concat_str(text("error_type"), pl.lit(PERMANENT_BEFORE))
        )
    )
    done = text("status").str.to_lowercase().is_in(["ok", "skipped"])
    return pl.when(done).then(pl.lit(DONE_BEFORE)).otherwise(permanent)


def _own(
    header: Sequence[str], name: str, options: ReadOptions
) -> tuple[OwnKind | None, ReadOptions]:
    """Which of bulktag's files ``header`` is (None: a person's), and how to read it."""
    own = recognise(header, name)
    return own, options if own is None else own_options(options, own)


def _check_own(
    own: OwnKind | None,
    header: Sequence[str],
    samples: Sequence[Sequence[str | None]],
    source: str,
) -> None:
    """A file of bulktag's that cannot be read as one: a rejects file, a newer version."""
    if own is None:
        return
    names = [normalise_header(h) for h in header]
    at = names.index(MARK) if MARK in names else None
    marks = [] if at is None else [row[at] for row in samples if at < len(row)]
    check_marks(own, [None if m is None else str(m) for m in marks], source)


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
    file's row that is done, :data:`~bulktag.ownfiles.DONE_BEFORE`).
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
        return _unquote(cell) if self.quoted else cell

    def raw_id(self, only: pl.Expr | None = None) -> pl.Expr:
        """The ID cell as the user wrote it (less Excel's apostrophe); null where not ``only``."""
        return self.unquote(_only(pl.col("id"), only))

    def raw_tags(self, only: pl.Expr | None = None) -> pl.Expr:
        """The tag cells as written, joined with ", "; null where not ``only``."""
        raws = []
        for i, is_list in enumerate(self.tag_lists):
            cell = _only(pl.col(tag_name(i)), only)
            raws.append(cell.list.join(", ") if is_list else self.unquote(cell))
        return _raw_tags(raws)


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


def _raw_tags(cells: list[pl.Expr]) -> pl.Expr:
    if len(cells) == 1:
        return cells[0]
    return pl.concat_str(cells, separator=", ", ignore_nulls=True)


def _csv_header(sniffed: SniffedCsv, source: str, options: ReadOptions) -> int:
    """The index in ``sniffed.rows`` of the header (``--header-row`` names its line)."""
    rows = sniffed.rows
    if options.header_row is not None:
        for index, row in enumerate(rows):
            if row.line == options.header_row:
                return index
        raise InputError(
            f"--header-row {options.header_row}: no row starts on that line "
            f"(the sample holds lines 1 to {rows[-1].line if rows else 0})",
            source=source,
        )
    found = header_index([row.cells for row in rows], options)
    if found is None:
        raise InputError("no header row: the first lines are empty", source=source)
    return found


def _read_csv(path: Path, source: str, options: ReadOptions, workdir: Path) -> InputFrame:
    own, options = _own(peek_header(path), path.name, options)
    sniffed = sniff_csv(
        path, source, workdir, encoding=options.encoding, delimiter=options.delimiter
    )
    at = _csv_header(sniffed, source, options)
    header = sniffed.rows[at].cells
    if not any(h.strip() for h in header):
        raise InputError(
            "the header row is empty: expected column names",
            source=source,
            line=sniffed.rows[at].line,
        )
    samples = [row.cells for row in sniffed.rows[at + 1 :]]
    _check_own(own, header, samples, source)
    try:
        columns = map_columns(header, source, options, samples)
    except InputError as exc:
        raise _at_line(exc, sniffed.rows[at].line) from None
    if sniffed.uncertain:
        raise _not_sure(sniffed, at, columns, source)
    skip = sniffed.first_record + at + 1  # records before the data: "sep=", titles, header
    width = len(header)
    names = [f"c{i}" for i in range(width + 1)]  # one more: catches ragged rows
    scan = pl.scan_csv(
        sniffed.path,
        glob=False,  # "export [2].csv" is a file name (globs are expanded by expand_inputs)
        has_header=False,
        skip_rows=skip,
        separator=sniffed.delimiter,
        schema=dict.fromkeys(names, pl.String),
        truncate_ragged_lines=True,
        extra_columns="ignore",  # else a first data row two fields too long fails the whole file
        missing_columns="insert",
        row_index_name="__record",
        quote_char='"',
        # a file cut inside its last character: the rest is UTF-8, its last row a reject
        encoding="utf8-lossy" if sniffed.cut_end else "utf8",
    )
    reason = held(own, header, options, lambda i: pl.col(names[i]))
    if sniffed.cut_end:
        last = pl.col("__record") == pl.col("__record").max()
        reason = pl.when(last).then(pl.lit(CUT_CHARACTER)).otherwise(reason)
    frame = scan.select(
        line=(pl.col("__record").cast(pl.Int64) + skip + 1),
        id=pl.col(names[columns.id_index]),
        id_number=pl.lit(value=False),
        held=reason,
        extra=pl.col(names[width]),
        **{tag_name(j): pl.col(names[i]) for j, i in enumerate(columns.tag_indexes)},
    )
    notes = (
        [f"{sniffed.line_endings} line endings"] if sniffed.line_endings in ("CR", "mixed") else []
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
        header_line=sniffed.rows[at].line,
        notes=tuple(notes),
        own=own,
        options=options,
    )


def _not_sure(sniffed: SniffedCsv, at: int, columns: ColumnMap, source: str) -> InputError:
    """A file whose encoding is not certain: nothing is sent; a few tags as each candidate
    reads them, and the fix."""
    readings = []
    for encoding, rows in sniffed.uncertain.items():
        cells = [
            row.cells[i]
            for row in rows[at + 1 :]
            for i in columns.tag_indexes
            if i < len(row.cells)
        ]
        shown = [c for c in cells if not c.isascii()][:3] or cells[:3]
        readings.append(f"as {encoding}: " + ", ".join(repr(c[:40]) for c in shown))
    first = next(iter(sniffed.uncertain))
    return InputError(
        "the encoding is not certain (not UTF-8, no byte order mark, and two detectors read it "
        "differently): " + "; ".join(readings) + ". Nothing was sent: give the right one with "
        f'--encoding {first} (or encoding = "{first}" under [read] in a job file)',
        source=source,
    )


def _at_line(exc: InputError, line: int) -> InputError:
    """The error, placed on the header's line."""
    message = str(exc).removeprefix(f"{exc.source}: ") if exc.source else str(exc)
    return InputError(message, source=exc.source, line=line)


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


def _read_columnar(
    scan: pl.LazyFrame, source: str, fmt: Format, options: ReadOptions
) -> InputFrame:
    try:
        schema = scan.collect_schema()
        # only the columns that may hold IDs or tags as text: another column's type (a
        # struct, a map, an interval) can never break a read
        texts = {n: _as_text(n, t) for n, t in schema.items() if _may_hold_text(t)}
        head = scan.head(SAMPLE_ROWS).select(**texts).collect() if texts else pl.DataFrame()
    except (pl.exceptions.PolarsError, OSError, pl.exceptions.PanicException) as exc:
        raise InputError(
            f"cannot read this {fmt} file: {_first_line(exc)}", source=source
        ) from None
    names = list(schema.names())
    samples = (
        [[row.get(name) for name in names] for row in head.iter_rows(named=True)]
        if head.height
        else []
    )
    own, options = _own(names, Path(source).name, options)
    _check_own(own, names, samples, source)
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
        source, fmt, frame, columns, tag_lists=lists, kind=fmt, own=own, options=options
    )


#: Data rows sampled to find the ID column by its content.
SAMPLE_ROWS = 1_000


def _sheet(reader: fastexcel.ExcelReader, options: ReadOptions, source: str) -> int | str:
    """The sheet to read: ``--sheet`` as a 1-based number or a name (checked), else the first."""
    sheet = options.sheet or "1"
    names = reader.sheet_names
    if sheet.isdigit():
        number = int(sheet)
        if not 1 <= number <= len(names):
            raise InputError(
                f"--sheet {sheet}: the workbook has {len(names)} sheet(s), numbered from 1: "
                + ", ".join(f"{i} {n!r}" for i, n in enumerate(names, start=1)),
                source=source,
            )
        return number - 1
    if sheet in names:
        return sheet
    close = difflib.get_close_matches(sheet, names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"no sheet {sheet!r}{hint} Sheets: {', '.join(repr(n) for n in names)}", source=source
    )


def _excel_header(table: pl.DataFrame, options: ReadOptions, source: str) -> int:
    rows = [table.row(i) for i in range(min(table.height, HEADER_SEARCH_ROWS))]
    if options.header_row is not None:
        if not 1 <= options.header_row <= table.height:
            raise InputError(
                f"--header-row {options.header_row}: the sheet has {table.height} row(s)",
                source=source,
            )
        return int(options.header_row) - 1
    found = header_index(rows, options)
    if found is None:
        raise InputError("the sheet is empty: expected a header row and data", source=source)
    return found


@dataclass(frozen=True, slots=True)
class _Workbook:
    reader: fastexcel.ExcelReader
    sheet: int | str  #: the sheet read
    table: pl.DataFrame  #: its cells as text
    own: OwnKind | None  #: which of bulktag's files it is (None: a person's)
    options: ReadOptions  #: how it is read


def _open_workbook(path: Path, kind: Kind, options: ReadOptions, source: str) -> _Workbook:
    """The workbook, the sheet to read, and that sheet's cells as text."""
    import fastexcel  # noqa: PLC0415  (polars' calamine engine; only workbooks need it)

    # calamine goes by the extension; from the bytes it tells the format by content.
    named = path.suffix.lower().lstrip(".") in (kind, "xlsm" if kind == "xlsx" else kind)
    reader = fastexcel.read_excel(path if named else path.read_bytes())
    first = reader.load_sheet(0, header_row=None, n_rows=1, dtypes="string").to_polars()
    header = [str(v) for v in first.row(0) if v is not None] if first.height else []
    own, options = _own(header, path.name, options)
    sheet = _sheet(reader, options, source)
    # skip_rows=0: keep leading empty rows, so a row's index is its sheet row number - 1.
    table = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string").to_polars()
    return _Workbook(reader, sheet, table, own, options)


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


def _read_excel(
    path: Path, source: str, options: ReadOptions, kind: Kind, workdir: Path
) -> InputFrame:
    try:
        try:
            book = _open_workbook(path, kind, options, source)
        except InputError:
            raise
        except Exception:
            if kind != "ods":
                raise
            book = _open_workbook(_compact_ods(path, workdir), kind, options, source)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001  (fastexcel raises its own tree; all mean "unreadable")
        raise InputError(
            f"cannot read this {kind.upper()} file ({_first_line(exc)}): {_SAVE_AGAIN}",
            source=source,
        ) from None
    table, options = book.table, book.options
    at = _excel_header(table, options, source)
    header = ["" if v is None else str(v) for v in table.row(at)]
    samples = [table.row(i) for i in range(at + 1, min(table.height, at + 1 + SAMPLE_ROWS))]
    _check_own(book.own, header, samples, source)
    try:
        columns = map_columns(header, source, options, samples)
    except InputError as exc:
        raise _at_line(exc, at + 1) from None
    names = table.columns
    ids = table.get_column(names[columns.id_index])
    typed = _typed_ids(book.reader, book.sheet, ids, columns.id_index)
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
        own=book.own,
        options=options,
    )


_SAVE_AGAIN = (
    "open it in Excel, LibreOffice or Google Sheets and save it as XLSX or CSV, or export it "
    "again if the file is cut short"
)


def _typed_ids(
    reader: fastexcel.ExcelReader, sheet: int | str, ids: pl.Series, index: int
) -> pl.Series:
    """Per row: whether the ID cell is typed as a number (or a date, a boolean), not text.

    A number cell reads as its digits: as text, most cannot pass for a UUID (the ID rules
    reject them as numbers), but a bare-hex UUID made only of digits becomes a float whose
    32 digits (float noise in the last ones) would, and the largest floats read "inf".
    Only then is the sheet's ID column read again,
    as booleans: fastexcel gives a value for a number, date or boolean cell and none for
    text, whatever the text holds.
    """
    ambiguous = ids.str.contains(r"(?i)^\s*(?:\d{32}|[+-]?inf|nan)\s*$").fill_null(value=False)
    if not ambiguous.any():
        return pl.repeat(value=False, n=ids.len(), dtype=pl.Boolean, eager=True)
    kinds = reader.load_sheet(
        sheet, header_row=None, skip_rows=0, dtypes={index: "boolean"}, use_columns=[index]
    )
    typed: pl.Series = kinds.to_polars().to_series().is_not_null()
    return typed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _literal(path: Path, workdir: Path) -> Path:
    """``path``, or a link to it without glob characters: polars 2.1's ``scan_ndjson`` has
    no ``glob=False`` and would take "export [2].ndjson" for a pattern."""
    if not _GLOB.search(str(path)):
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    link = workdir / f"input-{len(list(workdir.glob('input-*')))}.ndjson"
    link.symlink_to(path.resolve())
    return link


def read_input(name: str, options: ReadOptions, workdir: Path) -> InputFrame:
    """One input file (or ``-``, CSV on stdin) as an :class:`InputFrame`."""
    if name == "-":
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "stdin.csv"
        with path.open("wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle)
        return _read_csv(path, "<stdin>", options, workdir)
    path = Path(name)
    empty = _empty_output(path)
    if empty is not None:
        return _read_columnar(empty, name, "ndjson", options)
    detected = detect_format(path, name)
    if detected.format == "csv":
        item = _read_csv(path, name, options, workdir)
    elif detected.format == "xlsx":
        item = _read_excel(path, name, options, detected.kind, workdir)
    elif detected.format == "parquet":
        # glob=False: a file named "export [2].parquet" is that file (globs are expanded
        # before, by expand_inputs)
        item = _read_columnar(pl.scan_parquet(path, glob=False), name, "parquet", options)
    else:
        scan = pl.scan_ndjson(_literal(path, workdir), infer_schema_length=10_000)
        item = _read_columnar(scan, name, "ndjson", options)
    notes = tuple(filter(None, [detected.note, item.columns.id_note, _own_note(item.own)]))
    return replace(item, notes=(*notes, *item.notes))


def _empty_output(path: Path) -> pl.LazyFrame | None:
    """A run's own results or failures file with no row, which NDJSON writes as an empty
    file: no contact, nothing to send (an empty file of a person's is refused)."""
    kind = {"failures": OwnKind.FAILURES, "results": OwnKind.RESULTS}.get(path.stem)
    try:
        empty = kind is not None and path.stat().st_size == 0
    except OSError:
        return None
    if not empty or not (path.parent / ".bulktag" / "config.json").is_file():
        return None
    names = ["contact_id", "tags", "status", "error_type", "retryable"]
    if kind is OwnKind.RESULTS:
        names.append("pending_tags")
    return pl.LazyFrame(schema=dict.fromkeys([*names, MARK], pl.String))


def _own_note(own: OwnKind | None) -> str | None:
    """What the plan says of one of bulktag's own files (see :mod:`bulktag.ownfiles`)."""
    if own is None:
        return None
    what = {
        OwnKind.RESULTS: "only its rows not ok or skipped are planned, with their pending tags",
        OwnKind.FAILURES: "its rows are sent again, less those whose failure was permanent",
        OwnKind.CARRY_OVER: "what the job's last run could not finish",
    }.get(own, "")
    return (
        f"bulktag's {own} file: {what}; read with its own columns, its tags as they are "
        "(no prefix, case or added tag, no [read] setting)"
    )
