"""A job's nights: one row per finished run, kept in the job's state, told as a table.

Every run of a job ends by recording its *night* (:class:`~bulktag.state.Night`) in
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
``history.html`` (``bulktag.pages``) draws the same rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulktag.clock import iso_utc
from bulktag.outcomes import FailureType
from bulktag.state import JobState, Night

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
    run_dir: Path, summary: Mapping[str, Any], config: Mapping[str, Any] | None
) -> Night:
    """The night a run's ``summary.json`` (and ``config.json``, when readable) describes."""
    contacts = summary.get("contacts", {})
    quota = summary.get("quota") or {}
    dispatch = (config or {}).get("dispatch", {})
    limit = quota.get("limit")
    day = limit if limit is not None else dispatch.get("per_day")
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
    config_path = run_dir / ".bulktag" / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    night = night_from_run(run_dir, summary, config)
    state.record_night(night)
    return night


def nights_to_finish(night: Night) -> int:
    """Runs still needed for the backlog left after ``night`` (see the module docstring)."""
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
        str(nights_to_finish(night)),
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

    last = nights[-1]
    left = nights_to_finish(last)
    outlook = (
        "the backlog is done"
        if left == 0
        else f"{last.backlog:,} contacts left: about {left} more night{'s' if left > 1 else ''}"
    )
    return [
        f"job {job}: {len(nights)} run{'s' if len(nights) > 1 else ''}",
        line(rows[0]),
        *(line(r) for r in rows[1:]),
        f"deferred includes not attempted; calls against the day's quota less the reserve; "
        f"{outlook}",
    ]
