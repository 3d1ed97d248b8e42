"""Subtracting what is already done from a plan, before a single call is made.

The plan file carries ``send`` (the tags still to send, in order) and
``skip_reason`` (why some were left out): ``already_applied`` from the job's
ledger, ``failed_before`` for pairs that failed for good on an earlier night of the
job, ``already_tagged`` when the CRM itself said so (``--skip-existing``). A
contact whose ``send`` is empty is reported ``skipped`` and costs no call.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl

from bulktag.leadlex import MAX_TAGS_PER_REQUEST
from bulktag.scan import slices

__all__ = [
    "ALREADY_APPLIED",
    "ALREADY_TAGGED",
    "FAILED_BEFORE",
    "requests_to_send",
    "skip_found",
    "skip_pairs",
    "skipped_contacts",
    "start_plan",
]

ALREADY_APPLIED = "already_applied"
ALREADY_TAGGED = "already_tagged"
FAILED_BEFORE = "failed_before"


def start_plan(raw: Path, target: Path) -> None:
    """The grouped plan with ``send`` = every tag and no skip reason."""
    pl.scan_parquet(raw).with_columns(
        send=pl.col("tags"), skip_reason=pl.lit(None, dtype=pl.String)
    ).sink_parquet(target)


def _less(current: pl.LazyFrame, pairs: pl.LazyFrame, reason: str) -> pl.LazyFrame:
    """``current`` (plan rows) less ``pairs`` (``contact_id, tag``), each contact that lost
    a tag given ``reason`` (unless it had one)."""
    done = pairs.select("contact_id", "tag").unique().with_columns(done=pl.lit(True))
    remaining = (
        current.select("seq", "contact_id", pl.col("send").alias("tag"))
        .explode("tag")
        .filter(pl.col("tag").is_not_null())
        .join(done, on=["contact_id", "tag"], how="left", maintain_order="left")
        .group_by("seq", maintain_order=True)
        .agg(
            kept=pl.col("tag").filter(pl.col("done").is_null()),
            removed=pl.col("done").is_not_null().sum(),
        )
    )
    return current.join(remaining, on="seq", how="left", maintain_order="left").select(
        pl.exclude("kept", "removed", "send", "skip_reason"),
        send=pl.col("kept").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        skip_reason=pl.when(pl.col("removed").fill_null(0) > 0)
        .then(pl.coalesce("skip_reason", pl.lit(reason)))
        .otherwise(pl.col("skip_reason")),
    )


#: Given a slice's contacts, the (``contact_id, tag``) pairs of theirs already done.
Lookup = Callable[[pl.Series], pl.DataFrame]


def skip_found(
    plan: Path, target: Path, lookup: Lookup, reason: str, *, rows: int = 25_000
) -> None:
    """Write ``plan`` less the pairs ``lookup`` finds for its contacts to ``target``, a
    slice of ``rows`` contacts at a time: a job's ledger is asked about the plan's
    contacts only, never read whole (a 20M-pair ledger held 5.6 GiB that way)."""
    parts = target.with_name(f"{target.stem}.parts")
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    written: list[Path] = []
    for batch in slices(pl.scan_parquet(plan), rows):
        found = lookup(batch.filter(pl.col("send").list.len() > 0)["contact_id"])
        part = parts / f"{len(written):06d}.parquet"
        _less(batch.lazy(), found.lazy(), reason).sink_parquet(part)
        written.append(part)
    source = pl.scan_parquet(written) if written else pl.scan_parquet(plan)
    source.sink_parquet(target)
    shutil.rmtree(parts, ignore_errors=True)


def skip_pairs(plan: Path, target: Path, pairs: pl.DataFrame, reason: str) -> int:
    """Write ``plan`` less ``pairs`` (``contact_id, tag``) to ``target``; returns pairs removed."""
    _less(pl.scan_parquet(plan), pairs.lazy(), reason).sink_parquet(target)
    removed = pl.scan_parquet(target).select(pl.col("send").list.len().sum()).collect().item()
    before = pl.scan_parquet(plan).select(pl.col("send").list.len().sum()).collect().item()
    return int((before or 0) - (removed or 0))


def requests_to_send(plan: Path) -> int:
    """Add-tags requests the plan still needs (more than 100 tags: several requests)."""
    total = (
        pl.scan_parquet(plan)
        .select((pl.col("send").list.len() / MAX_TAGS_PER_REQUEST).ceil().sum())
        .collect()
        .item()
    )
    return int(total or 0)


def to_send(plan: Path) -> tuple[int, int, int]:
    """What the plan still sends: contacts, tags, add-tags requests."""
    contacts, tags, requests = (
        pl.scan_parquet(plan)
        .select(
            contacts=(pl.col("send").list.len() > 0).sum(),
            tags=pl.col("send").list.len().sum(),
            requests=(pl.col("send").list.len() / MAX_TAGS_PER_REQUEST).ceil().sum(),
        )
        .collect()
        .row(0)
    )
    return int(contacts or 0), int(tags or 0), int(requests or 0)


def skipped_contacts(plan: Path) -> dict[str, int]:
    """Contacts the plan sends nothing, by why (``skip_reason``)."""
    counts = (
        pl.scan_parquet(plan)
        .filter((pl.col("send").list.len() == 0) & pl.col("skip_reason").is_not_null())
        .group_by("skip_reason")
        .len()
        .sort("skip_reason")
        .collect()
    )
    return dict(zip(counts["skip_reason"].to_list(), counts["len"].to_list(), strict=True))
