"""The per-minute rate limiter on trio's virtual clock: spacing, the sliding window, 429s."""

from __future__ import annotations

import itertools
import math
import random

import anyio
import pytest
import trio.testing

from bulktag.clock import LoopClock
from bulktag.send.limiter import LimiterStatistics, RateLimiter

pytestmark = pytest.mark.anyio


class CountingClock(LoopClock):
    """The loop's clock, counting the limiter's sleeps (its loop iterations that wait)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps > 1000:
            raise AssertionError(f"the limiter spins: {self.sleeps} sleeps, the last {seconds!r}")
        await super().sleep(seconds)


async def attempt(limiter: RateLimiter, clock: LoopClock, latency: float = 0.0) -> float:
    """One attempt that is answered with a success after ``latency``; returns its start."""
    start = await limiter.acquire()
    await clock.sleep(latency)
    limiter.release()
    return start


async def sleep_until(clock: LoopClock, when: float) -> None:
    await clock.sleep(when - clock.now())
    assert clock.now() == pytest.approx(when, abs=1e-9)


# -- spacing and the window ------------------------------------------------------------


async def test_attempts_start_60_over_rate_apart() -> None:
    """At 50 a minute, four eager callers start one attempt every 1.2 s, the first at once."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    starts: list[float] = []

    async def caller() -> None:
        for _ in range(5):
            starts.append(await attempt(limiter, clock))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(caller)
    assert len(starts) == 20
    assert starts[0] == 0.0
    assert starts == sorted(starts)
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 1.2 - 1e-9
    assert starts[-1] == pytest.approx(19 * 1.2)


