"""Reading the workspace through ``GET /v1/contacts/export``, page after page.

One export returns at most 50,000 contacts; past that, the next page is the contacts
created after the last one read (``created_after``). LeadLex documents the windows, not
the order of the rows: the emulator returns them in creation order (docs/emulator.md),
and a page that is not in that order stops the paging rather than be trusted. Pages
overlap by a second at their edge; rows are de-duplicated by ``id``.

The hourly export limit (LeadLex documents 10 calls an hour; a workspace's may differ,
and no answer says it) answers 429 with a Retry-After. The pre-check gives up on it (an
optimisation never holds a run up); the directory of contacts by email
(:mod:`bulktag.send.directory`) waits for any Retry-After an export is answered with,
however short, within ``--max-wait`` in all.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import polars as pl

from bulktag.leadlex import EXPORT_MAX_LIMIT
from bulktag.outcomes import Attempt, FailureType

__all__ = ["Paging", "Reads", "export_limit", "paged_export", "why_export_failed"]


class Reads(Protocol):
    """The reads an export user makes, each under the run's limits; None once halted."""

    async def export(
        self, params: Sequence[tuple[str, str]]
    ) -> tuple[Attempt, str | None] | None: ...

    async def count_contacts(self) -> tuple[Attempt, int | None] | None: ...


#: Waits for the hourly export limit: ``await wait(seconds)``.
Wait = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Paging:
    """What paging exports cost, and why it stopped short (None: it did not)."""

    calls: int = 0
    #: the calls LeadLex counts against the day: its answers, 2xx and 4xx but 429 (the
    #: API's docs, Part B); ``refused``: the 429s (the hourly limit's), counted apart
    counted: int = 0
    refused: int = 0
    warning: str | None = None
    #: The hourly limit stopped the paging: a wait longer than allowed was asked.
    limited: bool = False
    waited: float = 0.0  #: seconds waited for the hourly limit
    #: Where the paging stopped by the limit would go on (``created_after``; None: from
    #: the start), and the rows read before it (what a job keeps for its next run).
    after: str | None = None
    partial: pl.DataFrame | None = None


def export_limit(endpoint: str, attempt: Attempt) -> bool:
    """A 429 on an export asking to wait more than a minute is the hourly export limit."""
    return (
        endpoint == "export"
        and attempt.failure is FailureType.RATE_LIMITED
        and (attempt.retry_after or 0) > 60
    )


def why_export_failed(attempt: Attempt) -> str:
    if attempt.failure is FailureType.INSUFFICIENT_PERMISSIONS:
        return "the key lacks Read permission, which the export needs"
    if attempt.failure is FailureType.RATE_LIMITED:
        if attempt.quota is not None and attempt.quota.remaining == 0:
            return "LeadLex's daily quota is spent"
        after = attempt.retry_after
        return "LeadLex's export limit is reached" + (
            "" if after is None else f" (it asked to wait {after:.0f} s)"
        )
    return f"an export failed ({attempt.failure}: {attempt.message})"


def _counted(attempt: Attempt) -> bool:
    """Whether LeadLex counts the call against the day: it answered, 2xx or 4xx but 429."""
    status = attempt.http_status
    return status is not None and (200 <= status < 300 or (400 <= status < 500 and status != 429))


def _before(value: str) -> str:
    """One second before ``value``: pages overlap at their edge, rows are de-duplicated."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")


def _in_order(page: pl.DataFrame) -> bool:
    created = page["created_at"].str.to_datetime(time_zone="UTC", strict=False)
    return created.null_count() == 0 and bool(created.is_sorted())


async def paged_export(
    reads: Reads,
    params: Sequence[tuple[str, str]],
    fields: str,
    paging: Paging,
    *,
    wait: Wait | None = None,
    max_wait: float = 0.0,
    after: str | None = None,
) -> pl.DataFrame | None:
    """Every row of one export (``fields`` holds ``id`` and ``created_at``), page after
    page, from ``after`` on (a ``created_after``; None: from the start); None when a call
    fails or the paging cannot go on (``paging.warning`` says why; stopped by the hourly
    limit, ``paging.after`` and ``paging.partial`` say where and what was read).

    ``wait``: how to wait for the hourly limit (a Retry-After of at most ``max_wait``
    seconds, in all); None gives up on it at once."""
    frames: list[pl.DataFrame] = []
    while True:
        query = [*params, ("fields", fields), ("limit", str(EXPORT_MAX_LIMIT))]
        if after is not None:
            query.append(("created_after", after))
        answer = await reads.export(query)
        paging.calls += 1
        if answer is None:
            paging.warning = "the run stopped while reading the exports"
            return None
        attempt, text = answer
        paging.counted += _counted(attempt)
        paging.refused += attempt.http_status == 429
        limited = attempt.failure is FailureType.RATE_LIMITED and attempt.retry_after is not None
        if limited and wait is not None:  # however short: a minute's limit or the hour's
            pause = float(attempt.retry_after or 0)
            if paging.waited + pause <= max_wait:
                paging.waited += pause
                await wait(pause)
                continue
            paging.limited, paging.after = True, after
            paging.partial = _rows(frames)
        if not attempt.ok or text is None:
            paging.warning = why_export_failed(attempt)
            return None
        page = pl.read_csv(io.StringIO(text), infer_schema=False)
        if page.height > 1 and not _in_order(page):
            paging.warning = (
                "an export page is not in creation order, so paging by creation date "
                "cannot be trusted"
            )
            return None
        frames.append(page)
        if page.height < EXPORT_MAX_LIMIT:
            break
        last = page["created_at"][-1]
        if after is not None and _before(last) <= after:
            paging.warning = (
                "an export page did not move forward (50,000 contacts created in one second)"
            )
            return None
        after = _before(last)
    return _rows(frames)


def _rows(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The pages' rows, each contact once (pages overlap by a second)."""
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames).unique(subset="id", keep="first", maintain_order=True)
