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

from bulktag.pages.layout import Markup

# pygal appends a finder of its map plugins (pygal.maps.*, unused here) to sys.meta_path;
# it has no find_spec, so Python 3.11 warns (ImportWarning) at every import that reaches
# it, in this process, for good. Taken out again.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

__all__ = ["bars", "calls_per_minute", "history_charts", "stacked_bar"]

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
    "label_font_size": 12,
    "major_label_font_size": 12,
    "legend_font_size": 13,
    "title_font_size": 15,
    "value_font_size": 12,
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
        "width": 900,
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


def _bucket(minutes: Sequence[Mapping[str, int]]) -> tuple[int, list[list[float]]]:
    """Dense per-minute rows (calls, 429s, retries, failed), merged into at most MAX_POINTS
    buckets of ``size`` minutes each, as averages per minute."""
    last = max(int(m["minute"]) for m in minutes)
    dense = [[0, 0, 0, 0] for _ in range(last + 1)]
    for m in minutes:
        dense[int(m["minute"])] = [m["calls"], m["rate_limited"], m["retries"], m["failed"]]
    size = max(1, math.ceil(len(dense) / MAX_POINTS))
    merged = []
    for start in range(0, len(dense), size):
        group = dense[start : start + size]
        merged.append([sum(row[i] for row in group) / size for i in range(4)])
    return size, merged


def calls_per_minute(timeline: Mapping[str, Any]) -> Markup | None:
    """Calls a minute against the rate limit, 429s, retries and other failures marked."""
    minutes = timeline.get("minutes") or []
    if not minutes:
        return None
    size, merged = _bucket(minutes)
    start = datetime.fromisoformat(str(timeline["started_at"]).replace("Z", "+00:00"))
    labels = [
        (start + timedelta(minutes=i * size)).astimezone(UTC).strftime("%H:%M")
        for i in range(len(merged))
    ]
    per = "a minute" if size == 1 else f"a minute (average of {size}-minute buckets)"
    rate = timeline.get("rate_per_minute")
    top = max(*(row[0] for row in merged), float(rate or 0), 1.0)
    chart = pygal.Line(
        **_options(
            title=f"Calls {per}, UTC",
            height=380,
            x_label_rotation=0,
            show_minor_x_labels=False,
            x_labels_major_every=max(1, len(labels) // 10),
            show_dots=False,
            dots_size=4,
            range=(0, top * 1.15),
            style=_styled([BLUE, INK, BAD, WARN, PURPLE], opacity="0.35"),
            value_formatter=lambda v: f"{v:,.1f}",
            include_x_axis=True,
            legend_at_bottom_columns=5,
        )
    )
    chart.x_labels = labels
    chart.add("calls", [row[0] for row in merged], fill=True, show_dots=len(merged) == 1)
    if rate:
        chart.add(
            f"rate limit ({rate:g}/min)",
            [rate] * len(merged),
            stroke_style={"dasharray": "8,5", "width": 3},
        )
    for name, index in (("429s", 1), ("retries", 2), ("other failures", 3)):
        chart.add(
            name,
            [row[index] or None for row in merged],
            stroke=False,
            show_dots=True,
            dots_size=4 if index == 2 else 5,
        )
    return _svg(chart)


def history_charts(
    labels: Sequence[str],
    outcomes: Mapping[str, Sequence[int]],
    calls: Sequence[int],
    quota: Sequence[int | None],
    backlog: Sequence[int],
) -> tuple[Markup, Markup]:
    """Per night: contacts by outcome (stacked), and calls against the quota with the
    backlog left."""
    every = max(1, len(labels) // 12)
    common = {"x_label_rotation": 0, "show_minor_x_labels": False, "x_labels_major_every": every}
    stacked = pygal.StackedBar(
        **_options(
            title="Contacts per night",
            style=_styled([GOOD, WARN, BAD]),
            value_formatter=lambda v: f"{v:,.0f}",
            **common,
        )
    )
    stacked.x_labels = list(labels)
    for name, values in outcomes.items():
        stacked.add(name, list(values))
    line = pygal.Line(
        **_options(
            title="Calls against the day's quota, and the backlog left",
            style=_styled([BLUE, GREY, PURPLE]),
            value_formatter=lambda v: f"{v:,.0f}",
            include_x_axis=True,
            dots_size=4,
            **common,
        )
    )
    line.x_labels = list(labels)
    line.add("calls", list(calls))
    if any(q is not None for q in quota):
        line.add("quota (less reserve)", list(quota), stroke_style={"dasharray": "6,4"})
    line.add("backlog left", list(backlog), secondary=True)
    return _svg(stacked), _svg(line)
