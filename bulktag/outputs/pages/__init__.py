"""Pages people look at: ``report.html`` for a run, ``history.html`` for a job.

::

    run folder files ──► facts.read_run ──► run_page.render_run ──► report.html
    (summary.json,        polars, lazy:       layout (escaped HTML,
     config.json,         group_by + head     CSP, print CSS) + charts
     failures, rejects)                       (pygal, static SVG)

    job state.sqlite ──► history (nights) ──► history_page.render_history ──► history.html

Both pages are built from files on disk only, never from a runner's objects, so
``bulktag report RUN_DIR`` writes the same page the run wrote, and a page can be
written again for any finished run folder. :func:`after_run` is the one call a run
makes when its ``summary.json`` is written: it records the job's night, then writes
the pages (unless ``--no-report``). A page that cannot be written is a warning: it
never changes a run's exit code.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bulktag.config import JobSettings
from bulktag.errors import BulkTagError, ConfigError
from bulktag.outputs.publish import atomic_write
from bulktag.state.history import record_failed_night, record_night
from bulktag.state.job import JobState
from bulktag.state.rundir import HISTORY, REPORT

__all__ = ["HISTORY", "REPORT", "after_run", "failed_night", "write_history", "write_run_report"]

log = logging.getLogger("bulktag")


def write_run_report(run_dir: Path) -> Path:
    """``report.html`` of the finished run in ``run_dir`` (InputError if it is not one)."""
    from bulktag.outputs.pages.facts import read_run  # noqa: PLC0415  (polars and pygal: only when used)
    from bulktag.outputs.pages.run_page import render_run  # noqa: PLC0415

    return _write(run_dir / REPORT, render_run(read_run(run_dir)))


def write_history(
    job: str, folder: Path, state: JobState, job_file: Path | str | None = None
) -> Path:
    """``history.html`` in the job's ``folder``, from the nights in its ``state``."""
    from bulktag.outputs.pages.history_page import render_history  # noqa: PLC0415  (pygal: only when used)

    page = render_history(job, folder, state.nights(), str(job_file or ""))
    return _write(folder / HISTORY, page)


def _write(target: Path, text: str) -> Path:
    """``text`` into ``target`` atomically (0600); ConfigError (78) when it cannot be."""
    try:
        atomic_write(target, lambda path: path.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{target}: cannot write it ({exc.strerror or exc}); make {target.parent} writable"
        ) from None
    return target


def after_run(
    run_dir: Path,
    summary: Mapping[str, Any],
    *,
    state: JobState | None,
    job: JobSettings | None,
    report: bool,
) -> None:
    """What follows a run's ``summary.json``: the job's night recorded, then the pages."""
    if state is not None:
        try:
            record_night(state, run_dir, summary)
        except (sqlite3.Error, KeyError, TypeError, ValueError) as exc:
            log.warning("cannot record the run in the job's history: %s", exc)
    if not report:
        return
    try:
        written = write_run_report(run_dir)
        log.info("report: %s", written)
        if state is not None and job is not None:
            log.info("history: %s", write_history(job.name, job.folder, state, job.file))
    except Exception as exc:  # noqa: BLE001  (a page is an extra: it never changes the run's outcome)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("cannot write the report of %s: %s", run_dir, reason)


def failed_night(
    state: JobState,
    job: JobSettings,
    *,
    started: float,
    finished: float,
    error: BulkTagError,
    report: bool,
) -> None:
    """A job's night that stopped before sending (exit 65, 78...): recorded in its
    history with the exit and the line said, and ``history.html`` written again."""
    try:
        record_failed_night(state, started, finished, int(error.exit_code), str(error))
        if report:
            write_history(job.name, job.folder, state, job.file)
    except Exception as exc:  # noqa: BLE001  (the night's own error is what the user must see)
        log.warning("cannot record the failed night in the job's history: %s", exc)
