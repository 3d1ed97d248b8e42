"""``report.html``: one run, for the person who has to explain it on Monday.

Sections, top to bottom: how the run ended (exit code, halt, dry run), outcome tiles,
the plan against what happened, calls per minute against the rate limit, failures by
type (most frequent messages, example contacts), rejects by reason (file:line
examples), the quota before and after, and links to the files beside the page. What
it shows comes from :class:`~bulktag.pages.facts.RunFacts`; every value from an input
or an answer is escaped (:mod:`bulktag.pages.layout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulktag import __version__
from bulktag.pages import charts
from bulktag.pages.facts import RunFacts
from bulktag.pages.layout import Markup, Tile, esc, link, page, section, table, tiles, value

__all__ = ["render_run"]

_RETRYABLE_HINT = "retryable: the failures file sends them again"
_PERMANENT = {"validation_error", "not_found", "invalid_input"}
_FILES = {
    "results": "one row per planned contact",
    "failures": "contacts not ok, re-runnable: bulktag run FILE",
    "rejects": "input rows that could not be used",
    "summary": "the run in numbers (JSON)",
}


def _n(mapping: Mapping[str, Any], key: str) -> int:
    """A count in ``summary.json``; a count by endpoint (the pre-check's calls) summed."""
    found = mapping.get(key) or 0
    if isinstance(found, Mapping):
        return sum(int(n or 0) for n in found.values())
    return int(found)


def _top(counts: Mapping[str, int], most: int = 3) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{n:,} {_short(name)}" for name, n in ordered[:most])
    return text + (f", +{len(ordered) - most} more" if len(ordered) > most else "")


def _short(text: str, longest: int = 40) -> str:
    return text if len(text) <= longest else text[: longest - 1].rstrip() + "\u2026"


def _file(path: object, line: str = "") -> Markup:
    """A file's name (and line), its whole path on hover."""
    whole = "" if path is None else str(path)
    name = Path(whole).name or whole
    return Markup(f'<span class="mono" title="{esc(whole)}">{value(name + line)}</span>')


def _banner(summary: Mapping[str, Any]) -> Markup:
    code = int(summary.get("exit_code", 0))
    tone = {0: "good", 1: "warn", 75: "warn"}.get(code, "bad")
    lines = [f"<strong>exit {code}</strong>: {esc(summary.get('exit_meaning', ''))}"]
    if summary.get("dry_run"):
        lines.append("dry run: read and planned, nothing was sent")
    if summary.get("halt"):
        lines.append(
            f"stopped sending ({esc(summary['halt'])}): {value(summary.get('halt_message'))}"
        )
    if summary.get("resumed"):
        lines.append("resumed: the chart of calls shows the last session")
    return Markup(f'<div class="banner {tone}" id="outcome">' + "<br>".join(lines) + "</div>")


def _outcomes(facts: RunFacts) -> Markup:
    s = facts.summary
    contacts = s.get("contacts") or {}
    types = facts.types_by_status
    rejects = s.get("rejects") or {}

    def tile(label: str, n: int, detail: str, tone: str = "plain") -> Tile:
        return Tile(label, n, detail if n or label == "ok" else "", tone if n else "plain")

    items = [
        tile("ok", _n(contacts, "ok"), f"of {_n(contacts, 'planned'):,} planned", "good"),
        tile("failed", _n(contacts, "failed"), _top(types.get("failed", {})), "bad"),
        tile("deferred", _n(contacts, "deferred"), _top(types.get("deferred", {})), "warn"),
        tile("not attempted", _n(contacts, "not_attempted"), "the run stopped first", "warn"),
        tile("skipped", _n(contacts, "skipped"), _top(s.get("skipped_by_reason") or {})),
        tile("rejected rows", _n(rejects, "total"), _top(rejects.get("by_reason") or {}, 2), "bad"),
    ]
    parts = [
        ("ok", _n(contacts, "ok"), charts.GOOD),
        ("failed", _n(contacts, "failed"), charts.BAD),
        ("deferred", _n(contacts, "deferred"), charts.WARN),
        ("not attempted", _n(contacts, "not_attempted"), charts.PURPLE),
        ("skipped", _n(contacts, "skipped"), charts.GREY),
    ]
    chart = charts.stacked_bar("Contacts by outcome", parts) if any(n for _, n, _ in parts) else ""
    return section(
        "outcomes", "Outcome", tiles(items), Markup(f'<div class="chart small">{chart}</div>')
    )


def _plan(facts: RunFacts) -> Markup:
    s = facts.summary
    plan = s.get("plan") or {}
    calls = s.get("calls") or {}
    naive, made, saved = _n(s, "naive_calls"), _n(calls, "total"), int(s.get("calls_saved") or 0)
    by_endpoint = ", ".join(f"{n:,} {e}" for e, n in sorted(calls.items()) if e != "total" and n)
    rows: list[list[object]] = [
        [
            "input rows",
            _n(plan, "rows_read"),
            f"{_n(plan, 'rows_grouped'):,} grouped, {_n(plan, 'rows_rejected'):,} rejected",
        ],
        [
            "contacts",
            _n(plan, "contacts"),
            f"{_n(plan, 'pairs') - _n(plan, 'duplicate_pairs'):,} tags to add",
        ],
        [
            "calls a naive run makes",
            naive,
            "one per request of the plan, before skipping what is done",
        ],
        ["calls made", made, by_endpoint or "none"],
        ["calls saved", saved, "a naive run's calls less the calls made"],
    ]
    precheck = s.get("precheck")
    if precheck:
        rows.append(
            [
                "pre-check",
                _n(precheck, "calls"),
                f"{precheck.get('reason', '')}: "
                f"{_n(precheck, 'pairs_already_tagged'):,} pairs already tagged",
            ]
        )
    inputs = [
        [_file(i.get("source")), i.get("format", ""), _n(i, "rows"), value(i.get("id_column"))]
        for i in plan.get("inputs") or []
    ]
    chart = charts.bars(
        "Calls: a naive run, this run, saved",
        [("naive run", naive), ("this run", made), ("saved", max(0, saved))],
        height=190,
    )
    return section(
        "plan",
        "The plan against what happened",
        table(["", "count", ""], rows, numeric=[1]),
        Markup(f'<div class="chart small">{chart}</div>'),
        table(["input", "format", "rows", "ID column"], inputs, numeric=[2], caption="Inputs")
        if inputs
        else "",
    )


def _rate(facts: RunFacts) -> Markup:
    timeline = facts.summary.get("timeline") or {}
    minutes = timeline.get("minutes") or []
    chart = charts.calls_per_minute(timeline) if minutes else None
    if chart is None:
        what = "nothing was sent (dry run)" if facts.summary.get("dry_run") else "no call was made"
        return section("rate", "Calls per minute", Markup(f"<p>{esc(what)}.</p>"))
    total = sum(int(m["calls"]) for m in minutes)
    peak = max(int(m["calls"]) for m in minutes)
    limited = sum(int(m["rate_limited"]) for m in minutes)
    retries = sum(int(m["retries"]) for m in minutes)
    failed = sum(int(m["failed"]) for m in minutes)
    rate = timeline.get("rate_per_minute")
    final = timeline.get("final_rate_per_minute")
    limit = f"limit {rate:g} a minute" if rate else "no rate limit"
    if rate and final and final != rate:
        limit += f" (lowered to {final:g} after 429s)"
    span = int(minutes[-1]["minute"]) + 1
    text = (
        f"{total:,} calls over {span:,} minute{'s' if span > 1 else ''}, at most {peak:,} in a "
        f"minute; {limit}; {limited:,} answered 429, {retries:,} retries, "
        f"{failed:,} other failures."
    )
    return section(
        "rate", "Calls per minute", Markup(f"<p>{esc(text)}</p><div class=chart>{chart}</div>")
    )


def _failures(facts: RunFacts) -> Markup:
    if not facts.failures:
        return section(
            "failures", "Failures by type", Markup("<p>None: every contact sent ended ok.</p>")
        )
    parts: list[str] = []
    counts = [(g.error_type, g.count) for g in facts.failures]
    if len(counts) > 1:
        parts.append(
            Markup(
                '<div class="chart small">'
                f"{charts.bars('Contacts by failure type', counts, colour=charts.BAD)}</div>"
            )
        )
    for group in facts.failures:
        hint = "permanent: needs a person" if group.error_type in _PERMANENT else _RETRYABLE_HINT
        parts.append(
            Markup(
                f'<h3 data-type="{esc(group.error_type)}">{value(group.error_type)}: '
                f'{group.count:,} contacts <span class="meta">({esc(hint)})</span></h3>'
            )
        )
        parts.append(
            table(
                ["most frequent messages", "contacts"],
                [[value(m), n] for m, n in group.messages],
                numeric=[1],
            )
        )
        parts.append(
            table(
                ["example contact", "tags still to apply"],
                [[value(c), value(t)] for c, t in group.examples],
            )
        )
    return section("failures", "Failures by type", *parts)


def _rejects(facts: RunFacts) -> Markup:
    if not facts.rejects:
        return section(
            "rejects", "Rejects by reason", Markup("<p>None: every input row was usable.</p>")
        )
    parts: list[str] = []
    for group in facts.rejects:
        parts.append(Markup(f"<h3>{value(group.reason)}: {group.count:,} rows</h3>"))
        parts.append(
            table(
                ["file:line", "column", "contact id", "tags"],
                [
                    [_file(src, f":{line}" if line else ""), value(c), value(i), value(t)]
                    for src, line, c, i, t in group.examples
                ],
            )
        )
    return section("rejects", "Rejects by reason", *parts)


def _quota(facts: RunFacts) -> Markup:
    s = facts.summary
    quota = s.get("quota") or {}
    remaining, limit, reset = quota.get("remaining"), quota.get("limit"), quota.get("reset")
    calls = _n(s.get("calls") or {}, "total")
    if remaining is None:
        return section(
            "quota",
            "Daily quota",
            Markup(
                "<p>LeadLex reported no quota (nothing was sent, or the plan is unmetered).</p>"
            ),
        )
    remaining = int(remaining)
    known = quota.get("before")
    before = int(known) if known is not None else remaining + calls
    spent = max(0, before - remaining)
    rows: list[list[object]] = [
        ["the day's quota", "" if limit is None else int(limit)],
        ["left before this run", before],
        ["counted against it by this run", spent],
        ["calls this run made", calls],
        ["left after this run", remaining],
    ]
    if reset:
        when = datetime.fromtimestamp(int(reset), UTC).strftime("%Y-%m-%d %H:%M UTC")
        rows.append(["resets", when])
    used = max(0, int(limit) - before) if limit else 0
    chart = charts.stacked_bar(
        "The day's quota",
        [
            ("used before", used, charts.GREY),
            ("this run", spent, charts.BLUE),
            ("left", remaining, charts.GOOD),
        ],
    )
    how = (
        "what LeadLex reported after this run's first call, plus that call"
        if known is not None
        else "what was left after the run, plus the calls this run made"
    )
    return section(
        "quota",
        "Daily quota",
        table(["", "calls"], rows, numeric=[1]),
        Markup(f'<p class="meta">Left before: {esc(how)}.</p>'),
        Markup(f'<div class="chart small">{chart}</div>'),
    )


def _files(facts: RunFacts) -> Markup:
    rows = [[link(name, name), _FILES.get(what, "")] for what, name in facts.files]
    if facts.summary.get("job"):
        rows.append([link("../../history.html", "history.html"), "the job's nights"])
    return section("files", "Files beside this page", table(["file", "holds"], rows))


def render_run(facts: RunFacts) -> str:
    """The whole report.html."""
    s = facts.summary
    job = f" of the job {s['job']}" if s.get("job") else ""
    meta = Markup(
        f'<p class="meta">run <span class="mono">{value(s.get("run_id"))}</span>{esc(job)}, '
        f"{esc(s.get('started_at', ''))} to {esc(s.get('finished_at', ''))} "
        f"({float(s.get('duration_seconds') or 0):,.1f} s), bulktag {esc(s.get('bulktag', ''))}</p>"
    )
    nav = Markup(
        "<nav>"
        + "".join(
            f'<a href="#{a}">{t}</a>'
            for a, t in (
                ("outcomes", "Outcome"),
                ("plan", "Plan"),
                ("rate", "Calls per minute"),
                ("failures", "Failures"),
                ("rejects", "Rejects"),
                ("quota", "Quota"),
                ("files", "Files"),
            )
        )
        + "</nav>"
    )
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return page(
        f"bulktag run {s.get('started_at', '')}",
        "bulktag run" + job,
        [
            meta,
            _banner(s),
            nav,
            _outcomes(facts),
            _plan(facts),
            _rate(facts),
            _failures(facts),
            _rejects(facts),
            _quota(facts),
            _files(facts),
        ],
        footer=f"Written by bulktag {__version__} at {written} from the files in this folder; "
        f"bulktag report {facts.run_dir} writes it again.",
    )
