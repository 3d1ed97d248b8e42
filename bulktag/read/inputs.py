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
and normalising are done in :mod:`bulktag.read.pieces`. Which columns are the ID and the tags is
:mod:`bulktag.read.columns`; what a file is and how it is encoded, :mod:`bulktag.read.sniff`.
"""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import re
import shutil
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    pass

from bulktag.config import ReadOptions
from bulktag.errors import InputError, UsageError
from bulktag.read.columns import (
    SAMPLE_ROWS,
    ColumnMap,
    header_index,
    map_columns,
    normalise_header,
)
from bulktag.read.ownfiles import DONE_BEFORE, MARK, OwnKind, check_marks, reading
from bulktag.read.rules import CUT_CHARACTER, CUT_LINE, PERMANENT_BEFORE
from bulktag.read.sheets import SAVE_AGAIN, header_row, open_sheet, typed_ids
from bulktag.read.sniff import Format, Kind, SniffedCsv, detect_format, peek_header, sniff_csv

__all__ = ["InputFrame", "expand_inputs", "read_input", "tag_name"]

_GLOB = re.compile(r"[*?\[]")
#: Excel's lock file of an open workbook: ``~$segment.xlsx`` beside ``segment.xlsx``.
LOCK_PREFIX = "~$"
log = logging.getLogger("bulktag")


def held(
    own: OwnKind | None,
    header: Sequence[str],
    options: ReadOptions,
    cell: Callable[[int], pl.Expr],
) -> pl.Expr:
    """Per row of a bulktag failures or results file, why it is not sent again: its reject
    reason when the earlier run's failure was permanent (``retryable`` false; never with
    ``--retry-permanent``), or :data:`~bulktag.read.ownfiles.DONE_BEFORE` for a results row that
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
            locks = [m for m in matches if Path(m).name.startswith(LOCK_PREFIX)]
            for lock in locks:
                log.warning(
                    "%s: skipped, Excel's lock file of %s (open in Excel right now)",
                    lock,
                    Path(lock).name.removeprefix(LOCK_PREFIX),
                )
            matches = [m for m in matches if m not in locks]
            if not matches:
                raise InputError(f"no file matches {pattern!r}")
            files.extend(matches)
            continue
        path = Path(pattern).expanduser()
        if not path.exists():
            raise InputError("no such file", source=pattern)
        if path.name.startswith(LOCK_PREFIX):
            raise InputError(
                "this is Excel's lock file of an open workbook, not the workbook: give "
                f"{path.with_name(path.name.removeprefix(LOCK_PREFIX))}",
                source=pattern,
            )
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
    own, options = reading(peek_header(path), path.name, options)
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
    cut = CUT_CHARACTER if sniffed.cut_end else None
    if cut is None and source in options.cut_suspects:
        cut = CUT_LINE
    if cut is not None:  # cut while being written: its last row is a reject, never tags
        last = pl.col("__record") == pl.col("__record").max()
        reason = pl.when(last).then(pl.lit(cut)).otherwise(reason)
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
    scan: pl.LazyFrame, source: str, fmt: Format, options: ReadOptions, kind: Kind | None = None
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
    own, options = reading(names, Path(source).name, options)
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


def _read_excel(
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
            f"cannot read this {kind.upper()} file ({_first_line(exc)}): {SAVE_AGAIN}",
            source=source,
        ) from None
    table, options = book.table, book.options
    at = header_row(table, options, source)
    header = ["" if v is None else str(v) for v in table.row(at)]
    samples = [table.row(i) for i in range(at + 1, min(table.height, at + 1 + SAMPLE_ROWS))]
    _check_own(book.own, header, samples, source)
    try:
        columns = map_columns(header, source, options, samples)
    except InputError as exc:
        raise _at_line(exc, at + 1) from None
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _ndjson(path: Path, workdir: Path) -> Path:
    """``path`` as polars' ``scan_ndjson`` can take it: a copy without its UTF-8 byte order
    mark (Windows PowerShell 5.1 writes one; polars stops at it), or a link without glob
    characters (polars 2.1's ``scan_ndjson`` has no ``glob=False`` and would take
    "export [2].ndjson" for a pattern)."""
    with path.open("rb") as handle:
        bom = handle.read(3) == codecs.BOM_UTF8
        if bom:
            workdir.mkdir(parents=True, exist_ok=True)
            copy = workdir / f"input-{len(list(workdir.glob('input-*')))}.ndjson"
            with copy.open("wb") as out:
                shutil.copyfileobj(handle, out, 1 << 20)
            return copy
    if not _GLOB.search(str(path)):
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    link = workdir / f"input-{len(list(workdir.glob('input-*')))}.ndjson"
    link.symlink_to(path.resolve())
    return link


