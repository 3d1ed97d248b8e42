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

import logging
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    pass

from bulktag.config import ReadOptions
from bulktag.errors import InputError, UsageError
from bulktag.read.frame import InputFrame
from bulktag.read.ownfiles import MARK, OwnKind
from bulktag.read.paths import inflate
from bulktag.read.sniff import detect_format
from bulktag.read.tables import read_columnar, read_excel
from bulktag.read.text import read_csv, read_json_records, read_ndjson
from bulktag.state.rundir import RunPaths

__all__ = ["read_input"]

log = logging.getLogger("bulktag")


def read_input(name: str, options: ReadOptions, workdir: Path) -> InputFrame:
    """One input file (or ``-``, CSV on stdin) as an :class:`InputFrame`."""
    if name == "-":
        return _read_stdin(options, workdir)
    path = Path(name)
    empty = _empty_output(path)
    if empty is not None:
        return read_columnar(empty, name, "ndjson", options)
    path, inflated = inflate(path, name, workdir)
    detected = detect_format(path, name)
    if detected.format == "csv":
        item = read_csv(path, name, options, workdir)
    elif detected.format == "xlsx":
        item = read_excel(path, name, options, detected.kind, workdir)
    elif detected.kind == "arrow":
        item = read_columnar(pl.scan_ipc(path, glob=False), name, "parquet", options, "arrow")
    elif detected.format == "parquet":
        # glob=False: a file named "export [2].parquet" is that file (globs are expanded
        # before, by expand_inputs)
        item = read_columnar(pl.scan_parquet(path, glob=False), name, "parquet", options)
    elif detected.kind == "json":
        item = read_columnar(read_json_records(path, name), name, "ndjson", options, "json")
    else:
        scan = pl.scan_ndjson(read_ndjson(path, workdir), infer_schema_length=10_000)
        item = read_columnar(scan, name, "ndjson", options)
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
    return read_csv(path, "<stdin>", options, workdir)


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
    if not empty or not RunPaths(path.parent).is_run_folder():
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
