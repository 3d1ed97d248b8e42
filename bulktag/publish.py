"""Publishing a run: results, failures and rejects in the input's format, and summary.json.

Every file is written atomically (a 0600 temporary file beside it, fsync,
rename): a reader sees the old file or the new one, never half of one. The
results have one row per planned contact, in plan order: what the journal
recorded, and for contacts never sent, the status of the halt that stopped the
run. The failures file has the same ``contact_id, tags`` columns as an input,
with only the tags still to apply, so ``bulktag run failures.csv`` re-sends
exactly those.

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
from pathlib import Path
from typing import Any

import polars as pl

from bulktag.config import OutputFormat
from bulktag.dispatch import UNSENT, Halt
from bulktag.errors import ConfigError
from bulktag.journal import Journal
from bulktag.outcomes import FailureType, Status
from bulktag.plan import Plan

__all__ = ["Published", "atomic_write", "neutralise", "publish"]

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
FAILURE_COLUMNS = (
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
    "source",
    "line",
)
REJECT_COLUMNS = ("contact_id", "tags", "source", "line", "column", "reason", "error_type")
_RECORDED_SCHEMA: dict[str, Any] = {
    "seq": pl.Int64,
    "contact_id": pl.String,
    "tags": pl.String,
    "pending_tags": pl.String,
    "status": pl.String,
    "error_type": pl.String,
    "retryable": pl.Int64,
    "http_status": pl.Int64,
    "error_code": pl.String,
    "message": pl.String,
    "attempts": pl.Int64,
    "request_id": pl.String,
    "verified": pl.Int64,
    "finished_at": pl.Float64,
    "source": pl.String,
    "line": pl.Int64,
}
_FORMULA_START = r"^[=+\-@\t\r']"
EXTENSIONS: dict[str, str] = {
    "csv": "csv",
    "parquet": "parquet",
    "xlsx": "xlsx",
    "ndjson": "ndjson",
}
_RETRYABLE_TYPES = [str(t) for t in FailureType if t.retryable]


def neutralise(column: pl.Expr) -> pl.Expr:
    """Prefix an apostrophe to text a spreadsheet would run as a formula."""
    return pl.when(column.str.contains(_FORMULA_START)).then(pl.lit("'") + column).otherwise(column)


def atomic_write(target: Path, write: Callable[[Path], object], *, mode: int = 0o600) -> None:
    """Write a temporary file beside ``target`` (``mode``, default 0600), fsync, rename."""
    if target.is_symlink():
        raise ConfigError(f"{target}: refusing to write through a symbolic link")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
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


def _write(frame: pl.LazyFrame, target: Path, fmt: OutputFormat) -> None:
    if fmt in ("csv", "xlsx"):
        frame = frame.with_columns(
            pl.col(name).list.join(",")
            for name, dtype in frame.collect_schema().items()
            if isinstance(dtype, pl.List)
        )
    if fmt == "csv":
        text = [n for n, d in frame.collect_schema().items() if d == pl.String]
        frame = frame.with_columns(neutralise(pl.col(n)).alias(n) for n in text)
        atomic_write(target, frame.sink_csv)
    elif fmt == "parquet":
        atomic_write(target, frame.sink_parquet)
    elif fmt == "ndjson":
        atomic_write(target, frame.sink_ndjson)
    else:
        atomic_write(target, lambda path: _write_xlsx(frame.collect(), path))


def _write_xlsx(frame: pl.DataFrame, path: Path) -> None:
    import xlsxwriter  # noqa: PLC0415  (only for XLSX output)

    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    with xlsxwriter.Workbook(path, options) as workbook:
        frame.write_excel(workbook, worksheet="bulktag", autofit=True)


@dataclass(frozen=True, slots=True)
class Published:
    results: Path
    failures: Path
    rejects: Path
    counts: dict[str, int]  #: contacts by status
    failures_by_type: dict[str, int]
    skipped_by_reason: dict[str, int]
    applied: pl.DataFrame | None  #: ``contact_id, tag`` pairs this run applied
    verified: int = 0  #: outcomes found ok by reading the contact after an ambiguous failure


def _recorded(journal: Journal, work: Path) -> pl.LazyFrame:
    work.mkdir(parents=True, exist_ok=True)
    parts = []
    for index, rows in enumerate(journal.rows()):
        part = work / f"outcomes-{index}.parquet"
        pl.DataFrame(rows, schema=_RECORDED_SCHEMA, orient="row").write_parquet(part)
        parts.append(part)
    if not parts:
        return pl.LazyFrame(schema=_RECORDED_SCHEMA)
    return pl.scan_parquet(parts)


def results_frame(
    plan: Plan, journal: Journal, work: Path, halt: Halt | None, halt_message: str
) -> pl.LazyFrame:
    """One row per planned contact, in plan order."""
    unsent_status, unsent_type = (
        UNSENT[halt] if halt else (Status.NOT_ATTEMPTED, FailureType.NOT_ATTEMPTED)
    )
    recorded = _recorded(journal, work).drop("contact_id", "tags", "source", "line")
    tag_list = pl.List(pl.String)
    sent = pl.col("status").is_not_null()
    skipped = ~sent & (pl.col("send").list.len() == 0)
    unsent_message = halt_message or "run ended before this contact was sent"
    return (
        pl.scan_parquet(plan.path)
        .select("seq", "contact_id", "tags", "send", "skip_reason", "source", "line")
        .join(recorded, on="seq", how="left", maintain_order="left")
        .select(
            "contact_id",
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
    )


def publish(
    run_dir: Path,
    plan: Plan,
    journal: Journal,
    *,
    halt: Halt | None,
    halt_message: str,
    fmt: OutputFormat,
    work: Path,
    carry_over: Path | None = None,
) -> Published:
    """Write results, failures and rejects into ``run_dir``; summary.json is the caller's.

    With ``carry_over``, the contacts a re-run could finish (every failure that is
    retryable) are written there for the job's next run, or the file is removed.
    """
    extension = EXTENSIONS[fmt]
    cached = work / "results.parquet"
    results_frame(plan, journal, work, halt, halt_message).sink_parquet(cached)
    final = pl.scan_parquet(cached)
    results_path = run_dir / f"results.{extension}"
    failures_path = run_dir / f"failures.{extension}"
    rejects_path = run_dir / f"rejects.{extension}"
    _write(final.select(RESULT_COLUMNS), results_path, fmt)
    failures = final.filter(~pl.col("status").is_in([str(Status.OK), str(Status.SKIPPED)])).select(
        pl.col("contact_id"), pl.col("pending_tags").alias("tags"), *FAILURE_COLUMNS[2:]
    )
    _write(failures, failures_path, fmt)
    if carry_over is not None:
        carried = failures.filter(pl.col("retryable")).select("contact_id", "tags")
        if carried.select(pl.len()).collect().item():
            atomic_write(carry_over, carried.sink_parquet)
        else:
            carry_over.unlink(missing_ok=True)
    rejects = pl.scan_parquet(plan.rejects_path).with_columns(
        error_type=pl.lit(str(FailureType.INVALID_INPUT))
    )
    _write(rejects.select(REJECT_COLUMNS), rejects_path, fmt)
    by_status, by_type, by_skip, applied, verified = pl.collect_all(
        [
            final.group_by("status").len(),
            final.filter(pl.col("error_type").is_not_null()).group_by("error_type").len(),
            final.filter(pl.col("skip_reason").is_not_null()).group_by("skip_reason").len(),
            final.filter(pl.col("attempts") > 0)
            .select("contact_id", "pending_tags", tag="send")
            .explode("tag")
            .filter(~pl.col("tag").is_in(pl.col("pending_tags")))
            .select("contact_id", "tag"),
            final.select(pl.col("verified").sum()),
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
        verified=int(verified.item() or 0),
    )


def _counts(frame: pl.DataFrame, key: str) -> dict[str, int]:
    return dict(zip(frame[key].to_list(), frame["len"].to_list(), strict=True))


def write_json(target: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    atomic_write(target, lambda path: path.write_text(text, encoding="utf-8"))
