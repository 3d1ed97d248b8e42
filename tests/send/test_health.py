"""RunHealth on trio's virtual clock: faults of the run told from faults of one contact."""

from __future__ import annotations

import itertools

import anyio
import pytest

from bulktag.clock import LoopClock
from bulktag.outcomes import Attempt, FailureType, RunFault
from bulktag.send.health import STRIKES, RunHealth, Verdicts

pytestmark = pytest.mark.anyio

OK = Attempt(None, http_status=200, reached=True)
NOT_FOUND = Attempt(FailureType.NOT_FOUND, http_status=404, reached=True)
UNTRUSTED = Attempt(
    FailureType.NETWORK_ERROR, run_fault=RunFault("config", "TLS certificate not trusted", "fix")
)
REFUSED = Attempt(
    FailureType.NETWORK_ERROR, run_fault=RunFault("time", "connection refused", "fix")
)
HTML_502 = Attempt(FailureType.SERVER_ERROR, http_status=502)
PROXY_429 = Attempt(FailureType.RATE_LIMITED, http_status=429)


async def call(health: RunHealth, attempt: Attempt) -> Verdicts | None:
    """One call through the health gate, ending with ``attempt``; the verdict's kind."""
    await health.enter()
    verdict = health.leave(attempt)
    return None if verdict is None else verdict.kind


async def test_three_config_faults_in_a_row_stop_the_run() -> None:
    """An untrusted certificate three times in a row: the CONFIG verdict, naming the fix."""
    health = RunHealth(LoopClock(), max_wait=900)
    assert await call(health, UNTRUSTED) is None
    assert await call(health, UNTRUSTED) is None
    await health.enter()
    verdict = health.leave(UNTRUSTED)
    assert verdict is not None
    assert verdict.kind is Verdicts.CONFIG
    assert verdict.message == "TLS certificate not trusted (3 calls in a row): fix"


async def test_an_answer_from_leadlex_between_faults_resets_the_count() -> None:
    """Two faults, LeadLex answers (a 404 is an answer), two faults: no verdict."""
    health = RunHealth(LoopClock(), max_wait=900)
    for attempt in (UNTRUSTED, UNTRUSTED, NOT_FOUND, UNTRUSTED, UNTRUSTED):
        assert await call(health, attempt) is None


async def test_time_faults_stop_only_a_run_that_never_reached_leadlex() -> None:
    """Refused three times before any answer: UNREACHABLE; after an answer: an outage."""
    fresh = RunHealth(LoopClock(), max_wait=900)
    kinds = [await call(fresh, REFUSED) for _ in range(STRIKES)]
    assert kinds == [None, None, Verdicts.UNREACHABLE]
    proven = RunHealth(LoopClock(), max_wait=900)
    assert await call(proven, OK) is None
    assert [await call(proven, REFUSED) for _ in range(5)] == [None] * 5
    assert proven.single_file


async def test_an_outage_longer_than_max_wait_is_the_outage_verdict() -> None:
    """Failures of any kind in a row (502s here) for more than max_wait: OUTAGE."""
    clock = LoopClock()
    health = RunHealth(clock, max_wait=100)
    await call(health, OK)
    kinds = [await call(health, HTML_502)]
    while kinds[-1] is None and clock.now() < 1000:
        kinds.append(await call(health, HTML_502))
    assert kinds[-1] is Verdicts.OUTAGE
    assert kinds[:-1] == [None] * (len(kinds) - 1)
    assert 100 < clock.now() <= 100 + 30 + 1  # at most one probe's backoff past max_wait


async def test_429s_neither_count_nor_reset() -> None:
    """A proxy's 429s are the limiter's business: faults around them still count."""
    health = RunHealth(LoopClock(), max_wait=900)
    kinds = [await call(health, a) for a in (UNTRUSTED, PROXY_429, UNTRUSTED, PROXY_429)]
    assert kinds == [None, None, None, None]
    assert await call(health, UNTRUSTED) is Verdicts.CONFIG


async def test_single_file_until_leadlex_answers() -> None:
    """Before the first answer, a second call waits for the first; after it, none waits."""
    clock = LoopClock()
    health = RunHealth(clock, max_wait=900)
    started: list[float] = []

    async def second() -> None:
        await health.enter()
        started.append(clock.now())
        health.leave(OK)

    async with anyio.create_task_group() as group:
        await health.enter()
        group.start_soon(second)
        await clock.sleep(5)
        assert started == []
        health.leave(OK)
    assert started == [5.0]
    await health.enter()
    await health.enter()  # both at once now
    health.leave(OK)
    health.leave(OK)


async def test_probes_in_single_file_back_off() -> None:
    """In single file, each call after a failure waits 0.5, 1, 2 ... s, whoever makes it."""
    clock = LoopClock()
    health = RunHealth(clock, max_wait=10_000)
    await call(health, OK)
    starts = []
    for _ in range(STRIKES + 4):
        await health.enter()
        starts.append(clock.now())
        health.leave(HTML_502)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    assert gaps == [0.0, 0.0, 2.0, 4.0, 8.0, 16.0]  # free until the outage, then backoff
