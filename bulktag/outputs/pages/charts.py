"""The report's charts: pygal, rendered to static SVG and inlined in the page.

pygal was chosen because it writes SVG from pure Python, offline, with a small
installed size (912 KiB with its two dependencies, against 137 MiB for matplotlib and
numpy); plotly, bokeh and altair draw with JavaScript in the browser or need a
renderer to make a static image (docs/architecture.md).

pygal's SVG would load its tooltip script from a CDN and carry a script of its own
configuration: here ``js=[]`` drops the first, and the :func:`_static` filter removes
every ``<script>`` and comment from the tree before it is serialised, so a chart is
shapes, text and a ``<style>`` only (the page's CSP would block a script anyway; this
way it has nothing to block). Labels go through pygal's XML serialiser, which escapes
them; the page adds no unescaped text.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pygal
from pygal.etree import etree
from pygal.style import Style

from bulktag.outputs.pages.figures import allowed_per_minute
from bulktag.outputs.pages.layout import Markup, esc

# pygal appends a finder of its map plugins (pygal.maps.*, unused here) to sys.meta_path;
# it has no find_spec, so Python 3.11 warns (ImportWarning) at every import that reaches
# it, in this process, for good. Taken out again.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

__all__ = ["bars", "calls_over_time", "history_charts", "stacked_bar"]

#: At most this many points on the calls-per-minute chart (longer runs are bucketed).
MAX_POINTS = 150

GOOD, BAD, WARN, GREY, BLUE, PURPLE, INK = (
    "#1b7f4b",
    "#b3261e",
    "#c98a00",
    "#8a93a3",
    "#2f6db5",
    "#7a4fb5",
    "#1d2330",
)

_LOOK: dict[str, Any] = {
    "background": "white",
    "plot_background": "white",
    "foreground": "#1d2330",
    "foreground_strong": "#1d2330",
    "foreground_subtle": "#d9dde4",
    "opacity": "0.85",
    "opacity_hover": "0.95",
    "font_family": 'system-ui, "Segoe UI", "DejaVu Sans", Arial, sans-serif',
    "label_font_size": 13,
    "major_label_font_size": 13,
    "legend_font_size": 14,
    "title_font_size": 15,
    "value_font_size": 13,
    "guide_stroke_color": "#e3e6eb",
    "major_guide_stroke_color": "#c9ced6",
    "guide_stroke_dasharray": "0",
    "major_guide_stroke_dasharray": "0",
    "stroke_width": "2",
}
STYLE = Style(**_LOOK, colors=(BLUE, GOOD, BAD, WARN, GREY, PURPLE))


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _static(root: Any) -> Any:
    """pygal's tree as drawing only: no script, no comment; the ``<desc>`` elements its
    script reads for tooltips become one ``<title>`` per point, which a browser shows on
    hover without any script."""
    for parent in list(root.iter()):
        described: list[str] = []
        for child in list(parent):
            tag = child.tag
            if tag is etree.Comment or _local(tag) == "script":
                parent.remove(child)
            elif _local(tag) == "desc":
                if (child.get("class") or "").strip() in ("x_label", "value") and child.text:
                    described.append(child.text)
                parent.remove(child)
        if described:
            title = etree.Element("title")
            title.text = ": ".join(described)
            parent.insert(0, title)
    return root


def _options(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "js": [],
        "disable_xml_declaration": True,
        "style": STYLE,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 4,
        "print_values": False,
        "width": 820,
        "height": 360,
        "margin": 16,
        "show_y_guides": True,
        "truncate_legend": -1,
        "truncate_label": -1,
    }
    options.update(overrides)
    return options


def _svg(chart: Any) -> Markup:
    chart.add_xml_filter(_static)
    svg = chart.render(is_unicode=True)
    assert "<script" not in svg  # _static removed them
    return Markup(svg)


def stacked_bar(title: str, parts: Sequence[tuple[str, int, str]]) -> Markup:
    """One horizontal bar split into ``(label, count, colour)`` parts (zero parts left out)."""
    shown = [(label, n, colour) for label, n, colour in parts if n]
    chart = pygal.HorizontalStackedBar(
        **_options(
            title=title,
            height=170,
            show_y_labels=False,
            style=_styled([c for _, _, c in shown]),
            legend_at_bottom_columns=max(1, min(6, len(shown))),
            value_formatter=lambda v: f"{v:,.0f}",
        )
    )
    for label, n, _ in shown:
        chart.add(label, [n])
    return _svg(chart)


def bars(
    title: str, items: Sequence[tuple[str, int]], *, colour: str = BLUE, height: int = 0
) -> Markup:
    """Horizontal bars, one per ``(label, value)``, labelled on the axis."""
    chart = pygal.HorizontalBar(
        **_options(
            title=title,
            height=height or max(150, 70 + 34 * len(items)),
            show_legend=False,
            style=_styled([colour]),
            value_formatter=lambda v: f"{v:,.0f}",
            print_values=True,
        )
    )
    chart.x_labels = [label for label, _ in items]
    chart.add(title, [n for _, n in items])
    return _svg(chart)


def _styled(colours: Sequence[str], **look: str) -> Style:
    """The page's look with these series colours (and ``look`` changed)."""
    return Style(**(_LOOK | look), colors=tuple(colours) or STYLE.colors)


