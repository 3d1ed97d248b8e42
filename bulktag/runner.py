"""One run, start to end: plan, send, publish, summarise; and a job's night of runs.

:meth:`_Run.execute` is the run as a straight line of stages, each returning what the
next needs: the plan (:mod:`bulktag.plan`, kept in the run folder,
:mod:`bulktag.rundir`), the quota left today (:mod:`bulktag.quota`), a dispatch
session (:mod:`bulktag.session`) that records each outcome in the journal, the
published files (:mod:`bulktag.publish`), and the :class:`~bulktag.summary.Summary`
from which ``summary.json``, the stderr summary, the metrics and the exit code come.

A job (``--job``) adds a folder of its own: a lock (one run at a time),
``state.sqlite`` (:mod:`bulktag.state`: the ledger of applied tags, the list of
runs), ``carry-over.parquet`` (what the last run could not finish, sent first next
time) and ``runs/``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import anyio
import polars as pl

from bulktag.client import check_trust_settings
from bulktag.config import ApiKey, OutputFormat, RunConfig, check_api_url, load_api_key
from bulktag.errors import BulkTagError, ConfigError, ExitCode, InputError
from bulktag.journal import Journal
from bulktag.lock import FolderLock
from bulktag.metrics import write_metrics
from bulktag.outcomes import FailureType, Status
from bulktag.ownfiles import CARRY_OVER, OwnKind
from bulktag.pages import after_run
from bulktag.plan import Plan, PlanStats, prepare_plan
from bulktag.publish import Published, publish, write_json
from bulktag.quota import QuotaBook, QuotaStore, default_state_dir
from bulktag.read import InputFrame, expand_inputs
from bulktag.report import describe_plan, estimate, summary_lines
from bulktag.rundir import RunFolder, is_run_folder, make_run_dir, new_run_dir
from bulktag.runtime import Runtime
from bulktag.scan import slices
from bulktag.session import SessionResult, Target, send, unsent
from bulktag.skip import ALREADY_APPLIED, skip_pairs, start_plan
from bulktag.state import JobState
from bulktag.summary import OutputFiles, QuotaView, RateView, Summary, exit_code

__all__ = ["RunReport", "Runtime", "run"]

log = logging.getLogger("bulktag")


@dataclass(frozen=True, slots=True)
class RunReport:
    run_dir: Path
    exit_code: ExitCode
    summary: Summary


class _Run:
    """One run folder, new or resumed."""

    def __init__(
        self,
        config: RunConfig,
        folder: RunFolder,
        runtime: Runtime,
        *,
        state: JobState | None = None,
        carry_over: Path | None = None,
    ) -> None:
        self.folder = folder
        self.runtime = runtime
        self.state = state
        self.carry_over = carry_over
        stored, self.identity = folder.open(config, str(uuid.uuid4()), runtime.clock.wall())
        self.config = replace(stored, api_url=check_api_url(stored.api_url))
        self.sending = False  #: a session that may send has started

    def execute(self) -> RunReport:
        began = time.monotonic()
        config, folder, env = self.config, self.folder, self.runtime.env
        key = preflight(config, env)
        folder.work.mkdir(parents=True, exist_ok=True, mode=0o700)
        plan, fmt = folder.stored_plan() or self._plan()
        if not self.identity.resumed and not config.dry_run:
            _warn_of_earlier_reruns(plan.stats, default_state_dir(env), folder.path, self.now)
        folder.refuse_symlinked_outputs(config.metrics_file)
        book = None if key is None else QuotaBook(default_state_dir(env), key, config.api_url)
        quota_left = None if book is None else book.remaining(self.now)
        self._log_plan(plan, quota_left)
        if self.state is not None:
            self.state.start_run(self.identity.run_id, folder.path, self.identity.started)
        journal = Journal(folder.journal)
        try:
            session = None if key is None else self._send(plan, journal, key, quota_left)
            stats = None if session is None else session.statistics
            published = publish(
                folder.path,
                plan,
                journal,
                halt=None if stats is None else stats.halt,
                halt_message="dry run: nothing was sent"
                if config.dry_run
                else ("" if stats is None else stats.halt_message),
                fmt=fmt,
                work=folder.work,
                carry_over=self.carry_over,
                applied=None if self.state is None else folder.work / "applied.parquet",
                rows=self.runtime.slice_rows,
            )
            calls = journal.add_calls({} if stats is None else stats.other_calls)
        finally:
            journal.close()
        if book is not None and stats is not None:
            book.spend(
                self.now,
                calls=stats.calls + sum(stats.other_calls.values()),
                remaining=stats.quota_remaining,
                limit=stats.quota_limit,
                reset=stats.quota_reset,
            )
        self._record_applied(published)
        precheck = None if session is None else session.precheck
        summary = self._summarise(
            plan=plan,
            published=published,
            session=session,
            calls=calls,
            precheck=precheck or folder.stored_precheck(),
            seconds=time.monotonic() - began,
        )
        return self._finish(summary, published)

    @property
    def now(self) -> float:
        return self.runtime.clock.wall()

    # -- the stages ---------------------------------------------------------------------

    def _plan(self) -> tuple[Plan, OutputFormat]:
        """Read the inputs, less what the job's ledger says was applied, into the folder."""
        config, folder, work = self.config, self.folder, self.folder.work
        frames, raw = prepare_plan(config.inputs, config.read, work, work / "plan-raw.parquet")
        folder.refuse_overwriting_inputs(frames)
        start_plan(raw.path, work / "plan-start.parquet")
        job = config.job
        if self.state is not None and job is not None and job.ledger and not config.force:
            since = None if not job.ledger_days else self.now - job.ledger_days * 86_400
            applied = list(self.state.applied(since))
            if applied:
                ledgered = work / "plan-ledger.parquet"
                skip_pairs(
                    work / "plan-start.parquet", ledgered, pl.concat(applied), ALREADY_APPLIED
                )
                ledgered.replace(work / "plan-start.parquet")
        plan = folder.plan(raw.stats)
        (work / "plan-start.parquet").replace(plan.path)
        raw.rejects_path.replace(plan.rejects_path)
        fmt = _output_format(config, frames)
        folder.store_plan(raw.stats, fmt)
        return plan, fmt

    def _send(
        self, plan: Plan, journal: Journal, key: ApiKey, quota_left: int | None
    ) -> SessionResult | None:
        """A dispatch session for what is still to send (None: nothing is)."""
        folder, config = self.folder, self.config
        todo = unsent(plan, journal, folder.work, self.runtime.slice_rows)
        if not todo[1]:
            return None
        self.sending = True
        target = Target(config, key, key_source(config), self.identity.run_id, quota_left)
        ask = config.skip_existing and not folder.precheck.exists()
        session = functools.partial(
            send,
            target,
            plan,
            journal,
            self.runtime,
            todo=todo,
            work=folder.work,
            precheck_path=folder.precheck if ask else None,
            state=self.state,
        )
        return anyio.run(
            session,
            backend=self.runtime.backend,
            backend_options=dict(self.runtime.backend_options or {}),
        )

    def _record_applied(self, published: Published) -> None:
        """The pairs this run applied go into the job's ledger, in batches."""
        if self.state is None or published.applied is None:
            return
        batches = slices(pl.scan_parquet(published.applied), 100_000)
        self.state.record_applied(
            (pair for batch in batches for pair in batch.iter_rows()),
            self.now,
            self.identity.run_id,
        )

    def _summarise(
        self,
        *,
        plan: Plan,
        published: Published,
        session: SessionResult | None,
        calls: Mapping[str, int],
        precheck: Mapping[str, object] | None,
        seconds: float,
    ) -> Summary:
        config = self.config
        stats = None if session is None else session.statistics
        halt = None if stats is None else stats.halt
        return Summary(
            run_id=self.identity.run_id,
            job=None if config.job is None else config.job.name,
            resumed=self.identity.resumed,
            started_at=self.identity.started,
            finished_at=self.now,
            duration_seconds=seconds,
            exit_code=exit_code(
                halt,
                published.counts,
                published.failures_by_type,
                plan.stats.rejects,
                dry_run=config.dry_run,
            ),
            dry_run=config.dry_run,
            api_url=config.api_url,
            plan=plan.stats,
            contacts=published.counts,
            skipped_by_reason=published.skipped_by_reason,
            failures_by_type=published.failures_by_type,
            calls=calls,
            precheck=precheck,
            verified=published.verified,
            quota=QuotaView()
            if stats is None
            else QuotaView(
                stats.quota_limit, stats.quota_remaining, stats.quota_reset, stats.quota_before
            ),
            halt=halt,
            halt_message="" if stats is None else stats.halt_message,
            rate=RateView(
                configured_per_minute=config.dispatch.rate_per_minute,
                final_per_minute=None if stats is None else stats.limiter.rate,
                rate_limited_429s=0 if stats is None else stats.limiter.rate_limited,
            ),
            files=OutputFiles(
                published.results, published.failures, published.rejects, self.folder.summary
            ),
            timeline=() if stats is None else stats.timeline,
            timeline_started=None if stats is None else stats.timeline_started,
        )

    def _finish(self, summary: Summary, published: Published) -> RunReport:
        """Write ``summary.json`` and the metrics, say how it went; the run is over."""
        config = self.config
        written = summary.to_json()
        write_json(self.folder.summary, written)
        if self.state is not None:
            self.state.finish_run(summary.run_id, summary.finished_at, int(summary.exit_code))
        after_run(self.folder.path, written, state=self.state, job=config.job, report=config.report)
        if config.metrics_file is not None:
            try:
                write_metrics(config.metrics_file, summary)
            except OSError as exc:  # the run is done; its exit code matters more
                log.error("cannot write the metrics file %s: %s", config.metrics_file, exc.strerror)  # noqa: TRY400  (one line, no traceback)
        self.folder.clear_work()
        lines = summary_lines(summary, self._advice(summary, published))
        level = logging.INFO if summary.exit_code is ExitCode.OK else logging.WARNING
        log.log(
            level,
            "summary:\n%s",
            "\n".join(lines),
            extra={"block": True, "summary": written},
        )
        return RunReport(self.folder.path, summary.exit_code, summary)

    def _log_plan(self, plan: Plan, quota_left: int | None) -> None:
        settings = self.config.dispatch
        log.info(
            "%s:\n%s",
            "resuming the plan" if self.identity.resumed else "plan",
            "\n".join(describe_plan(plan.stats, settings, self.config.plan_name, quota_left)),
            extra={"block": True, "plan": plan.stats.as_json()},
        )
        if estimate(plan.stats, settings, quota_left).exceeds_today and not self.config.dry_run:
            log.warning(
                "the plan needs %s calls, more than today's quota allows: the rest is deferred",
                f"{plan.stats.requests:,}",
            )

    def _advice(self, summary: Summary, published: Published) -> list[str]:
        """What the outcome suggests doing next: the command that finishes the work, or a
        likely cause (every contact not found: another workspace's key)."""
        counts, types = summary.contacts, summary.failures_by_type
        lines = []
        not_found = types.get(FailureType.NOT_FOUND, 0)
        if not_found >= 2 and not_found == sum(types.values()) and not counts.get(Status.OK):
            lines.append(
                f"every contact sent was not_found: is {key_source(self.config)} for another "
                "workspace? (LeadLex reports another workspace's contacts as not found)"
            )
        if summary.exit_code is not ExitCode.WORK_LEFT:
            return lines
        if self.config.job is not None:
            lines.append("next: the job's next run sends what is left (bulktag run --job FILE)")
            return lines
        if counts.get(Status.DEFERRED, 0) + counts.get(Status.NOT_ATTEMPTED, 0):
            lines.append(
                f"next: bulktag run --resume {self.folder.path}   (sends what was not sent)"
            )
        if published.retryable_failures:
            lines.append(f"next: bulktag run {published.failures}   (sends the failures again)")
        return lines


