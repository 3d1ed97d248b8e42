"""``history.html``: a job's nights, one row and one point each (``bulktag.state.history``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulktag import __version__
from bulktag.outputs.pages import charts
from bulktag.outputs.pages.layout import Markup, Tile, esc, link, page, section, table, tiles, value
from bulktag.read.ownfiles import DRY_RUNS
from bulktag.state.history import COLUMNS, nights_to_finish, outlook, row_cells
from bulktag.state.job import Night
from bulktag.state.rundir import REPORT, SUMMARY, RunPaths

__all__ = ["render_history"]

_NOTE = (
    "Deferred includes not attempted. Calls against the day's quota as LeadLex reported it, "
    "less the reserve. Nights left: the backlog left at that quota, one call per contact. "
    "A night stopped before sending (exit 65, 78) sent nothing; a dry run is listed, never "
    "counted as a night."
)


def _report_link(folder: Path, night: Night) -> Markup | str:
    run_dir = Path(night.run_dir)
    if not night.run_dir or not RunPaths(run_dir).report.is_file():
        return ""
    try:
        relative = run_dir.resolve().relative_to(folder.resolve())
    except ValueError:
        return value(night.run_dir)
    return link(f"{relative.as_posix()}/{REPORT}", "report")


def _dry_runs(folder: Path) -> list[Mapping[str, Any]]:
    """The job's dry runs (``OUT/dry-runs/*/summary.json``): shown as such, never counted
    as nights (a dry run changes nothing of the job)."""
    found: list[Mapping[str, Any]] = []
    for path in sorted((folder / DRY_RUNS).glob(f"*/{SUMMARY}")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(summary, dict) and summary.get("dry_run"):
            found.append(summary | {"_folder": str(path.parent)})
    return found


def _dry_row(folder: Path, summary: Mapping[str, Any]) -> list[object]:
    started = str(summary.get("started_at", "")).replace("T", " ").replace("Z", "")[:16]
    would = summary.get("would_send") or {}
    skipped = (summary.get("contacts") or {}).get("skipped", 0)
    rejects = (summary.get("rejects") or {}).get("total", 0)
    run_dir = Path(str(summary["_folder"]))
    report: Markup | str = ""
    if RunPaths(run_dir).report.is_file():
        report = link(f"{run_dir.relative_to(folder).as_posix()}/{REPORT}", "report")
    return [
        f"{started} (dry run)",
        f"{int(summary.get('exit_code', 0))}",
        f"would send {int(would.get('contacts', 0)):,}",
        "-",
        "-",
        f"{int(skipped):,}",
        f"{int(rejects):,}",
        "0 (nothing sent)",
        "-",
        "-",
        report,
    ]


def _label(night: Night) -> str:
    stamp = datetime.fromtimestamp(night.started_at, UTC).strftime("%m-%d %H:%M")
    return f"{stamp} · exit {night.exit_code}"


def render_history(job: str, folder: Path, nights: Sequence[Night], job_file: str = "") -> str:
    """The whole history.html of the job ``job`` kept in ``folder``."""
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = (
        f"Written by bulktag {__version__} at {written} from the job's state "
        f"({folder / 'state.sqlite'}); every run of the job writes it again."
    )
    title = f"Job history: {job}"
    named = f" ({Path(job_file).name})" if job_file and Path(job_file).stem == job else ""
    meta = Markup(
        f'<p class="meta">job <strong>{value(job)}</strong>{esc(named)}, folder '
        f'<span class="mono">{value(folder)}</span></p>'
    )
    dry = _dry_runs(folder)
    if not nights:
        body = [meta, Markup("<p>No finished night yet: bulktag run --job FILE records one.</p>")]
        return page(f"bulktag: {title}", title, body, footer=footer)
    last = nights[-1]
    left = nights_to_finish(last)
    stopped = sum(n.failed_to_start for n in nights)
    overview = tiles(
        [
            Tile(
                "nights",
                len(nights),
                f"since {datetime.fromtimestamp(nights[0].started_at, UTC):%Y-%m-%d}"
                + (f"; {stopped:,} stopped before sending" if stopped else ""),
                "bad" if stopped else "plain",
            ),
            Tile("contacts ok", sum(n.ok for n in nights), "over every night", "good"),
            Tile(
                "backlog left",
                last.backlog,
                "after the last night",
                "warn" if last.backlog else "good",
            ),
            Tile(
                "nights to finish",
                left,
                "at the day's quota" if left else "the backlog is done",
                "warn" if left else "good",
            )
            if left is not None
            else Tile("last exit", last.exit_code, outlook(last), "bad"),
        ]
    )
    labels = [_label(n) for n in nights]
    outcome_chart, quota_chart, legends = charts.history_charts(
        labels,
        {
            "ok": [n.ok for n in nights],
            "skipped": [n.skipped for n in nights],
            "deferred": [n.deferred + n.not_attempted for n in nights],
            "failed": [n.failed for n in nights],
        },
        [n.calls for n in nights],
        [n.per_night for n in nights],
    )
    rows: list[list[object]] = [[*row_cells(n), _report_link(folder, n)] for n in nights]
    if dry:
        rows += [_dry_row(folder, d) for d in dry]
        rows.sort(key=lambda row: str(row[0]))
    numeric = range(1, len(COLUMNS))
    return page(
        f"bulktag: {title}",
        title,
        [
            meta,
            section("overview", "Overview", overview),
            section(
                "nights",
                "Night by night",
                Markup(
                    f'<div class="chart">{outcome_chart}</div>{legends[0]}'
                    f'<div class="chart">{quota_chart}</div>{legends[1]}'
                ),
                table([*COLUMNS, ""], rows, numeric=numeric),
                Markup(f"<p class=meta>{esc(_NOTE)}</p>"),
            ),
        ],
        footer=footer,
    )
