"""Time, injected: the limiter, backoff and quota logic never read a clock of their own.

:class:`LoopClock` is the running event loop's time: real under asyncio, and
virtual under trio with ``trio.testing.MockClock(autojump_threshold=0)``, where
a whole run's waits take no real time and tests can assert exact schedules.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "LoopClock"]


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
