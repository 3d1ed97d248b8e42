"""Calls per minute over a dispatch session: what the report's rate chart is drawn from.

The dispatcher counts every HTTP attempt in the bucket of the minute it was made in,
counted from the session's start on the injected clock: four parallel lists of
integers (calls, 429s, retries, other failures), grown by one entry per minute of the
session. Memory is O(minutes), never O(calls), and the hot path is one subtraction,
one floor division and a few list increments (``bench/overhead.py`` measures dispatch
overhead per call).

:class:`Timeline` is the mutable counter the dispatcher owns; :meth:`Timeline.snapshot`
gives the frozen :class:`TimelineMinute` tuple that :class:`~bulktag.send.dispatch.
DispatchStatistics` carries, and :func:`timeline_json` the ``timeline`` key of
``summary.json``: only minutes with a call are listed (a long pause costs no entry),
each with its offset from ``started_at``.

A session that ends within its first three minutes would be one or three points a
minute apart: the first :data:`FINE_SPAN` seconds are also counted in buckets of
:data:`FINE_BUCKET` seconds (36 more integers per list, whatever the session's length),
and ``timeline_json`` gives them as ``fine`` when the session's calls all fall there.
Each bucket also keeps the lowest rate the limiter allowed in it (``rate``, calls a
minute: lowered by 429s), so the report draws the limit as LeadLex allowed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["FINE_BUCKET", "FINE_SPAN", "MINUTE", "Timeline", "TimelineMinute", "timeline_json"]

MINUTE = 60.0
#: The first FINE_SPAN seconds of a session are also counted in FINE_BUCKET-second buckets.
FINE_SPAN, FINE_BUCKET = 180.0, 5.0


@dataclass(frozen=True, slots=True)
class TimelineMinute:
    """The attempts of one bucket of a session (``minute``: its index from the start,
    0-based; a bucket is a minute, or FINE_BUCKET seconds in the fine view)."""

    minute: int
    calls: int  #: HTTP attempts made (every endpoint, retries included)
    rate_limited: int  #: of which answered 429 (per-minute limit, or the daily quota)
    retries: int  #: of which were a second or later attempt of a request
    failed: int  #: of which failed otherwise (5xx, network, timeout, 4xx...)
    #: of which LeadLex does not count against the quota, 429s aside: 5xx, no answer
    uncounted: int = 0
    rate: float | None = None  #: the lowest rate (a minute) the limiter allowed in it


class _Buckets:
    """Parallel lists of counts, one entry per bucket of ``width`` seconds."""

    __slots__ = ("calls", "failed", "limited", "rate", "retries", "uncounted", "width")

    def __init__(self, width: float) -> None:
        self.width = width
        self.calls: list[int] = []
        self.limited: list[int] = []
        self.retries: list[int] = []
        self.failed: list[int] = []
        self.uncounted: list[int] = []
        self.rate: list[float | None] = []

    def count(
        self,
        index: int,
        *,
        retry: bool,
        limited: bool,
        failed: bool,
        uncounted: bool,
        rate: float | None,
    ) -> None:
        calls = self.calls
        if index >= len(calls):
            grow = index + 1 - len(calls)
            for column in (calls, self.limited, self.retries, self.failed, self.uncounted):
                column.extend([0] * grow)
            self.rate.extend([None] * grow)
        calls[index] += 1
        if retry:
            self.retries[index] += 1
        if limited:
            self.limited[index] += 1
        elif failed:
            self.failed[index] += 1
            if uncounted:
                self.uncounted[index] += 1
        if rate is not None:
            held = self.rate[index]
            self.rate[index] = rate if held is None else min(held, rate)

    def snapshot(self) -> tuple[TimelineMinute, ...]:
        rows = zip(
            self.calls,
            self.limited,
            self.retries,
            self.failed,
            self.uncounted,
            self.rate,
            strict=True,
        )
        return tuple(
            TimelineMinute(index, calls, limited, retries, failed, uncounted, rate)
            for index, (calls, limited, retries, failed, uncounted, rate) in enumerate(rows)
            if calls
        )


class Timeline:
    """Per-minute counts of a session's attempts (and per FINE_BUCKET seconds of its
    first FINE_SPAN); see the module docstring."""

    __slots__ = ("_fine", "_minutes", "_origin", "last", "started_at")

    def __init__(self, origin: float, started_at: float) -> None:
        self._origin = origin  #: the monotonic clock's value at minute 0
        self.started_at = started_at  #: the wall clock's value at minute 0 (Unix time)
        self._minutes = _Buckets(MINUTE)
        self._fine = _Buckets(FINE_BUCKET)
        self.last = 0.0  #: seconds from the start to the last attempt

    def count(
        self,
        now: float,
        *,
        retry: bool,
        limited: bool,
        failed: bool,
        uncounted: bool = False,
        rate: float | None = None,
    ) -> None:
        """One attempt, answered at monotonic time ``now`` while the limiter allowed
        ``rate`` calls a minute; ``uncounted``: an error LeadLex does not count (5xx, no
        answer)."""
        offset = max(now - self._origin, 0.0)
        self.last = max(self.last, offset)
        for buckets in (self._minutes, self._fine) if offset < FINE_SPAN else (self._minutes,):
            buckets.count(
                int(offset // buckets.width),
                retry=retry,
                limited=limited,
                failed=failed,
                uncounted=uncounted,
                rate=rate,
            )

    def snapshot(self) -> tuple[TimelineMinute, ...]:
        """The minutes with at least one call, in order."""
        return self._minutes.snapshot()

    def fine(self) -> tuple[TimelineMinute, ...] | None:
        """The FINE_BUCKET-second buckets with a call, when every call fell in the first
        FINE_SPAN seconds; else None."""
        if not self._minutes.calls or self.last >= FINE_SPAN:
            return None
        return self._fine.snapshot()


def _bucket_json(m: TimelineMinute, key: str) -> dict[str, Any]:
    return {
        key: m.minute,
        "calls": m.calls,
        "rate_limited": m.rate_limited,
        "retries": m.retries,
        "failed": m.failed,
        "uncounted": m.uncounted,
        "rate": m.rate,
    }


def timeline_json(
    started_at: float | None,
    minutes: tuple[TimelineMinute, ...],
    rate_per_minute: float | None,
    final_rate: float | None = None,
    fine: tuple[TimelineMinute, ...] | None = None,
) -> dict[str, Any] | None:
    """The ``timeline`` key of summary.json (None when nothing was sent). ``fine``: the
    FINE_BUCKET-second buckets of a short session (their ``bucket`` is an index)."""
    if started_at is None:
        return None
    found: dict[str, Any] = {
        "started_at": datetime.fromtimestamp(started_at, UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "bucket_seconds": int(MINUTE),
        "rate_per_minute": rate_per_minute,
        "final_rate_per_minute": final_rate,
        "minutes": [_bucket_json(m, "minute") for m in minutes],
    }
    if fine:
        found["fine"] = {
            "bucket_seconds": int(FINE_BUCKET),
            "buckets": [_bucket_json(m, "bucket") for m in fine],
        }
    return found