async def test_acquire_returns_the_time_the_attempt_starts() -> None:
    """The value returned is the clock's now, and the attempt counts as in flight."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    await clock.sleep(7.5)
    assert await limiter.acquire() == 7.5
    assert limiter.statistics().in_flight == 1


@pytest.mark.parametrize(("rate", "tasks"), [(10, 3), (50, 8), (200, 16)])
async def test_no_minute_ever_holds_more_than_rate_attempts_yet_throughput_stays_high(
    rate: int, tasks: int
) -> None:
    """Over 3 minutes with random latency no 60 s window holds more than rate; >= 98 % used."""
    # An attempt counts from its start until 60 s after its answer (the latest the server
    # may have seen it); at every start, the attempts still counting, itself included,
    # must be at most ``rate``.
    clock = LoopClock()
    limiter = RateLimiter(rate, clock)
    rng = random.Random(rate)
    spans: list[tuple[float, float]] = []

    async def worker() -> None:
        while clock.now() < 180.0:
            start = await limiter.acquire()
            await clock.sleep(rng.uniform(0.05, 0.6))
            limiter.release()
            spans.append((start, clock.now()))

    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(worker)

    starts = sorted(start for start, _ in spans)
    for at in starts:
        counting = [1 for start, answered in spans if start <= at and answered > at - 60.0 + 1e-6]
        assert len(counting) <= rate, f"{len(counting)} attempts count at {at}"
    in_three_minutes = sum(1 for start in starts if start < 180.0)
    assert in_three_minutes >= 0.98 * rate * 3
    assert limiter.statistics().in_flight == 0


async def test_an_answer_counts_for_60_s_from_when_it_arrived() -> None:
    """Rate 1: a call started at 0 and answered at 50 s keeps the only slot until 110 s."""
    clock = LoopClock()
    limiter = RateLimiter(1, clock)
    assert await attempt(limiter, clock, 50.0) == 0.0
    assert await limiter.acquire() == 110.0  # spacing alone would allow 60


async def test_attempts_in_flight_hold_their_slot_until_answered() -> None:
    """Rate 3 with three calls in flight: the fourth waits for an answer, then for 60 s."""
    clock = LoopClock()
    limiter = RateLimiter(3, clock)
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(attempt, limiter, clock, 100.0)
        await sleep_until(clock, 41.0)
        # started at 0, 20, 40; answered at 100, 120, 140: the first slot frees at 160.
        assert limiter.statistics().in_flight == 3
        assert await limiter.acquire() == 160.0


async def test_an_unlimited_limiter_never_waits() -> None:
    """rate=None: a thousand acquires, none released, take no time at all."""
    clock = LoopClock()
    limiter = RateLimiter(None, clock)
    for _ in range(1000):
        assert await limiter.acquire() == 0.0
    assert clock.now() == 0.0
    assert limiter.statistics().in_flight == 1000
    for _ in range(1000):
        limiter.release()
    assert limiter.statistics().in_flight == 0


# -- per-minute 429 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("waiting_for", "first_latency", "limited_latency"),
    [("spacing", 0.0, 25.0), ("window", 10.0, 35.0), ("slot", 100.0, 35.0)],
)
async def test_a_429_pauses_every_waiting_task_until_retry_after(
    waiting_for: str, first_latency: float, limited_latency: float
) -> None:
    """A caller waiting for spacing, the window or a slot starts exactly when Retry-After ends."""
    # Rate 2 (30 s apart): a first call at 0; the limited call starts at 30 and gets a 429
    # with Retry-After 300 at 55 or 65; the waiter asks at 31 and, without the pause,
    # would start at 60 (spacing), 70 (the first answer leaves the window) or 100+.
    clock = LoopClock()
    limiter = RateLimiter(2, clock)
    starts: list[float] = []

    async def limited() -> None:
        sent_at = await limiter.acquire()
        assert sent_at == 30.0
        await clock.sleep(limited_latency)
        limiter.release(rate_limited=True)
        limiter.rate_limited(300.0, sent_at)

    async def waiter() -> None:
        starts.append(await limiter.acquire())
        limiter.release()

    async with anyio.create_task_group() as group:
        group.start_soon(attempt, limiter, clock, first_latency)
        await clock.sleep(1.0)
        group.start_soon(limited)
        await sleep_until(clock, 31.0)
        group.start_soon(waiter)
        await sleep_until(clock, 30.0 + limited_latency - 1.0)
        assert starts == []  # still waiting when the 429 arrives
    resumes = 30.0 + limited_latency + 300.0
    assert limiter.paused_until == resumes
    assert starts == [resumes]


async def test_a_429_lowers_the_rate_to_what_was_accepted_in_the_last_minute() -> None:
    """30 accepted calls, then a 429: the rate becomes 30, not 31 (the 429 was not accepted)."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    for _ in range(30):
        await attempt(limiter, clock, 0.1)
    sent_at = await limiter.acquire()
    await clock.sleep(0.1)
    limiter.release(rate_limited=True)  # the dispatcher releases before it reports the 429
    limiter.rate_limited(None, sent_at)
    assert limiter.rate == 30.0
    assert limiter.statistics() == LimiterStatistics(
        configured_rate=50, rate=30.0, rate_limited=1, paused_seconds=5.0, in_flight=0
    )


async def test_a_429_lowers_the_rate_by_at_least_10_percent() -> None:
    """With 49 accepted in the last minute, a 429 still cuts 50 to 45."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    for _ in range(49):
        await attempt(limiter, clock)
    sent_at = await limiter.acquire()
    limiter.release(rate_limited=True)
    limiter.rate_limited(2.0, sent_at)
    assert limiter.rate == pytest.approx(45.0)


async def test_only_answers_of_the_last_minute_count_as_accepted() -> None:
    """Calls answered more than 60 s before the 429 are not what the server accepts now."""
    clock = LoopClock()
    limiter = RateLimiter(10, clock)
    for _ in range(8):
        await attempt(limiter, clock)  # answered at 0, 6, ..., 42
    await sleep_until(clock, 80.0)
    for _ in range(5):
        await attempt(limiter, clock)  # answered at 80, 86, ..., 104
    sent_at = await limiter.acquire()
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, sent_at)  # at 110: the window (50, 110] holds 5 accepted calls
    assert limiter.rate == 5.0


async def test_a_429_when_our_calls_did_not_fill_the_window_cuts_only_10_percent() -> None:
    """A 429 on the very first call (another client used the window): 50 becomes 45, not 1."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    sent_at = await limiter.acquire()
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, sent_at)
    assert limiter.rate == pytest.approx(45.0)


async def test_a_429_never_lowers_the_rate_below_one_a_minute() -> None:
    """At 1 a minute, 429 after 429 leaves the rate at 1."""
    clock = LoopClock()
    limiter = RateLimiter(1, clock)
    for _ in range(3):
        await attempt(limiter, clock)
        sent_at = await limiter.acquire()
        limiter.release(rate_limited=True)
        limiter.rate_limited(None, sent_at)
        assert limiter.rate == 1.0


