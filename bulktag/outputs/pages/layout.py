"""The HTML around the charts: one self-contained page, every untrusted string as text.

A page is one file that opens from disk: its CSS is inline, its charts are inline
SVG, it has no script, and its Content-Security-Policy (the first element of its
head) forbids every network load, so nothing a value might smuggle in could fetch
anything either. Links are relative, to the files beside the page.

Every value that comes from an input, an answer or a file name goes through
:func:`esc` (``html.escape`` with quotes, C0 control characters replaced), and is
wrapped in ``<bdi>`` so a right-to-left override in a tag cannot reorder the text
around it. Markup built here is a :class:`Markup` and passes through unescaped:
that is the only way into the page without escaping.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["CSP", "Markup", "Tile", "esc", "link", "page", "section", "table", "tiles", "value"]

#: Nothing loads from anywhere: inline styles and data: images only, no script at all.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Longest untrusted value shown in full; longer ones are cut with an ellipsis.
LONGEST = 300


class Markup(str):
    """HTML built by this package: trusted, never escaped again."""

    __slots__ = ()


def esc(text: object) -> Markup:
    """``text`` as HTML text (a Markup is returned as it is)."""
    if isinstance(text, Markup):
        return text
    return Markup(html.escape(_CONTROL.sub("\ufffd", str(text)), quote=True))


def value(text: object, longest: int = LONGEST) -> Markup:
    """An untrusted value, escaped, isolated (``<bdi>``) and cut to ``longest`` characters."""
    shown = "" if text is None else str(text)
    if len(shown) > longest:
        shown = shown[: longest - 1] + "\u2026"
    return Markup(f"<bdi>{esc(shown)}</bdi>")


def link(href: str, label: object) -> Markup:
    """A relative link to a file beside the page."""
    return Markup(f'<a href="{esc(quote(href))}">{esc(label)}</a>')


@dataclass(frozen=True, slots=True)
class Tile:
    """A big number with its label, and a line of detail under it."""

    label: str
    number: int
    detail: str = ""
    tone: str = "plain"  #: plain, good, bad, warn


def tiles(items: Iterable[Tile]) -> Markup:
    cells = "".join(
        f'<div class="tile {esc(t.tone)}" data-tile="{esc(t.label)}">'
        f'<div class="number">{t.number:,}</div><div class="label">{esc(t.label)}</div>'
        + (f'<div class="detail">{value(t.detail, 120)}</div>' if t.detail else "")
        + "</div>"
        for t in items
    )
    return Markup(f'<div class="tiles">{cells}</div>')


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Iterable[int] = (),
    caption: str = "",
) -> Markup:
    """A table; cells are escaped unless they are Markup; ``numeric`` columns align right."""
    right = set(numeric)
    head = "".join(
        f"<th{' class=num' if i in right else ''}>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i in right else ''}>"
            + (f"{cell:,}" if isinstance(cell, int) and not isinstance(cell, bool) else esc(cell))
            + "</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    title = f"<caption>{esc(caption)}</caption>" if caption else ""
    return Markup(
        f'<div class="scroll"><table>{title}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def section(anchor: str, title: str, *parts: str) -> Markup:
    return Markup(
        f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>'
        + "".join(map(esc, parts))
        + "</section>"
    )


_CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5d6675; --line: #d9dde4;
  --good: #1b7f4b; --bad: #b3261e; --warn: #9a6700; --paper: #fff; --soft: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1160px; padding: 24px 28px 48px; color: var(--ink);
  background: var(--paper); font: 15px/1.45 system-ui, "Segoe UI", "DejaVu Sans", Arial,
  sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid
  var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p, li { margin: 4px 0; }
.meta { color: var(--muted); margin: 0 0 4px; }
.banner { padding: 8px 12px; border-radius: 6px; margin: 12px 0; background: var(--soft);
  border-left: 4px solid var(--muted); }
.banner.bad { border-color: var(--bad); } .banner.warn { border-color: var(--warn); }
.banner.good { border-color: var(--good); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
  gap: 12px; margin: 16px 0; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  background: var(--soft); border-top: 4px solid var(--muted); }
.tile.good { border-top-color: var(--good); } .tile.bad { border-top-color: var(--bad); }
.tile.warn { border-top-color: var(--warn); }
.tile .number { font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile .label { font-weight: 600; }
.tile .detail { color: var(--muted); font-size: 12px; overflow-wrap: break-word; }
.next { padding: 2px 16px 10px; border-radius: 6px; margin: 14px 0; background: var(--soft);
  border-left: 4px solid var(--muted); }
.next h2 { margin: 10px 0 6px; border: 0; padding: 0; }
.next.bad { border-color: var(--bad); } .next.warn { border-color: var(--warn); }
.next.good { border-color: var(--good); }
.next ul { margin: 0; padding-left: 20px; } .next li { margin: 7px 0; }
code.command { display: inline-block; margin-top: 3px; padding: 2px 6px; background: #fff;
  border: 1px solid var(--line); border-radius: 4px; overflow-wrap: anywhere; }
.fault { padding: 6px 10px; border-left: 4px solid var(--bad); background: var(--soft); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 12px; width: 100%; }
caption { text-align: left; color: var(--muted); padding: 2px 0; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; overflow-wrap: normal; word-break: normal; hyphens: none; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.chart { overflow-x: auto; }
.chart svg { width: 100%; min-width: 560px; height: auto; max-height: 440px; display: block; }
.chart.small svg { max-height: 210px; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 18px; padding: 0;
  margin: 2px 0 14px; font-size: 13px; }
ul.legend li { display: inline-flex; align-items: center; gap: 6px; margin: 0; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Consolas, monospace;
  font-size: 13px; }
nav a { margin-right: 14px; }
footer { margin-top: 36px; color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
@media (max-width: 640px) {
  body { padding: 14px 12px 32px; font-size: 14px; }
  .tiles { grid-template-columns: repeat(auto-fill, minmax(128px, 1fr)); gap: 8px; }
  .tile { padding: 10px; } .tile .number { font-size: 24px; }
  th, td { padding-right: 6px; }
  nav a { display: inline-block; margin: 2px 12px 2px 0; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  section, .tile, table, .chart { break-inside: avoid; }
  h2 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
  .tile, .banner { background: none; }
  .chart svg { max-height: 320px; }
}
"""


def page(title: str, heading: str, body: Iterable[str], *, footer: str = "") -> str:
    """The whole document: the CSP first, the inline CSS, ``body`` (Markup parts)."""
    content = "".join(map(esc, body))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{esc(heading)}</h1>{content}"
        + (f"<footer>{esc(footer)}</footer>" if footer else "")
        + "</body></html>\n"
    )
