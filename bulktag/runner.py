"""One run, start to end: read, plan, subtract what is done, dispatch, record, publish.

A run folder holds the published files and, under ``.bulktag/``, what a resumed
run needs: ``config.json`` (written first), ``plan.parquet`` and
``rejects.parquet`` (written atomically once the inputs are read), and
``journal.sqlite`` (each outcome, committed as it finishes). ``kill -9`` at any
point leaves a folder that ``--resume`` (or the job's next run) completes as if
the run had never stopped.

A job (``--job``) adds a folder of its own: a lock (one run at a time),
``state.sqlite`` (the ledger of applied tags, the list of runs),
``carry-over.parquet`` (what the last run could not finish, sent first next
time) and ``runs/``. :class:`Runtime` is what tests inject.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
import polars as pl
from tqdm import tqdm

from bulktag import __version__
from bulktag.client import LeadLexClient, check_trust_settings, make_http_client
from bulktag.clock import Clock, LoopClock
from bulktag.config import (
    ApiKey,
    DispatchSettings,
    OutputFormat,
    ReadOptions,
    RunConfig,
    check_api_url,
    load_api_key,
)
from bulktag.dispatch import Dispatcher, DispatchStatistics, PlannedContact
from bulktag.errors import BulkTagError, ConfigError, ExitCode, InputError, UsageError
from bulktag.journal import Journal, Offload, Recorder, sink_joined
from bulktag.lock import FolderLock
from bulktag.metrics import write_metrics
from bulktag.outcomes import Attempt, ContactOutcome, FailureType, Halt, Status
from bulktag.pages import after_run
from bulktag.plan import InputSummary, Plan, PlanStats, prepare_plan, slices
from bulktag.precheck import Precheck, history_never_found, run_precheck, tag_demand
from bulktag.publish import EXTENSIONS, Published, publish, write_json
from bulktag.read import InputFrame, earlier_columns, expand_inputs
from bulktag.report import describe_plan, estimate, exit_code, summary_lines
from bulktag.skip import (
    ALREADY_APPLIED,
    ALREADY_TAGGED,
    requests_to_send,
    skip_pairs,
    start_plan,
)
from bulktag.state import StateStore, default_state_dir
from bulktag.timeline import timeline_json

__all__ = ["RunReport", "Runtime", "run"]

log = logging.getLogger("bulktag")
INTERNAL = ".bulktag"
CARRY_OVER = "carry-over.parquet"


def _fast_loop() -> dict[str, Any]:
    """uvloop when it is installed (it is a dependency, except on Windows)."""
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:  # pragma: no cover
        return {}
    return {"use_uvloop": True}


@dataclass(frozen=True)
class Runtime:
    """What the environment provides; tests replace it."""

    transport: httpx2.AsyncBaseTransport | None = None
    clock: Clock = field(default_factory=LoopClock)
    backend: str = "asyncio"
    backend_options: Mapping[str, Any] | None = field(default_factory=_fast_loop)
    environ: Mapping[str, str] | None = field(default=None, repr=False)  # may hold the key
    handle_signals: bool = True
    seed: int | None = None
    #: Runs blocking calls (plan queries, plan reads) off the event loop. Tests on
    #: a virtual clock run them inline: a thread would let virtual time jump ahead.
    offload: Offload = anyio.to_thread.run_sync

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ


@dataclass(frozen=True, slots=True)
class RunReport:
    run_dir: Path
    exit_code: ExitCode
    summary: dict[str, Any]


# -- run folders and their config ------------------------------------------------------


def _new_run_dir(base: Path, clock: Clock) -> Path:
    stamp = datetime.fromtimestamp(clock.wall(), UTC).strftime("%Y%m%dT%H%M%SZ")
    folder, suffix = base / stamp, 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    return _make_run_dir(folder)


def _make_run_dir(folder: Path) -> Path:
    """A new run folder: ``folder`` absent, empty, or left by a start that failed before
    sending (only ``.bulktag/`` without a config); never a folder of someone's files."""
    if (folder / INTERNAL / "config.json").exists():
        raise ConfigError(f"{folder} already holds a run: --resume {folder} continues it")
    if folder.is_dir():
        others = sorted(p.name for p in folder.iterdir() if p.name != INTERNAL)
        if others:
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            raise UsageError(
                f"--out {folder}: the folder holds other files ({', '.join(others[:5])}{more}) "
                "that the run's files could replace; give a new or empty folder"
            )
    elif folder.exists():
        raise UsageError(f"--out {folder}: it is a file, not a folder; give a new or empty folder")
    try:
        (folder / INTERNAL).mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot create the run folder ({exc.strerror})") from None
    return folder


