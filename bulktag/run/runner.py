"""One run, start to end: plan, send, publish, summarise; and a job's night of runs.

:meth:`Run.execute` is the run as a straight line of stages, each returning what the
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

import logging
import os
from pathlib import Path

from bulktag.config import (
    RunConfig,
)
from bulktag.run.checks import preflight
from bulktag.run.folder import RunFolder, make_run_dir, new_run_dir
from bulktag.run.night import dry_run_job, run_job
from bulktag.run.stages import Run, RunResult
from bulktag.run.start import fresh, resume
from bulktag.runtime import Runtime

__all__ = ["RunResult", "Runtime", "run"]

log = logging.getLogger("bulktag")


# -- entry points -------------------------------------------------------------------------


def run(config: RunConfig, runtime: Runtime | None = None) -> RunResult:
    """Run (or resume, or run a job): plan, send, publish; returns the exit code and the summary."""
    runtime = runtime or Runtime()
    os.umask(0o077)  # what a run writes (plans, journals, temporary files) is the user's only
    if config.job is not None:
        return dry_run_job(config, runtime) if config.dry_run else run_job(config, runtime)
    if config.resume is not None:
        return resume(config, RunFolder(config.resume), runtime)
    preflight(config, runtime.env)  # a mistake there leaves no folder behind
    existed = config.out_dir is not None and config.out_dir.exists()
    path = (
        make_run_dir(config.out_dir) if config.out_dir else new_run_dir(Path("runs"), runtime.clock)
    )
    folder = RunFolder(path)
    return fresh(folder, lambda: Run(config, folder, runtime), keep_folder=existed)
