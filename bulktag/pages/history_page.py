"""``history.html``: a job's nights, one row and one point each (``bulktag.history``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bulktag import __version__
from bulktag.history import COLUMNS, nights_to_finish, outlook, row_cells
from bulktag.pages import charts
from bulktag.pages.layout import Markup, Tile, esc, link, page, section, table, tiles, value
from bulktag.state import Night

__all__ = ["render_history"]

_NOTE = (
    "Deferred includes not attempted. Nights left: the backlog left at the day's quota "
    "less the reserve, one call per contact."
)


def _report_link(folder: Path, night: Night) -> Markup | str:
    run_dir = Path(night.run_dir)
    if not night.run_dir or not (run_dir / "report.html").is_file():
        return ""
    try:
        relative = run_dir.resolve().relative_to(folder.resolve())
    except ValueError:
        return value(night.run_dir)
    return link(f"{relative.as_posix()}/report.html", "report")


def render_history(job: str, folder: Path, nights: Sequence[Night]) -> str:
    """The whole history.html of the job ``job`` kept in ``folder``."""
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = (
        f"Written by bulktag {__version__} at {written} from the job's state "
        f"({folder / 'state.sqlite'}); every run of the job writes it again."
    )
    if not nights:
        body = [Markup("<p>No finished run yet: bulktag run --job FILE records one.</p>")]
        return page(f"bulktag job {job}", f"bulktag job {job}", body, footer=footer)
    last = nights[-1]
    left = nights_to_finish(last)
    overview = tiles(
        [
            Tile(
                "runs",
                len(nights),
                f"since {datetime.fromtimestamp(nights[0].started_at, UTC):%Y-%m-%d}",
            ),
            Tile("contacts ok", sum(n.ok for n in nights), "over every run", "good"),
            Tile(
                "backlog left",
                last.backlog,
                "after the last run",
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
    labels = [datetime.fromtimestamp(n.started_at, UTC).strftime("%m-%d %H:%M") for n in nights]
    outcome_chart, calls_chart = charts.history_charts(
        labels,
        {
            "ok": [n.ok for n in nights],
            "deferred": [n.deferred + n.not_attempted for n in nights],
            "failed": [n.failed for n in nights],
        },
        [n.calls for n in nights],
        [n.per_night for n in nights],
        [n.backlog for n in nights],
    )
    rows = [[*row_cells(n), _report_link(folder, n)] for n in nights]
    numeric = range(1, len(COLUMNS))
    return page(
        f"bulktag job {job}",
        f"bulktag job {job}",
        [
            Markup(f'<p class="meta">folder <span class="mono">{value(folder)}</span></p>'),
            section("overview", "Overview", overview),
            section(
                "nights",
                "Night by night",
                Markup(
                    f'<div class="chart">{outcome_chart}</div>'
                    f'<div class="chart">{calls_chart}</div>'
                ),
                table([*COLUMNS, ""], rows, numeric=numeric),
                Markup(f"<p class=meta>{esc(_NOTE)}</p>"),
            ),
        ],
        footer=footer,
    )