async def test_the_rate_is_cut_once_per_episode() -> None:
    """429s of calls sent before the cut do not cut again; one sent after it does."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    for _ in range(30):
        await attempt(limiter, clock)
    first = await limiter.acquire()  # these two are in flight together
    second = await limiter.acquire()
    await sleep_until(clock, second + 1.0)
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, first)
    assert limiter.rate == 30.0
    await sleep_until(clock, second + 1.5)
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, second)  # sent before the cut: the same episode
    assert limiter.rate == 30.0
    third = await limiter.acquire()  # after the pause, at the lower rate
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, third)
    assert limiter.rate is not None
    assert limiter.rate <= 0.9 * 30.0
    assert limiter.statistics().rate_limited == 3


async def test_without_retry_after_the_pause_doubles_up_to_a_minute() -> None:
    """Consecutive 429s without Retry-After pause 5, 10, 20, 40, 60, 60 s."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    pauses = []
    for _ in range(6):
        sent_at = await limiter.acquire()
        limiter.release(rate_limited=True)
        pause = limiter.rate_limited(None, sent_at)
        assert limiter.paused_until == clock.now() + pause
        pauses.append(pause)
    assert pauses == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]


async def test_a_success_resets_the_pause_to_five_seconds() -> None:
    """After any non-429 answer the next 429 without Retry-After pauses 5 s again."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    for _ in range(3):
        sent_at = await limiter.acquire()
        limiter.release(rate_limited=True)
        limiter.rate_limited(None, sent_at)
    await attempt(limiter, clock)
    sent_at = await limiter.acquire()
    limiter.release(rate_limited=True)
    assert limiter.rate_limited(None, sent_at) == 5.0


async def test_retry_after_is_the_pause_and_a_shorter_one_does_not_shorten_it() -> None:
    """Retry-After 100 pauses until now + 100; a later Retry-After 10 within it changes nothing."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    sent_at = await limiter.acquire()
    limiter.release(rate_limited=True)
    assert limiter.rate_limited(100.0, sent_at) == 100.0
    await clock.sleep(5)
    assert limiter.rate_limited(10.0, sent_at) == 10.0
    assert limiter.paused_until == 100.0
    assert await limiter.acquire() == 100.0
    assert limiter.statistics().paused_seconds == 100.0


async def test_the_rate_recovers_by_5_percent_every_5_minutes_up_to_what_was_accepted() -> None:
    """49 accepted, cut to 45; 5 quiet minutes each: 47.25, then 49 (what LeadLex took), no more."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    for _ in range(49):
        await attempt(limiter, clock)
    sent_at = await limiter.acquire()
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, sent_at)
    assert limiter.rate == pytest.approx(45.0)
    rates = []
    since = clock.now()
    for _ in range(5):
        await sleep_until(clock, since + 298.0)  # more than 60 / rate before the next
        await attempt(limiter, clock)
        before = limiter.rate
        await sleep_until(clock, since + 300.001)
        since = await attempt(limiter, clock)
        rates += [before, limiter.rate]
    assert rates == pytest.approx([45.0, 47.25, 47.25, 49.0, 49.0, 49.0, 49.0, 49.0, 49.0, 49.0])


async def test_a_cut_not_caused_by_us_recovers_to_the_configured_rate() -> None:
    """10 accepted of 50 (another client filled the window): cut to 45, back to 50 in steps."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    for _ in range(10):
        await attempt(limiter, clock)
    sent_at = await limiter.acquire()
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, sent_at)
    assert limiter.rate == pytest.approx(45.0)
    for minute in (301, 602, 903, 1204):
        await sleep_until(clock, minute)
        await attempt(limiter, clock)
    assert limiter.rate == pytest.approx(50.0)