def _config_json(config: RunConfig, run_id: str, started: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "started_at": started,
        "bulktag": __version__,
        "inputs": list(config.inputs),
        "api_url": config.api_url,
        "key_file": None if config.key_file is None else str(config.key_file),
        "key_env": config.key_env,
        "plan_name": config.plan_name,
        "read": asdict(config.read),
        "dispatch": asdict(config.dispatch),
        "output_format": config.output_format,
        "dry_run": config.dry_run,
        "force": config.force,
        "skip_existing": config.skip_existing,
        "job": None if config.job is None else config.job.name,
        "ca_bundle": None if config.ca_bundle is None else str(config.ca_bundle),
    }


def _config_from_json(data: dict[str, Any], base: RunConfig) -> RunConfig:
    read = data["read"]
    read = ReadOptions(
        **{
            **read,
            "tags_columns": tuple(read["tags_columns"]),
            "static_tags": tuple(read["static_tags"]),
        }
    )
    return replace(
        base,
        inputs=tuple(data["inputs"]),
        api_url=data["api_url"],
        key_file=base.key_file or (Path(data["key_file"]) if data["key_file"] else None),
        key_env=data["key_env"],
        plan_name=data["plan_name"],
        read=read,
        dispatch=DispatchSettings(**data["dispatch"]),
        output_format=data["output_format"],
        dry_run=data["dry_run"],
        force=data["force"],
        skip_existing=data["skip_existing"],
        ca_bundle=base.ca_bundle or (Path(data["ca_bundle"]) if data.get("ca_bundle") else None),
    )


def _stats_json(stats: PlanStats) -> dict[str, Any]:
    return asdict(stats)


def _stats_from_json(data: dict[str, Any]) -> PlanStats:
    inputs = tuple(
        InputSummary(
            **{
                **i,
                "tag_columns": tuple(i["tag_columns"]),
                "notes": tuple(i.get("notes", ())),
                "header": tuple(i.get("header", ())),
            }
        )
        for i in data.pop("inputs")
    )
    return PlanStats(**data, inputs=inputs)


# -- one run ---------------------------------------------------------------------------


