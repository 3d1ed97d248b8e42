"""One dispatch session: an event loop that asks the CRM (``--skip-existing``), then sends.

:func:`send` opens the HTTP client, starts the dispatcher, watches SIGINT/SIGTERM
(the first drains within ``--grace``, a second stops at once), runs the pre-check
through the dispatcher's limiter and budget, feeds the dispatcher what is still to
send (:func:`unsent`: the plan less what the journal holds as final), commits each
outcome as its worker finishes it, and returns what happened as a
:class:`SessionResult`. A resumed run starts a new session on the same journal.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
import polars as pl
from tqdm import tqdm

from bulktag.config import ApiKey, DispatchSettings, RunConfig
from bulktag.machine import MachineError, fault_of, guarded
from bulktag.outcomes import Attempt, ContactOutcome, Halt, Status
from bulktag.outputs.publish import write_json
from bulktag.plan.build import Plan
from bulktag.plan.skip import ALREADY_TAGGED, requests_to_send, skip_pairs
from bulktag.run.folder import RunFolder
from bulktag.runtime import Runtime
from bulktag.scan import slices
from bulktag.send.client import LeadLexClient, make_http_client
from bulktag.send.directory import DirectoryRead, read_directory
from bulktag.send.dispatch import Dispatcher, DispatchStatistics, PlannedContact
from bulktag.send.limiter import SharedQuota
from bulktag.send.precheck import Precheck, history_never_found, run_precheck, tag_demand
from bulktag.state.job import JobState
from bulktag.state.journal import Journal, sink_joined

__all__ = ["SessionResult", "SessionStoppedError", "directory", "send", "unsent"]

log = logging.getLogger("bulktag")

#: Plan rows read at a time to feed the dispatcher.
FEED_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class SessionResult:
    statistics: DispatchStatistics
    precheck: dict[str, Any] | None  #: what this session's pre-check did (None: none ran)


class SessionStoppedError(MachineError):
    """A fault of the machine stopped the session (a journal on a full disk, say):
    ``statistics`` are the calls it made before, to book and to tell."""

    def __init__(self, fault: MachineError, statistics: DispatchStatistics) -> None:
        super().__init__(fault.path, fault.what, fault.fix, fault.exit_code)
        self.statistics = statistics


@dataclass(frozen=True, slots=True)
class Target:
    """Where a session sends, as whom, and how: the run's settings a session uses."""

    api_url: str
    ca_bundle: Path | None
    key: ApiKey  #: with its source, for messages
    dispatch: DispatchSettings
    progress: bool | None  #: None: on a terminal
    run_id: str
    quota_left: int | None  #: today's quota as the user's store knows it
    #: the calls every process has in flight on the key (a reserve to keep), or None
    shared: SharedQuota | None = None

    @classmethod
    def of(
        cls,
        config: RunConfig,
        key: ApiKey,
        run_id: str,
        quota_left: int | None,
        shared: SharedQuota | None,
    ) -> Target:
        """The settings of ``config`` a session uses."""
        return cls(
            config.api_url,
            config.ca_bundle,
            key,
            config.dispatch,
            config.progress,
            run_id,
            quota_left,
            shared,
        )

    def http(self, runtime: Runtime, *, concurrency: int) -> httpx2.AsyncClient:
        """The session's HTTP client (``runtime``'s transport, if it injects one)."""
        return make_http_client(
            self.api_url,
            self.key,
            concurrency=concurrency,
            timeout=self.dispatch.timeout,
            transport=runtime.transport,
            ca_bundle=self.ca_bundle,
        )

    def dispatcher(
        self, client: LeadLexClient, runtime: Runtime, *, route_proven: bool = False
    ) -> Dispatcher:
        """The session's dispatcher: its limits, quota and key's source, on ``client``;
        ``route_proven``: an earlier session of the run had LeadLex answer at the URL."""
        return Dispatcher(
            client,
            self.dispatch,
            runtime.clock,
            run_id=self.run_id,
            seed=runtime.seed,
            quota_remaining=self.quota_left,
            key_source=self.key.source,
            shared=self.shared,
            route_proven=route_proven,
        )


