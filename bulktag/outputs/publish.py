"""Publishing a run: results, failures and rejects in the input's format, and summary.json.

Every file is written atomically (a 0600 temporary file beside it, fsync,
rename): a reader sees the old file or the new one, never half of one. The
results have one row per planned contact, in plan order: what the journal
recorded, and for contacts never sent, the status of the halt that stopped the
run. The failures file has the same ``contact_id, tags`` columns as an input,
with only the tags still to apply, so ``bulktag run failures.csv`` re-sends
exactly those. A job's night lists the contacts it sent (see :func:`publish`).

CSV output is spreadsheet-safe: a cell that starts with ``=`` ``+`` ``-`` ``@``,
a tab, a carriage return or an apostrophe gets an apostrophe in front (OWASP's
advice against CSV injection); bulktag's reader drops one leading apostrophe,
so reading our own files back gives the exact values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from bulktag.config import OutputFormat
from bulktag.errors import ConfigError
from bulktag.machine import guarded
from bulktag.outcomes import UNSENT, FailureType, Halt, Status
from bulktag.plan.build import Plan
from bulktag.read.normalise import quote_tag
from bulktag.read.ownfiles import MARK, OwnKind, mark
from bulktag.scan import slices
from bulktag.state.journal import OUTCOME_COLUMNS, Journal, sink_joined

__all__ = ["Published", "atomic_write", "neutralise", "publish", "reject_rows", "write_output"]

RESULT_COLUMNS = (
    "contact_id",
    "tags",
    "status",
    "error_type",
    "retryable",
    "http_status",
    "error_code",
    "message",
    "attempts",
    "request_id",
    "verified",
    "pending_tags",
    "finished_at",
    "source",
    "line",
)
#: A failures file is the results' columns a re-run reads, and what says why.
FAILURE_COLUMNS = tuple(
    c for c in RESULT_COLUMNS if c not in ("verified", "pending_tags", "finished_at")
)
REJECT_COLUMNS = ("contact_id", "tags", "source", "line", "column", "reason", "error_type")


def marked(kind: OwnKind) -> pl.Expr:
    """The last column of each of bulktag's files: which one it is
    (:mod:`bulktag.read.ownfiles`)."""
    return pl.lit(mark(kind)).alias(MARK)


_FORMULA_START = r"^[=+\-@\t\r']"
_RETRYABLE_TYPES = [str(t) for t in FailureType if t.retryable]


def neutralise(column: pl.Expr) -> pl.Expr:
    """Prefix an apostrophe to text a spreadsheet would run as a formula."""
    return pl.when(column.str.contains(_FORMULA_START)).then(pl.lit("'") + column).otherwise(column)


def atomic_write(target: Path, write: Callable[[Path], object], *, mode: int = 0o600) -> None:
    """Write a temporary file beside ``target`` (``mode``, default 0600), fsync, rename."""
    if target.is_symlink():
        raise ConfigError(f"{target}: refusing to write through a symbolic link")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with guarded(target):  # a full disk or read-only folder names the file meant
        temporary.unlink(missing_ok=True)
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            write(temporary)
            temporary.chmod(mode)
            descriptor = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            temporary.replace(target)
        finally:
            temporary.unlink(missing_ok=True)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


#: Rows per slice when CSV and NDJSON outputs are written.
WRITE_ROWS = 100_000


def _joined_lists(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Tag lists as one comma-separated cell, as an input has them: a tag holding a
    separator (or wrapped in quotes itself) in double quotes, so it reads back as itself."""
    return frame.with_columns(
        pl.col(name).list.eval(quote_tag(pl.element())).list.join(",")
        for name, dtype in frame.collect_schema().items()
        if isinstance(dtype, pl.List)
    )