class _Run:
    """One run folder, new or resumed."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        runtime: Runtime,
        *,
        state: StateStore | None = None,
        carry_over: Path | None = None,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.runtime = runtime
        self.state = state
        self.carry_over = carry_over
        self.internal = run_dir / INTERNAL
        self.work = self.internal / "work"
        self.statistics: DispatchStatistics | None = None
        self.failed_so_far = 0
        self.sending = False  #: a session that may send has started
        meta_path = self.internal / "config.json"
        self.resumed = meta_path.exists()
        if self.resumed:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            self.config = _config_from_json(meta, config)
            self.run_id, self.started = meta["run_id"], float(meta["started_at"])
        else:
            self.run_id, self.started = str(uuid.uuid4()), runtime.clock.wall()
            write_json(meta_path, _config_json(config, self.run_id, self.started))

    def discard(self, *, keep_folder: bool) -> None:
        """Remove what this run wrote (it sent nothing): its folder, or only the folder's
        contents when the user named an existing empty folder."""
        shutil.rmtree(self.internal, ignore_errors=True)
        if not keep_folder:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()  # only if empty: never anyone else's files

    # -- plan -------------------------------------------------------------------

    def _plan(self) -> tuple[Plan, OutputFormat]:
        plan_path = self.internal / "plan.parquet"
        rejects_path = self.internal / "rejects.parquet"
        stats_path = self.internal / "plan.json"
        if stats_path.exists():
            stored = json.loads(stats_path.read_text(encoding="utf-8"))
            fmt: OutputFormat = stored.pop("output_format")
            return Plan(plan_path, rejects_path, _stats_from_json(stored)), fmt
        config = self.config
        frames, raw = prepare_plan(
            config.inputs, config.read, self.work, self.work / "plan-raw.parquet"
        )
        _refuse_overwriting_inputs(self.run_dir, frames)
        start_plan(raw.path, self.work / "plan-start.parquet")
        job = config.job
        if self.state is not None and job is not None and job.ledger and not config.force:
            days = job.ledger_days
            since = None if not days else self.runtime.clock.wall() - days * 86_400
            applied = list(self.state.applied(since))
            if applied:
                skip_pairs(
                    self.work / "plan-start.parquet",
                    self.work / "plan-ledger.parquet",
                    pl.concat(applied),
                    ALREADY_APPLIED,
                )
                (self.work / "plan-ledger.parquet").replace(self.work / "plan-start.parquet")
        (self.work / "plan-start.parquet").replace(plan_path)
        raw.rejects_path.replace(rejects_path)
        fmt = _output_format(config, frames)
        write_json(stats_path, {**_stats_json(raw.stats), "output_format": fmt})
        return Plan(plan_path, rejects_path, raw.stats), fmt

    def _todo(self, plan: Plan, journal: Journal) -> tuple[pl.LazyFrame, int]:
        """The contacts still to send: the plan less what the journal holds as final."""

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
                .select("seq", "contact_id", "send", "source", "line")
            )

        planned = pl.scan_parquet(plan.path).select("seq", "contact_id", "send", "source", "line")
        todo = sink_joined(
            planned, journal, ("status", "pending_tags"), still_to_send, self.work / "todo"
        )
        return todo, todo.select(pl.len()).collect().item()

    # -- dispatch -----------------------------------------------------------------

    async def _contacts(self, todo: pl.LazyFrame) -> AsyncGenerator[PlannedContact, None]:
        batches = slices(todo, 10_000)
        while True:
            batch = await self.runtime.offload(next, batches, None)
            if batch is None:
                return
            for seq, contact_id, tags, source, line in batch.iter_rows():
                yield PlannedContact(seq, contact_id, tuple(tags), source, line)

    async def _watch_signals(self, dispatcher: Dispatcher) -> None:
        grace = self.config.dispatch.grace
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as group:
                async for signum in signals:
                    if dispatcher.halt is Halt.SIGNAL:
                        dispatcher.cancel_requests()  # a second signal: do not wait
                        continue
                    name = signal.Signals(signum).name
                    log.warning(
                        "%s: finishing requests in flight (up to %g s), then publishing",
                        name,
                        grace,
                    )
                    dispatcher.stop(Halt.SIGNAL, f"stopped by {name}")
                    group.start_soon(self._grace, dispatcher, grace)

    async def _grace(self, dispatcher: Dispatcher, grace: float) -> None:
        await self.runtime.clock.sleep(grace)
        dispatcher.cancel_requests()

    async def _session(
        self,
        plan: Plan,
        journal: Journal,
        key: ApiKey,
        quota_left: int | None,
        todo: tuple[pl.LazyFrame, int],
    ) -> None:
        """One event loop: the pre-check (``--skip-existing``), then the dispatch of ``todo``
        (what :meth:`_todo` returned; taken again after a pre-check)."""
        settings = self.config.dispatch
        show = sys.stderr.isatty() if self.config.progress is None else self.config.progress
        bar = tqdm(unit="contact", file=sys.stderr, disable=not show, dynamic_ncols=True)

        def committed(outcomes: Sequence[ContactOutcome]) -> None:
            self.failed_so_far += sum(o.status is not Status.OK for o in outcomes)
            bar.update(len(outcomes))
            if self.failed_so_far:
                bar.set_postfix(failures=self.failed_so_far, refresh=False)

        http = make_http_client(
            self.config.api_url,
            key,
            concurrency=settings.concurrency,
            timeout=settings.timeout,
            transport=self.runtime.transport,
            ca_bundle=self.config.ca_bundle,
        )
        async with http:
            client = LeadLexClient(http, self.runtime.clock)
            dispatcher = Dispatcher(
                client,
                settings,
                self.runtime.clock,
                run_id=self.run_id,
                seed=self.runtime.seed,
                quota_remaining=quota_left,
                key_source=key_source(self.config),
            )
            recorder = Recorder(journal, committed)
            try:
                async with anyio.create_task_group() as watch:
                    if self.runtime.handle_signals:
                        watch.start_soon(self._watch_signals, dispatcher)
                    if self.config.skip_existing and not self._precheck_path.exists():
                        await self._precheck(plan, _GatedReads(dispatcher, client))
                        # the pre-check took contacts out of the plan
                        todo = await self.runtime.offload(self._todo, plan, journal)
                    contacts, total = todo
                    bar.reset(total=total)
                    await dispatcher.run(self._contacts(contacts), recorder.record)
                    watch.cancel_scope.cancel()
            finally:
                bar.close()
                self.statistics = dispatcher.statistics()

    @property
    def _precheck_path(self) -> Path:
        return self.internal / "precheck.json"

    async def _precheck(self, plan: Plan, reads: _GatedReads) -> None:
        """Ask the CRM what the plan's contacts carry; take it out of the plan."""
        demand = tag_demand(plan.path)
        contacts = pl.scan_parquet(plan.path).filter(pl.col("send").list.len() > 0).select(pl.len())
        before = requests_to_send(plan.path)
        history = self.state.precheck_history() if self.state is not None else {}
        result: Precheck = await run_precheck(
            reads,
            demand,
            contacts=contacts.collect().item(),
            requests=before,
            never_found=history_never_found(history, self.runtime.clock.wall()),
        )
        skipped = 0
        if result.present.height:
            checked = self.work / "plan-checked.parquet"
            skipped = skip_pairs(plan.path, checked, result.present, ALREADY_TAGGED)
            checked.replace(plan.path)
        if self.state is not None and result.checked:
            self.state.record_precheck(result.checked, self.runtime.clock.wall())
        after = requests_to_send(plan.path)
        report = {
            "strategy": result.strategy.kind,
            "reason": result.strategy.reason,
            "tags_checked": result.checked,
            "calls": result.calls,
            "pairs_already_tagged": skipped,
            "requests_before": before,
            "requests_after": after,
            "warning": result.warning,
        }
        write_json(self._precheck_path, report)
        log.info(
            "pre-check (%s): %s calls; %s pairs already tagged; requests %s -> %s",
            result.strategy.reason,
            result.cost,
            f"{skipped:,}",
            f"{before:,}",
            f"{after:,}",
            extra={"precheck": report},
        )

    # -- the whole run ----------------------------------------------------------------

    def execute(self) -> RunReport:
        session_start = time.monotonic()
        self.config = config = replace(self.config, api_url=check_api_url(self.config.api_url))
        env = dict(self.runtime.env)
        key = preflight(config, env)
        self.work.mkdir(parents=True, exist_ok=True, mode=0o700)
        plan, fmt = self._plan()
        if not self.resumed and not config.dry_run:
            _warn_of_earlier_reruns(plan.stats, default_state_dir(env), self.run_dir, self.started)
        _refuse_symlinked_outputs(self.run_dir, config.metrics_file)
        book = None if key is None else QuotaBook(default_state_dir(env), key, config.api_url)
        quota_left = book.remaining(self.runtime.clock.wall()) if book else None
        self._log_plan(plan, quota_left)
        if self.state is not None:
            self.state.start_run(self.run_id, self.run_dir, self.started)
        journal = Journal(self.internal / "journal.sqlite")
        try:
            journal.set_meta(run_id=self.run_id)
            todo = None if key is None else self._todo(plan, journal)
            if key is not None and todo is not None and todo[1]:
                self.sending = True
                anyio.run(
                    self._session,
                    plan,
                    journal,
                    key,
                    quota_left,
                    todo,
                    backend=self.runtime.backend,
                    backend_options=dict(self.runtime.backend_options or {}),
                )
            stats = self.statistics
            message = stats.halt_message if stats else ""
            published = publish(
                self.run_dir,
                plan,
                journal,
                halt=stats.halt if stats else None,
                halt_message="dry run: nothing was sent" if config.dry_run else message,
                fmt=fmt,
                work=self.work,
                carry_over=self.carry_over,
                applied=None if self.state is None else self.work / "applied.parquet",
            )
            # every session's calls, a resumed run's included
            other = Counter(journal.meta().get("other_calls", {}))
            other.update(stats.other_calls if stats else {})
            journal.set_meta(other_calls=dict(other))
            calls = {"add_tags": journal.calls(), **dict(sorted(other.items()))}
        finally:
            journal.close()
        if book is not None:
            book.spend(self.runtime.clock.wall(), stats)
        if self.state is not None and published.applied is not None:
            batches = slices(pl.scan_parquet(published.applied), 100_000)
            self.state.record_applied(
                (pair for batch in batches for pair in batch.iter_rows()),
                self.runtime.clock.wall(),
                self.run_id,
            )
        code = exit_code(
            stats.halt if stats else None,
            published.counts,
            published.failures_by_type,
            plan.stats.rejects,
        )
        if config.dry_run and code is ExitCode.WORK_LEFT:
            code = ExitCode.FAILURES if plan.stats.rejects else ExitCode.OK
        ended = _Ended(
            plan=plan,
            published=published,
            stats=stats,
            code=code,
            calls=calls,
            finished=self.runtime.clock.wall(),
            seconds=time.monotonic() - session_start,
        )
        return self._finish(ended)

    def _log_plan(self, plan: Plan, quota_left: int | None) -> None:
        settings = self.config.dispatch
        log.info(
            "%s:\n%s",
            "resuming the plan" if self.resumed else "plan",
            "\n".join(describe_plan(plan.stats, settings, self.config.plan_name, quota_left)),
            extra={"block": True, "plan": plan.stats.as_json()},
        )
        if estimate(plan.stats, settings, quota_left).exceeds_today and not self.config.dry_run:
            log.warning(
                "the plan needs %s calls, more than today's quota allows: the rest is deferred",
                f"{plan.stats.requests:,}",
            )

    def _finish(self, ended: _Ended) -> RunReport:
        config = self.config
        summary = self._summary(ended)
        write_json(self.run_dir / "summary.json", summary)
        if self.state is not None:
            self.state.finish_run(self.run_id, ended.finished, int(ended.code))
        after_run(self.run_dir, summary, state=self.state, job=config.job, report=config.report)
        if config.metrics_file is not None:
            job_name = config.job.name if config.job else "manual"
            try:
                write_metrics(config.metrics_file, job_name, summary, ended.finished)
            except OSError as exc:  # the run is done; its exit code matters more
                log.error("cannot write the metrics file %s: %s", config.metrics_file, exc.strerror)  # noqa: TRY400  (one line, no traceback)
        shutil.rmtree(self.work, ignore_errors=True)
        files = {
            "folder": str(self.run_dir),
            **{k: Path(v).name for k, v in summary["files"].items()},
        }
        lines = summary_lines(
            planned=ended.plan.stats.contacts,
            counts=ended.published.counts,
            types=ended.published.failures_by_type,
            rejects=ended.plan.stats.rejects,
            stats=ended.stats,
            seconds=ended.seconds,
            files=files,
            code=ended.code,
            advice=self._advice(ended),
        )
        level = logging.INFO if ended.code is ExitCode.OK else logging.WARNING
        log.log(level, "summary:\n%s", "\n".join(lines), extra={"block": True, "summary": summary})
        return RunReport(self.run_dir, ended.code, summary)

    def _advice(self, ended: _Ended) -> list[str]:
        """What the outcome suggests doing next: the command that finishes the work, or a
        likely cause (every contact not found: another workspace's key)."""
        counts, types = ended.published.counts, ended.published.failures_by_type
        lines = []
        not_found = types.get(FailureType.NOT_FOUND, 0)
        if not_found >= 2 and not_found == sum(types.values()) and not counts.get(Status.OK):
            lines.append(
                f"every contact sent was not_found: is {key_source(self.config)} for another "
                "workspace? (LeadLex reports another workspace's contacts as not found)"
            )
        if ended.code is not ExitCode.WORK_LEFT:
            return lines
        if self.config.job is not None:
            lines.append("next: the job's next run sends what is left (bulktag run --job FILE)")
            return lines
        if counts.get(Status.DEFERRED, 0) + counts.get(Status.NOT_ATTEMPTED, 0):
            lines.append(f"next: bulktag run --resume {self.run_dir}   (sends what was not sent)")
        if ended.published.retryable_failures:
            lines.append(
                f"next: bulktag run {ended.published.failures}   (sends the failures again)"
            )
        return lines

    def _summary(self, ended: _Ended) -> dict[str, Any]:
        config, stats, published = self.config, ended.stats, ended.published
        total_calls = sum(ended.calls.values())
        precheck = (
            json.loads(self._precheck_path.read_text(encoding="utf-8"))
            if self._precheck_path.exists()
            else None
        )

        def iso(unix: float) -> str:
            return (
                datetime.fromtimestamp(unix, UTC)
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z")
            )

        return {
            "bulktag": __version__,
            "run_id": self.run_id,
            "job": config.job.name if config.job else None,
            "resumed": self.resumed,
            "started_at": iso(self.started),
            "finished_at": iso(ended.finished),
            "duration_seconds": round(ended.seconds, 3),
            "exit_code": int(ended.code),
            "exit_meaning": ended.code.meaning,
            "dry_run": config.dry_run,
            "api_url": config.api_url,
            "plan": ended.plan.stats.as_json(),
            "contacts": {"planned": ended.plan.stats.contacts, **published.counts},
            "skipped_by_reason": published.skipped_by_reason,
            "failures_by_type": published.failures_by_type,
            "rejects": {
                "total": ended.plan.stats.rejects,
                "by_reason": ended.plan.stats.rejects_by_reason,
            },
            "calls": {**ended.calls, "total": total_calls},
            "naive_calls": ended.plan.stats.requests,
            "calls_saved": ended.plan.stats.requests - total_calls,
            "precheck": precheck,
            "verified": published.verified,
            "quota": {
                "limit": stats.quota_limit if stats else None,
                "remaining": stats.quota_remaining if stats else None,
                "reset": stats.quota_reset if stats else None,
                "before": stats.quota_before if stats else None,
            },
            "halt": None if stats is None or stats.halt is None else str(stats.halt),
            "halt_message": stats.halt_message if stats else "",
            "rate": {
                "configured_per_minute": config.dispatch.rate_per_minute,
                "final_per_minute": stats.limiter.rate if stats else None,
                "rate_limited_429s": stats.limiter.rate_limited if stats else 0,
            },
            "timeline": timeline_json(
                stats.timeline_started if stats else None,
                stats.timeline if stats else (),
                config.dispatch.rate_per_minute,
                stats.limiter.rate if stats else None,
            ),
            "files": {
                "results": str(published.results),
                "failures": str(published.failures),
                "rejects": str(published.rejects),
                "summary": str(self.run_dir / "summary.json"),
            },
        }


