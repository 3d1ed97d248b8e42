"""Faults of the run, told apart from faults of one contact.

A 404 for a contact, a 400, a single 5xx or a dropped connection belong to that
contact: it is retried, the run goes on. A certificate nobody trusts, an answer that
is not LeadLex's (a captive portal, a wrong URL), a proxy's 407, a host that cannot
be resolved or refuses connections belong to the run: every further call would meet
them, and retrying each contact ten times would burn an hour (and, behind a metered
gateway, the day's quota). :class:`RunHealth` watches every attempt:

- until LeadLex has answered once (its success or its error envelope), calls go one
  at a time, so a run that cannot reach it costs a few calls, not ``concurrency``;
- ``STRIKES`` run faults in a row, with no LeadLex answer between them, stop the run:
  at once when configuration fixes the fault (exit 78), and when time may fix it
  (exit 75) if LeadLex has not answered yet in this run;
- after LeadLex has answered, ``STRIKES`` failures in a row (run faults, 5xx, drops)
  are an outage: calls go one at a time again, a probe every 0.5, 1, 2 ... 30 s
  whichever contact it is for (the others wait, their attempts untouched), until
  LeadLex answers; an outage longer than ``max_wait`` stops the run (75, the rest
  deferred).

Three: one failure is a blip, two in a row can be a keep-alive connection the
server closed; three identical ones, sent one at a time with backoff between them,
are not chance. A run without the company's CA ends after three calls and a few
seconds of backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import anyio

from bulktag.clock import Clock
from bulktag.outcomes import Attempt, FailureType, RunFault

__all__ = ["STRIKES", "RunHealth", "Verdict", "Verdicts"]

STRIKES = 3
#: In single file, the wait before the next call after the n-th failure in a row:
#: PROBE_BASE * 2 ** (n - 1), at most PROBE_CAP.
PROBE_BASE = 0.5
PROBE_CAP = 30.0
_PACED = (FailureType.RATE_LIMITED, FailureType.QUOTA_EXHAUSTED)


class Verdicts(StrEnum):
    CONFIG = "config"  #: a run fault configuration fixes: stop, exit 78
    UNREACHABLE = "unreachable"  #: LeadLex never answered, time may fix it: stop, exit 75
    OUTAGE = "outage"  #: an outage longer than max_wait: stop, the rest deferred


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Verdicts
    message: str  #: one line: the cause and the fix


class RunHealth:
    """Counts the failures in a row; see the module docstring."""

    def __init__(self, clock: Clock, max_wait: float) -> None:
        self._clock = clock
        self._max_wait = max_wait
        self.proven = False  #: LeadLex has answered at least once in this run
        self._faults: list[RunFault] = []  #: run faults in a row, nothing from LeadLex between
        self._failures = 0  #: failures of any kind in a row
        self._failing_since: float | None = None
        self._next_probe = 0.0  #: no call in single file before this (after a failure)
        self._in_flight = 0
        self._changed = anyio.Event()

    @property
    def single_file(self) -> bool:
        """Calls go one at a time: LeadLex has not answered yet, or an outage is on."""
        return not self.proven or self._failures >= STRIKES

    @property
    def in_flight(self) -> int:
        """Places taken and not yet given back."""
        return self._in_flight

    async def enter(self) -> None:
        """Wait for the turn of a call: while :attr:`single_file`, one at a time, and after
        a failure not before the probe's backoff (whichever contact the call is for)."""
        while self.single_file:
            if self._in_flight:
                await self._changed.wait()
                continue
            wait = self._next_probe - self._clock.now()
            if wait <= 0:
                break
            await self._clock.sleep(wait)
        self._in_flight += 1

    def cancel(self) -> None:
        """A call that :meth:`enter` let through was not sent."""
        self._in_flight -= 1
        self._notify()

    def leave(self, attempt: Attempt) -> Verdict | None:
        """A call ended with ``attempt``; the verdict when the run must stop."""
        self._in_flight -= 1
        try:
            return self._judge(attempt)
        finally:
            self._notify()

    def _judge(self, attempt: Attempt) -> Verdict | None:
        if attempt.reached:
            self.proven = True
            self._faults.clear()
            self._failures, self._failing_since = 0, None
            return None
        if attempt.ok or attempt.failure in _PACED:
            return None  # the rate limiter answers 429s, whoever sent them
        now = self._clock.now()
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = now
        # the next call in single file waits: 0.5, 1, 2 ... 30 s after each failure
        self._next_probe = now + min(PROBE_CAP, PROBE_BASE * 2.0 ** min(self._failures - 1, 16))
        if attempt.run_fault is not None:
            self._faults.append(attempt.run_fault)
        if len(self._faults) >= STRIKES:
            fault = self._faults[-1]
            seen = f"{len(self._faults)} calls in a row"
            if fault.fixed_by == "config":
                return Verdict(Verdicts.CONFIG, f"{fault.cause} ({seen}): {fault.fix}")
            if not self.proven:
                return Verdict(
                    Verdicts.UNREACHABLE,
                    f"{fault.cause} ({seen}, LeadLex never answered): {fault.fix}; "
                    "nothing was sent, run it again once it is fixed",
                )
        if self._failures >= STRIKES and now - self._failing_since > self._max_wait:
            return Verdict(
                Verdicts.OUTAGE,
                f"LeadLex has not answered for {now - self._failing_since:.0f} s (more than "
                f"--max-wait {self._max_wait:.0f} s; last: {attempt.message[:120]}): the rest "
                "is deferred to the next run",
            )
        return None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
