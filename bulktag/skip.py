"""Subtracting what is already done from a plan, before a single call is made.

The plan file gains two columns: ``send`` (the tags still to send, in order) and
``skip_reason`` (why tags were left out: ``already_applied`` from the job's
ledger). A contact whose ``send`` is empty is reported ``skipped`` and costs no
call.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

__all__ = ["ALREADY_APPLIED", "finalise_plan"]

ALREADY_APPLIED = "already_applied"
_PAIRS = {"contact_id": pl.String, "tag": pl.String}


def finalise_plan(
    plan_path: Path,
    target: Path,
    applied: Iterable[pl.DataFrame] = (),
    reason: str = ALREADY_APPLIED,
) -> int:
    """Write the plan with ``send`` and ``skip_reason`` to ``target``; returns pairs skipped.

    ``applied`` holds frames with ``contact_id, tag`` columns: pairs not to send.
    """
    done = [frame.select(_PAIRS.keys()) for frame in applied]
    plan = pl.scan_parquet(plan_path)
    if not done:
        plan.with_columns(
            send=pl.col("tags"), skip_reason=pl.lit(None, dtype=pl.String)
        ).sink_parquet(target)
        return 0
    skipped = pl.concat(done).lazy().unique().with_columns(applied=pl.lit(True))
    pairs = (
        plan.select("seq", "contact_id", pl.col("tags").alias("tag"))
        .explode("tag")
        .join(skipped, on=["contact_id", "tag"], how="left", maintain_order="left")
        .group_by("seq", maintain_order=True)
        .agg(
            send=pl.col("tag").filter(pl.col("applied").is_null()),
            skipped=pl.col("applied").is_not_null().sum(),
        )
    )
    final = plan.join(pairs, on="seq", how="left", maintain_order="left").with_columns(
        skip_reason=pl.when(pl.col("skipped") > 0).then(pl.lit(reason))
    )
    final.drop("skipped").sink_parquet(target)
    return int(
        pl.scan_parquet(target)
        .select((pl.col("tags").list.len() - pl.col("send").list.len()).sum())
        .collect()
        .item()
        or 0
    )