class _GatedReads:
    """The pre-check's reads, through the dispatcher's limiter and budget."""

    def __init__(self, dispatcher: Dispatcher, client: LeadLexClient) -> None:
        self._dispatcher = dispatcher
        self._client = client

    async def export(self, params: Sequence[tuple[str, str]]) -> tuple[Attempt, str | None] | None:
        return await self._dispatcher.call("export", lambda: self._client.export(params))

    async def count_contacts(self) -> tuple[Attempt, int | None] | None:
        return await self._dispatcher.call("list_contacts", self._client.count_contacts)


@dataclass(frozen=True, slots=True)
class _Ended:
    """What a finished session knows, for the summary."""

    plan: Plan
    published: Published
    stats: DispatchStatistics | None
    code: ExitCode
    calls: dict[str, int]  #: by endpoint
    finished: float
    seconds: float


class QuotaBook:
    """A key's daily quota in the user's store: read before a run, written after it."""

    def __init__(self, state_dir: Path, key: ApiKey, api_url: str) -> None:
        self._store = state_dir / "quota.sqlite"
        self._fingerprint = _fingerprint(key, api_url)

    def remaining(self, now: float) -> int | None:
        with StateStore(self._store) as store:
            known = store.quota(self._fingerprint, now)
        return known.remaining if known else None

    def spend(self, now: float, stats: DispatchStatistics | None) -> None:
        if stats is None:
            return
        with StateStore(self._store) as store:
            store.spend(
                self._fingerprint,
                now,
                calls=stats.calls + sum(stats.other_calls.values()),
                remaining=stats.quota_remaining,
                limit=stats.quota_limit,
                reset=stats.quota_reset,
            )


