"""What the dispatcher takes and gives back: a planned contact, the idempotency key of each
of its requests, and a session's statistics."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bulktag.outcomes import ContactOutcome, Halt
from bulktag.send.limiter import (
    LimiterStatistics,
)
from bulktag.send.timeline import TimelineMinute

__all__ = ["DispatchStatistics", "PlannedContact", "Record", "idempotency_key"]


Record = Callable[[ContactOutcome], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PlannedContact:
    seq: int
    contact_id: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DispatchStatistics:
    """A snapshot of the dispatcher, for the summary."""

    calls: int  #: add-tags HTTP attempts made
    other_calls: dict[str, int]  #: other calls by endpoint (export, get_contact, list_contacts)
    halt: Halt | None
    halt_message: str
    quota_remaining: int | None
    quota_limit: int | None
    quota_reset: int | None
    limiter: LimiterStatistics
    #: attempts per minute of the session (only minutes with a call), for the report
    timeline: tuple[TimelineMinute, ...] = ()
    timeline_started: float | None = None  #: Unix time of the timeline's minute 0
    #: FINE_BUCKET-second buckets of a session that ended within FINE_SPAN seconds
    timeline_fine: tuple[TimelineMinute, ...] | None = None
    #: the quota left before the session: the first answer's X-RateLimit-Remaining, plus
    #: the call it answered (the first call goes alone)
    quota_before: int | None = None


def idempotency_key(
    run_id: str, contact_id: str, chunk: int, tags: tuple[str, ...] | list[str]
) -> str:
    """Stable per (run, contact, chunk): a retry, or a resumed run, is recognised."""
    digest = hashlib.sha256("\x1f".join([run_id, contact_id, str(chunk), *tags]).encode())
    return f"bulktag-{digest.hexdigest()[:40]}"
