"""When to try an attempt again: exponential backoff with full jitter, bounded twice.

Small on purpose. tenacity and stamina sleep and measure elapsed time with their
own clocks; bulktag's retries must run on the injected clock (so tests assert
exact schedules on virtual time), sit behind the rate limiter and the daily
budget, and stop when the run halts. What they would add is these ten lines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt ``n + 1``: uniform in ``[0, min(cap, base * 2**(n-1))]``.

    A ``Retry-After`` the server sent is a floor. ``Backoff(base=0)`` retries at
    once (tests). Gives up after ``max_attempts`` attempts or when the next try
    would start more than ``max_time`` seconds after the first.
    """

    base: float = 0.5
    cap: float = 60.0
    max_attempts: int = 10
    max_time: float = 600.0

    def delay(self, attempts: int, rng: random.Random, retry_after: float | None = None) -> float:
        # 2**1024 does not fit a float (OverflowError); 2**64 already exceeds any cap.
        ceiling = min(self.cap, self.base * 2.0 ** min(max(0, attempts - 1), 64))
        jitter = rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
        return max(jitter, retry_after or 0.0)

    def gives_up(self, attempts: int, elapsed: float, delay: float) -> bool:
        return attempts >= self.max_attempts or elapsed + delay > self.max_time
