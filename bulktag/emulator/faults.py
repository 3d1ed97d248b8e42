"""Fault injection: seeded, so the same seed and the same request order give the same faults.

Every API request draws the same number of random values whatever happens to
it, so the faults of request ``n`` depend only on the seed and on ``n``.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

__all__ = ["Decision", "FaultInjector", "Faults"]

DropSide = Literal["before", "after"]


@dataclass(frozen=True, slots=True)
class Faults:
    """What goes wrong, and how often. All off by default."""

    #: Share of API requests answered 500 (JSON), 502 or 503 (gateway HTML / text).
    fault_rate: float = 0.0
    #: Added latency, uniform in [min, max] milliseconds.
    latency_ms: tuple[float, float] = (0.0, 0.0)
    #: Share of connections dropped without an answer: half before the call is
    #: handled, half after (the tags are applied, the client cannot know).
    drop_rate: float = 0.0
    #: Share of successful answers whose JSON body is cut short.
    malformed_rate: float = 0.0
    #: Share of answers whose body trickles in after ``slow_ms``.
    slow_rate: float = 0.0
    slow_ms: float = 2_000.0
    #: Chance that a request starts a 429 storm of ``storm_seconds``.
    storm_rate: float = 0.0
    storm_seconds: float = 30.0
    #: A captive portal or a proxy's sign-in page: every request, below the API prefix
    #: or not, is answered 200 with an HTML page (the control API still works).
    captive_portal: bool = False
    #: A gateway in front of LeadLex that allows this many calls a minute (nginx's
    #: ``limit_req``: at least 60 / N seconds apart, no burst) and answers the excess 429
    #: with an HTML body and no Retry-After; what it refuses never reaches LeadLex.
    #: 0: no such gateway.
    gateway_per_minute: int = 0

    def __post_init__(self) -> None:
        for name in ("fault_rate", "drop_rate", "malformed_rate", "slow_rate", "storm_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        low, high = self.latency_ms
        if not 0 <= low <= high:
            raise ValueError(f"latency_ms must be MIN:MAX with 0 <= MIN <= MAX, not {low}:{high}")
        if self.slow_ms < 0 or self.storm_seconds < 0 or self.gateway_per_minute < 0:
            raise ValueError("slow_ms, storm_seconds and gateway_per_minute cannot be negative")

    def updated(self, changes: dict[str, Any]) -> Faults:
        """A copy with ``changes`` (from JSON) applied; unknown names are refused."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {sorted(unknown)}")
        cleaned: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "latency_ms":
                low, high = value
                cleaned[name] = (float(low), float(high))
            elif name == "captive_portal":
                cleaned[name] = bool(value)
            elif name == "gateway_per_minute":
                cleaned[name] = int(value)
            else:
                cleaned[name] = float(value)
        return replace(self, **cleaned)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency_ms"] = list(self.latency_ms)
        return data


@dataclass(frozen=True, slots=True)
class Decision:
    """The faults chosen for one request."""

    latency: float = 0.0  # seconds
    error_status: int | None = None  # 500, 502 or 503
    drop: DropSide | None = None
    malformed: bool = False
    slow: bool = False
    start_storm: bool = False


NO_FAULT = Decision()


class FaultInjector:
    """Draws a :class:`Decision` per request from a seeded generator."""

    def __init__(self, faults: Faults | None = None, seed: int = 0) -> None:
        self.faults = faults or Faults()
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def decide(self) -> Decision:
        f = self.faults
        if f == Faults():
            return NO_FAULT
        u = [self._rng.random() for _ in range(8)]
        low, high = f.latency_ms
        error_status = None
        if u[1] < f.fault_rate:
            error_status = (500, 502, 503)[min(2, int(u[2] * 3))]
        drop: DropSide | None = None
        if u[3] < f.drop_rate:
            drop = "before" if u[4] < 0.5 else "after"
        return Decision(
            latency=(low + (high - low) * u[0]) / 1000.0,
            error_status=error_status,
            drop=drop,
            malformed=u[5] < f.malformed_rate,
            slow=u[6] < f.slow_rate,
            start_storm=u[7] < f.storm_rate,
        )


class LeakyBucket:
    """nginx's ``limit_req`` (no burst): a call is admitted when at least 60 / rate seconds
    have passed since the last one admitted (the excess drains at the rate)."""

    def __init__(self) -> None:
        self._excess = 0.0  # calls above the rate, draining
        self._last = -math.inf

    def admit(self, now: float, per_minute: int) -> bool:
        excess = max(0.0, self._excess + 1.0 - (now - self._last) * per_minute / 60.0)
        if excess > 1e-9:  # burst 0: no call above the rate
            return False
        self._excess, self._last = excess, now
        return True