def _output_format(config: RunConfig, frames: list[InputFrame]) -> OutputFormat:
    """The input's format (CSV in, CSV out...); CSV when inputs mix formats."""
    if config.output_format:
        return config.output_format
    formats = (
        {f.format for f in frames if f.own is None}
        or {f.format for f in frames if f.own is not OwnKind.CARRY_OVER}
        or {"csv"}
    )
    return formats.pop() if len(formats) == 1 else "csv"


def _warn_of_earlier_reruns(stats: PlanStats, state_dir: Path, run_dir: Path, at: float) -> None:
    """A failures file sent again: warn when an earlier run already sent this one (same
    content), naming that run's own failures file; then remember this run."""
    for item in stats.inputs:
        path = Path(item.source)
        if item.own not in (OwnKind.FAILURES, OwnKind.RESULTS) or not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with QuotaStore(state_dir) as store:
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


# -- entry points -------------------------------------------------------------------------


def run(config: RunConfig, runtime: Runtime | None = None) -> RunReport:
    """Run (or resume, or run a job): plan, send, publish; returns the exit code and the summary."""
    runtime = runtime or Runtime()
    os.umask(0o077)  # what a run writes (plans, journals, temporary files) is the user's only
    if config.job is not None:
        return _run_job(config, runtime)
    if config.resume is not None:
        folder = RunFolder(config.resume)
        if not is_run_folder(folder.path):
            raise ConfigError(
                f"{folder.path} is not a bulktag run folder (no {folder.internal.name}/config.json)"
            )
        with FolderLock(folder.internal):
            return _Run(config, folder, runtime).execute()
    preflight(config, runtime.env)  # a mistake there leaves no folder behind
    existed = config.out_dir is not None and config.out_dir.exists()
    path = (
        make_run_dir(config.out_dir) if config.out_dir else new_run_dir(Path("runs"), runtime.clock)
    )
    folder = RunFolder(path)
    with FolderLock(folder.internal):
        return _execute(_Run(config, folder, runtime), keep_folder=existed)