async def test_a_429_postpones_recovery() -> None:
    """A 429 during the five quiet minutes (even one that does not cut) restarts them."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    for _ in range(20):
        await attempt(limiter, clock)
    first = await limiter.acquire()
    second = await limiter.acquire()
    await sleep_until(clock, 40.0)
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, first)
    assert limiter.rate == 45.0  # 20 accepted: not our calls alone, a 10 % cut
    await sleep_until(clock, 240.0)
    limiter.release(rate_limited=True)
    limiter.rate_limited(1.0, second)  # a slow answer: the same episode, no cut
    assert limiter.rate == 45.0
    await sleep_until(clock, 340.0)  # 300 s after the cut, 100 s after the last 429
    await attempt(limiter, clock)
    assert limiter.rate == 45.0
    await sleep_until(clock, 540.0)
    await attempt(limiter, clock)
    assert limiter.rate == pytest.approx(47.25)


async def test_statistics_is_a_snapshot() -> None:
    """Configured and current rate, 429s, total pause (overlaps once) and calls in flight."""
    clock = LoopClock()
    limiter = RateLimiter(50, clock)
    assert limiter.statistics() == LimiterStatistics(50, 50, 0, 0.0, 0)
    for _ in range(10):
        await attempt(limiter, clock)
    sent_at = await limiter.acquire()
    await limiter.acquire()  # still in flight when the snapshots are taken
    limiter.release(rate_limited=True)
    limiter.rate_limited(30.0, sent_at)
    snapshot = limiter.statistics()
    limiter.rate_limited(40.0, sent_at)  # overlaps: the pause grows by 10 s
    assert snapshot == LimiterStatistics(50, 45.0, 1, 30.0, 1)
    assert limiter.statistics() == LimiterStatistics(50, 45.0, 2, 40.0, 1)


# -- no spinning -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "base", [0.0, 1e6, 2.0**20 - 62.7], ids=["time-0", "time-1e6", "window-edge-crosses-2**20"]
)
@pytest.mark.parametrize("wait", ["window", "spacing", "pause"])
async def test_a_tiny_positive_wait_cannot_spin(
    mock_clock: trio.testing.MockClock, base: float, wait: str
) -> None:
    """A slot freeing in 1e-12 s (or one float step) is taken in bounded time and iterations."""
    # At a loop time of 1e6, ``now + 1e-12 == now``: a loop that sleeps exactly a tiny
    # remainder (or 0, when rounding makes the window check and the wait disagree, as
    # just below 2**20) never advances and spins forever.
    mock_clock.jump(base)
    clock = CountingClock()
    limiter = RateLimiter(None if wait == "pause" else 2, clock)  # 2: 30 s apart, 2 a minute
    t0 = clock.now()
    assert t0 == base
    if wait == "window":
        await attempt(limiter, clock, 5.3)  # answered at t0 + 5.3
        answered = clock.now()
        await sleep_until(clock, t0 + 30.0)
        await attempt(limiter, clock)  # the window is full until t0 + 65.3
        frees = answered + 60.0
    elif wait == "spacing":
        await attempt(limiter, clock)
        frees = t0 + 30.0
    else:
        sent_at = await limiter.acquire()
        limiter.release(rate_limited=True)
        limiter.rate_limited(10.0, sent_at)
        frees = limiter.paused_until
    tiny = 1e-12 if base == 0.0 else frees - math.nextafter(frees, -math.inf)
    await sleep_until(clock, frees - tiny)
    assert 0.0 < frees - clock.now() <= max(tiny, 1e-11)
    clock.sleeps = 0
    with anyio.fail_after(1.0):
        started = await limiter.acquire()
    assert started - frees < 0.01
    assert clock.sleeps <= 2


# -- the injected clock ----------------------------------------------------------------


async def test_an_epoch_pins_the_wall_clock_to_virtual_time() -> None:
    """LoopClock(epoch=T): wall() is T plus the loop's (virtual) time, which sleeps advance."""
    clock = LoopClock(epoch=1_795_694_400.0)
    assert clock.wall() == 1_795_694_400.0
    await clock.sleep(90.0)
    assert clock.now() == 90.0
    assert clock.wall() == 1_795_694_490.0


async def test_a_negative_sleep_returns_at_once() -> None:
    """A wait computed as negative (a deadline already past) does not go back in time."""
    clock = LoopClock()
    await clock.sleep(-5.0)
    assert clock.now() == 0.0


# -- a gateway's 429s: no envelope, no Retry-After ---------------------------------------


