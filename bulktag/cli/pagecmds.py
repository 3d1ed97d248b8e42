"""``bulktag report`` and ``bulktag history``: the pages and the nights, by hand.

``report RUN_DIR`` writes (again) the ``report.html`` a run writes at its end;
``report --job FILE`` the job's ``history.html``; ``history --job FILE`` prints the
job's nights as a table (``--json``: as JSON). Kept apart from ``cli.py``, which only
registers them: nothing here imports polars or pygal until a command runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulktag.errors import ExitCode, InputError, UsageError
from bulktag.jobfile import load_job
from bulktag.state.rundir import HISTORY, REPORT

if TYPE_CHECKING:
    from bulktag.state.job import JobState

__all__ = ["PAGE_COMMANDS", "add_page_commands"]

PAGE_COMMANDS = ("report", "history")


def add_page_commands(
    commands: argparse._SubParsersAction[Any],
    refuse_secrets: Callable[[argparse.ArgumentParser], None],
) -> None:
    report = commands.add_parser(
        "report",
        help=f"write {REPORT} of a run folder, or {HISTORY} of a job",
        description=(
            f"Write RUN_DIR/{REPORT}: the run's outcome, plan against what happened, calls "
            "per minute against the rate limit, failures by type, rejects by reason, the quota "
            "and links to its files, as one self-contained page (no script, no network). "
            "Every run writes it at its end (--no-report turns that off). With --job FILE, "
            f"write {HISTORY} in the job's folder: one row and one point per night. Exit 0, "
            "65 when RUN_DIR is not a finished run folder or the job has not run yet."
        ),
    )
    report.add_argument(
        "run_dir", nargs="?", type=Path, metavar="RUN_DIR", help="a run folder (runs/<UTC time>/)"
    )
    report.add_argument("--job", type=Path, metavar="FILE", help="the job file (jobs/*.toml)")
    refuse_secrets(report)
    report.set_defaults(handler=_report)
    history = commands.add_parser(
        "history",
        help="print a job's nights as a table",
        description=(
            "Print the nights of a job, one row per run: contacts ok, deferred and failed, "
            "calls against the day's quota, the backlog left and the nights projected to "
            "finish it. Exit 0, 65 when the job has not run yet."
        ),
    )
    history.add_argument(
        "--job", type=Path, metavar="FILE", required=True, help="the job file (jobs/*.toml)"
    )
    history.add_argument("--json", action="store_true", help="print the nights as JSON")
    refuse_secrets(history)
    history.set_defaults(handler=_history)


def _job_state(job_file: Path) -> tuple[str, Path, JobState]:
    """The job's name, folder and open state; InputError when it has never run."""
    from bulktag.state.job import STATE_FILE, JobState  # noqa: PLC0415  (polars: only when the command runs)

    job = load_job(job_file)
    folder = job.out
    if not (folder / STATE_FILE).is_file():
        raise InputError(
            f"the job has not run yet (no {folder / STATE_FILE}): bulktag run --job {job_file} "
            "records its first night",
            source=str(job_file),
        )
    return job.name, folder, JobState(folder)


def _report(args: argparse.Namespace, runtime: object) -> int:
    from bulktag.outputs.pages import write_history, write_run_report  # noqa: PLC0415

    if (args.run_dir is None) == (args.job is None):
        raise UsageError(
            "bulktag report: give a run folder (bulktag report RUN_DIR) or a job "
            "(bulktag report --job FILE), one of the two"
        )
    if args.run_dir is not None:
        written = write_run_report(args.run_dir)
    else:
        name, folder, state = _job_state(args.job)
        with state:
            written = write_history(name, folder, state, args.job)
    print(written)
    return ExitCode.OK


def _history(args: argparse.Namespace, runtime: object) -> int:
    from bulktag.state.history import as_json, table_lines  # noqa: PLC0415

    name, folder, state = _job_state(args.job)
    with state:
        nights = state.nights()
    if args.json:
        print(json.dumps(as_json(name, folder, nights), indent=2, ensure_ascii=False))
    else:
        print("\n".join(table_lines(name, nights)))
    return ExitCode.OK