def _bucket(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[int, list[list[float]]]:
    """Dense rows (calls, 429s, retries, errors, rate) by bucket index ``key``, merged into
    at most MAX_POINTS groups of ``size`` buckets: counts as averages per bucket, the rate
    as the lowest of the group (None where no bucket of it has one)."""
    last = max(int(m[key]) for m in rows)
    dense: list[list[float]] = [[0, 0, 0, 0, math.inf] for _ in range(last + 1)]
    for m in rows:
        rate = m.get("rate")
        dense[int(m[key])] = [
            m["calls"],
            m["rate_limited"],
            m["retries"],
            m["failed"],
            math.inf if rate is None else float(rate),
        ]
    size = max(1, math.ceil(len(dense) / MAX_POINTS))
    merged = []
    for start in range(0, len(dense), size):
        group = dense[start : start + size]
        merged.append(
            [sum(row[i] for row in group) / size for i in range(4)] + [min(row[4] for row in group)]
        )
    return size, merged


def _ticks(top: float) -> list[int]:
    """Whole-number ticks from 0 past ``top``: about five, at 1, 2 or 5 times a power of 10."""
    raw = max(top, 1.0) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = max(1, int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw)))
    return list(range(0, math.ceil(max(top, 1.0) / step) * step + step, step))


def _legend(entries: Sequence[tuple[str, str, str]]) -> Markup:
    """An HTML legend: (label, colour, kind: area, dash, dot) with a swatch drawn as it is
    on the chart (pygal's own legend draws every series as a square)."""
    swatch = {
        "area": '<rect x="1" y="3" width="22" height="8" fill="{c}" fill-opacity=".35" '
        'stroke="{c}" stroke-width="2"/>',
        "dash": '<line x1="1" y1="7" x2="23" y2="7" stroke="{c}" stroke-width="3" '
        'stroke-dasharray="6,4"/>',
        "dot": '<circle cx="12" cy="7" r="4.5" fill="{c}"/>',
    }
    items = "".join(
        f'<li><svg width="24" height="14" aria-hidden="true">'
        f"{swatch[kind].format(c=colour)}</svg>{esc(label)}</li>"
        for label, colour, kind in entries
    )
    return Markup(f'<ul class="legend">{items}</ul>')


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{max(1, round(seconds)):,} seconds"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes:,} minutes"
    return f"{minutes // 60:,} h {minutes % 60:02d} min"


