"""The run's gates, taken in order and given back once: the health's turn, one call of the
daily budget, a rate-limiter slot."""

from __future__ import annotations

from collections.abc import Callable

from bulktag.outcomes import Attempt, FailureType
from bulktag.send.health import RunHealth
from bulktag.send.limiter import (
    DailyBudget,
    RateLimiter,
)

__all__ = ["LIMITED", "UNAPPLIED_HALTS", "UNCOUNTED", "Slot"]


class Slot:
    """One turn through the run's gates, taken in order: the health's turn, one call of
    the daily budget, a rate-limiter slot (:meth:`Dispatcher._slot`). It is given back
    exactly once, by one of its two exits: :meth:`unused` (nothing was sent: each gate
    gets its place back) or :meth:`answered` (an answer came: it is counted, the limiter
    learns of a 429, the budget of LeadLex's quota, the health of the answer). Leaving its
    ``with`` block without either is :meth:`unused`: no path can leave a place behind.
    """

    __slots__ = ("_budget", "_count", "_health", "_judge", "_limiter", "_open", "sent_at")

    def __init__(
        self,
        gates: tuple[RunHealth, DailyBudget, RateLimiter],
        sent_at: float,
        count: Callable[[Attempt, bool], None],
        judge: Callable[[Attempt], None],
    ) -> None:
        self._health, self._budget, self._limiter = gates
        self.sent_at = sent_at
        self._count, self._judge = count, judge
        self._open = True

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_: object) -> None:
        self.unused()

    def unused(self) -> None:
        """Nothing was sent on this slot."""
        if self._open:
            self._open = False
            self._limiter.cancel()
            self._budget.release(None)
            self._health.cancel()

    def answered(self, attempt: Attempt, *, retry: bool) -> None:
        """LeadLex answered (or the request failed) on this slot: one rule for every
        endpoint. A 401's quota headers say nothing of this workspace; any other answer's
        are LeadLex's figure."""
        if not self._open:
            return
        self._open = False
        self._count(attempt, retry)
        self._limiter.release(rate_limited=attempt.failure is FailureType.RATE_LIMITED)
        self._budget.release(None if attempt.failure is FailureType.INVALID_KEY else attempt.quota)
        self._judge(attempt)


#: Answered 429 for want of quota or of pace: nothing was applied.
UNAPPLIED_HALTS = (FailureType.QUOTA_EXHAUSTED, FailureType.RATE_LIMITED)
#: Answered 429: the per-minute limit (LeadLex's or a gateway's) or the daily quota.
LIMITED = frozenset(UNAPPLIED_HALTS)
#: Errors LeadLex does not count against the daily quota (429s aside): its handler never
#: answered them (a timeout's may have, and then it was counted).
UNCOUNTED = frozenset(
    {
        FailureType.SERVER_ERROR,
        FailureType.NETWORK_ERROR,
        FailureType.TIMEOUT,
        FailureType.UNEXPECTED_RESPONSE,
    }
)
