"""Backoff: full jitter under an exponential ceiling, Retry-After as a floor, two limits."""

from __future__ import annotations

import random

import pytest

from bulktag.send.retry import Backoff

SAMPLES = 400


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [
        (1, 0.5),
        (2, 1.0),
        (3, 2.0),
        (4, 4.0),
        (5, 8.0),
        (6, 16.0),
        (7, 32.0),
        (8, 60.0),
        (9, 60.0),
        (10, 60.0),
    ],
)
def test_the_delay_is_full_jitter_under_the_exponential_ceiling(
    attempts: int, ceiling: float
) -> None:
    """After attempt n: uniform over [0, min(60, 0.5 * 2**(n-1))], using the whole range."""
    backoff = Backoff()
    rng = random.Random(attempts)
    delays = [backoff.delay(attempts, rng) for _ in range(SAMPLES)]
    assert all(0.0 <= d <= ceiling for d in delays)
    assert min(delays) < 0.05 * ceiling  # not "equal jitter" (which never goes below half)
    assert max(delays) > 0.95 * ceiling


def test_the_same_seed_gives_the_same_delays() -> None:
    """The jitter comes from the random generator passed in, nothing else."""
    backoff = Backoff()
    first = [backoff.delay(n, random.Random(7)) for n in range(1, 11)]
    again = [backoff.delay(n, random.Random(7)) for n in range(1, 11)]
    assert first == again


@pytest.mark.parametrize("attempts", [11, 64, 1024, 1025, 5000, 10**6])
def test_the_cap_holds_for_any_number_of_attempts(attempts: int) -> None:
    """Even where 2**(n-1) no longer fits a float, the delay stays within the cap."""
    rng = random.Random(attempts)
    for backoff in (Backoff(), Backoff(base=2.0, cap=5.0)):
        assert 0.0 <= backoff.delay(attempts, rng) <= backoff.cap


def test_a_custom_base_and_cap_set_the_ceiling() -> None:
    """Base 2 and cap 5: ceilings 2, 4, 5, 5."""
    backoff = Backoff(base=2.0, cap=5.0)
    rng = random.Random(3)
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (3, 5.0), (4, 5.0)]:
        delays = [backoff.delay(attempts, rng) for _ in range(SAMPLES)]
        assert max(delays) <= ceiling
        assert max(delays) > 0.95 * ceiling


@pytest.mark.parametrize("attempts", range(1, 11))
def test_retry_after_is_a_floor(attempts: int) -> None:
    """The delay is never shorter than Retry-After, and longer only by the jitter."""
    backoff = Backoff()
    rng = random.Random(attempts)
    ceiling = min(60.0, 0.5 * 2 ** (attempts - 1))
    for retry_after in (0.0, 3.0, 30.0, 120.0):
        for _ in range(50):
            delay = backoff.delay(attempts, rng, retry_after)
            assert retry_after <= delay <= max(retry_after, ceiling)


def test_retry_after_beyond_the_cap_is_kept() -> None:
    """A server asking for 120 s gets 120 s, although the cap is 60 s."""
    assert Backoff().delay(1, random.Random(1), 120.0) == 120.0


def test_base_zero_retries_at_once() -> None:
    """Backoff(base=0), for fast tests: every delay is 0, whatever the attempt count."""
    backoff = Backoff(base=0)
    rng = random.Random(1)
    assert [backoff.delay(n, rng) for n in (1, 2, 10, 100, 5000)] == [0.0] * 5
    assert Backoff(base=0.0).delay(5000, rng) == 0.0


def test_base_zero_still_honours_retry_after() -> None:
    """Retry-After is a floor even when the backoff itself is zero."""
    assert Backoff(base=0).delay(3, random.Random(1), 2.5) == 2.5


def test_gives_up_after_max_attempts() -> None:
    """With 3 attempts allowed: retry after the 1st and 2nd, give up after the 3rd."""
    backoff = Backoff(max_attempts=3)
    assert [backoff.gives_up(n, 0.0, 0.0) for n in (1, 2, 3, 4)] == [False, False, True, True]


def test_gives_up_when_the_next_try_would_start_after_max_time() -> None:
    """The next try may start at max_time after the first, not later."""
    backoff = Backoff(max_attempts=100, max_time=600.0)
    assert not backoff.gives_up(2, 590.0, 10.0)
    assert backoff.gives_up(2, 590.0, 10.001)
    assert backoff.gives_up(2, 0.0, 600.5)  # a long Retry-After alone is enough


def test_one_attempt_allowed_never_retries() -> None:
    """max_attempts=1: the first failure is final."""
    assert Backoff(max_attempts=1).gives_up(1, 0.0, 0.0)
