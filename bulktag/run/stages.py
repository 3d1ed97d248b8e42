"""One run as a straight line of stages: read, plan, skip what is done, send, record,
publish, summarise; the journal written and the quota booked as it goes.
:func:`bulktag.run.runner.run` starts, resumes, or runs a job's night of these
(:mod:`bulktag.run.night`)."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import anyio
import polars as pl

from bulktag.config import ApiKey, OutputFormat, RunConfig, check_api_url
from bulktag.errors import ExitCode
from bulktag.machine import DamagedFileError, MachineError, fault_of, guarded
from bulktag.outputs.console import summary_lines
from bulktag.outputs.metrics import write_metrics
from bulktag.outputs.pages import after_run
from bulktag.outputs.permanent import write_permanent_failures
from bulktag.outputs.publish import Published, publish, write_json
from bulktag.outputs.summary import OutputFiles, QuotaView, RateView, Summary, exit_code
from bulktag.plan.build import Plan, prepare_plan
from bulktag.plan.skip import (
    ALREADY_APPLIED,
    FAILED_BEFORE,
    skip_found,
    skip_pairs,
    start_plan,
    to_send,
)
from bulktag.read.landing import check_settled, check_unchanged, marks
from bulktag.read.paths import expand_inputs
from bulktag.run.byemail import email_stage
from bulktag.run.checks import (
    output_format,
    preflight,
    refuse_overfull_sheet,
    warn_of_earlier_reruns,
)
from bulktag.run.folder import RunFolder
from bulktag.run.matching import EmailStage, with_emails
from bulktag.run.session import SessionResult, SessionStoppedError, Target, send, unsent
from bulktag.run.telling import advice, log_plan
from bulktag.runtime import Runtime
from bulktag.scan import slices
from bulktag.send.dispatch import DispatchStatistics
from bulktag.state.job import JobState
from bulktag.state.journal import Journal
from bulktag.state.quota import QuotaBook, default_state_dir
from bulktag.state.store import move_aside

log = logging.getLogger("bulktag")

__all__ = ["Run", "RunResult"]


@dataclass(frozen=True, slots=True)
class RunResult:
    run_dir: Path
    exit_code: ExitCode
    summary: Summary


class Run:
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
        self.email: EmailStage | None = None  #: matching by email, when this run planned

    def execute(self) -> RunResult:
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

    def _stages(self) -> RunResult:
        began = time.monotonic()
        config, folder, env = self.config, self.folder, self.runtime.env
        key = preflight(config, env)
        with guarded(folder.work):
            folder.work.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.book = None if key is None else QuotaBook(default_state_dir(env), key, config.api_url)
        plan, fmt = folder.stored_plan() or self._plan(key)
        if not self.identity.resumed and not config.dry_run:
            warn_of_earlier_reruns(plan.stats, default_state_dir(env), folder.path, self.now)
        folder.refuse_symlinked_outputs(config.metrics_file)
        quota_left = self._quota_left()
        log_plan(self.config, self.identity.resumed, plan, quota_left)
        if self.state is not None:
            self.state.start_run(self.identity.run_id, folder.path, self.identity.started)
        journal = self._journal()
        try:
            session = None if key is None else self._send(plan, journal, key, quota_left)
            stats = self._statistics = None if session is None else session.statistics
            self._book(stats)
            published = publish(
                folder.outputs(fmt),
                plan,
                journal,
                halt=None if stats is None else stats.halt,
                halt_message="dry run: nothing was sent"
                if config.dry_run
                else ("" if stats is None else stats.halt_message),
                fmt=fmt,
                work=folder.work,
                carry_over=self.carry_over,
                applied=None if self.state is None else folder.applied_pairs,
                permanent=None if self.state is None else folder.permanent_pairs,
                rows=self.runtime.slice_rows,
            )
            other = Counter({} if stats is None else stats.other_calls)
            other.update({} if self.email is None else self.email.calls())
            calls = journal.add_calls(other)
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
        self.book.spend_or_warn(
            self.now,
            calls=stats.calls + sum(stats.other_calls.values()),
            remaining=stats.quota_remaining,
            limit=stats.quota_limit,
            reset=stats.quota_reset,
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

    def _plan(self, key: ApiKey | None) -> tuple[Plan, OutputFormat]:
        """Read the inputs (their addresses matched to contacts), less what the job's
        ledger says was applied, into the folder."""
        config, folder = self.config, self.folder
        files = expand_inputs(config.inputs)  # once: each stage below reads the same files
        folder.refuse_overwriting_inputs(files)
        check_settled(files, config.read.settle_seconds)
        noted = marks(files)
        self.email = email_stage(
            config,
            self.runtime,
            key,
            target=lambda found: self.target(found, self._quota_left()),
            book=self._book,
            now=lambda: self.now,
        )
        frames, raw = prepare_plan(
            files, config.read, folder.work, folder.raw_plan, folder.raw_rejects, match=self.email
        )
        check_unchanged(noted)  # a file still being written is not read as finished
        if self.email.found is not None:
            folder.rewrite(folder.raw_plan, partial(with_emails, emails=self.email.found.emails))
            raw = replace(raw, stats=replace(raw.stats, by_email=self.email.as_json()))
        start_plan(raw.path, folder.draft_plan)
        job, ledger = config.job, self.ledger
        if ledger is not None and job is not None:
            if job.ledger and not config.force:
                since = None if not job.ledger_days else self.now - job.ledger_days * 86_400
                lookup = partial(ledger.applied_to, since=since)
                skip = partial(skip_found, lookup=lookup, reason=ALREADY_APPLIED)
                self.folder.rewrite(self.folder.draft_plan, skip)
            if not config.read.retry_permanent:
                self._skip(list(ledger.failed()), FAILED_BEFORE)
        plan = folder.adopt_draft(raw.stats)
        fmt = output_format(config, frames)
        refuse_overfull_sheet(fmt, raw.stats)
        folder.store_plan(raw.stats, fmt)
        return plan, fmt

    def _skip(self, pairs: list[pl.DataFrame], reason: str) -> None:
        """The plan being made, less ``pairs`` (``contact_id, tag``), for ``reason``."""
        if not pairs:
            return
        done = pl.concat(pairs).select("contact_id", "tag")
        self.folder.rewrite(self.folder.draft_plan, partial(skip_pairs, pairs=done, reason=reason))

    def _send(
        self, plan: Plan, journal: Journal, key: ApiKey, quota_left: int | None
    ) -> SessionResult | None:
        """A dispatch session for what is still to send (None: nothing is)."""
        folder, config = self.folder, self.config
        ask = config.skip_existing and not folder.precheck.exists()
        # the to-do list is made once: here, or by the session after its pre-check
        todo = None if ask else unsent(plan, journal, folder.todo, self.runtime.slice_rows)
        if todo is not None and not todo[1]:
            return None
        self.sending = True
        # a reserve is kept between every process on the key: each call booked before it goes
        target = self.target(key, quota_left)
        shared = target.shared
        session = functools.partial(
            send,
            target,
            plan,
            journal,
            self.runtime,
            todo=todo,
            folder=folder,
            precheck=ask,
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

    def _quota_left(self) -> int | None:
        return None if self.book is None else self.book.remaining(self.now)

    def target(self, key: ApiKey, quota_left: int | None) -> Target:
        """Where and how a session of this run sends; a reserve is kept between every
        process on the key (each call booked before it goes): the caller closes ``shared``."""
        config = self.config
        keep = self.book is not None and config.dispatch.quota_reserve > 0
        shared = self.book.bookings(self.runtime.clock.wall) if keep and self.book else None
        return Target.of(config, key, self.identity.run_id, quota_left, shared)

    def _record_applied(self, published: Published) -> None:
        """The pairs this run applied go into the job's ledger, in batches; those that
        failed for good into its list of them (written out for a person)."""
        if self.state is None or published.applied is None:
            return
        batches = slices(pl.scan_parquet(published.applied), 100_000)
        assert self.config.job is not None
        self.state.record_applied(
            (pair for batch in batches for pair in batch.iter_rows()),
            self.now,
            self.identity.run_id,
            days=self.config.job.ledger_days,
        )
        if published.permanent is not None:
            failed = slices(pl.scan_parquet(published.permanent), 100_000)
            self.state.record_failed(
                (row for batch in failed for row in batch.iter_rows()),
                self.now,
                self.identity.run_id,
            )
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
                waiting=plan.stats.waiting_rows,
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

    def _finish(self, summary: Summary, published: Published) -> RunResult:
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
        lines = summary_lines(
            summary, advice(self.config, self.folder.path, summary, published), would
        )
        level = logging.INFO if summary.exit_code is ExitCode.OK else logging.WARNING
        log.log(
            level,
            "summary:\n%s",
            "\n".join(lines),
            extra={"block": True, "summary": written},
        )
        return RunResult(self.folder.path, summary.exit_code, summary)