def calls_over_time(timeline: Mapping[str, Any]) -> tuple[Markup, Markup, str] | None:
    """Calls against the rate limit as LeadLex allowed it, 429s, retries and errors:
    every FINE_BUCKET seconds for a session under three minutes, else a minute (longer
    runs averaged into at most MAX_POINTS buckets). The chart, its legend, and the span
    of the session in words; None when no call was made."""
    minutes = timeline.get("minutes") or []
    if not minutes:
        return None
    fine = timeline.get("fine") or {}
    configured = timeline.get("rate_per_minute")
    start = datetime.fromisoformat(str(timeline["started_at"]).replace("Z", "+00:00"))
    if fine.get("buckets"):
        width = int(fine.get("bucket_seconds") or 5)
        size, merged = _bucket(fine["buckets"], "bucket")
        labels = [f"+{(i * width) // 60}:{(i * width) % 60:02d}" for i in range(len(merged))]
        per, scale = f"every {width} seconds", width / 60
        title = f"Calls every {width} seconds, from the first call (min:s)"
        span = _span(len(merged) * width)
        every = max(1, len(labels) // 9)
    else:
        size, merged = _bucket(minutes, "minute")
        labels = [
            (start + timedelta(minutes=i * size)).astimezone(UTC).strftime("%H:%M")
            for i in range(len(merged))
        ]
        per = "a minute" if size == 1 else f"a minute (average of {size}-minute buckets)"
        scale = 1.0
        title = f"Calls {per}, UTC"
        span = _span(len(merged) * size * 60)
        every = max(1, len(labels) // 10)
    allowed = allowed_per_minute(timeline)
    if allowed is not None:  # LeadLex's limit, as its 429s showed it
        limits: list[float | None] = [float(allowed)] * len(merged)
    else:  # the limiter's, as it was in each bucket
        limits = [row[4] if row[4] != math.inf else configured for row in merged]
    limit_line = [None if r is None else float(r) * scale for r in limits]
    top = max(*(row[0] for row in merged), *(r or 0.0 for r in limit_line), 1.0)
    ticks = _ticks(top)
    chart = pygal.Line(
        **_options(
            title=title,
            height=380,
            x_label_rotation=0,
            show_minor_x_labels=False,
            x_labels_major_every=every,
            show_dots=False,
            dots_size=4,
            range=(0, ticks[-1]),
            y_labels=ticks,
            show_legend=False,
            style=_styled([BLUE, INK, BAD, WARN, PURPLE], opacity="0.35"),
            value_formatter=lambda v: f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}",
            include_x_axis=True,
        )
    )
    chart.x_labels = labels
    chart.add("calls", [row[0] for row in merged], fill=True, show_dots=len(merged) == 1)
    entries = [("calls " + per, BLUE, "area")]
    if any(r is not None for r in limit_line):
        if allowed is not None:
            name = f"the limit LeadLex allowed: {allowed:,} a minute (seen in its 429s)"
        elif len({r for r in limit_line if r is not None}) > 1:
            name = "the rate limit, as lowered after 429s"
        else:
            name = "the rate limit"
        chart.add(
            name,
            limit_line,
            stroke_style={"dasharray": "8,5", "width": 3},
            show_dots=len(merged) == 1,
        )
        entries.append(
            (name + (f" ({configured:g} a minute set)" if configured else ""), INK, "dash")
        )
    for name, index, colour in (
        ("429s", 1, BAD),
        ("retries", 2, WARN),
        ("errors (404, 5xx, none)", 3, PURPLE),
    ):
        points = [row[index] or None for row in merged]
        chart.add(name, points, stroke=False, show_dots=True, dots_size=4 if index == 2 else 5)
        if any(points):
            entries.append((name, colour, "dot"))
    return _svg(chart), _legend(entries), span


def history_charts(
    labels: Sequence[str],
    outcomes: Mapping[str, Sequence[int]],
    calls: Sequence[int],
    quota: Sequence[int | None],
) -> tuple[Markup, Markup, tuple[Markup, Markup]]:
    """Per night: contacts by outcome (stacked, skipped ones included), and the share of
    the day's quota (as LeadLex reported it, less the reserve) its calls used; each with
    its legend."""
    every = max(1, len(labels) // 8)
    common = {
        "x_label_rotation": 0,
        "show_minor_x_labels": False,
        "x_labels_major_every": every,
        "show_legend": False,
    }
    colours = {"ok": GOOD, "skipped": GREY, "deferred": WARN, "failed": BAD}
    shown = [(name, list(values)) for name, values in outcomes.items()]
    top = max([sum(column) for column in zip(*(v for _, v in shown), strict=True)] + [1])
    ticks = _ticks(top)
    stacked = pygal.StackedBar(
        **_options(
            title="Contacts per night (and its exit)",
            style=_styled([colours.get(name, BLUE) for name, _ in shown]),
            value_formatter=lambda v: f"{v:,.0f}",
            range=(0, ticks[-1]),
            y_labels=ticks,
            **common,
        )
    )
    stacked.x_labels = list(labels)
    for name, values in shown:
        stacked.add(name, values)
    shares = [
        None if q is None or q <= 0 else min(100.0, 100.0 * c / q)
        for c, q in zip(calls, quota, strict=True)
    ]
    used = pygal.Bar(
        **_options(
            title="Calls per night, as a share of the day's quota (less the reserve)",
            style=_styled([BLUE]),
            value_formatter=lambda v: f"{v:,.0f} %",
            range=(0, 100),
            y_labels=[0, 25, 50, 75, 100],
            **common,
        )
    )
    used.x_labels = list(labels)
    used.add(
        "share of the quota",
        [
            None if share is None else {"value": share, "label": f"{c:,} of {q:,} calls"}
            for share, c, q in zip(shares, calls, quota, strict=True)
        ],
    )
    legends = (
        _legend([(name, colours.get(name, BLUE), "area") for name, _ in shown]),
        _legend(
            [
                (
                    "calls / the day's quota less the reserve (100 %: the quota was the limit)",
                    BLUE,
                    "area",
                )
            ]
        ),
    )
    return _svg(stacked), _svg(used), legends