def _fingerprint(key: ApiKey, api_url: str) -> str:
    """Names a workspace's quota in the state store: a hash of the key and the URL."""
    return hashlib.sha256(f"{api_url}\x1f{key.reveal()}".encode()).hexdigest()[:24]


def _output_format(config: RunConfig, frames: Sequence[InputFrame]) -> OutputFormat:
    """The input's format (CSV in, CSV out...); CSV when inputs mix formats."""
    if config.output_format:
        return config.output_format
    formats = {f.format for f in frames if Path(f.source).name != CARRY_OVER} or {"csv"}
    return formats.pop() if len(formats) == 1 else "csv"


def _refuse_symlinked_outputs(run_dir: Path, metrics: Path | None) -> None:
    """Outputs are never written through a symbolic link (checked before any call)."""
    names = [f"{stem}.{ext}" for stem in ("results", "failures", "rejects") for ext in EXTENSIONS]
    for path in [
        *(run_dir / name for name in (*names, "summary.json")),
        *([metrics] if metrics else []),
    ]:
        if path.is_symlink():
            raise ConfigError(f"{path} is a symbolic link: bulktag does not write through links")


def _warn_of_earlier_reruns(stats: PlanStats, state_dir: Path, run_dir: Path, at: float) -> None:
    """A failures file sent again: warn when an earlier run already sent this one (same
    content), naming that run's own failures file; then remember this run."""
    for item in stats.inputs:
        path = Path(item.source)
        if earlier_columns(item.header) is None or not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with StateStore(state_dir / "quota.sqlite") as store:
            for earlier, when in store.reruns_of(digest):
                failures = next(iter(sorted(earlier.glob("failures.*"))), earlier / "failures.csv")
                stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
                log.warning(
                    "%s was already sent by the run %s (%s): what that run could not do is in "
                    "%s; sending this file again re-sends what it did",
                    item.source,
                    earlier,
                    stamp,
                    failures,
                )
            store.record_rerun(digest, item.source, run_dir, at)


