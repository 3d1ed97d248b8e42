"""One run, start to end: read, plan, dispatch, record, publish.

:class:`Runtime` is what tests inject (the transport, the clock, the event loop
backend); everything else comes from :class:`~bulktag.config.RunConfig`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
from tqdm import tqdm

from bulktag import __version__
from bulktag.client import LeadLexClient, make_http_client
from bulktag.clock import Clock, LoopClock
from bulktag.config import ApiKey, OutputFormat, RunConfig, check_api_url, load_api_key
from bulktag.dispatch import Dispatcher, DispatchStatistics, Halt, PlannedContact
from bulktag.errors import ConfigError, ExitCode
from bulktag.journal import Journal, Offload, Recorder
from bulktag.outcomes import ContactOutcome, Status
from bulktag.plan import Plan, build_plan
from bulktag.publish import Published, publish, write_json
from bulktag.read import InputFrame, expand_inputs, read_input
from bulktag.report import describe_plan, estimate, exit_code, summary_lines

__all__ = ["RunReport", "Runtime", "prepare_plan", "run"]

log = logging.getLogger("bulktag")


@dataclass(frozen=True)
class Runtime:
    """What the environment provides; tests replace it."""

    transport: httpx2.AsyncBaseTransport | None = None
    clock: Clock = field(default_factory=LoopClock)
    backend: str = "asyncio"
    backend_options: Mapping[str, Any] | None = None
    environ: Mapping[str, str] | None = None
    handle_signals: bool = True
    seed: int | None = None
    #: Runs blocking calls (SQLite commits, plan reads) off the event loop. Tests on
    #: a virtual clock run them inline: a thread would let virtual time jump ahead.
    offload: Offload = anyio.to_thread.run_sync


@dataclass(frozen=True, slots=True)
class RunReport:
    run_dir: Path
    exit_code: ExitCode
    summary: dict[str, Any]


def _new_run_dir(base: Path | None, clock: Clock) -> Path:
    if base is None:
        stamp = datetime.fromtimestamp(clock.wall(), UTC).strftime("%Y%m%dT%H%M%SZ")
        base = Path("runs") / stamp
        suffix = 1
        while base.exists():
            suffix += 1
            base = base.with_name(f"{stamp}-{suffix}")
    if (base / "journal.sqlite").exists():
        raise ConfigError(f"{base} already holds a run; choose another --out folder")
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"{base}: cannot create the output folder ({exc.strerror})") from None
    return base


def prepare_plan(config: RunConfig, work: Path, plan_path: Path) -> tuple[list[InputFrame], Plan]:
    """Read every input and write the plan; raises InputError (exit 65) before any request."""
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    frames = [read_input(name, config.read, work) for name in expand_inputs(config.inputs)]
    return frames, build_plan(frames, config.read, plan_path, work / "rejects.parquet")


def _output_format(config: RunConfig, frames: Sequence[InputFrame]) -> OutputFormat:
    """The input's format (CSV in, CSV out...); CSV when inputs mix formats."""
    if config.output_format:
        return config.output_format
    formats = {f.format for f in frames}
    return formats.pop() if len(formats) == 1 else "csv"


def _refuse_overwriting_inputs(run_dir: Path, frames: Sequence[InputFrame]) -> None:
    ours = {
        (run_dir / f"{stem}.{ext}").resolve()
        for stem in ("results", "failures", "rejects")
        for ext in ("csv", "parquet", "xlsx", "ndjson")
    }
    for frame in frames:
        if frame.source != "-" and Path(frame.source).resolve() in ours:
            raise ConfigError(
                f"{frame.source}: the output would overwrite this input; choose another --out"
            )


