"""A job's folder and its state: the state opened (a damaged one moved aside, a newer one
refused, a lost one begun anew from the run folders), read without a lock for a dry run,
and the folder claimed by one job file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bulktag.config import (
    JobSettings,
)
from bulktag.errors import (
    BulkTagError,
    ConfigError,
)
from bulktag.jobfile import load_job
from bulktag.machine import DamagedFileError
from bulktag.run.folder import RunFolder, is_finished, is_run_folder
from bulktag.state.job import STATE_FILE, JobState
from bulktag.state.rundir import RunPaths
from bulktag.state.store import move_aside

log = logging.getLogger("bulktag")

__all__ = ["claim", "open_state", "read_state", "run_folders"]


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


def open_state(folder: Path, now: float) -> JobState:
    """A job's state. A damaged one is moved aside, and a lost one (moved aside, removed)
    begun anew from what can be trusted: the run folders still in ``runs/`` (an unfinished
    one is finished first) and the CRM's answers (the night asks it before sending, as
    --skip-existing does)."""
    path = folder / STATE_FILE
    runs = [p for p in run_folders(folder) if is_run_folder(p)]
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
            summary = json.loads(RunPaths(run).summary.read_text(encoding="utf-8"))
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


def run_folders(job_folder: Path) -> list[Path]:
    """The folders in the job's ``runs/``, oldest first, but those moved aside as damaged
    (kept for a person)."""
    runs = job_folder / "runs"
    found = runs.iterdir() if runs.is_dir() else iter(())
    return sorted(p for p in found if p.is_dir() and ".damaged-" not in p.name)


def read_state(job: JobSettings) -> JobState | None:
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
