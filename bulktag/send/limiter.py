"""Pacing every HTTP attempt: the per-minute rate limiter and the daily budget.

:class:`RateLimiter` combines two rules, both on an injected clock:

- *spacing*: attempts start at least ``60 / rate`` seconds apart (no bursts,
  so a wrongly configured rate meets a 429 once, not ``concurrency`` times);
- *exact sliding window*: at most ``rate`` attempts in any 60 s, where each
  finished attempt counts until 60 s after its answer arrived (an upper bound of
  when the server saw it) and an attempt in flight counts until it finishes.
  The server's window can therefore never hold more of our calls than ours does,
  whatever the network latency.

A per-minute 429 pauses every worker for ``Retry-After`` (or an exponential
backoff when it is absent) and lowers the rate to what the server accepted in
the last minute (at most 90 % of the current rate, once per episode); after 5
minutes without a 429 the rate grows back by 5 % steps, up to the configured rate.

A 429 that is not LeadLex's (no error envelope, no ``Retry-After``) comes from a
gateway in front of it whose rule is unknown: often nginx's ``limit_req``, which
refuses a call that comes sooner than 60 / rate seconds after the last one it took.
What such a gateway accepted in the last minute says little (jitter makes it refuse
calls sent at its very rate), so the limiter bisects: between the highest rate that
went a whole minute without a 429 and the lowest that met one, until the two are
within 2 %; it pauses one slot, not seconds. Five quiet minutes later it probes
upward again, in case the gateway allows more.

:class:`DailyBudget` follows ``X-RateLimit-Remaining``: it lets one probe go
first, then never has more calls in flight than the quota left above the
reserve, and reports the quota spent so the run stops sending.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import anyio

from bulktag.clock import Clock
from bulktag.outcomes import Quota

__all__ = ["BudgetSpentError", "DailyBudget", "LimiterStatistics", "RateLimiter"]

WINDOW = 60.0
#: Waits are at least this long: float rounding must not make a wait of ~0 spin.
TICK = 1e-3
#: Float rounding forgiven when comparing times (a virtual clock lands on a deadline give
#: or take an ulp). Half a TICK was too much: an attempt could start up to 0.5 ms before
#: its slot was free, one call too many in the server's window when answers come that fast.
SLACK = 1e-9
RECOVER_AFTER = 300.0
RECOVER_STEP = 1.05
CUT = 0.9
#: A gateway's 429 without a rate that held: start below the refused rate by this much.
GATEWAY_CUT = 0.8
#: A gateway's 429 at a rate that had held (jitter, or a tighter limit): hold a bit below.
GATEWAY_SLIP = 0.95
#: A rate that went this long without a gateway's 429 held.
GATEWAY_HOLD = 60.0
#: Bisection stops when the refused rate is within this of the rate that held.
GATEWAY_CLOSE = 1.02


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """A snapshot of the rate limiter."""

    configured_rate: float | None
    rate: float | None
    rate_limited: int  #: per-minute 429s seen
    paused_seconds: float  #: total pause asked for by the server
    in_flight: int


class RateLimiter:
    """Paces attempts under a per-minute limit (``None``: unlimited)."""

    def __init__(self, per_minute: float | None, clock: Clock) -> None:
        self.configured = per_minute
        self.rate = per_minute
        self._clock = clock
        self._next_start = -math.inf
        self._paused_until = -math.inf
        self._finished: deque[float] = deque()  # answer times within the window
        self._limited_at: deque[float] = deque()  # answer times of the 429s among them
        self._in_flight = 0
        self._changed = anyio.Event()
        self._adapted_at = -math.inf
        self._learned: float | None = None  # the per-minute limit a 429 revealed
        self._last_limited = -math.inf
        self._consecutive = 0
        self._limited = 0
        self._paused_total = 0.0
        self._held: float | None = None  # the highest rate a gateway took for a minute
        self._refused: float | None = None  # the lowest rate a gateway refused

    def statistics(self) -> LimiterStatistics:
        return LimiterStatistics(
            self.configured, self.rate, self._limited, self._paused_total, self._in_flight
        )

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def _capacity(self) -> int:
        assert self.rate is not None
        return max(1, math.floor(self.rate + 1e-9))

    def _recover(self, now: float) -> None:
        """Grow back after RECOVER_AFTER without a 429, up to the configured rate or, when a
        429 showed what the server accepts from us, up to that."""
        if self.rate is None or self.configured is None:
            return
        quiet = now - max(self._last_limited, self._adapted_at)
        if self._refused is not None:  # bisecting a gateway's limit
            if quiet < GATEWAY_HOLD:
                return
            self._held = max(self._held or 0.0, self.rate)
            if self._refused > self._held * GATEWAY_CLOSE:
                self.rate = min(self.configured, (self._held + self._refused) / 2)
                self._adapted_at = now
                return
            if quiet < RECOVER_AFTER:
                return
            self._refused = None  # close enough, and quiet since: try upward again
        top = self.configured if self._learned is None else min(self.configured, self._learned)
        if self.rate >= top:
            return
        if now - max(self._last_limited, self._adapted_at) >= RECOVER_AFTER:
            self.rate = min(top, self.rate * RECOVER_STEP)
            self._adapted_at = now

    async def acquire(self) -> float:
        """Wait for a slot; returns the time the attempt may start (now)."""
        while True:
            now = self._clock.now()
            if now < self._paused_until:
                await self._clock.sleep(max(TICK, self._paused_until - now))
                continue
            if self.rate is None:
                self._in_flight += 1
                return now
            self._recover(now)
            while self._finished and self._finished[0] <= now - WINDOW + SLACK:
                self._finished.popleft()
            if now < self._next_start - SLACK:
                await self._clock.sleep(max(TICK, self._next_start - now))
                continue
            if len(self._finished) + self._in_flight >= self._capacity():
                if self._finished:
                    await self._clock.sleep(max(TICK, self._finished[0] + WINDOW - now))
                else:
                    await self._changed.wait()
                continue
            self._next_start = now + WINDOW / self.rate
            self._in_flight += 1
            return now

    def release(self, *, rate_limited: bool = False) -> None:
        """An attempt got its answer (or failed); it counts in the window from now."""
        self._in_flight -= 1
        if self.rate is not None:
            self._finished.append(self._clock.now())
            if rate_limited:
                self._limited_at.append(self._finished[-1])
        if not rate_limited:
            self._consecutive = 0
        self._changed.set()
        self._changed = anyio.Event()

    def cancel(self) -> None:
        """A slot was taken but no call was sent: it does not count."""
        self._in_flight -= 1
        self._changed.set()
        self._changed = anyio.Event()

    def rate_limited(
        self, retry_after: float | None, sent_at: float, *, gateway: bool = False
    ) -> float:
        """A per-minute 429 for an attempt sent at ``sent_at``; returns the pause chosen.

        ``gateway``: the 429 is not LeadLex's (no envelope); without a Retry-After, the
        gateway's limit is bisected (see the module docstring).
        """
        now = self._clock.now()
        self._limited += 1
        self._last_limited = now
        self._consecutive += 1
        if gateway and retry_after is None and self.rate is not None:
            return self._gateway_limited(sent_at, now)
        if self.rate is not None and sent_at >= self._adapted_at:
            since = now - WINDOW
            while self._limited_at and self._limited_at[0] <= since:
                self._limited_at.popleft()
            accepted = sum(1 for t in self._finished if t > since) - len(self._limited_at)
            # When our own calls filled the server's window, its limit is what it accepted;
            # when they did not (another client, a storm), only slow down a little.
            ours = accepted >= self.rate / 2  # our own calls filled the server's window
            ceiling = float(accepted) if ours else self.rate * CUT
            if ours:
                self._learned = ceiling
            self.rate = max(1.0, min(self.rate * CUT, ceiling))
            self._adapted_at = now
        pause = (
            retry_after
            if retry_after is not None
            else min(60.0, 5.0 * 2 ** (self._consecutive - 1))
        )
        if now + pause > self._paused_until:
            self._paused_total += now + pause - max(now, self._paused_until)
            self._paused_until = now + pause
        return pause

    def _gateway_limited(self, sent_at: float, now: float) -> float:
        """A gateway refused a call sent at the current rate: bisect; pause one slot."""
        assert self.rate is not None
        if sent_at >= self._adapted_at:  # sent at the current rate: a new bound
            refused = self.rate
            self._refused = refused if self._refused is None else min(self._refused, refused)
            if self._held is not None and self._held >= refused:
                self._held = refused * GATEWAY_SLIP  # refused at a rate that held: a little less
            below = refused * GATEWAY_CUT if self._held is None else (self._held + refused) / 2
            self.rate = max(1.0, below)
            self._adapted_at = now
        pause = min(60.0, WINDOW / self.rate * 2.0 ** min(self._consecutive - 1, 16))
        if now + pause > self._paused_until:
            self._paused_total += now + pause - max(now, self._paused_until)
            self._paused_until = now + pause
        return pause


class BudgetSpentError(Exception):
    """The daily quota, less the reserve, is spent."""


class SharedQuota(Protocol):
    """The calls other processes have in flight on the same key (:mod:`bulktag.state.quota`'s
    bookings): a reserve holds only if every process counts them all."""

    def book(self, in_flight: int, reserve: int, remaining: int | None, reset: int | None) -> bool:
        """Book one more call of this process (``in_flight`` already) if the calls in flight
        everywhere leave ``reserve`` of what LeadLex last said is left, by any of them."""

    def land(self, in_flight: int, quota: Quota | None) -> None:
        """A call of this process is answered (``in_flight`` left); ``quota``: its word."""

    def close(self) -> None:
        """The session is over (its store closed)."""


class DailyBudget:
    """Follows ``X-RateLimit-Remaining`` so the run never sends past the quota reserve;
    with ``shared``, counting the calls other processes have in flight on the key too."""

    def __init__(
        self, reserve: int = 0, remaining: int | None = None, shared: SharedQuota | None = None
    ) -> None:
        self.reserve = reserve
        self.remaining = remaining
        self.shared = shared
        self.limit: int | None = None
        self.reset: int | None = None
        self.spent = False
        # The first call goes alone, even when the state store remembers what was
        # left: its answer says what is left now.
        self._probing = True
        self._in_flight = 0
        self._changed = anyio.Event()

    @property
    def in_flight(self) -> int:
        """Places taken and not yet given back."""
        return self._in_flight

    @property
    def available(self) -> int | None:
        """Calls that may still start (``None`` while unknown)."""
        if self.remaining is None:
            return None
        return self.remaining - self._in_flight - self.reserve

    async def acquire(self) -> None:
        """Take one call from the quota, or raise :class:`BudgetSpentError`."""
        while True:
            if self.spent:
                raise BudgetSpentError
            if self._probing and self._in_flight:
                await self._changed.wait()  # the first answer tells what is left
                continue
            available = self.available
            if (available is None or available > 0) and self._booked():
                self._in_flight += 1
                return
            if self._in_flight == 0:
                self.spent = True
                raise BudgetSpentError
            await self._changed.wait()

    def _booked(self) -> bool:
        if self.shared is None:
            return True
        return self.shared.book(self._in_flight, self.reserve, self.remaining, self.reset)

    def release(self, quota: Quota | None) -> None:
        """An attempt is over; ``quota`` is what its answer said."""
        self._in_flight -= 1
        if self.shared is not None:
            self.shared.land(self._in_flight, quota)
        self._probing = False
        if quota is not None and quota.remaining is not None:
            stale = quota.reset is not None and self.reset is not None and quota.reset < self.reset
            new_day = (
                quota.reset is not None and self.reset is not None and quota.reset > self.reset
            )
            if self.remaining is None or new_day:
                self.remaining = quota.remaining
            elif not stale:  # answers arrive out of order: the lowest count is the latest
                self.remaining = min(self.remaining, quota.remaining)
            if quota.reset is not None and not stale:
                self.reset = quota.reset
            if quota.limit is not None:
                self.limit = quota.limit
        self._changed.set()
        self._changed = anyio.Event()

    def exhaust(self) -> None:
        """The server said the quota is spent (429 with ``X-RateLimit-Remaining: 0``)."""
        self.remaining = 0
        self.spent = True
        self._changed.set()
        self._changed = anyio.Event()
