"""A run started afresh in a new folder, or resumed from the folder of one that stopped; a
finished run is refused (it has nothing to resume)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from bulktag.config import (
    RunConfig,
)
from bulktag.errors import (
    BulkTagError,
    ConfigError,
    UsageError,
)
from bulktag.machine import MachineError, fault_of
from bulktag.read.ownfiles import CARRY_OVER
from bulktag.run.folder import RunFolder, is_finished, is_run_folder
from bulktag.run.owner import claim, open_state
from bulktag.run.stages import Run, RunResult
from bulktag.runtime import Runtime
from bulktag.state.lock import FolderLock

log = logging.getLogger("bulktag")

__all__ = ["fresh", "refuse_finished", "resume"]


def fresh(
    folder: RunFolder,
    make: Callable[[], Run],
    *,
    keep_folder: bool = False,
    forget: Callable[[Path], None] | None = None,
) -> RunResult:
    """A new run in ``folder`` (``make`` it), under the folder's lock. One that fails before
    it sends anything leaves no run folder behind (only an empty folder the user named), so
    the corrected command may use it; ``forget`` then drops it from a job's list of runs."""
    one: Run | None = None
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


def resume(config: RunConfig, folder: RunFolder, runtime: Runtime) -> RunResult:
    """``--resume RUN_DIR``: an interrupted run continued, or a run that stopped with
    contacts unsent (deferred, not attempted) sent on. A job's run is finished as the job's
    next night would finish it, under the job's lock, its ledger, carry-over and history
    updated (once it ended, what it left is the job's carry-over: the job's next night sends
    it). A run with nothing left is refused, and left as it is."""
    if not is_run_folder(folder.path):
        missing = folder.config.relative_to(folder.path)
        raise ConfigError(f"{folder.path} is not a bulktag run folder (no {missing})")
    owner = folder.stored_job()
    refuse_finished(folder, job=owner is not None)
    if owner is None or folder.stored_dry_run():
        with FolderLock(folder.internal):
            return Run(config, folder, runtime).execute()
    log.info(
        "%s is a run of the job %s: finishing it as the job's next night would (its ledger, "
        "carry-over and history are updated)",
        folder.path,
        owner.name,
    )
    with FolderLock(owner.folder), open_state(owner.folder, runtime.clock.wall()) as state:
        claim(owner, state, write=False)
        refuse_finished(folder, job=True)  # the job may have finished it meanwhile
        carry = owner.folder / CARRY_OVER
        return Run(config, folder, runtime, state=state, carry_over=carry).execute()


def refuse_finished(folder: RunFolder, *, job: bool) -> None:
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
    failures = folder.written("failures")
    left = f"bulktag run {failures}" if failures else "a new run"
    job = summary.get("job")
    instead = f"the job {job}'s next night sends what it left" if job else f"what it left: {left}"
    raise UsageError(
        f"--resume {folder.path}: the run is finished{ended}, nothing to resume; {instead}"
    )
