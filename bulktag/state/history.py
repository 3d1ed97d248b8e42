"""A job's nights: one row per finished run, kept in the job's state, told as a table.

Every run of a job ends by recording its *night* (:class:`~bulktag.state.job.Night`) in
the job's ``state.sqlite``, built from the ``summary.json`` and ``.bulktag/config.json``
it has just written: contacts by outcome, calls against the day's quota, and the
*backlog* left (contacts deferred, not attempted, or failed with a retryable type: what
the next run carries over). The table is independent of the run folders, so the
history outlives ``keep_runs``.

The *projected nights to finish* a backlog are ``ceil(backlog / per_night)``, where
``per_night`` is the day's quota (as LeadLex reported it, else the plan's) less the
reserve: one call per contact, which is what a contact with at most 100 tags costs.
With no daily quota (``unmetered``) a backlog takes one more run.

``bulktag history --job FILE`` prints :func:`table_lines` (``--json``: :func:`as_json`);
``history.html`` (``bulktag.outputs.pages``) draws the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulktag.clock import iso_utc
from bulktag.outcomes import FailureType
from bulktag.state.job import JobState, Night
from bulktag.state.rundir import stored_config

__all__ = ["as_json", "night_from_run", "nights_to_finish", "record_night", "table_lines"]


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _retryable(name: str) -> bool:
    try:
        kind = FailureType(name)
    except ValueError:  # a type this version does not know: count it as work left
        return True
    return kind.retryable and kind is not FailureType.INVALID_INPUT


def night_from_run(
    run_dir: Path,
    summary: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    last_limit: int | None = None,
) -> Night:
    """The night a run's ``summary.json`` (and ``config.json``, when readable) describes.
    ``last_limit``: the day's quota LeadLex reported to an earlier night, for a night that
    made no call (its quota stays LeadLex's figure, not the plan's)."""
    contacts = summary.get("contacts", {})
    quota = summary.get("quota") or {}
    dispatch = (config or {}).get("dispatch", {})
    limit = quota.get("limit")
    known = limit if limit is not None else last_limit
    day = known if known is not None else dispatch.get("per_day")
    per_night = None if day is None else max(0, int(day) - int(dispatch.get("quota_reserve", 0)))
    backlog = sum(
        int(n) for name, n in summary.get("failures_by_type", {}).items() if _retryable(name)
    )
    return Night(
        run_id=str(summary["run_id"]),
        run_dir=str(run_dir),
        started_at=_unix(summary["started_at"]),
        finished_at=_unix(summary["finished_at"]),
        exit_code=int(summary["exit_code"]),
        dry_run=bool(summary.get("dry_run")),
        planned=int(contacts.get("planned", 0)),
        ok=int(contacts.get("ok", 0)),
        failed=int(contacts.get("failed", 0)),
        deferred=int(contacts.get("deferred", 0)),
        not_attempted=int(contacts.get("not_attempted", 0)),
        skipped=int(contacts.get("skipped", 0)),
        rejects=int(summary.get("rejects", {}).get("total", 0)),
        calls=int(summary.get("calls", {}).get("total", 0)),
        quota_limit=limit,
        quota_remaining=quota.get("remaining"),
        per_night=per_night,
        backlog=backlog,
    )


def record_night(state: JobState, run_dir: Path, summary: Mapping[str, Any]) -> Night:
    """Record the run that just wrote ``summary`` as a night of its job."""
    config = stored_config(run_dir)
    night = night_from_run(run_dir, summary, config, state.last_quota_limit())
    state.record_night(night)
    return night


def record_failed_night(
    state: JobState, started: float, finished: float, code: int, message: str
) -> Night:
    """A night that stopped on a mistake before it could send (exit 65, 78...): shown in the
    history with its exit and why, the backlog as the night before left it."""
    nights = state.nights()
    before = nights[-1] if nights else None
    night = Night(
        run_id=f"failed-{started:.3f}",
        run_dir="",
        started_at=started,
        finished_at=finished,
        exit_code=code,
        dry_run=False,
        planned=0,
        ok=0,
        failed=0,
        deferred=0,
        not_attempted=0,
        skipped=0,
        rejects=0,
        calls=0,
        quota_limit=None,
        quota_remaining=None,
        per_night=None if before is None else before.per_night,
        backlog=0 if before is None else before.backlog,
        message=message or "stopped",
    )
    state.record_night(night)
    return night


#: Exits after which the backlog waits for a person: the input, the settings or the key.
STUCK = frozenset({65, 77, 78})


def nights_to_finish(night: Night) -> int | None:
    """Runs still needed for the backlog left after ``night`` (see the module docstring);
    None when the night ended on what only a person can fix (:data:`STUCK`)."""
    if night.exit_code in STUCK:
        return None
    if night.backlog == 0:
        return 0
    if night.per_night is None:
        return 1
    return math.ceil(night.backlog / max(1, night.per_night))


def as_json(job: str, folder: Path, nights: Sequence[Night]) -> dict[str, Any]:
    """``bulktag history --json``: the job and its nights, oldest first."""
    return {
        "job": job,
        "folder": str(folder),
        "nights": [
            {
                **asdict(n),
                "started_at": iso_utc(n.started_at),
                "finished_at": iso_utc(n.finished_at),
                "nights_to_finish": nights_to_finish(n),
            }
            for n in nights
        ],
    }


COLUMNS = (
    "night (UTC)",
    "exit",
    "ok",
    "deferred",
    "failed",
    "skipped",
    "rejects",
    "calls / quota",
    "backlog",
    "nights left",
)


def row_cells(night: Night) -> list[str]:
    """One night as the table's cells (the page uses them too)."""
    quota = "" if night.per_night is None else f" / {night.per_night:,}"
    stamp = datetime.fromtimestamp(night.started_at, UTC).strftime("%Y-%m-%d %H:%M")
    left = nights_to_finish(night)
    if night.failed_to_start:
        return [
            stamp + " (stopped)",
            str(night.exit_code),
            *["-"] * 5,
            "0",
            f"{night.backlog:,}",
            "-",
        ]
    return [
        stamp + (" (dry run)" if night.dry_run else ""),
        str(night.exit_code),
        f"{night.ok:,}",
        f"{night.deferred + night.not_attempted:,}",
        f"{night.failed:,}",
        f"{night.skipped:,}",
        f"{night.rejects:,}",
        f"{night.calls:,}{quota}",
        f"{night.backlog:,}",
        "-" if left is None else str(left),
    ]


def table_lines(job: str, nights: Sequence[Night]) -> list[str]:
    """``bulktag history``: the nights as an aligned text table, newest last."""
    if not nights:
        return [f"job {job}: no finished run yet (bulktag run --job FILE records one)"]
    rows = [list(COLUMNS), *(row_cells(n) for n in nights)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    return [
        f"job {job}: {len(nights)} night{'s' if len(nights) > 1 else ''}",
        line(rows[0]),
        *(line(r) for r in rows[1:]),
        f"deferred includes not attempted; calls against the day's quota less the reserve; "
        f"{outlook(nights[-1])}",
    ]


def outlook(last: Night) -> str:
    """What the last night leaves, in words: done, the nights to go, or what blocks it."""
    left = nights_to_finish(last)
    if left is None:
        why = f": {last.message}" if last.message else ""
        return (
            f"the last night ended with exit {last.exit_code}{why}; its backlog "
            f"({last.backlog:,} contacts) waits until that is fixed"
        )
    if left == 0:
        return "the backlog is done"
    return f"{last.backlog:,} contacts left: about {left} more night{'s' if left > 1 else ''}"
