"""One run, start to end: plan, send, publish, summarise; and a job's night of runs.

:meth:`_Run.execute` is the run as a straight line of stages, each returning what the
next needs: the plan (:mod:`bulktag.plan.build`, kept in the run folder,
:mod:`bulktag.run.folder`), the quota left today (:mod:`bulktag.state.quota`), a dispatch
session (:mod:`bulktag.run.session`) that records each outcome in the journal, the
published files (:mod:`bulktag.outputs.publish`), and the :class:`~bulktag.outputs.summary.Summary`
from which ``summary.json``, the stderr summary, the metrics and the exit code come.

A job (``--job``) adds a folder of its own: a lock (one run at a time),
``state.sqlite`` (:mod:`bulktag.state.job`: the ledger of applied tags, the pairs that
failed for good, the list of runs and nights), ``carry-over.parquet`` (what the last
run could not finish, sent first next time), ``permanent-failures.csv`` (the pairs it
no longer sends, for a person) and ``runs/``. Only a run that may send changes them:
a dry run of a job reads its state and carry-over and writes nothing but its own run
folder (``dry-runs/``), and a resume by hand of a job's run folder finishes it as the
job's next night would, updating the job.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import anyio
import polars as pl

from bulktag.config import (
    ApiKey,
    JobSettings,
    OutputFormat,
    RunConfig,
    check_api_url,
    load_api_key,
)
from bulktag.errors import (
    BulkTagError,
    ConfigError,
    ExitCode,
    InputError,
    UsageError,
    WorkLeftError,
)
from bulktag.jobfile import load_job
from bulktag.machine import DamagedFileError, MachineError, fault_of, guarded
from bulktag.outcomes import FailureType, Status
from bulktag.outputs.console import describe_plan, estimate, summary_lines
from bulktag.outputs.metrics import write_metrics
from bulktag.outputs.pages import after_run, failed_night
from bulktag.outputs.publish import XLSX_ROWS, Published, marked, publish, write_json, write_output
from bulktag.outputs.summary import OutputFiles, QuotaView, RateView, Summary, exit_code
from bulktag.plan.build import Plan, PlanStats, prepare_plan
from bulktag.plan.skip import (
    ALREADY_APPLIED,
    ALREADY_TAGGED,
    FAILED_BEFORE,
    requests_to_send,
    skip_pairs,
    skipped_contacts,
    start_plan,
    to_send,
)
from bulktag.read.inputs import InputFrame, expand_inputs
from bulktag.read.landing import check_settled, check_unchanged, cut_suspects, marks
from bulktag.read.ownfiles import CARRY_OVER, OwnKind
from bulktag.run.folder import RunFolder, is_finished, is_run_folder, make_run_dir, new_run_dir
from bulktag.run.session import SessionResult, SessionStoppedError, Target, send, unsent
from bulktag.runtime import Runtime
from bulktag.scan import slices
from bulktag.send.client import check_trust_settings
from bulktag.send.dispatch import DispatchStatistics
from bulktag.state.job import STATE_FILE, JobState
from bulktag.state.journal import Journal
from bulktag.state.lock import FolderLock
from bulktag.state.quota import QuotaBook, QuotaStore, default_state_dir, using_quota_store
from bulktag.state.store import move_aside

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
        ledger: JobState | None = None,
        carry_over: Path | None = None,
    ) -> None:
        """``state``: the job's state this run updates (its ledger, runs and nights);
        ``ledger``: a job's state only read, to plan (a dry run's); ``carry_over``: where
        the job keeps what this run leaves."""
        self.folder = folder
        self.runtime = runtime
        self.state = state
        self.ledger = ledger if ledger is not None else state
        self.carry_over = carry_over
        stored, self.identity = folder.open(config, str(uuid.uuid4()), runtime.clock.wall())
        self.config = replace(stored, api_url=check_api_url(stored.api_url))
        self.sending = False  #: a session that may send has started
        self.book: QuotaBook | None = None  #: the key's quota in the user's store
        self._statistics: DispatchStatistics | None = None  #: the session's, once it ended

    def execute(self) -> RunReport:
        """The stages (:meth:`_stages`). A fault of the machine met on the way (a full
        disk, a read-only folder) ends the run in one line: the file, the fix, what was
        sent, and the command that goes on once it is fixed."""
        try:
            return self._stages()
        except SessionStoppedError as stop:
            self._book(stop.statistics)
            raise self._stopped(self._set_aside(stop), stop.statistics) from None
        except Exception as exc:
            fault = fault_of(exc, self.folder.path)
            if fault is None:
                raise
            raise self._stopped(self._set_aside(fault), self._statistics) from None

    def _set_aside(self, fault: MachineError) -> MachineError:
        """A journal found damaged as the run used it is moved aside at once (it is
        closed by now), so that the next session does not meet it again."""
        journal = self.folder.journal
        if not isinstance(fault, DamagedFileError) or Path(fault.path) != journal:
            return fault
        aside = move_aside(journal, self.now)
        self.folder.precheck.unlink(missing_ok=True)  # the CRM is asked again
        return fault.fixed(
            f"moved aside to {aside.name}: what it recorded is lost, so the contacts of the "
            "run's plan are sent again (a tag a contact already has changes nothing)"
        )

    def _stages(self) -> RunReport:
        began = time.monotonic()
        config, folder, env = self.config, self.folder, self.runtime.env
        key = preflight(config, env)
        with guarded(folder.work):
            folder.work.mkdir(parents=True, exist_ok=True, mode=0o700)
        plan, fmt = folder.stored_plan() or self._plan()
        if not self.identity.resumed and not config.dry_run:
            _warn_of_earlier_reruns(plan.stats, default_state_dir(env), folder.path, self.now)
        folder.refuse_symlinked_outputs(config.metrics_file)
        self.book = None if key is None else QuotaBook(default_state_dir(env), key, config.api_url)
        quota_left = None if self.book is None else self.book.remaining(self.now)
        self._log_plan(plan, quota_left)
        if self.state is not None:
            self.state.start_run(self.identity.run_id, folder.path, self.identity.started)
        journal = self._journal()
        try:
            session = None if key is None else self._send(plan, journal, key, quota_left)
            stats = self._statistics = None if session is None else session.statistics
            self._book(stats)
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
                permanent=None if self.state is None else folder.work / "permanent.parquet",
                rows=self.runtime.slice_rows,
            )
            calls = journal.add_calls({} if stats is None else stats.other_calls)
        finally:
            journal.close()
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

    def _journal(self) -> Journal:
        """The run's journal; a damaged one moved aside (what it held is lost: the
        contacts it answered are sent again, the CRM asked first if the run asks it)."""
        path = self.folder.journal
        try:
            return Journal(path)
        except DamagedFileError as exc:
            aside = move_aside(path, self.now)
            self.folder.precheck.unlink(missing_ok=True)  # the CRM is asked again
            log.warning(
                "%s: it is damaged (%s); moved aside to %s. What it recorded of this run "
                "cannot be recovered: every contact of the run's plan is sent again (a tag "
                "a contact already has changes nothing; --skip-existing asks the CRM first)",
                path,
                exc.detail,
                aside.name,
            )
            return Journal(path)

    def _book(self, stats: DispatchStatistics | None) -> None:
        """The calls a session made, booked in the user's quota store. A store that cannot
        be written (a full disk) is warned about: the run's own outcome matters more, and
        LeadLex's next answer says what is left."""
        if self.book is None or stats is None:
            return
        calls = stats.calls + sum(stats.other_calls.values())
        try:
            self.book.spend(
                self.now,
                calls=calls,
                remaining=stats.quota_remaining,
                limit=stats.quota_limit,
                reset=stats.quota_reset,
            )
        except Exception as exc:
            fault = fault_of(exc, self.book.path)
            if fault is None:
                raise
            log.warning(
                "%s: the quota store could not book this run's %d calls (%s); the next "
                "run's first answer from LeadLex says what is left",
                fault.path,
                calls,
                fault.what,
            )

    def _stopped(self, fault: MachineError, stats: DispatchStatistics | None) -> MachineError:
        """``fault``, told with what the run sent and how it goes on once it is fixed."""
        resume = f"bulktag run --resume {self.folder.path}"
        if self.state is not None:
            go_on = f"once fixed, the job's next night finishes this run (or now: {resume})"
        else:
            go_on = f"once fixed: {resume}"
        if not self.sending:
            return fault.then(
                f"nothing more was sent; {go_on}" if self.identity.resumed else "nothing was sent"
            )
        calls = 0 if stats is None else stats.calls + sum(stats.other_calls.values())
        kept = (
            ""
            if Path(fault.path) == self.folder.journal and isinstance(fault, DamagedFileError)
            else "what was answered is kept in its journal, nothing is lost; "
        )
        return fault.then(f"the run stopped after {calls} calls to LeadLex; {kept}{go_on}")

    @property
    def now(self) -> float:
        return self.runtime.clock.wall()

    # -- the stages ---------------------------------------------------------------------

    def _plan(self) -> tuple[Plan, OutputFormat]:
        """Read the inputs, less what the job's ledger says was applied, into the folder."""
        config, folder, work = self.config, self.folder, self.folder.work
        check_settled(config.inputs, config.read.settle_seconds)
        noted = marks(config.inputs)
        frames, raw = prepare_plan(config.inputs, config.read, work, work / "plan-raw.parquet")
        check_unchanged(noted)  # a file still being written is not read as finished
        folder.refuse_overwriting_inputs(frames)
        start_plan(raw.path, work / "plan-start.parquet")
        job, ledger = config.job, self.ledger
        if ledger is not None and job is not None:
            if job.ledger and not config.force:
                since = None if not job.ledger_days else self.now - job.ledger_days * 86_400
                self._skip(list(ledger.applied(since)), ALREADY_APPLIED)
            if not config.read.retry_permanent:
                self._skip(list(ledger.failed()), FAILED_BEFORE)
        plan = folder.plan(raw.stats)
        (work / "plan-start.parquet").replace(plan.path)
        raw.rejects_path.replace(plan.rejects_path)
        fmt = _output_format(config, frames)
        _refuse_overfull_sheet(fmt, raw.stats)
        folder.store_plan(raw.stats, fmt)
        return plan, fmt

    def _skip(self, pairs: list[pl.DataFrame], reason: str) -> None:
        """The plan being made, less ``pairs`` (``contact_id, tag``), for ``reason``."""
        if not pairs:
            return
        work = self.folder.work
        start, less = work / "plan-start.parquet", work / "plan-less.parquet"
        skip_pairs(start, less, pl.concat(pairs).select("contact_id", "tag"), reason)
        less.replace(start)

    def _send(
        self, plan: Plan, journal: Journal, key: ApiKey, quota_left: int | None
    ) -> SessionResult | None:
        """A dispatch session for what is still to send (None: nothing is)."""
        folder, config = self.folder, self.config
        todo = unsent(plan, journal, folder.work, self.runtime.slice_rows)
        if not todo[1]:
            return None
        self.sending = True
        # a reserve is kept between every process on the key: each call booked before it goes
        keep = self.book is not None and config.dispatch.quota_reserve > 0
        shared = self.book.bookings(self.runtime.clock.wall) if keep and self.book else None
        target = Target(config, key, key_source(config), self.identity.run_id, quota_left, shared)
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
        try:
            return anyio.run(
                session,
                backend=self.runtime.backend,
                backend_options=dict(self.runtime.backend_options or {}),
            )
        finally:
            if shared is not None:
                shared.close()

    def _record_applied(self, published: Published) -> None:
        """The pairs this run applied go into the job's ledger, in batches; those that
        failed for good into its list of them (written out for a person)."""
        if self.state is None or published.applied is None:
            return
        batches = slices(pl.scan_parquet(published.applied), 100_000)
        self.state.record_applied(
            (pair for batch in batches for pair in batch.iter_rows()),
            self.now,
            self.identity.run_id,
        )
        if published.permanent is not None:
            failed = slices(pl.scan_parquet(published.permanent), 100_000)
            self.state.record_failed(
                (row for batch in failed for row in batch.iter_rows()),
                self.now,
                self.identity.run_id,
            )
        assert self.config.job is not None
        write_permanent_failures(self.state, self.config.job.folder)

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
            timeline_fine=None if stats is None else stats.timeline_fine,
        )

    def _finish(self, summary: Summary, published: Published) -> RunReport:
        """Write ``summary.json`` and the metrics, say how it went; the run is over."""
        config = self.config
        written = summary.to_json()
        would = to_send(self.folder.plan(summary.plan).path) if config.dry_run else None
        if would is not None:  # what a run would send: the report's first words
            written["would_send"] = dict(zip(("contacts", "tags", "calls"), would, strict=True))
        write_json(self.folder.summary, written)
        if self.state is not None:
            self.state.finish_run(summary.run_id, summary.finished_at, int(summary.exit_code))
        job = None if self.state is None else config.job  # a dry run's job has no new night
        after_run(self.folder.path, written, state=self.state, job=job, report=config.report)
        if config.metrics_file is not None:
            try:
                write_metrics(config.metrics_file, summary)
            except OSError as exc:  # the run is done; its exit code matters more
                log.error("cannot write the metrics file %s: %s", config.metrics_file, exc.strerror)  # noqa: TRY400  (one line, no traceback)
        self.folder.clear_work()
        lines = summary_lines(summary, self._advice(summary, published), would)
        level = logging.INFO if summary.exit_code is ExitCode.OK else logging.WARNING
        log.log(
            level,
            "summary:\n%s",
            "\n".join(lines),
            extra={"block": True, "summary": written},
        )
        return RunReport(self.folder.path, summary.exit_code, summary)

    def _log_plan(self, plan: Plan, quota_left: int | None) -> None:
        config = self.config
        settings = config.dispatch
        lines = describe_plan(plan.stats, settings, config.plan_name, quota_left)
        skipped = skipped_contacts(plan.path)
        needed = requests_to_send(plan.path)
        if skipped:
            lines.append(
                "not sent: "
                + ", ".join(f"{n:,} contacts {_SKIPPED[why]}" for why, n in skipped.items())
                + f"; requests to send: {needed:,}"
            )
        lines.append(f"API: {config.api_url} ({config.api_url_from}); key {key_source(config)}")
        log.info(
            "%s:\n%s",
            "resuming the plan" if self.identity.resumed else "plan",
            "\n".join(lines),
            extra={"block": True, "plan": plan.stats.as_json()},
        )
        left = replace(plan.stats, requests=needed)
        if estimate(left, settings, quota_left).exceeds_today and not config.dry_run:
            log.warning(
                "the plan needs %s calls, more than today's quota allows: the rest is deferred",
                f"{needed:,}",
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
            lines.append(f"next: the job's next run sends what is left ({self.config.job.command})")
            return lines
        if counts.get(Status.DEFERRED, 0) + counts.get(Status.NOT_ATTEMPTED, 0):
            lines.append(
                f"next: bulktag run --resume {self.folder.path}   (sends what was not sent)"
            )
        if published.retryable_failures:
            lines.append(f"next: bulktag run {published.failures}   (sends the failures again)")
        return lines


#: Why a plan's contacts need no call, as the plan says it.
_SKIPPED = {
    ALREADY_APPLIED: "whose tags the job's ledger says were applied",
    FAILED_BEFORE: "whose tags failed for good on an earlier night (--retry-permanent sends "
    "them; see permanent-failures.csv)",
    ALREADY_TAGGED: "already tagged in the CRM",
}


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


#: In a job's folder: the pairs that failed for good, which the job no longer sends.
PERMANENT_FAILURES = "permanent-failures.csv"


def _refuse_overfull_sheet(fmt: OutputFormat, stats: PlanStats) -> None:
    """XLSX results that a sheet cannot hold: refused before anything is sent (rows would
    be lost after it)."""
    rows = max(stats.contacts, stats.rejects)
    if fmt == "xlsx" and rows >= XLSX_ROWS:
        raise UsageError(
            f"the results would hold {rows:,} rows, more than an XLSX sheet does "
            f"({XLSX_ROWS - 1:,} below its header): give --format csv or parquet; nothing "
            "was sent"
        )


def write_permanent_failures(state: JobState, folder: Path) -> None:
    """``permanent-failures.csv`` in the job's folder, for a person: one row per contact
    whose tags failed for good (a failures file: ``bulktag run FILE --retry-permanent``
    sends them again); removed when there are none."""
    target = folder / PERMANENT_FAILURES
    if not state.failed_count():
        target.unlink(missing_ok=True)
        return
    rows = (
        pl.concat(list(state.failed()))
        .lazy()
        .group_by("contact_id", "error_type", "message", maintain_order=True)
        .agg(tags="tag", failed_at=pl.col("failed_at").max(), run_id=pl.col("run_id").last())
        .select(
            "contact_id",
            "tags",
            status=pl.lit(str(Status.FAILED)),
            error_type="error_type",
            retryable=pl.lit(value=False),
            message="message",
            failed_at=pl.from_epoch((pl.col("failed_at") * 1000).cast(pl.Int64), time_unit="ms")
            .dt.replace_time_zone("UTC")
            .dt.to_string("%Y-%m-%dT%H:%M:%SZ"),
            run_id="run_id",
        )
        .with_columns(marked(OwnKind.FAILURES))
    )
    write_output(rows, target, "csv")


def _warn_of_earlier_reruns(stats: PlanStats, state_dir: Path, run_dir: Path, at: float) -> None:
    """A failures file sent again: warn when an earlier run already sent this one (same
    content), naming that run's own failures file; then remember this run."""
    for item in stats.inputs:
        path = Path(item.source)
        if item.own not in (OwnKind.FAILURES, OwnKind.RESULTS) or not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        source = item.source

        def warn(store: QuotaStore, digest: str = digest, source: str = source) -> None:
            for earlier, when in store.reruns_of(digest):
                failures = next(iter(sorted(earlier.glob("failures.*"))), earlier / "failures.csv")
                stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
                log.warning(
                    "%s was already sent by the run %s (%s): what that run could not do is in "
                    "%s; sending this file again re-sends what it did",
                    source,
                    earlier,
                    stamp,
                    failures,
                )
            store.record_rerun(digest, source, run_dir, at)

        using_quota_store(state_dir, at, warn)


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
        return _dry_run_job(config, runtime) if config.dry_run else _run_job(config, runtime)
    if config.resume is not None:
        return _resume(config, RunFolder(config.resume), runtime)
    preflight(config, runtime.env)  # a mistake there leaves no folder behind
    existed = config.out_dir is not None and config.out_dir.exists()
    path = (
        make_run_dir(config.out_dir) if config.out_dir else new_run_dir(Path("runs"), runtime.clock)
    )
    folder = RunFolder(path)
    return _fresh(folder, lambda: _Run(config, folder, runtime), keep_folder=existed)


def _fresh(
    folder: RunFolder,
    make: Callable[[], _Run],
    *,
    keep_folder: bool = False,
    forget: Callable[[Path], None] | None = None,
) -> RunReport:
    """A new run in ``folder`` (``make`` it), under the folder's lock. One that fails before
    it sends anything leaves no run folder behind (only an empty folder the user named), so
    the corrected command may use it; ``forget`` then drops it from a job's list of runs."""
    one: _Run | None = None
    try:
        with FolderLock(folder.internal):
            one = make()
            return one.execute()
    except Exception as exc:
        if one is None or not one.sending:
            folder.discard(keep_folder=keep_folder)
            if forget is not None:
                forget(folder.path)
        fault = exc if isinstance(exc, BulkTagError) else fault_of(exc, folder.path)
        if one is None and isinstance(fault, MachineError):
            fault = fault.then("nothing was sent; once fixed, run the same command")
        if fault is None or fault is exc:
            raise
        raise fault from None


def _resume(config: RunConfig, folder: RunFolder, runtime: Runtime) -> RunReport:
    """``--resume RUN_DIR``: an interrupted run continued, or a run that stopped with
    contacts unsent (deferred, not attempted) sent on. A job's run is finished as the job's
    next night would finish it, under the job's lock, its ledger, carry-over and history
    updated (once it ended, what it left is the job's carry-over: the job's next night sends
    it). A run with nothing left is refused, and left as it is."""
    if not is_run_folder(folder.path):
        raise ConfigError(
            f"{folder.path} is not a bulktag run folder (no {folder.internal.name}/config.json)"
        )
    owner = folder.stored_job()
    _refuse_finished(folder, job=owner is not None)
    if owner is None or folder.stored_dry_run():
        with FolderLock(folder.internal):
            return _Run(config, folder, runtime).execute()
    log.info(
        "%s is a run of the job %s: finishing it as the job's next night would (its ledger, "
        "carry-over and history are updated)",
        folder.path,
        owner.name,
    )
    with FolderLock(owner.folder), _open_state(owner.folder, runtime.clock.wall()) as state:
        claim(owner, state, write=False)
        _refuse_finished(folder, job=True)  # the job may have finished it meanwhile
        carry = owner.folder / CARRY_OVER
        return _Run(config, folder, runtime, state=state, carry_over=carry).execute()


def _refuse_finished(folder: RunFolder, *, job: bool) -> None:
    """A run with nothing to resume: UsageError (2) with what to do instead. That is a job's
    run that ended (its carry-over holds what it left), a dry run that ended, and a run that
    ended with no contact deferred or not attempted."""
    if not is_finished(folder.path):
        return
    try:
        summary = json.loads(folder.summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    contacts = summary.get("contacts", {})
    unsent = int(contacts.get("deferred", 0)) + int(contacts.get("not_attempted", 0))
    if unsent and not job and not summary.get("dry_run"):
        return
    ended = f" (exit {summary['exit_code']})" if "exit_code" in summary else ""
    failures = sorted(folder.path.glob("failures.*"))
    left = f"bulktag run {failures[0]}" if failures else "a new run"
    job = summary.get("job")
    instead = f"the job {job}'s next night sends what it left" if job else f"what it left: {left}"
    raise UsageError(
        f"--resume {folder.path}: the run is finished{ended}, nothing to resume; {instead}"
    )


def _job_inputs(config: RunConfig, carry: Path) -> tuple[str, ...]:
    """Carried-over contacts first, then the job's inputs (a glob matching nothing warns)."""
    found: list[str] = [str(carry)] if carry.exists() else []
    for pattern in config.inputs:
        try:
            found.extend(expand_inputs([pattern]))
        except InputError as exc:
            log.warning("%s", exc)
    if not found:
        raise WorkLeftError(
            f"no input yet: the job's inputs ({', '.join(config.inputs)}) match no file and "
            "nothing was carried over: has the export landed? nothing was sent; the next "
            "night looks again (bulktag check-job FILE shows what they match now)"
        )
    return tuple(found)


def _run_job(config: RunConfig, runtime: Runtime) -> RunReport:
    """A job's night: the runs it left unfinished, then a run of its inputs."""
    job = config.job
    assert job is not None
    with _job_opened(job, runtime.clock.wall()) as state:
        carry = job.folder / CARRY_OVER
        for unfinished in state.unfinished_runs():
            _finish_unfinished(config, RunFolder(unfinished), runtime, state, carry)
        started = runtime.clock.wall()
        folder = None
        try:
            inputs = _job_inputs(config, carry)
            folder = RunFolder(new_run_dir(job.folder / "runs", runtime.clock))
            suspects = cut_suspects(config.inputs, state, note=True)
            night = replace(
                config,
                inputs=inputs,
                read=replace(config.read, cut_suspects=suspects),
                skip_existing=config.skip_existing or state.begun_anew,
            )
            report = _fresh(
                folder,
                functools.partial(_Run, night, folder, runtime, state=state, carry_over=carry),
                forget=state.forget_run,
            )
        except BulkTagError as exc:
            if folder is None or not folder.internal.exists():  # it sent nothing
                with contextlib.suppress(MachineError):  # a full disk, said once
                    failed_night(
                        state,
                        job,
                        started=started,
                        finished=runtime.clock.wall(),
                        error=exc,
                        report=config.report,
                    )
            raise
        _prune(job, state)
    return report


@contextlib.contextmanager
def _job_opened(job: JobSettings, now: float) -> Iterator[JobState]:
    """The job's folder, locked, and its state, open; a fault of the machine on the way
    says nothing was sent."""
    try:
        with guarded(job.folder):
            job.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = FolderLock(job.folder)
        lock.__enter__()
    except MachineError as fault:
        raise fault.then("nothing was sent; once fixed, run the same command") from None
    try:
        try:
            state = _open_state(job.folder, now)
        except MachineError as fault:
            raise fault.then("nothing was sent; once fixed, run the same command") from None
        try:
            with state:
                claim(job, state, write=True)
                yield state
        except DamagedFileError as fault:  # found as the night used it: closed by now
            if Path(fault.path) != state.path:
                raise
            aside = move_aside(state.path, now)
            raise fault.fixed(
                f"moved aside to {aside.name}: the next night begins a new state from the "
                "run folders and asks the CRM before sending"
            ) from None
    finally:
        lock.__exit__(None, None, None)


def claim(job: JobSettings, state: JobState, *, write: bool) -> None:
    """A job's folder belongs to one job file (its state records which): a second job file
    naming the same ``out`` would mix their ledgers, carry-over and histories, and is
    refused (78) while the first one still names the folder. A job file moved or renamed
    takes its folder over, with a warning. ``write``: record this job file as its owner."""
    if job.file is None:
        return
    mine = job.file.resolve()
    found = state.owner()
    if found is not None and found[1] != mine:
        name, other = found
        try:
            still = load_job(other).out.resolve() == job.folder.resolve()
        except BulkTagError:
            still = False  # gone, or no job file now: this one takes the folder over
        if still:
            raise ConfigError(
                f"{job.folder}: it is the folder of the job {name!r} ({other}); two job files "
                "with the same out would mix their ledgers, carry-over and histories: give "
                f"{job.file} an out of its own; nothing was sent"
            )
        log.warning(
            "%s: the folder of the job %r (%s), which no longer names it: %s takes it over",
            job.folder,
            name,
            other,
            job.file,
        )
    if write and (found is None or found != (job.name, mine)):
        state.own(job.name, mine)


def _open_state(folder: Path, now: float) -> JobState:
    """A job's state. A damaged one is moved aside, and a lost one (moved aside, removed)
    begun anew from what can be trusted: the run folders still in ``runs/`` (an unfinished
    one is finished first) and the CRM's answers (the night asks it before sending, as
    --skip-existing does)."""
    path = folder / STATE_FILE
    runs = [p for p in _run_folders(folder) if is_run_folder(p)]
    if path.exists():
        try:
            return JobState(folder)
        except DamagedFileError as exc:
            aside = move_aside(path, now)
            lost = f"{exc.what}; moved aside to {aside.name} and a new one begun"
    elif runs:
        lost = "it is missing (moved aside as damaged, or removed), and a new one is begun"
    else:
        return JobState(folder)  # the job's first night
    state = JobState(folder)
    state.begun_anew = True
    for run in runs:
        identity = RunFolder(run).stored_identity()
        state.start_run(identity.run_id, run, identity.started)
        if is_finished(run):
            summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
            state.finish_run(identity.run_id, identity.started, int(summary["exit_code"]))
    log.warning(
        "%s: %s. Not recovered: its ledger of the tags applied, its list of permanent "
        "failures and its history; so this night asks the CRM which contacts carry the tags "
        "before sending (--skip-existing). Recovered: %d run folders in %s (an unfinished one "
        "is finished first)",
        path,
        lost,
        len(runs),
        folder / "runs",
    )
    return state


def _run_folders(job_folder: Path) -> list[Path]:
    """The folders in the job's ``runs/``, oldest first, but those moved aside as damaged
    (kept for a person)."""
    runs = job_folder / "runs"
    found = runs.iterdir() if runs.is_dir() else iter(())
    return sorted(p for p in found if p.is_dir() and ".damaged-" not in p.name)


def _prune(job: JobSettings, state: JobState) -> None:
    """``keep_runs``: the job's newest finished run folders kept, older ones removed, and
    any folder of a run killed before it could send (never in the job's list of runs)."""
    runs = job.folder / "runs"
    if not job.keep_runs or not runs.is_dir():
        return
    registered = {p.resolve() for p in state.run_dirs()}
    unfinished = {p.resolve() for p in state.unfinished_runs()}
    folders = _run_folders(job.folder)
    kept = [p for p in folders if p.resolve() in registered or is_finished(p)]
    abandoned = [p for p in folders if p.resolve() not in registered and not is_finished(p)]
    finished = [p for p in kept if p.resolve() not in unfinished]
    for old in [*finished[: -job.keep_runs], *abandoned]:
        shutil.rmtree(old, ignore_errors=True)
        state.forget_run(old)


def _finish_unfinished(
    config: RunConfig, folder: RunFolder, runtime: Runtime, state: JobState, carry: Path
) -> None:
    """A run of the job that did not finish: resumed; one killed after its summary was
    written only closed (its files, ledger and carry-over are written before it)."""
    if not is_run_folder(folder.path):
        state.forget_run(folder.path)
    elif is_finished(folder.path):
        summary = json.loads(folder.summary.read_text(encoding="utf-8"))
        finished = datetime.fromisoformat(summary["finished_at"].replace("Z", "+00:00"))
        state.finish_run(summary["run_id"], finished.timestamp(), int(summary["exit_code"]))
        after_run(folder.path, summary, state=state, job=config.job, report=config.report)
    else:
        log.warning("resuming the interrupted run %s", folder.path)
        try:
            _Run(config, folder, runtime, state=state, carry_over=carry).execute()
        except DamagedFileError as fault:
            if not Path(fault.path).is_relative_to(folder.internal):
                raise
            _set_run_aside(folder, state, fault, runtime.clock.wall())


def _set_run_aside(folder: RunFolder, state: JobState, fault: DamagedFileError, now: float) -> None:
    """An interrupted run whose own files are damaged (its config.json, its plan): moved
    aside so that the nights go on; what it had not sent is lost unless an input still
    holds it, and said so."""
    aside = move_aside(folder.path, now)
    state.forget_run(folder.path)
    log.warning(
        "%s: %s; the interrupted run %s cannot be finished: it is moved aside to %s. What it "
        "had sent is in the CRM; what it had not is sent only if an input still holds it",
        fault.path,
        fault.what,
        folder.path,
        aside.name,
    )


def _read_state(job: JobSettings) -> JobState | None:
    """A job's state, to read (a dry run's); a damaged one is left for the next night to
    move aside, and the dry run plans as that night will: without its ledger."""
    try:
        return JobState(job.folder, read_only=True)
    except DamagedFileError as exc:
        log.warning(
            "%s: %s; the job's next night moves it aside and plans without its ledger, as "
            "this dry run does",
            exc.path,
            exc.what,
        )
        return None


#: Where a dry run of a job writes its run folder, in the job's folder (unless --out).
DRY_RUNS = "dry-runs"


def _dry_run_job(config: RunConfig, runtime: Runtime) -> RunReport:
    """A dry run of a job: what its next night would send, from its carry-over, inputs and
    ledger, read and never written. It changes nothing of the job (no lock, no state, no
    carry-over, no history, no quota): only its own run folder is written."""
    job = config.job
    assert job is not None
    ledger = _read_state(job) if (job.folder / STATE_FILE).is_file() else None
    try:
        if ledger is not None:
            claim(job, ledger, write=False)
        for unfinished in [] if ledger is None else ledger.unfinished_runs():
            if is_run_folder(unfinished) and not is_finished(unfinished):
                log.warning(
                    "the interrupted run %s is finished first by the job's next night; this "
                    "dry run leaves it alone and does not count what it will send",
                    unfinished,
                )
        inputs = _job_inputs(config, job.folder / CARRY_OVER)
        suspects = cut_suspects(config.inputs, ledger, note=False)
        preflight(config, runtime.env)
        existed = config.out_dir is not None and config.out_dir.exists()
        path = (
            make_run_dir(config.out_dir)
            if config.out_dir
            else new_run_dir(job.folder / DRY_RUNS, runtime.clock)
        )
        folder = RunFolder(path)
        night = replace(config, inputs=inputs, read=replace(config.read, cut_suspects=suspects))
        return _fresh(
            folder, lambda: _Run(night, folder, runtime, ledger=ledger), keep_folder=existed
        )
    finally:
        if ledger is not None:
            ledger.close()
