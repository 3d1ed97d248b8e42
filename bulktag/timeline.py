"""Calls per minute over a dispatch session: what the report's rate chart is drawn from.

The dispatcher counts every HTTP attempt in the bucket of the minute it was made in,
counted from the session's start on the injected clock: four parallel lists of
integers (calls, 429s, retries, other failures), grown by one entry per minute of the
session. Memory is O(minutes), never O(calls), and the hot path is one subtraction,
one floor division and a few list increments (``bench/overhead.py`` measures dispatch
overhead per call).

:class:`Timeline` is the mutable counter the dispatcher owns; :meth:`Timeline.snapshot`
gives the frozen :class:`TimelineMinute` tuple that :class:`~bulktag.dispatch.
DispatchStatistics` carries, and :func:`timeline_json` the ``timeline`` key of
``summary.json``: only minutes with a call are listed (a long pause costs no entry),
each with its offset from ``started_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["MINUTE", "Timeline", "TimelineMinute", "timeline_json"]

MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class TimelineMinute:
    """The attempts of one minute of a session (``minute`` from its start, 0-based)."""

    minute: int
    calls: int  #: HTTP attempts made (every endpoint, retries included)
    rate_limited: int  #: of which answered 429 (per-minute limit, or the daily quota)
    retries: int  #: of which were a second or later attempt of a request
    failed: int  #: of which failed otherwise (5xx, network, timeout, 4xx...)


class Timeline:
    """Per-minute counts of a session's attempts; see the module docstring."""

    __slots__ = ("_calls", "_failed", "_limited", "_origin", "_retries", "started_at")

    def __init__(self, origin: float, started_at: float) -> None:
        self._origin = origin  #: the monotonic clock's value at minute 0
        self.started_at = started_at  #: the wall clock's value at minute 0 (Unix time)
        self._calls: list[int] = []
        self._limited: list[int] = []
        self._retries: list[int] = []
        self._failed: list[int] = []

    def count(self, now: float, *, retry: bool, limited: bool, failed: bool) -> None:
        """One attempt, answered at monotonic time ``now``."""
        index = int((now - self._origin) // MINUTE)
        index = max(index, 0)
        calls = self._calls
        if index >= len(calls):
            grow = index + 1 - len(calls)
            calls.extend([0] * grow)
            self._limited.extend([0] * grow)
            self._retries.extend([0] * grow)
            self._failed.extend([0] * grow)
        calls[index] += 1
        if retry:
            self._retries[index] += 1
        if limited:
            self._limited[index] += 1
        elif failed:
            self._failed[index] += 1

    def snapshot(self) -> tuple[TimelineMinute, ...]:
        """The minutes with at least one call, in order."""
        return tuple(
            TimelineMinute(minute, calls, limited, retries, failed)
            for minute, (calls, limited, retries, failed) in enumerate(
                zip(self._calls, self._limited, self._retries, self._failed, strict=True)
            )
            if calls
        )


def timeline_json(
    started_at: float | None,
    minutes: tuple[TimelineMinute, ...],
    rate_per_minute: float | None,
    final_rate: float | None = None,
) -> dict[str, Any] | None:
    """The ``timeline`` key of summary.json (None when nothing was sent)."""
    if started_at is None:
        return None
    return {
        "started_at": datetime.fromtimestamp(started_at, UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "bucket_seconds": int(MINUTE),
        "rate_per_minute": rate_per_minute,
        "final_rate_per_minute": final_rate,
        "minutes": [
            {
                "minute": m.minute,
                "calls": m.calls,
                "rate_limited": m.rate_limited,
                "retries": m.retries,
                "failed": m.failed,
            }
            for m in minutes
        ],
    }