def unsent(
    plan: Plan, journal: Journal, todo: Path, rows: int | None = None
) -> tuple[pl.LazyFrame, int]:
    """The contacts still to send and how many: the plan less what the journal holds as
    final (a deferred or unsent contact is sent again, with the tags it had pending)."""

    def still_to_send(joined: pl.LazyFrame) -> pl.LazyFrame:
        pending = pl.col("pending_tags").str.json_decode(pl.List(pl.String))
        return (
            joined.filter(
                pl.col("status").is_null()
                | pl.col("status").is_in([Status.DEFERRED, Status.NOT_ATTEMPTED])
            )
            .with_columns(
                send=pl.when(pl.col("status").is_null()).then(pl.col("send")).otherwise(pending)
            )
            .filter(pl.col("send").list.len() > 0)
            .select("seq", "contact_id", "send")
        )

    planned = pl.scan_parquet(plan.path).select("seq", "contact_id", "send")
    found = sink_joined(
        planned, journal, ("status", "pending_tags"), still_to_send, todo, rows=rows
    )
    return found, found.select(pl.len()).collect().item()


async def send(
    target: Target,
    plan: Plan,
    journal: Journal,
    runtime: Runtime,
    *,
    todo: tuple[pl.LazyFrame, int] | None,
    folder: RunFolder,
    precheck: bool,
    state: JobState | None,
) -> SessionResult:
    """One session (see the module docstring) sending ``todo`` (what :func:`unsent`
    returned) from the run in ``folder``. ``precheck``: ask the CRM first (not when the
    run has no pre-check, or an earlier session ran it); the to-do list is then made
    after it (``todo`` is None), as the pre-check takes from the plan what LeadLex has."""
    settings = target.dispatch
    show = sys.stderr.isatty() if target.progress is None else target.progress
    bar = tqdm(unit="contact", file=sys.stderr, disable=not show, dynamic_ncols=True)
    failed = 0

    async def record(outcome: ContactOutcome) -> None:
        """Commit ``outcome`` before its worker takes another contact (see journal)."""
        nonlocal failed
        with guarded(journal.path):
            journal.record((outcome,))
        failed += outcome.status is not Status.OK
        bar.update(1)
        if failed:
            bar.set_postfix(failures=failed, refresh=False)

    found = None  # what the pre-check found
    async with target.http(runtime, concurrency=settings.concurrency) as http:
        client = LeadLexClient(http, runtime.clock)
        dispatcher = target.dispatcher(client, runtime, route_proven=journal.answered())
        try:
            async with anyio.create_task_group() as watch:
                if runtime.handle_signals:  # listening before the first call goes out
                    await watch.start(_watch_signals, dispatcher, settings.grace, runtime)
                if precheck:
                    reads = _GatedReads(dispatcher, client)
                    found = await _precheck(
                        plan, reads, runtime, state=state, folder=folder, target=target
                    )
                    write_json(folder.precheck, found)  # a resumed run does not ask again
                if todo is None:
                    todo = await runtime.offload(
                        unsent, plan, journal, folder.todo, runtime.slice_rows
                    )
                contacts, total = todo
                bar.reset(total=total)
                await dispatcher.run(_feed(contacts, runtime), record)
                watch.cancel_scope.cancel()
        except Exception as exc:
            fault = fault_of(exc, journal.path)
            if fault is None:
                raise
            raise SessionStoppedError(fault, dispatcher.statistics()) from None
        finally:
            bar.close()
        return SessionResult(dispatcher.statistics(), found)


async def directory(
    target: Target, runtime: Runtime, after: str | None = None
) -> tuple[DirectoryRead, DispatchStatistics]:
    """A session that reads the workspace's directory (contacts by email), from ``after``
    on (None: the start), under the run's limits and signals; waits for the hourly export
    limit within ``--max-wait``, saying so on the progress bar."""
    settings = target.dispatch
    show = sys.stderr.isatty() if target.progress is None else target.progress
    bar = tqdm(unit="page", file=sys.stderr, disable=not show, dynamic_ncols=True)

    async def wait(seconds: float) -> None:
        log.warning(
            "LeadLex's export limit: waiting %.0f s for the next page of the "
            "directory (--max-wait %g s in all)",
            seconds,
            settings.max_wait,
        )
        bar.set_description(f"waiting {seconds:.0f} s for the export limit")
        await runtime.clock.sleep(seconds)
        bar.set_description("directory")

    async with target.http(runtime, concurrency=1) as http:
        client = LeadLexClient(http, runtime.clock)
        dispatcher = target.dispatcher(client, runtime)
        try:
            bar.set_description("directory")
            async with anyio.create_task_group() as watch:
                if runtime.handle_signals:
                    await watch.start(_watch_signals, dispatcher, settings.grace, runtime)
                found = await read_directory(
                    _GatedReads(dispatcher, client),
                    wait=wait,
                    max_wait=settings.max_wait,
                    after=after,
                )
                watch.cancel_scope.cancel()
        finally:
            bar.close()
        return found, dispatcher.statistics()