def _execute(one: _Run, *, keep_folder: bool = False) -> RunReport:
    """``one.execute()``; a new run that fails before it sends anything leaves no run folder
    behind (only an empty folder the user named), so the corrected command may use it."""
    try:
        return one.execute()
    except BulkTagError:
        if not one.identity.resumed and not one.sending:
            one.folder.discard(keep_folder=keep_folder)
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
    with FolderLock(job.folder), JobState(job.folder) as state:
        carry = job.folder / CARRY_OVER
        for unfinished in state.unfinished_runs():
            if is_run_folder(unfinished):
                log.warning("resuming the interrupted run %s", unfinished)
                _Run(
                    config, RunFolder(unfinished), runtime, state=state, carry_over=carry
                ).execute()
            else:
                state.forget_run(unfinished)
        inputs = _job_inputs(config, carry)
        folder = RunFolder(new_run_dir(job.folder / "runs", runtime.clock))
        one = _Run(replace(config, inputs=inputs), folder, runtime, state=state, carry_over=carry)
        try:
            report = _execute(one)
        except BulkTagError:
            if not one.sending:
                state.forget_run(folder.path)  # the next night starts afresh, not from this mistake
            raise
        if job.keep_runs:
            for old in state.run_dirs()[: -job.keep_runs]:
                shutil.rmtree(old, ignore_errors=True)
                state.forget_run(old)
    return report
