"""The daily budget: a probe first, then never more in flight than the quota left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import TaskGroup

from bulktag.outcomes import Quota
from bulktag.send.limiter import BudgetSpentError, DailyBudget

pytestmark = pytest.mark.anyio

MIDNIGHT = 1_795_737_600  # a UTC midnight, Unix seconds
NEXT_MIDNIGHT = MIDNIGHT + 86_400


def left(remaining: int, reset: int | None = MIDNIGHT) -> Quota:
    """What an answer's X-RateLimit-* headers say."""
    return Quota(limit=1000, remaining=remaining, reset=reset)


async def take(budget: DailyBudget) -> None:
    """Acquire, expected at once: a deadlock fails the test instead of hanging it."""
    with anyio.fail_after(1):
        await budget.acquire()


async def settle() -> None:
    """Let every task that can run, run (virtual time: costs nothing)."""
    await anyio.sleep(1)


class Callers:
    """Tasks each taking one call from the budget; what became of them."""

    def __init__(self, budget: DailyBudget, group: TaskGroup) -> None:
        self._budget = budget
        self._group = group
        self.acquired = 0
        self.refused = 0

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            self._group.start_soon(self._call)

    async def _call(self) -> None:
        try:
            await self._budget.acquire()  # the one place where waiting is expected
        except BudgetSpentError:
            self.refused += 1
        else:
            self.acquired += 1


@asynccontextmanager
async def callers(budget: DailyBudget) -> AsyncIterator[Callers]:
    with anyio.fail_after(3600):  # virtual time: a deadlock fails, it does not hang
        async with anyio.create_task_group() as group:
            yield Callers(budget, group)


async def test_the_first_call_is_a_probe() -> None:
    """While the first call is in flight nobody else starts; its answer lets them go."""
    budget = DailyBudget()
    await take(budget)
    async with callers(budget) as tasks:
        tasks.start(3)
        await settle()
        assert tasks.acquired == 0
        budget.release(left(995))
        await settle()
        assert tasks.acquired == 3


async def test_at_most_remaining_less_reserve_calls_are_in_flight() -> None:
    """Remaining 5 and reserve 2: three calls start, the fourth waits for an answer."""
    budget = DailyBudget(reserve=2)
    await take(budget)
    budget.release(left(5))
    async with callers(budget) as tasks:
        tasks.start(10)
        await settle()
        assert tasks.acquired == 3
        assert budget.available == 0
        budget.release(None)  # an answer without quota information frees its place
        await settle()
        assert tasks.acquired == 4
        budget.release(left(3))  # 3 left, 3 in flight, 2 kept: nothing more
        await settle()
        assert tasks.acquired == 4
        budget.exhaust()  # end the test: the waiting callers are refused
    assert tasks.refused == 6


async def test_a_spent_budget_with_nothing_in_flight_raises() -> None:
    """Remaining equal to the reserve: the next acquire raises, and every later one too."""
    budget = DailyBudget(reserve=1)
    await take(budget)
    budget.release(left(1))
    for _ in range(2):
        with pytest.raises(BudgetSpentError):
            await take(budget)
    assert budget.spent


async def test_a_spent_budget_with_calls_in_flight_waits_for_their_answers() -> None:
    """The last calls' answers decide; only when none is in flight does acquire raise."""
    budget = DailyBudget(reserve=1)
    await take(budget)
    budget.release(left(3))
    await take(budget)
    await take(budget)
    async with callers(budget) as tasks:
        tasks.start()
        await settle()
        assert (tasks.acquired, tasks.refused) == (0, 0)
        budget.release(left(2))
        await settle()
        assert (tasks.acquired, tasks.refused) == (0, 0)
        budget.release(left(1))
    assert (tasks.acquired, tasks.refused) == (0, 1)
    assert budget.spent


async def test_a_call_that_spent_nothing_lets_the_waiter_go() -> None:
    """If the answers in flight leave quota (a 5xx does not count), the waiter starts."""
    budget = DailyBudget(reserve=1)
    await take(budget)
    budget.release(left(2))
    await take(budget)
    async with callers(budget) as tasks:
        tasks.start()
        await settle()
        assert tasks.acquired == 0
        budget.release(left(2))
    assert tasks.acquired == 1


