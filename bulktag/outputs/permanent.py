"""The job's list of pairs that failed for good, for a person: `permanent-failures.csv` in
the job's folder."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bulktag.outcomes import Status
from bulktag.outputs.publish import marked, write_output
from bulktag.read.ownfiles import OwnKind
from bulktag.state.job import JobState

__all__ = ["PERMANENT_FAILURES", "write_permanent_failures"]


#: In a job's folder: the pairs that failed for good, which the job no longer sends.
PERMANENT_FAILURES = "permanent-failures.csv"


def write_permanent_failures(state: JobState, folder: Path) -> None:
    """``permanent-failures.csv`` in the job's folder, for a person: one row per contact
    whose tags failed for good (a failures file: ``bulktag run FILE --retry-permanent``
    sends them again); removed when there are none."""
    target = folder / PERMANENT_FAILURES
    if not state.failed_count():
        target.unlink(missing_ok=True)
        return
    rows = (
        pl.concat(list(state.failed()))
        .lazy()
        .group_by("contact_id", "error_type", "message", maintain_order=True)
        .agg(tags="tag", failed_at=pl.col("failed_at").max(), run_id=pl.col("run_id").last())
        .select(
            "contact_id",
            "tags",
            status=pl.lit(str(Status.FAILED)),
            error_type="error_type",
            retryable=pl.lit(value=False),
            message="message",
            failed_at=pl.from_epoch((pl.col("failed_at") * 1000).cast(pl.Int64), time_unit="ms")
            .dt.replace_time_zone("UTC")
            .dt.to_string("%Y-%m-%dT%H:%M:%SZ"),
            run_id="run_id",
        )
        .with_columns(marked(OwnKind.FAILURES))
    )
    write_output(rows, target, "csv")