def preflight(config: RunConfig, env: Mapping[str, str]) -> ApiKey | None:
    """What can be checked before a run folder exists: the URL, the key (none for a dry
    run), the TLS settings and the metrics file's folder. ConfigError (78) otherwise."""
    check_api_url(config.api_url)
    _check_metrics_file(config.metrics_file)
    if config.dry_run:
        return None
    key = load_api_key(config.key_file, dict(env), config.key_env)
    check_trust_settings(os.environ, config.ca_bundle)
    return key


def key_source(config: RunConfig) -> str:
    """Where the key came from, for messages: "the key in $LEADLEX_API_KEY"."""
    if config.key_file is not None:
        return f"the key in the file {config.key_file}"
    return f"the key in ${config.key_env}"


def _check_metrics_file(path: Path | None) -> None:
    """The metrics file's folder exists (node_exporter's textfile directory: bulktag does
    not create it, as a typo would silently write where nothing reads)."""
    if path is not None and not path.parent.is_dir():
        raise ConfigError(
            f"--metrics-file {path}: the folder {path.parent} does not exist; give the "
            "node_exporter textfile collector's directory (--collector.textfile.directory)"
        )


def _refuse_overwriting_inputs(run_dir: Path, frames: Sequence[InputFrame]) -> None:
    ours = {
        (run_dir / f"{stem}.{ext}").resolve()
        for stem in ("results", "failures", "rejects")
        for ext in ("csv", "parquet", "xlsx", "ndjson")
    }
    for frame in frames:
        if frame.source not in ("<stdin>",) and Path(frame.source).resolve() in ours:
            raise ConfigError(
                f"{frame.source}: the output would overwrite this input; choose another --out"
            )