async def test_a_remembered_budget_still_probes_first() -> None:
    """A remaining count from the state store may be stale: the first call still goes alone."""
    budget = DailyBudget(reserve=1, remaining=3)
    await take(budget)
    with anyio.move_on_after(60) as waited:
        await budget.acquire()
    assert waited.cancelled_caught  # the second call waits for the probe's answer
    budget.release(left(3))
    await take(budget)
    assert budget.available == 1  # 3 left, 1 in flight, 1 reserved


async def test_a_budget_known_to_be_spent_raises_at_once() -> None:
    """Remaining 5 with a reserve of 5: not a single call."""
    with pytest.raises(BudgetSpentError):
        await take(DailyBudget(reserve=5, remaining=5))


async def test_out_of_order_answers_keep_the_lowest_remaining() -> None:
    """Answers 7 then 8 (the later call's answer arrived first): 7 is what is left."""
    budget = DailyBudget()
    await take(budget)
    budget.release(left(10))
    await take(budget)
    await take(budget)
    budget.release(left(7))
    budget.release(left(8))
    assert budget.remaining == 7
    assert budget.available == 7


async def test_a_new_utc_day_raises_the_remaining_again() -> None:
    """An answer with a later reset is a fresh quota: the waiting caller goes on."""
    budget = DailyBudget()
    await take(budget)
    budget.release(left(2))
    await take(budget)
    await take(budget)
    async with callers(budget) as tasks:
        tasks.start()
        await settle()
        assert tasks.acquired == 0
        budget.release(left(999, reset=NEXT_MIDNIGHT))
    assert tasks.acquired == 1
    assert (budget.remaining, budget.reset) == (999, NEXT_MIDNIGHT)


async def test_a_stale_answer_from_the_previous_day_is_ignored() -> None:
    """After the new day, a late answer with yesterday's reset changes nothing."""
    budget = DailyBudget()
    await take(budget)
    budget.release(left(2))
    await take(budget)
    await take(budget)
    budget.release(left(999, reset=NEXT_MIDNIGHT))
    budget.release(left(0, reset=MIDNIGHT))
    assert (budget.remaining, budget.reset) == (999, NEXT_MIDNIGHT)
    await take(budget)


async def test_the_limit_and_reset_of_the_answers_are_kept() -> None:
    """The summary reports the daily limit and the reset time of the latest answer."""
    budget = DailyBudget()
    await take(budget)
    budget.release(Quota(limit=10_000, remaining=9_000, reset=MIDNIGHT))
    assert (budget.limit, budget.remaining, budget.reset) == (10_000, 9_000, MIDNIGHT)


async def test_exhaust_refuses_every_later_call_and_the_waiting_ones() -> None:
    """After the server said 429 with Remaining 0, nobody starts, waiting or not."""
    budget = DailyBudget()
    await take(budget)
    async with callers(budget) as tasks:
        tasks.start(2)  # waiting for the probe's answer
        await settle()
        budget.exhaust()
    assert (tasks.acquired, tasks.refused) == (0, 2)
    budget.release(left(500))
    with pytest.raises(BudgetSpentError):
        await take(budget)
    assert budget.remaining == 0


async def test_answers_without_headers_switch_the_probe_off() -> None:
    """An API that never sends X-RateLimit-*: after the first answer nobody waits."""
    budget = DailyBudget()
    await take(budget)
    async with callers(budget) as tasks:
        tasks.start(5)
        await settle()
        assert tasks.acquired == 0
        budget.release(None)
        await settle()
        assert tasks.acquired == 5
    for _ in range(5):
        budget.release(None)
    for _ in range(50):
        await take(budget)
    assert budget.remaining is None
    assert budget.available is None


async def test_a_partial_quota_switches_the_probe_off_too() -> None:
    """Headers without Remaining (only Limit) tell nothing about what is left: no wait."""
    budget = DailyBudget()
    await take(budget)
    budget.release(Quota(limit=1000, remaining=None, reset=None))
    await take(budget)
    await take(budget)
    assert budget.remaining is None
