"""Time, injected: the limiter, backoff and quota logic never read a clock of their own.

:class:`LoopClock` is the running event loop's time: real under asyncio, and
virtual under trio with ``trio.testing.MockClock(autojump_threshold=0)``, where
a whole run's waits take no real time and tests can assert exact schedules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio

__all__ = [
    "Clock",
    "LoopClock",
    "SourceClock",
    "iso_utc",
    "next_utc_midnight",
    "utc_day",
    "utc_minute",
]


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds, for scheduling."""
        ...

    def wall(self) -> float:
        """Unix seconds (UTC), for quota days and timestamps."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The event loop's clock.

    ``epoch`` pins the wall time at loop time 0 (tests with a virtual clock);
    outside an event loop, such a clock reads the last loop time it saw.
    """

    def __init__(self, epoch: float | None = None) -> None:
        self._epoch = epoch
        self._last = 0.0

    def now(self) -> float:
        try:
            self._last = anyio.current_time()
        except anyio.NoEventLoopError:
            return self._last if self._epoch is not None else time.monotonic()
        return self._last

    def wall(self) -> float:
        if self._epoch is not None:
            return self._epoch + self.now()
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return f"LoopClock(epoch={self._epoch!r})"


class SourceClock:
    """Time read from ``source`` (e.g. trio's ``MockClock.current_time``), in and out of a loop.

    For tests and benchmarks on virtual time: ``now`` is the source, ``wall`` is
    ``epoch`` plus it, and ``sleep`` is the event loop's (virtual under MockClock).
    """

    def __init__(self, source: Callable[[], float], epoch: float) -> None:
        self._source = source
        self._epoch = epoch

    def now(self) -> float:
        return float(self._source())

    def wall(self) -> float:
        return self._epoch + self.now()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


def utc_day(unix: float) -> str:
    """The UTC date of ``unix`` (``2026-11-29``): LeadLex's quota day."""
    return datetime.fromtimestamp(unix, UTC).date().isoformat()


def next_utc_midnight(unix: float) -> int:
    """When the quota day of ``unix`` ends (LeadLex resets the daily quota at 00:00 UTC)."""
    day = datetime.fromtimestamp(unix, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((day + timedelta(days=1)).timestamp())


def utc_minute(unix: float) -> str:
    """Unix time as people read it in bulktag's messages and pages: ``2026-11-29 02:30 UTC``."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_utc(unix: float) -> str:
    """Unix time as bulktag writes it in its files: ``2026-11-29T02:30:00Z``."""
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