# -- entry points -------------------------------------------------------------------------


def run(config: RunConfig, runtime: Runtime | None = None) -> RunReport:
    """Run (or resume, or run a job): plan, send, publish; returns the exit code and the summary."""
    runtime = runtime or Runtime()
    os.umask(0o077)  # what a run writes (plans, journals, temporary files) is the user's only
    if config.job is not None:
        return _run_job(config, runtime)
    if config.resume is not None:
        folder = config.resume
        if not (folder / INTERNAL / "config.json").exists():
            raise ConfigError(f"{folder} is not a bulktag run folder (no {INTERNAL}/config.json)")
        with FolderLock(folder / INTERNAL):
            return _Run(config, folder, runtime).execute()
    preflight(config, runtime.env)  # a mistake there leaves no folder behind
    existed = config.out_dir is not None and config.out_dir.exists()
    folder = (
        _make_run_dir(config.out_dir)
        if config.out_dir
        else _new_run_dir(Path("runs"), runtime.clock)
    )
    with FolderLock(folder / INTERNAL):
        return _execute(_Run(config, folder, runtime), keep_folder=existed)


def _execute(one: _Run, *, keep_folder: bool = False) -> RunReport:
    """``one.execute()``; a new run that fails before it sends anything leaves no run folder
    behind (only an empty folder the user named), so the corrected command may use it."""
    try:
        return one.execute()
    except BulkTagError:
        if not one.resumed and not one.sending:
            one.discard(keep_folder=keep_folder)
        raise


