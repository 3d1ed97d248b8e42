"""``--metrics-file``: node_exporter textfile-collector metrics about the last run.

Written atomically (temporary file, rename), readable by the collector (0644).
``bulktag_last_success_timestamp_seconds`` keeps its value across failed runs:
a run counts as a success when it finished with nothing left to re-run (exit 0,
or 1: only permanent failures or rejects, which a re-run cannot fix).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from bulktag.outputs.publish import atomic_write

if TYPE_CHECKING:
    from bulktag.outputs.summary import Summary

__all__ = ["write_metrics"]

_SUCCESS = re.compile(
    r'^bulktag_last_success_timestamp_seconds\{job="(?:[^"\\]|\\.)*"\} (\S+)$', re.M
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _previous_success(path: Path) -> float | None:
    try:
        match = _SUCCESS.search(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return float(match.group(1)) if match else None
    except ValueError:
        return None


def write_metrics(path: Path, summary: Summary) -> None:
    """Write the metrics of the run ``summary`` describes (its job, else ``manual``)."""
    labels = f'job="{_label(summary.job or "manual")}"'
    finished_at = summary.finished_at
    code = int(summary.exit_code)
    success = finished_at if code in (0, 1) else _previous_success(path)
    lines: list[str] = []

    def gauge(name: str, help_text: str, values: list[tuple[str, float | int | None]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for extra, value in values:
            if value is not None:
                lines.append(f"{name}{{{labels}{extra}}} {value}")

    gauge("bulktag_last_run_timestamp_seconds", "When the last run finished.", [("", finished_at)])
    gauge(
        "bulktag_last_success_timestamp_seconds",
        "When a run last finished with nothing left to re-run (exit 0 or 1).",
        [("", success)],
    )
    gauge(
        "bulktag_last_run_duration_seconds",
        "How long the last run took.",
        [("", round(summary.duration_seconds, 3))],
    )
    gauge("bulktag_last_run_exit_code", "The last run's exit code.", [("", code)])
    contacts = summary.contacts
    gauge(
        "bulktag_last_run_contacts",
        "Contacts of the last run by status.",
        [
            (f',status="{s}"', contacts.get(s, 0))
            for s in ("ok", "failed", "deferred", "not_attempted", "skipped")
        ],
    )
    gauge(
        "bulktag_last_run_failures",
        "Contacts of the last run that did not end ok, by failure type.",
        [(f',error_type="{_label(t)}"', n) for t, n in sorted(summary.failures_by_type.items())],
    )
    gauge(
        "bulktag_last_run_rejects",
        "Input rows rejected by the last run.",
        [("", summary.plan.rejects)],
    )
    gauge(
        "bulktag_last_run_calls",
        "Calls the last run made to LeadLex, by endpoint.",
        [(f',endpoint="{e}"', n) for e, n in sorted(summary.calls.items())],
    )
    gauge(
        "bulktag_last_run_naive_calls",
        "Calls the last run's plan needed before skipping what was done (one per request).",
        [("", summary.naive_calls)],
    )
    gauge(
        "bulktag_last_run_calls_saved",
        "Contacts skipped as done (ledger, pre-check, failed before) less the pre-check's calls.",
        [("", summary.calls_saved)],
    )
    gauge(
        "bulktag_quota_remaining",
        "LeadLex's daily quota left, as last reported.",
        [("", summary.quota.remaining)],
    )
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda target: target.write_text(text, encoding="utf-8"), mode=0o644)
