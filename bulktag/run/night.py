"""A job's night: its lock and state taken, an unfinished run finished first, the carry-
over and the inputs sent, old run folders pruned; and a job's dry run, which touches
none of it."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from bulktag.config import (
    JobSettings,
    RunConfig,
)
from bulktag.errors import (
    BulkTagError,
    InputError,
    WorkLeftError,
)
from bulktag.machine import DamagedFileError, MachineError, guarded
from bulktag.outputs.pages import after_run, failed_night
from bulktag.read.landing import cut_suspects
from bulktag.read.ownfiles import CARRY_OVER, DRY_RUNS
from bulktag.read.paths import expand_inputs
from bulktag.run.checks import preflight
from bulktag.run.folder import RunFolder, is_finished, is_run_folder, make_run_dir, new_run_dir
from bulktag.run.owner import claim, open_state, read_state, run_folders
from bulktag.run.stages import Run, RunResult
from bulktag.run.start import fresh
from bulktag.run.unchanged import Fingerprint, reliable
from bulktag.runtime import Runtime
from bulktag.state.job import STATE_FILE, JobState
from bulktag.state.lock import FolderLock
from bulktag.state.store import move_aside

log = logging.getLogger("bulktag")

__all__ = ["dry_run_job", "run_job"]


class JobInputs(NamedTuple):
    """What a job's night reads, its patterns expanded once."""

    files: tuple[str, ...]  #: the carry-over first, then the inputs' files
    made_from: Fingerprint | None  #: what the plan is made from (None: nothing to rely on)
    expanded: dict[str, list[str]]  #: each input pattern's files (for the cut-line check)


def _job_inputs(config: RunConfig, carry: Path, state: JobState | None) -> JobInputs:
    """Carried-over contacts first, then the job's inputs (a glob matching nothing warns);
    or the carry-over alone, when the inputs and settings are those the last night planned
    from and its carry-over is as it left it (:mod:`bulktag.run.unchanged`). Also what
    this night's plan is made from (None: nothing a next night may rely on). Each pattern
    is expanded here, once: the night reads, checks and notes the same files."""
    expanded: dict[str, list[str]] = {}
    for pattern in config.inputs:
        try:
            expanded[pattern] = expand_inputs([pattern])
        except InputError as exc:
            log.warning("%s", exc)
    files = [name for names in expanded.values() for name in names]
    made_from = Fingerprint.of(config, files) if files and reliable(config) else None
    noted = None if state is None else state.planned_from()
    if made_from is not None and noted is not None and carry.is_file():
        fingerprint, at = noted
        if made_from.with_carry_over(carry) == fingerprint:
            log.info(
                "the job's inputs are the bytes the night of %s planned from, read the same "
                "way: tonight's plan is what it carried over (%s), the inputs are not read "
                "again",
                datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC"),
                carry,
            )
            return JobInputs((str(carry),), made_from, expanded)
    found = ([str(carry)] if carry.exists() else []) + files
    if not found:
        raise WorkLeftError(
            f"no input yet: the job's inputs ({', '.join(config.inputs)}) match no file and "
            "nothing was carried over: has the export landed? nothing was sent; the next "
            "night looks again (bulktag check-job FILE shows what they match now)"
        )
    return JobInputs(tuple(found), made_from, expanded)


def run_job(config: RunConfig, runtime: Runtime) -> RunResult:
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
            inputs, made_from, expanded = _job_inputs(config, carry, state)
            try:
                # noted again once this night has ended: one that does not end (an error,
                # a kill) leaves nothing the next night may plan from
                state.note_planned_from(None, started)
                suspects = cut_suspects(expanded, state, note=True)
            except MachineError as fault:
                raise fault.then("nothing was sent; once fixed, run the same command") from None
            folder = RunFolder(new_run_dir(job.folder / "runs", runtime.clock))
            night = replace(
                config,
                inputs=inputs,
                read=replace(config.read, cut_suspects=suspects),
                skip_existing=config.skip_existing or state.begun_anew,
            )
            report = fresh(
                folder,
                functools.partial(Run, night, folder, runtime, state=state, carry_over=carry),
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
        _note_planned_from(state, made_from, report, carry, runtime.clock.wall())
        _prune(job, state)
    return report


def _note_planned_from(
    state: JobState, made_from: Fingerprint | None, report: RunResult, carry: Path, now: float
) -> None:
    """What tonight's plan was made from, for the next night (nothing when it matched by
    email: the directory changes daily). A fault of the machine here is warned about: the
    night is done, and the next one, finding no note, reads its inputs again."""
    by_email = report.summary.plan.by_email is not None
    left = None if made_from is None or by_email else made_from.with_carry_over(carry)
    try:
        state.note_planned_from(left, now)
    except MachineError as fault:
        log.warning(
            "%s: %s; what tonight planned from is not noted: the next night reads its inputs "
            "again (%s)",
            fault.path,
            fault.what,
            fault.fix,
        )


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
            state = open_state(job.folder, now)
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


def _prune(job: JobSettings, state: JobState) -> None:
    """``keep_runs``: the job's newest finished run folders kept, older ones removed, and
    any folder of a run killed before it could send (never in the job's list of runs)."""
    runs = job.folder / "runs"
    if not job.keep_runs or not runs.is_dir():
        return
    registered = {p.resolve() for p in state.run_dirs()}
    unfinished = {p.resolve() for p in state.unfinished_runs()}
    folders = run_folders(job.folder)
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
            Run(config, folder, runtime, state=state, carry_over=carry).execute()
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


#: Where a dry run of a job writes its run folder, in the job's folder (unless --out).
def dry_run_job(config: RunConfig, runtime: Runtime) -> RunResult:
    """A dry run of a job: what its next night would send, from its carry-over, inputs and
    ledger, read and never written. It changes nothing of the job (no lock, no state, no
    carry-over, no history, no quota): only its own run folder is written."""
    job = config.job
    assert job is not None
    ledger = read_state(job) if (job.folder / STATE_FILE).is_file() else None
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
        inputs, _, expanded = _job_inputs(config, job.folder / CARRY_OVER, ledger)
        suspects = cut_suspects(expanded, ledger, note=False)
        preflight(config, runtime.env)
        existed = config.out_dir is not None and config.out_dir.exists()
        path = (
            make_run_dir(config.out_dir)
            if config.out_dir
            else new_run_dir(job.folder / DRY_RUNS, runtime.clock)
        )
        folder = RunFolder(path)
        night = replace(config, inputs=inputs, read=replace(config.read, cut_suspects=suspects))
        return fresh(
            folder, lambda: Run(night, folder, runtime, ledger=ledger), keep_folder=existed
        )
    finally:
        if ledger is not None:
            ledger.close()