def _csv_cells(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Tag lists joined, and text a spreadsheet would run neutralised."""
    frame = _joined_lists(frame)
    return frame.with_columns(
        neutralise(pl.col(name)).alias(name)
        for name, dtype in frame.collect_schema().items()
        if dtype == pl.String
    )


def write_output(
    source: pl.LazyFrame,
    target: Path,
    fmt: OutputFormat,
    shape: Callable[[pl.LazyFrame], pl.LazyFrame] = lambda frame: frame,
    *,
    rows: int | None = None,
) -> None:
    """``shape(source)`` written atomically to ``target`` in ``fmt`` (text formats
    ``rows`` at a time, :data:`WRITE_ROWS` unless given).

    ``source`` is a scan of Parquet files. CSV, NDJSON and XLSX are written a slice
    of it at a time (:func:`bulktag.scan.slices`), ``shape`` applied to each: polars'
    streaming ``sink_csv`` ran ahead of the disk and held 340 MiB for 2.45M rows of
    results, and ``write_excel`` of a whole frame 6 GiB for a million. Parquet goes
    through ``sink_parquet``.
    """
    if fmt == "parquet":
        atomic_write(target, shape(source).sink_parquet)
    elif fmt == "xlsx":
        size = rows or WRITE_ROWS
        atomic_write(target, lambda path: _write_xlsx(source, path, shape, size))
    else:
        size = rows or WRITE_ROWS
        atomic_write(target, lambda path: _write_text(source, path, fmt, shape, size))


def _write_text(
    source: pl.LazyFrame,
    path: Path,
    fmt: OutputFormat,
    shape: Callable[[pl.LazyFrame], pl.LazyFrame],
    rows: int,
) -> None:
    def cells(frame: pl.LazyFrame) -> pl.DataFrame:
        frame = shape(frame)
        return (_csv_cells(frame) if fmt == "csv" else frame).collect()

    with path.open("wb") as handle:
        header = True
        for batch in slices(source, rows):
            if fmt == "csv":
                cells(batch.lazy()).write_csv(handle, include_header=header)
            else:
                cells(batch.lazy()).write_ndjson(handle)
            header = False
        if header and fmt == "csv":  # no rows: the header alone
            cells(source.head(0)).write_csv(handle)


#: Rows an XLSX sheet holds, its header's included.
XLSX_ROWS = 1_048_576


def _write_xlsx(
    source: pl.LazyFrame, path: Path, shape: Callable[[pl.LazyFrame], pl.LazyFrame], rows: int
) -> None:
    """One sheet, ``bulktag``, written row by row in xlsxwriter's constant-memory mode: a
    slice of ``source`` at a time, never the whole frame. Columns are as wide as the first
    slice's values (at most 60 characters)."""
    import xlsxwriter  # noqa: PLC0415  (only for XLSX output)

    options = {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
    }
    with xlsxwriter.Workbook(path, options) as workbook:
        sheet = workbook.add_worksheet("bulktag")
        bold = workbook.add_format({"bold": True})
        stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        at = 0

        def header(frame: pl.DataFrame) -> None:
            for column, name in enumerate(frame.columns):
                longest = frame.get_column(name).cast(pl.String).str.len_chars().max()
                width = max(len(name), int(longest or 0)) + 2  # type: ignore[arg-type]
                sheet.set_column(column, column, min(width, 60))
            sheet.write_row(0, 0, frame.columns, bold)

        for batch in slices(source, rows):
            frame = _joined_lists(shape(batch.lazy())).collect()
            if at == 0:
                header(frame)
                at = 1
            if at + frame.height > XLSX_ROWS:
                raise ValueError(f"{frame.height + at - 1:,} rows do not fit an XLSX sheet")
            for row in frame.iter_rows():
                for column, value in enumerate(row):
                    if value is None:
                        continue
                    if isinstance(value, datetime):
                        sheet.write_datetime(at, column, value.replace(tzinfo=None), stamp)
                    else:
                        sheet.write(at, column, value)
                at += 1
        if at == 0:  # no rows: the header alone
            header(_joined_lists(shape(source.head(0))).collect())


@dataclass(frozen=True, slots=True)
class Published:
    results: Path
    failures: Path
    rejects: Path
    counts: dict[str, int]  #: contacts by status
    failures_by_type: dict[str, int]
    skipped_by_reason: dict[str, int]
    applied: Path | None  #: Parquet of the ``contact_id, tag`` pairs this run applied
    #: Parquet of the pairs that failed for good: ``contact_id, tag, error_type, message``
    permanent: Path | None = None
    verified: int = 0  #: outcomes found ok by reading the contact after an ambiguous failure
    retryable_failures: int = 0  #: contacts failed with a retryable type (the failures file's)


def results_frame(
    plan: Plan,
    journal: Journal,
    work: Path,
    halt: Halt | None,
    halt_message: str,
    *,
    rows: int | None = None,
) -> pl.LazyFrame:
    """One row per planned contact, in plan order (written under ``work``, read lazily)."""
    unsent_status, unsent_type = (
        UNSENT[halt] if halt else (Status.NOT_ATTEMPTED, FailureType.NOT_ATTEMPTED)
    )
    tag_list = pl.List(pl.String)
    sent = pl.col("status").is_not_null()
    skipped = ~sent & (pl.col("send").list.len() == 0)
    unsent_message = halt_message or "run ended before this contact was sent"

    # matched by email: the address as given, after the contact's ID
    email = ("email",) if "email" in pl.read_parquet_schema(plan.path) else ()

    def shape(joined: pl.LazyFrame) -> pl.LazyFrame:
        return joined.select(
            "contact_id",
            *email,
            "tags",
            status=pl.when(sent)
            .then(pl.col("status"))
            .when(skipped)
            .then(pl.lit(str(Status.SKIPPED)))
            .otherwise(pl.lit(str(unsent_status))),
            error_type=pl.when(sent)
            .then(pl.col("error_type"))
            .when(~skipped)
            .then(pl.lit(str(unsent_type))),
            retryable=pl.when(sent)
            .then(pl.col("retryable").cast(pl.Boolean))
            .when(~skipped)
            .then(pl.lit(unsent_type.retryable)),
            http_status=pl.col("http_status"),
            error_code=pl.col("error_code"),
            message=pl.when(sent)
            .then(pl.col("message"))
            .when(skipped)
            .then(pl.col("skip_reason"))
            .otherwise(pl.lit(unsent_message)),
            attempts=pl.col("attempts").fill_null(0),
            request_id=pl.col("request_id"),
            verified=pl.col("verified").fill_null(0).cast(pl.Boolean),
            pending_tags=pl.when(sent)
            .then(pl.col("pending_tags").str.json_decode(tag_list))
            .otherwise(pl.col("send")),
            finished_at=pl.from_epoch((pl.col("finished_at") * 1000).cast(pl.Int64), time_unit="ms")
            .dt.replace_time_zone("UTC")
            .dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ"),
            source="source",
            line="line",
            send="send",
            skip_reason="skip_reason",
        )

    planned = pl.scan_parquet(plan.path).select(
        "seq", "contact_id", *email, "tags", "send", "skip_reason", "source", "line"
    )
    return sink_joined(planned, journal, OUTCOME_COLUMNS, shape, work / "results", rows=rows)


@dataclass(frozen=True, slots=True)
class OutputPaths:
    """Where a run's files go (its run folder names them)."""

    results: Path
    failures: Path
    rejects: Path


def publish(
    outputs: OutputPaths,
    plan: Plan,
    journal: Journal,
    *,
    halt: Halt | None,
    halt_message: str,
    fmt: OutputFormat,
    work: Path,
    carry_over: Path | None = None,
    applied: Path | None = None,
    permanent: Path | None = None,
    rows: int | None = None,
) -> Published:
    """Write results, failures and rejects to ``outputs``; summary.json is the caller's.

    With ``carry_over`` (a job's night), the contacts a re-run could finish (retryable
    failures, contacts not sent) are written there for the job's next run, or the file is
    removed; results and failures then list the contacts the night sent (``attempts >
    0``), the others counted (``Published.counts``): a backlog of millions, or an
    unchanged export, is not written out again every night.
    With ``applied``, the ``contact_id, tag`` pairs this run applied are written
    there (a job's ledger reads them back in batches: at 10M rows they are
    hundreds of MiB, so they never sit in memory whole); with ``permanent``, the pairs that
    failed for good (a job does not send them again). ``rows``: plan rows taken at a
    time (each stage's own size unless given).
    """
    final = results_frame(plan, journal, work, halt, halt_message, rows=rows)
    results_path, failures_path, rejects_path = outputs.results, outputs.failures, outputs.rejects
    email = [c for c in final.collect_schema().names() if c == "email"]  # matched by email
    # a job's night lists the contacts it sent: what it skipped is counted, what it could
    # not send counted and carried over (a backlog is not written again every night)
    listed = final if carry_over is None else final.filter(pl.col("attempts") > 0)
    write_output(
        listed,
        results_path,
        fmt,
        lambda frame: frame.select(
            "contact_id", *email, *RESULT_COLUMNS[1:], marked(OwnKind.RESULTS)
        ),
        rows=rows,
    )

    def failed(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.filter(~pl.col("status").is_in([str(Status.OK), str(Status.SKIPPED)])).select(
            pl.col("contact_id"),
            *email,
            pl.col("pending_tags").alias("tags"),
            *FAILURE_COLUMNS[2:],
            marked(OwnKind.FAILURES),
        )

    write_output(listed, failures_path, fmt, failed, rows=rows)
    if carry_over is not None:
        carried = (
            failed(final)
            .filter(pl.col("retryable"))
            .select("contact_id", "tags", marked(OwnKind.CARRY_OVER))
        )
        if carried.select(pl.len()).collect().item():
            atomic_write(carry_over, carried.sink_parquet)
        else:
            carry_over.unlink(missing_ok=True)
    write_output(pl.scan_parquet(plan.rejects_path), rejects_path, fmt, reject_rows, rows=rows)
    if applied is not None:
        final.filter(pl.col("attempts") > 0).select(
            "contact_id", "pending_tags", tag="send"
        ).explode("tag").filter(~pl.col("tag").is_in(pl.col("pending_tags"))).select(
            "contact_id", "tag"
        ).sink_parquet(applied)
    if permanent is not None:
        final.filter(
            (pl.col("status") == str(Status.FAILED)) & ~pl.col("retryable").fill_null(value=True)
        ).select("contact_id", "error_type", "message", tag="pending_tags").explode("tag").filter(
            pl.col("tag").is_not_null()
        ).select("contact_id", "tag", "error_type", pl.col("message").fill_null("")).sink_parquet(
            permanent
        )
    failed_again = (pl.col("status") == str(Status.FAILED)) & pl.col("retryable")
    by_status, by_type, by_skip, verified, retryable = pl.collect_all(
        [
            final.group_by("status").len(),
            final.filter(pl.col("error_type").is_not_null()).group_by("error_type").len(),
            final.filter(pl.col("skip_reason").is_not_null()).group_by("skip_reason").len(),
            final.select(pl.col("verified").sum()),
            final.select(failed_again.fill_null(value=False).sum()),
        ]
    )
    return Published(
        results_path,
        failures_path,
        rejects_path,
        counts={str(s): 0 for s in Status} | _counts(by_status, "status"),
        failures_by_type=_counts(by_type, "error_type"),
        skipped_by_reason=_counts(by_skip, "skip_reason"),
        applied=applied,
        permanent=permanent,
        verified=int(verified.item() or 0),
        retryable_failures=int(retryable.item() or 0),
    )


def reject_rows(rejects: pl.LazyFrame) -> pl.LazyFrame:
    """A plan's rejects as the rejects file has them: the error type a reason starts with
    (an address no contact has or several share, a row waiting for the directory), else
    ``invalid_input``."""
    reason, error_type = pl.col("reason"), pl.lit(str(FailureType.INVALID_INPUT))
    for told in (FailureType.UNKNOWN_EMAIL, FailureType.AMBIGUOUS_EMAIL, FailureType.RATE_LIMITED):
        error_type = (
            pl.when(reason.str.starts_with(told)).then(pl.lit(str(told))).otherwise(error_type)
        )
    return rejects.select(
        *REJECT_COLUMNS[:-1], error_type=error_type, **{MARK: pl.lit(mark(OwnKind.REJECTS))}
    )


def _counts(frame: pl.DataFrame, key: str) -> dict[str, int]:
    return dict(zip(frame[key].to_list(), frame["len"].to_list(), strict=True))


def write_json(target: Path, payload: dict[str, Any]) -> None:
    """``payload`` as UTF-8 JSON; a file name that is not text (bytes the file system's
    encoding could not decode, kept as surrogates) as JSON escapes, which read back as it."""
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(payload, indent=2, ensure_ascii=True) + "\n"
    atomic_write(target, lambda path: path.write_text(text, encoding="utf-8"))