async def gateway_429(limiter: RateLimiter) -> float:
    """An attempt a gateway refuses (429, no envelope, no Retry-After); returns the pause."""
    sent_at = await limiter.acquire()
    limiter.release(rate_limited=True)
    return limiter.rate_limited(None, sent_at, gateway=True)


async def test_a_gateway_429_cuts_to_80_percent_and_pauses_one_slot() -> None:
    """200 a minute refused: 160, and a pause of one slot at 160 (0.375 s), not seconds."""
    limiter = RateLimiter(200, LoopClock())
    pause = await gateway_429(limiter)
    assert limiter.rate == pytest.approx(160.0)
    assert pause == pytest.approx(60 / 160)


async def test_a_gateway_limit_is_bisected_between_held_and_refused() -> None:
    """Refused at 200, 160 holds a minute: 180; refused there: 170; held: 175, 177.5;
    refused: 176.25, which holds: within 2 % of 177.5, the bisection is over."""
    clock = LoopClock()
    limiter = RateLimiter(200, clock)
    await gateway_429(limiter)
    rates = [limiter.rate]
    for refuse in (True, False, True, False):
        await sleep_until(clock, clock.now() + 61)
        await attempt(limiter, clock)  # a minute held at the current rate
        rates.append(limiter.rate)
        if refuse:
            await gateway_429(limiter)
            rates.append(limiter.rate)
    assert rates == pytest.approx([160.0, 180.0, 170.0, 175.0, 177.5, 176.25, 176.25])


async def test_the_bisection_stops_within_2_percent_then_probes_up_after_5_minutes() -> None:
    """Once refused and held are within 2 %, the rate stays; five quiet minutes later it grows
    again by 5 % every five minutes (the gateway may allow more now)."""
    clock = LoopClock()
    limiter = RateLimiter(100, clock)
    await gateway_429(limiter)  # refused 100: 80
    await sleep_until(clock, clock.now() + 61)
    await attempt(limiter, clock)  # 80 held: 90
    await gateway_429(limiter)  # refused 90: 85
    await sleep_until(clock, clock.now() + 61)
    await attempt(limiter, clock)  # 85 held: 87.5
    await gateway_429(limiter)  # refused 87.5: 86.25
    await sleep_until(clock, clock.now() + 61)
    await attempt(limiter, clock)  # 86.25 held, within 2 % of 87.5
    assert limiter.rate == pytest.approx(86.25)
    await sleep_until(clock, clock.now() + 61)
    await attempt(limiter, clock)
    assert limiter.rate == pytest.approx(86.25)  # no more bisection
    await sleep_until(clock, clock.now() + 300)
    await attempt(limiter, clock)
    assert limiter.rate == pytest.approx(86.25 * 1.05)
    await sleep_until(clock, clock.now() + 301)
    await attempt(limiter, clock)
    assert limiter.rate == pytest.approx(86.25 * 1.05**2)


async def test_a_refusal_at_a_rate_that_held_slips_5_percent() -> None:
    """Refused at the rate that had held a minute (jitter, or a tighter gateway): 95 % of
    it counts as held, and the bisection goes on between that and the refusal."""
    clock = LoopClock()
    limiter = RateLimiter(100, clock)
    await gateway_429(limiter)  # 80
    await sleep_until(clock, clock.now() + 61)
    await attempt(limiter, clock)  # 80 held: 90
    await gateway_429(limiter)  # refused 90: 85
    await sleep_until(clock, clock.now() + 61)
    await attempt(limiter, clock)  # 85 held: 87.5
    await gateway_429(limiter)  # refused 87.5: 86.25
    await sleep_until(clock, clock.now() + 61)
    await attempt(limiter, clock)  # 86.25 held (and settled)
    first = await limiter.acquire()  # two in flight together
    second = await limiter.acquire()
    await sleep_until(clock, second + 0.5)  # the answers come
    limiter.release(rate_limited=True)
    limiter.rate_limited(None, first, gateway=True)  # refused at 86.25, which had held
    assert limiter.rate == pytest.approx((86.25 * 0.95 + 86.25) / 2)
    limiter.release(rate_limited=True)
    limiter.rate_limited(None, second, gateway=True)  # sent before the cut: no new cut
    assert limiter.rate == pytest.approx((86.25 * 0.95 + 86.25) / 2)