def _job_inputs(config: RunConfig, carry: Path) -> tuple[str, ...]:
    """Carried-over contacts first, then the job's inputs (a glob matching nothing warns)."""
    found: list[str] = [str(carry)] if carry.exists() else []
    for pattern in config.inputs:
        try:
            found.extend(expand_inputs([pattern]))
        except InputError as exc:
            log.warning("%s", exc)
    if not found:
        raise InputError("no input: the job's inputs match no file and nothing was carried over")
    return tuple(found)


def _run_job(config: RunConfig, runtime: Runtime) -> RunReport:
    job = config.job
    assert job is not None
    job.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    job_fix = f"the job keeps its state in its out folder ({job.folder}): make it writable"
    with FolderLock(job.folder), StateStore(job.folder / "state.sqlite", fix=job_fix) as state:
        carry = job.folder / CARRY_OVER
        for unfinished in state.unfinished_runs():
            if (unfinished / INTERNAL / "config.json").exists():
                log.warning("resuming the interrupted run %s", unfinished)
                _Run(config, unfinished, runtime, state=state, carry_over=carry).execute()
            else:
                state.forget_run(unfinished)
        inputs = _job_inputs(config, carry)
        folder = _new_run_dir(job.folder / "runs", runtime.clock)
        one = _Run(replace(config, inputs=inputs), folder, runtime, state=state, carry_over=carry)
        try:
            report = _execute(one)
        except BulkTagError:
            if not one.sending:
                state.forget_run(folder)  # the next night starts afresh, not from this mistake
            raise
        if job.keep_runs:
            for old in state.run_dirs()[: -job.keep_runs]:
                shutil.rmtree(old, ignore_errors=True)
                state.forget_run(old)
    return report