async def _feed(todo: pl.LazyFrame, runtime: Runtime) -> AsyncGenerator[PlannedContact, None]:
    batches = slices(todo, FEED_ROWS)
    while True:
        batch = await runtime.offload(next, batches, None)
        if batch is None:
            return
        for seq, contact_id, tags in batch.iter_rows():
            yield PlannedContact(seq, contact_id, tuple(tags))


async def _watch_signals(
    dispatcher: Dispatcher,
    grace: float,
    runtime: Runtime,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """SIGINT or SIGTERM: finish the requests in flight within ``grace``, then publish; a
    second signal cancels them at once."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async with anyio.create_task_group() as group:
            async for signum in signals:
                if dispatcher.halt is Halt.SIGNAL:
                    dispatcher.cancel_requests()  # a second signal: do not wait
                    continue
                name = signal.Signals(signum).name
                log.warning(
                    "%s: finishing requests in flight (up to %g s), then publishing", name, grace
                )
                dispatcher.stop(Halt.SIGNAL, f"stopped by {name}")
                group.start_soon(_cancel_after, dispatcher, grace, runtime)


async def _cancel_after(dispatcher: Dispatcher, grace: float, runtime: Runtime) -> None:
    await runtime.clock.sleep(grace)
    dispatcher.cancel_requests()


async def _precheck(
    plan: Plan,
    reads: _GatedReads,
    runtime: Runtime,
    *,
    state: JobState | None,
    folder: RunFolder,
    target: Target,
) -> dict[str, Any]:
    """Ask the CRM what the plan's contacts carry; take it out of the plan. A job's ledger
    learns the pairs found: its next nights skip them without asking again."""
    settings = target.dispatch
    known = target.quota_left if target.quota_left is not None else settings.per_day
    demand = tag_demand(plan.path)
    contacts = pl.scan_parquet(plan.path).filter(pl.col("send").list.len() > 0).select(pl.len())
    before = requests_to_send(plan.path)
    history = state.precheck_history() if state is not None else {}
    result: Precheck = await run_precheck(
        reads,
        demand,
        contacts=contacts.collect().item(),
        requests=before,
        never_found=history_never_found(history, runtime.clock.wall()),
        calls_today=None if known is None else max(0, known - settings.quota_reserve),
    )
    skipped = 0
    if result.present.height:
        found = partial(skip_pairs, pairs=result.present, reason=ALREADY_TAGGED)
        skipped = folder.rewrite(plan.path, found)
        if state is not None:
            pairs = result.present.select("contact_id", "tag").iter_rows()
            state.record_applied(pairs, runtime.clock.wall(), target.run_id)
    if state is not None and result.checked:
        state.record_precheck(result.checked, runtime.clock.wall())
    after = requests_to_send(plan.path)
    told: dict[str, Any] = {
        "strategy": result.strategy.kind,
        "reason": result.strategy.reason,
        "tags_checked": result.checked,
        "calls": result.calls,
        "pairs_already_tagged": skipped,
        "requests_before": before,
        "requests_after": after,
        "warning": result.warning,
    }
    log.info(
        "pre-check (%s): %s calls; %s pairs already tagged; requests %s -> %s",
        result.strategy.reason,
        result.cost,
        f"{skipped:,}",
        f"{before:,}",
        f"{after:,}",
        extra={"precheck": told},
    )
    return told


class _GatedReads:
    """The pre-check's reads, through the dispatcher's limiter and budget."""

    def __init__(self, dispatcher: Dispatcher, client: LeadLexClient) -> None:
        self._dispatcher = dispatcher
        self._client = client

    async def export(self, params: Sequence[tuple[str, str]]) -> tuple[Attempt, str | None] | None:
        return await self._dispatcher.call("export", lambda: self._client.export(params))

    async def count_contacts(self) -> tuple[Attempt, int | None] | None:
        return await self._dispatcher.call("list_contacts", self._client.count_contacts)
