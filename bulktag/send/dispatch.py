"""Dispatch: one task group, a bounded stream of contacts, N workers.

::

    plan slices ──► feeder ──► [bounded stream] ──► N workers ──► journal (each outcome)
                                                     │
                          rate limiter ◄── every attempt ──► daily budget

Memory stays flat: the feeder only reads the plan as fast as the workers take
contacts, and the streams hold at most ``concurrency`` items. Every attempt
(retries included) takes a slot from the rate limiter and one call from the
daily budget. A *halt* stops the sending at once: a rejected key (401/403), the
daily quota spent, a ``Retry-After`` beyond ``max_wait``, a base URL that serves no
LeadLex route (:mod:`bulktag.send.route`), or a signal. Waits are interrupted; requests
in flight finish (after a signal, within the grace period). Contacts never sent are not
recorded here: the publisher accounts for them from the plan, with the halt's status.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import ExitStack, aclosing
from typing import TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from bulktag.clock import Clock
from bulktag.config import DispatchSettings
from bulktag.leadlex import chunks
from bulktag.outcomes import Attempt, ContactOutcome, FailureType, Halt
from bulktag.send.client import LeadLexClient
from bulktag.send.contact import Chunk, outcome_of, stops_contact
from bulktag.send.exports import export_limit
from bulktag.send.gates import LIMITED, UNAPPLIED_HALTS, UNCOUNTED, Slot
from bulktag.send.health import RunHealth, Verdicts
from bulktag.send.limiter import BudgetSpentError, DailyBudget, RateLimiter, SharedQuota
from bulktag.send.retry import Backoff
from bulktag.send.route import Route, key_refused, no_route
from bulktag.send.timeline import Timeline
from bulktag.send.work import DispatchStatistics, PlannedContact, Record, idempotency_key

__all__ = [
    "DispatchStatistics",
    "Dispatcher",
    "PlannedContact",
    "idempotency_key",
]


T = TypeVar("T")
log = logging.getLogger("bulktag")


_VERDICT_HALTS = {
    Verdicts.CONFIG: Halt.CONFIG,
    Verdicts.UNREACHABLE: Halt.UNREACHABLE,
    Verdicts.OUTAGE: Halt.OUTAGE,
}


class Dispatcher:
    """Sends planned contacts under the limits; see the module docstring."""

    def __init__(
        self,
        client: LeadLexClient,
        settings: DispatchSettings,
        clock: Clock,
        *,
        run_id: str,
        seed: int | None = None,
        quota_remaining: int | None = None,
        key_source: str = "the API key",
        shared: SharedQuota | None = None,
        route_proven: bool = False,
    ) -> None:
        self._client = client
        self._key_source = key_source
        self._settings = settings
        self._clock = clock
        self._run_id = run_id
        self._rng = random.Random(seed)  # noqa: S311  (backoff jitter, not a secret)
        self._limiter = RateLimiter(settings.rate_per_minute, clock)
        self._budget = DailyBudget(settings.quota_reserve, quota_remaining, shared)
        self._health = RunHealth(clock, settings.max_wait)
        self._backoff = Backoff(
            settings.backoff_base, settings.backoff_cap, settings.max_attempts, settings.retry_time
        )
        self.halt: Halt | None = None
        self.halt_message = ""
        self._waits: set[anyio.CancelScope] = set()
        self._requests: set[anyio.CancelScope] = set()
        self.calls = 0
        self.other_calls: Counter[str] = Counter()
        self.verified = 0
        self._can_verify = settings.verify_ambiguous
        self._timeline = Timeline(clock.now(), clock.wall())
        self._quota_before: int | None = None
        self._route = Route(self._check_route, proven=route_proven)

    # -- control ------------------------------------------------------------------

    def stop(self, reason: Halt, message: str) -> None:
        """Stop sending: interrupt every wait; requests in flight go on."""
        if self.halt is None:
            self.halt, self.halt_message = reason, message
        for scope in list(self._waits):
            scope.cancel()

    @property
    def halted(self) -> bool:
        return self.halt is not None

    def gates_held(self) -> tuple[int, int, int]:
        """Places held in the health's turn, the daily budget and the rate limiter: all
        0 between calls (each :class:`Slot` gives its places back once)."""
        return self._health.in_flight, self._budget.in_flight, self._limiter.statistics().in_flight

    def cancel_requests(self) -> None:
        """Abandon the requests in flight (the grace period is over)."""
        for scope in list(self._requests):
            scope.cancel()

    def statistics(self) -> DispatchStatistics:
        return DispatchStatistics(
            calls=self.calls,
            other_calls=dict(self.other_calls),
            halt=self.halt,
            halt_message=self.halt_message,
            quota_remaining=self._budget.remaining,
            quota_limit=self._budget.limit,
            quota_reset=self._budget.reset,
            limiter=self._limiter.statistics(),
            timeline=self._timeline.snapshot(),
            timeline_fine=self._timeline.fine(),
            timeline_started=self._timeline.started_at,
            quota_before=self._quota_before,
        )

    # -- the task group -------------------------------------------------------------

    async def run(self, contacts: AsyncGenerator[PlannedContact, None], record: Record) -> None:
        """Dispatch ``contacts``; each contact that was sent is passed to ``record``.

        ``record`` returns once the outcome is durable, and a worker takes its next
        contact only then: after a crash, at most ``concurrency`` calls (those in
        flight) can have been made without being recorded.
        """
        work_send, work_receive = anyio.create_memory_object_stream[PlannedContact](
            self._settings.concurrency
        )
        async with anyio.create_task_group() as group:
            async with work_receive:
                for _ in range(self._settings.concurrency):
                    group.start_soon(self._worker, work_receive.clone(), record)
            async with work_send, aclosing(contacts):
                async for contact in contacts:
                    if self.halt is not None:
                        break
                    # send() yields to the loop first: one contact per loop turn, which
                    # starved the workers (4 of 32 busy). Fill the buffer without yielding.
                    try:
                        work_send.send_nowait(contact)
                    except anyio.WouldBlock:
                        await work_send.send(contact)

    async def _worker(
        self, work: MemoryObjectReceiveStream[PlannedContact], record: Record
    ) -> None:
        async with work:
            while True:
                # A contact already waiting is taken without a turn of the loop: meanwhile
                # this worker's connection would sit idle, and httpcore2 polls every idle
                # connection at every pool event (+10 % at concurrency 32, +36 % at 128).
                try:
                    contact = work.receive_nowait()
                except anyio.WouldBlock:
                    try:
                        contact = await work.receive()
                    except anyio.EndOfStream:
                        return
                except anyio.EndOfStream:
                    return
                if self.halt is not None:
                    continue  # never sent: accounted for from the plan
                outcome = await self._contact(contact)
                if outcome is not None:
                    await record(outcome)

    # -- one contact ------------------------------------------------------------------

    async def _contact(self, contact: PlannedContact) -> ContactOutcome | None:
        done: list[Chunk] = []
        for index, tags in enumerate(chunks(contact.tags)):
            if self.halt is not None or (done and stops_contact(done[-1])):
                done.append(Chunk(tags, halt=self.halt))
                continue
            done.append(await self._chunk(contact, index, tags))
        if all(c.attempts == 0 for c in done):
            return None  # nothing was sent
        return outcome_of(contact, done, self.halt_message, self._clock.wall())

    async def _chunk(self, contact: PlannedContact, index: int, tags: list[str]) -> Chunk:
        key = idempotency_key(self._run_id, contact.contact_id, index, tags)
        result = Chunk(tags)
        started = self._clock.now()
        while True:
            slot = await self._slot()
            if slot is None:
                result.halt = self.halt
                return result
            with slot:
                sent_at = slot.sent_at
                if result.attempts and sent_at - started > self._backoff.max_time:
                    return result  # the limiter's pause outlasted --retry-time: unused
                result.attempts += 1
                attempt = await self._send(contact.contact_id, tags, key, slot, result.attempts > 1)
            result.attempt = attempt
            if attempt.ok:
                return result
            if attempt.failure is FailureType.NOT_FOUND:
                serves = await self._route.serves()
                if serves is False:
                    result.attempt = self._no_route(attempt)
                if serves is False or (serves is None and self.halt is not None):
                    # never recorded not_found on a 404 nobody could tell apart from a wrong
                    # URL: failed (retryable) at a wrong URL, else unsent like the rest
                    result.attempt = None if serves is None else result.attempt
                    result.halt = self.halt
                    return result
            if (
                attempt.ambiguous
                and self._can_verify
                and await self._verify(contact.contact_id, tags)
            ):
                result.attempt = Attempt(
                    None,
                    http_status=attempt.http_status,
                    message=f"verified by reading the contact after: {attempt.message}",
                    request_id=attempt.request_id,
                )
                result.verified = True
                return result
            if not self._settle(attempt, sent_at):
                if attempt.failure in UNAPPLIED_HALTS and self.halt is not None:
                    result.halt = self.halt  # a 429 applied nothing: deferred like the rest
                return result
            delay = self._backoff.delay(
                result.attempts,
                self._rng,
                None if attempt.failure is FailureType.RATE_LIMITED else attempt.retry_after,
            )
            if self._backoff.gives_up(result.attempts, self._clock.now() - started, delay):
                return result
            await self._pause(delay)
            if self.halt is not None:
                result.halt = self.halt
                return result

    async def _slot(self, *, checking_route: bool = False) -> Slot | None:
        """The run's turn, one call of the daily budget, then a rate-limiter slot; ``None``
        once halted. While a 404 is being checked, only the check goes (``checking_route``).

        The turn (:class:`RunHealth`: one call at a time until LeadLex has answered, or
        during an outage) and the budget come first: a worker waiting for another's
        answer has not taken a limiter slot, so when the answer comes the spacing holds.
        """
        with anyio.CancelScope() as scope, ExitStack() as taken:
            self._waits.add(scope)
            taken.callback(self._waits.discard, scope)
            if self.halt is not None:
                return None
            if not checking_route:
                await self._route.settled()
            # each gate taken pushes its give-back: any exit before the end gives back
            # what was taken, in reverse order
            await self._health.enter()
            taken.callback(self._health.cancel)
            try:
                await self._budget.acquire()
            except BudgetSpentError:
                self.stop(Halt.QUOTA, "the daily quota (less the reserve) is spent")
                return None
            taken.callback(self._budget.release, None)
            sent_at = await self._limiter.acquire()
            taken.callback(self._limiter.cancel)
            if self.halted:
                # halted while this worker woke from a wait: a cancellation may never
                # reach a worker with no wait left, so nothing is sent after a halt
                return None
            taken.pop_all()
            self._waits.discard(scope)
            gates = (self._health, self._budget, self._limiter)
            return Slot(gates, sent_at, self._count, self._judge)
        return None

    async def call(
        self,
        endpoint: str,
        send: Callable[[], Awaitable[tuple[Attempt, T]]],
        *,
        checking_route: bool = False,
    ) -> tuple[Attempt, T] | None:
        """A call other than add-tags, under the same limiter and budget; None once halted.

        A 429 pauses everyone and a spent quota halts the run, as for add-tags;
        a 401 halts it too. A 403 does not: a key without Read can still tag.
        """
        slot = await self._slot(checking_route=checking_route)
        if slot is None:
            return None
        with slot:
            result = await send()
            attempt = result[0]
            self.other_calls[endpoint] += 1
            if attempt.ok:
                self._route.proven = True
            slot.answered(attempt, retry=False)
        sent_at = slot.sent_at
        if attempt.failure is FailureType.INSUFFICIENT_PERMISSIONS:
            return result  # the caller decides (a pre-check gives up, tagging goes on)
        if export_limit(endpoint, attempt):
            return result  # the hourly export limit: not a reason to pause the tagging
        if attempt.failure is not None:
            self._settle(attempt, sent_at)
        return result

    async def _check_route(self) -> bool | None:
        """Whether the base URL serves a route that must exist (``GET /v1/contacts``): True
        (answered, or 403: routed but not permitted), False (404), None (no telling)."""
        answer = await self.call("list_contacts", self._client.count_contacts, checking_route=True)
        if answer is None:
            return None
        attempt = answer[0]
        if attempt.ok or attempt.failure is FailureType.INSUFFICIENT_PERMISSIONS:
            return True
        if attempt.http_status == 404:
            return False
        return None

    def _no_route(self, attempt: Attempt) -> Attempt:
        """A 404 at a base URL that serves no LeadLex route: the run stops (78)."""
        message, failed = no_route(self._client.base_url, attempt)
        if self.halt is None:
            log.error("stopping: %s", message)
        self.stop(Halt.CONFIG, message)
        return failed

    async def _verify(self, contact_id: str, tags: list[str]) -> bool:
        """Read the contact once: does it carry ``tags`` (the ambiguous call was applied)?"""
        answer = await self.call("get_contact", lambda: self._client.get_contact(contact_id))
        if answer is None:
            return False
        attempt, current = answer
        if attempt.failure is FailureType.INSUFFICIENT_PERMISSIONS:
            if self._can_verify:  # reads in flight together: warn once
                log.warning("the key cannot read contacts: ambiguous outcomes are retried")
            self._can_verify = False
            return False
        if current is None or not set(tags) <= set(current):
            return False
        self.verified += 1
        return True

    async def _pause(self, seconds: float) -> None:
        """A backoff sleep that a halt interrupts."""
        with anyio.CancelScope() as scope:
            self._waits.add(scope)
            try:
                if self.halt is None:
                    await self._clock.sleep(seconds)
            finally:
                self._waits.discard(scope)

    async def _send(
        self, contact_id: str, tags: list[str], key: str, slot: Slot, retry: bool
    ) -> Attempt:
        attempt: Attempt | None = None
        with anyio.CancelScope() as scope:
            self._requests.add(scope)
            try:
                attempt = await self._client.add_tags(contact_id, tags, key)
            finally:
                self._requests.discard(scope)
        if attempt is None:  # cancelled after the grace period
            attempt = Attempt(
                FailureType.TIMEOUT,
                message="abandoned after the grace period; the call may have been applied",
                ambiguous=True,
            )
        self.calls += 1
        if attempt.ok or attempt.failure is FailureType.VALIDATION_ERROR:
            self._route.proven = True  # LeadLex's handler answered at this URL
        slot.answered(attempt, retry=retry)
        return attempt

    def _count(self, attempt: Attempt, retry: bool) -> None:
        """The attempt in its minute of the timeline (429s apart from other failures)."""
        failure = attempt.failure
        if self._quota_before is None and attempt.quota is not None:
            remaining, limit = attempt.quota.remaining, attempt.quota.limit
            if remaining is not None:
                self._quota_before = remaining + 1 if limit is None else min(limit, remaining + 1)
        self._timeline.count(
            self._clock.now(),
            retry=retry,
            limited=failure in LIMITED,
            failed=failure is not None,
            uncounted=failure in UNCOUNTED,
            rate=self._limiter.rate,
        )

    def _judge(self, attempt: Attempt) -> None:
        """Tell the run's health; stop the run on its verdict (a fault of the run)."""
        verdict = self._health.leave(attempt)
        if verdict is not None and self.halt is None:
            log.error("stopping: %s", verdict.message)
            self.stop(_VERDICT_HALTS[verdict.kind], verdict.message)

    def _settle(self, attempt: Attempt, sent_at: float) -> bool:
        """Apply a failed attempt's consequences; True when it may be retried."""
        failure = attempt.failure
        assert failure is not None
        if failure.stops_run:
            self.stop(Halt.KEY_REJECTED, key_refused(self._key_source, attempt))
            return False
        if failure is FailureType.QUOTA_EXHAUSTED:
            self._budget.exhaust()
            self.stop(Halt.QUOTA, "LeadLex answered 429 with X-RateLimit-Remaining: 0")
            return False
        if failure is FailureType.RATE_LIMITED:
            pause = self._limiter.rate_limited(
                attempt.retry_after, sent_at, gateway=not attempt.reached
            )
            if pause > self._settings.max_wait:
                self.stop(
                    Halt.RATE,
                    f"LeadLex asked to wait {pause:.0f} s (Retry-After), more than --max-wait "
                    f"{self._settings.max_wait:.0f} s",
                )
                return False
        return failure.retryable