def _json_records(path: Path, source: str) -> pl.LazyFrame:
    """A JSON array of records (``to_json(orient="records")``) as a frame: by polars when
    it can, else by Python's json with every value text (lists as JSON text, read then as
    lists of tags), as NDJSON's mixed columns are."""
    try:
        return pl.read_json(path, infer_schema_length=10_000).lazy()
    except pl.exceptions.PolarsError:
        pass
    try:
        records = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"not a JSON array of records: {_first_line(exc)}", source=source
        ) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError("not a JSON array of records (objects)", source=source)
    names = list(dict.fromkeys(key for record in records for key in record))

    def text(value: object) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)

    columns = {n: [text(r.get(n)) for r in records] for n in names}
    return pl.LazyFrame(columns, schema=dict.fromkeys(names, pl.String))


#: A gzip file inflating more than this many times its size is refused (a bomb); CSV
#: exports compress 5 to 20 times.
MAX_INFLATE = 200


def inflate(path: Path, source: str, workdir: Path) -> tuple[Path, str | None]:
    """A gzip file (``export.csv.gz``) inflated into ``workdir``, and the plan's note; any
    other file as it is. Streamed: memory does not grow with the file."""
    try:
        with path.open("rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
    except OSError:
        return path, None  # detect_format says why
    if not gzipped:
        return path, None
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"inflated-{len(list(workdir.glob('inflated-*')))}-{path.stem}"
    limit = max(1 << 20, path.stat().st_size * MAX_INFLATE)
    written = 0
    try:
        with gzip.open(path, "rb") as packed, target.open("wb") as out:
            while chunk := packed.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise InputError(
                        f"this gzip file inflates more than {MAX_INFLATE} times its size: "
                        "a decompression bomb? Nothing was sent",
                        source=source,
                    )
                out.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(
            f"this gzip file does not inflate ({_first_line(exc)}): cut short or damaged; "
            "download or export it again",
            source=source,
        ) from None
    return target, f"gzip: inflated ({written:,} bytes)"


def read_input(name: str, options: ReadOptions, workdir: Path) -> InputFrame:
    """One input file (or ``-``, CSV on stdin) as an :class:`InputFrame`."""
    if name == "-":
        return _read_stdin(options, workdir)
    path = Path(name)
    empty = _empty_output(path)
    if empty is not None:
        return _read_columnar(empty, name, "ndjson", options)
    path, inflated = inflate(path, name, workdir)
    detected = detect_format(path, name)
    if detected.format == "csv":
        item = _read_csv(path, name, options, workdir)
    elif detected.format == "xlsx":
        item = _read_excel(path, name, options, detected.kind, workdir)
    elif detected.kind == "arrow":
        item = _read_columnar(pl.scan_ipc(path, glob=False), name, "parquet", options, "arrow")
    elif detected.format == "parquet":
        # glob=False: a file named "export [2].parquet" is that file (globs are expanded
        # before, by expand_inputs)
        item = _read_columnar(pl.scan_parquet(path, glob=False), name, "parquet", options)
    elif detected.kind == "json":
        item = _read_columnar(_json_records(path, name), name, "ndjson", options, "json")
    else:
        scan = pl.scan_ndjson(_ndjson(path, workdir), infer_schema_length=10_000)
        item = _read_columnar(scan, name, "ndjson", options)
    notes = [inflated, detected.note, item.columns.id_note, _own_note(item.own)]
    return replace(item, notes=(*filter(None, notes), *item.notes))


def _read_stdin(options: ReadOptions, workdir: Path) -> InputFrame:
    """``-``: CSV piped in. A terminal on stdin would be waited on in silence: refused
    (2); a workbook, Parquet or any file that is not text: refused (65), with its name's
    way."""
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            "the input '-' reads CSV piped in (cat export.csv | bulktag run -), and stdin is "
            "a terminal: give the file's name instead (bulktag run export.csv)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "stdin.csv"
    with path.open("wb") as handle:
        shutil.copyfileobj(sys.stdin.buffer, handle)
    try:
        detected = detect_format(path, "<stdin>")
    except InputError as exc:
        raise InputError(f"{exc}; '-' reads CSV text only", source=None) from None
    if detected.format != "csv":
        raise InputError(
            f"stdin holds {_A_KIND.get(detected.kind, 'a ' + detected.kind.upper() + ' file')}, "
            "and '-' reads CSV text only: give the file's name instead (bulktag run "
            "segment.xlsx)",
            source="<stdin>",
        )
    return _read_csv(path, "<stdin>", options, workdir)


_A_KIND = {
    "xlsx": "an XLSX workbook",
    "xls": "an XLS workbook",
    "ods": "an ODS spreadsheet",
    "parquet": "a Parquet file",
    "arrow": "an Arrow IPC file",
    "json": "JSON",
    "ndjson": "NDJSON",
}


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
    """What the plan says of one of bulktag's own files (see :mod:`bulktag.read.ownfiles`)."""
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