class _Job:
    def __init__(
        self,
        *,
        config: RunConfig,
        runtime: Runtime,
        key: ApiKey | None,
        plan: Plan,
        journal: Journal,
        run_id: str,
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.key = key
        self.plan = plan
        self.journal = journal
        self.run_id = run_id
        self.statistics: DispatchStatistics | None = None
        self.failed_so_far = 0

    async def _contacts(self) -> AsyncGenerator[PlannedContact, None]:
        batches = self.plan.batches()
        while True:
            batch = await self.runtime.offload(next, batches, None)
            if batch is None:
                return
            for seq, contact_id, tags, source, line in batch.select(
                "seq", "contact_id", "tags", "source", "line"
            ).iter_rows():
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

    async def dispatch(self, show_progress: bool) -> None:
        settings = self.config.dispatch
        assert self.key is not None
        bar = tqdm(
            total=self.plan.stats.contacts,
            unit="contact",
            file=sys.stderr,
            disable=not show_progress,
            dynamic_ncols=True,
            smoothing=0.05,
        )

        def committed(outcomes: Sequence[ContactOutcome]) -> None:
            self.failed_so_far += sum(o.status is not Status.OK for o in outcomes)
            bar.update(len(outcomes))
            if self.failed_so_far:
                bar.set_postfix(failures=self.failed_so_far, refresh=False)

        http = make_http_client(
            self.config.api_url,
            self.key,
            concurrency=settings.concurrency,
            timeout=settings.timeout,
            transport=self.runtime.transport,
        )
        async with http:
            dispatcher = Dispatcher(
                LeadLexClient(http, self.runtime.clock),
                settings,
                self.runtime.clock,
                run_id=self.run_id,
                seed=self.runtime.seed,
            )
            recorder = Recorder(self.journal, committed, self.runtime.offload)
            try:
                async with anyio.create_task_group() as outer:
                    outer.start_soon(recorder.run)
                    async with anyio.create_task_group() as watch:
                        if self.runtime.handle_signals:
                            watch.start_soon(self._watch_signals, dispatcher)
                        await dispatcher.run(self._contacts(), recorder.record)
                        watch.cancel_scope.cancel()
                    recorder.close()
            finally:
                bar.close()
                self.statistics = dispatcher.statistics()


def run(config: RunConfig, runtime: Runtime | None = None) -> RunReport:
    """Run one job: plan, send, publish; returns the exit code and the summary."""
    runtime = runtime or Runtime()
    started_wall, started = runtime.clock.wall(), time.monotonic()
    api_url = check_api_url(config.api_url)
    key = (
        None
        if config.dry_run
        else load_api_key(config.key_file, dict(runtime.environ or os.environ))
    )
    run_dir = _new_run_dir(config.out_dir, runtime.clock)
    work = run_dir / ".work"
    frames, plan = prepare_plan(config, work, run_dir / "plan.parquet")
    _refuse_overwriting_inputs(run_dir, frames)
    settings = config.dispatch
    plan_lines = describe_plan(plan.stats, settings, config.plan_name)
    log.info(
        "plan:\n%s", "\n".join(plan_lines), extra={"block": True, "plan": plan.stats.as_json()}
    )
    if estimate(plan.stats, settings, None).exceeds_today and not config.dry_run:
        log.warning(
            "the plan needs %s calls, more than a day of quota (%s): the rest will be deferred",
            f"{plan.stats.requests:,}",
            f"{settings.per_day:,}",
        )
    run_id = str(uuid.uuid4())
    journal = Journal(run_dir / "journal.sqlite")
    config = replace(config, api_url=api_url)
    job = _Job(config=config, runtime=runtime, key=key, plan=plan, journal=journal, run_id=run_id)
    try:
        journal.set_meta(run_id=run_id, started_at=started_wall, version=__version__)
        if not config.dry_run and plan.stats.contacts:
            show = sys.stderr.isatty() if config.progress is None else config.progress
            anyio.run(
                job.dispatch,
                show,
                backend=runtime.backend,
                backend_options=dict(runtime.backend_options or {}),
            )
        stats = job.statistics
        halt = stats.halt if stats else None
        message = (
            "dry run: nothing was sent" if config.dry_run else (stats.halt_message if stats else "")
        )
        fmt = _output_format(config, frames)
        published = publish(
            run_dir, plan, journal, halt=halt, halt_message=message, fmt=fmt, work=work
        )
    finally:
        journal.close()
    code = exit_code(halt, published.counts, published.failures_by_type, plan.stats.rejects)
    if config.dry_run and code is ExitCode.WORK_LEFT:
        code = ExitCode.FAILURES if plan.stats.rejects else ExitCode.OK
    seconds = time.monotonic() - started
    summary = _summary(
        config=config,
        run_id=run_id,
        plan=plan,
        published=published,
        stats=stats,
        code=code,
        started=started_wall,
        finished=runtime.clock.wall(),
        seconds=seconds,
        run_dir=run_dir,
    )
    write_json(run_dir / "summary.json", summary)
    shutil.rmtree(work, ignore_errors=True)
    files = {"folder": str(run_dir), **{k: Path(v).name for k, v in summary["files"].items()}}
    lines = summary_lines(
        planned=plan.stats.contacts,
        counts=published.counts,
        types=published.failures_by_type,
        rejects=plan.stats.rejects,
        stats=stats,
        seconds=seconds,
        files=files,
        code=code,
    )
    level = logging.INFO if code is ExitCode.OK else logging.WARNING
    log.log(level, "summary:\n%s", "\n".join(lines), extra={"block": True, "summary": summary})
    return RunReport(run_dir, code, summary)


def _summary(
    *,
    config: RunConfig,
    run_id: str,
    plan: Plan,
    published: Published,
    stats: DispatchStatistics | None,
    code: ExitCode,
    started: float,
    finished: float,
    seconds: float,
    run_dir: Path,
) -> dict[str, Any]:
    def iso(unix: float) -> str:
        return (
            datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )

    return {
        "bulktag": __version__,
        "run_id": run_id,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_seconds": round(seconds, 3),
        "exit_code": int(code),
        "exit_meaning": code.meaning,
        "dry_run": config.dry_run,
        "api_url": config.api_url,
        "plan": plan.stats.as_json(),
        "contacts": {"planned": plan.stats.contacts, **published.counts},
        "failures_by_type": published.failures_by_type,
        "rejects": {"total": plan.stats.rejects, "by_reason": plan.stats.rejects_by_reason},
        "calls": {"add_tags": stats.calls if stats else 0, "total": stats.calls if stats else 0},
        "quota": {
            "limit": stats.quota_limit if stats else None,
            "remaining": stats.quota_remaining if stats else None,
            "reset": stats.quota_reset if stats else None,
        },
        "halt": None if stats is None or stats.halt is None else str(stats.halt),
        "halt_message": stats.halt_message if stats else "",
        "rate": {
            "configured_per_minute": config.dispatch.rate_per_minute,
            "final_per_minute": stats.limiter.rate if stats else None,
            "rate_limited_429s": stats.limiter.rate_limited if stats else 0,
        },
        "files": {
            "results": str(published.results),
            "failures": str(published.failures),
            "rejects": str(published.rejects),
            "summary": str(run_dir / "summary.json"),
        },
    }
