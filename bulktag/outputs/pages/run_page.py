"""``report.html``: one run, for the person who has to explain it on Monday.

Sections, top to bottom: What next (the command that sends what is left and when, what
needs a person, a run-wide fault first, the exit code for cron:
:mod:`~bulktag.outputs.pages.next_steps`), outcome tiles (a dry run's: what it would
send), the calls each counted once (:mod:`~bulktag.outputs.pages.figures`), calls over
time against the limit LeadLex allowed, failures by type (messages grouped by shape,
example contacts), rejects by reason (file:line examples), the quota before and after,
and links to the files beside the page. What it shows comes from
:class:`~bulktag.outputs.pages.facts.RunFacts`; every value from an input or an answer
is escaped (:mod:`bulktag.outputs.pages.layout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from bulktag import __version__
from bulktag.clock import utc_minute
from bulktag.outputs.pages import charts
from bulktag.outputs.pages.facts import RunFacts
from bulktag.outputs.pages.figures import Figures, allowed_per_minute, figures
from bulktag.outputs.pages.layout import Markup, Tile, esc, link, page, section, table, tiles, value
from bulktag.outputs.pages.next_steps import RUN_WIDE, next_steps
from bulktag.state.rundir import HISTORY

__all__ = ["render_run"]

_RETRYABLE_HINT = "retryable: sent again by the next run"
_PERMANENT = {"validation_error", "not_found", "invalid_input"}
_FILES = {
    "results": "one row per planned contact",
    "failures": "contacts not ok, re-runnable: bulktag run FILE",
    "rejects": "input rows that could not be used",
    "summary": "the run in numbers (JSON)",
}


def _top(counts: Mapping[str, int], most: int = 3) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{n:,} {_short(name)}" for name, n in ordered[:most])
    return text + (f", +{len(ordered) - most} more" if len(ordered) > most else "")


def _short(text: str, longest: int = 40) -> str:
    """``text`` cut at a word's end before ``longest`` characters, never inside a word."""
    if len(text) <= longest:
        return text
    cut = text[: longest - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "\u2026"


def _file(path: object, line: str = "") -> Markup:
    """A file's name (and line), its whole path on hover."""
    whole = "" if path is None else str(path)
    name = Path(whole).name or whole
    return Markup(f'<span class="mono" title="{esc(whole)}">{value(name + line)}</span>')


def _code(command: str) -> Markup:
    return Markup(f'<code class="command">{value(command, 2000)}</code>')


def _next(facts: RunFacts, figures: Figures) -> Markup:
    """What next: the box people read first."""
    s = facts.summary
    code = int(s.get("exit_code", 0))
    tone = {0: "good", 1: "warn", 75: "warn"}.get(code, "bad")
    if figures.dry_run:
        tone = "plain"
    items = []
    for step in next_steps(facts, figures):
        command = f"<br>{_code(step.command)}" if step.command else ""
        items.append(f'<li data-step="{esc(step.kind)}">{esc(step.text)}{command}</li>')
    extra = []
    if s.get("resumed"):
        extra.append("Resumed: the counts of calls a minute are the last session's.")
    notes = "".join(f'<p class="meta">{esc(x)}</p>' for x in extra)
    return Markup(
        f'<section id="next" class="next {tone}"><h2>What next</h2>'
        f"<ul>{''.join(items)}</ul>{notes}</section>"
    )


def _outcomes(facts: RunFacts, f: Figures) -> Markup:
    s = facts.summary
    types = facts.types_by_status
    rejects = s.get("rejects") or {}

    def tile(label: str, n: int, detail: str, tone: str = "plain") -> Tile:
        return Tile(
            label, n, detail if n or label in ("ok", "would send") else "", tone if n else "plain"
        )

    reasons = _top(rejects.get("by_reason") or {}, 2)
    if f.dry_run:
        items = [
            tile("would send", f.would_contacts, f"contacts, of {f.planned:,} planned", "good"),
            tile("tags", f.would_tags, "to add"),
            tile("calls", f.would_calls, "one per contact (100 tags a call)"),
            tile("skipped", f.skipped, _top(s.get("skipped_by_reason") or {})),
            tile("rejected rows", f.rejected, reasons, "bad"),
        ]
        return section("outcomes", "What a run would send", tiles(items))
    items = [
        tile("ok", f.ok, f"of {f.planned:,} planned", "good"),
        tile("failed", f.failed, _top(types.get("failed", {})), "bad"),
        tile("deferred", f.deferred, _top(types.get("deferred", {})), "warn"),
        tile("not attempted", f.not_attempted, "the run stopped first", "warn"),
        tile("skipped", f.skipped, _top(s.get("skipped_by_reason") or {})),
        tile("rejected rows", f.rejected, reasons, "bad"),
    ]
    parts = [
        ("ok", f.ok, charts.GOOD),
        ("failed", f.failed, charts.BAD),
        ("deferred", f.deferred, charts.WARN),
        ("not attempted", f.not_attempted, charts.PURPLE),
        ("skipped", f.skipped, charts.GREY),
    ]
    chart = charts.stacked_bar("Contacts by outcome", parts) if any(n for _, n, _ in parts) else ""
    return section(
        "outcomes", "Outcome", tiles(items), Markup(f'<div class="chart small">{chart}</div>')
    )


def _figure(name: str, number: int | None) -> Markup:
    """A figure of :mod:`bulktag.outputs.pages.figures`, marked so a test can read it back."""
    shown = "unknown" if number is None else f"{number:,}"
    return Markup(f'<span data-figure="{esc(name)}">{shown}</span>')


def _calls(facts: RunFacts, f: Figures) -> Markup:
    """Every figure about calls, once, each with its definition."""
    plan = facts.summary.get("plan") or {}
    others = ", ".join(f"{n:,} {e}" for e, n in sorted(f.other_calls.items()))
    rows: list[list[object]] = [
        [
            "input rows",
            _figure("rows", int(plan.get("rows_read") or 0)),
            f"{int(plan.get('rows_grouped') or 0):,} grouped into contacts, "
            f"{f.rejected:,} rejected",
        ],
        ["contacts planned", _figure("planned", f.planned), "contacts with tags to add"],
        [
            "calls a naive run makes",
            _figure("naive", f.naive),
            "one add-tags call per contact (100 tags a call), before skipping what is done",
        ],
    ]
    if f.dry_run:
        rows.append(["calls a run would make", _figure("would", f.would_calls), "nothing was sent"])
    else:
        rows += [
            [
                "calls made",
                _figure("made", f.made),
                "every request this run sent to LeadLex, retries included: "
                f"{f.add_tags:,} add-tags" + (f", {others}" if others else ""),
            ],
            [
                "retries",
                _figure("retries", f.retries),
                f"add-tags requests sent again after a 429, a 5xx or no answer ({f.first_tries:,}"
                " first tries); a retry that succeeded is not a failure",
            ],
            [
                "answered 429",
                _figure("answered_429", f.answered_429),
                "refused for going too fast, sent again later; not counted by LeadLex",
            ],
            [
                "errors LeadLex does not count",
                _figure("uncounted", f.uncounted_errors),
                "answered 5xx or not at all (a timed-out call may have been counted)",
            ],
            [
                "calls counted against the daily quota",
                _figure("counted", f.counted),
                _counted_note(f),
            ],
        ]
    rows.append(
        [
            "calls saved",
            _figure("saved", f.saved),
            f"{f.skipped:,} contacts skipped as already done, one call each"
            + (f", less {f.precheck:,} pre-check exports" if f.precheck else "")
            + "; contacts left for later save nothing",
        ]
    )
    precheck = facts.summary.get("precheck")
    if precheck:
        rows.append(
            [
                "pre-check",
                int(precheck.get("pairs_already_tagged") or 0),
                f"pairs found already tagged ({precheck.get('reason', '')})",
            ]
        )
    inputs = [
        [
            _file(i.get("source")),
            i.get("format", ""),
            int(i.get("rows") or 0),
            value(i.get("id_column")),
        ]
        for i in plan.get("inputs") or []
    ]
    return section(
        "calls",
        "Calls, each counted once",
        table(["", "count", "what it counts"], rows, numeric=[1]),
        table(["input", "format", "rows", "ID column"], inputs, numeric=[2], caption="Inputs")
        if inputs
        else "",
    )


def _counted_note(f: Figures) -> str:
    if f.counted is None:
        return "LeadLex reported no quota (unmetered, or no answer)"
    expected = f.expected_counted
    text = "as LeadLex reported it: left before, less left after; = calls made less the two above"
    if f.whole and f.counted != expected:
        text += (
            f" ({expected:,} by that rule: the difference is other use of the key during the "
            "run, or timed-out calls LeadLex answered)"
        )
    return text


def _rate(facts: RunFacts, f: Figures) -> Markup:
    timeline = facts.summary.get("timeline") or {}
    drawn = charts.calls_over_time(timeline)
    if drawn is None:
        what = "nothing was sent (dry run)" if f.dry_run else "no call was made"
        return section("rate", "Calls over time", Markup(f"<p>{esc(what)}.</p>"))
    chart, legend, span = drawn
    rate = timeline.get("rate_per_minute")
    final = timeline.get("final_rate_per_minute")
    limit = f"limit set {rate:g} a minute" if rate else "no rate limit set"
    if rate and final and final != rate:
        limit += f", lowered to {final:g} after 429s"
    allowed = allowed_per_minute(timeline)
    if allowed is not None:
        limit += f"; LeadLex let about {allowed:,} a minute through"
    minutes = timeline.get("minutes") or []
    peak = max(int(m["calls"]) for m in minutes)
    errors = sum(int(m.get("failed", 0)) for m in minutes)
    text = (
        f"{f.made:,} calls over {span}, at most {peak:,} in a minute ({limit}). "
        f"{f.answered_429:,} answered 429 and {errors:,} answered another error or none "
        f"(404, 5xx, timeouts); {f.retries:,} calls were retries. Contacts that failed for "
        f"good: {f.failed:,} (under Failures)."
    )
    return section(
        "rate",
        "Calls over time",
        Markup(f'<p>{esc(text)}</p><div class="chart wide">{chart}</div>{legend}'),
    )


def _failures(facts: RunFacts) -> Markup:
    if facts.summary.get("dry_run"):
        return section("failures", "Failures by type", Markup("<p>None: nothing was sent.</p>"))
    if not facts.failures:
        return section(
            "failures", "Failures by type", Markup("<p>None: every contact sent ended ok.</p>")
        )
    parts: list[str] = []
    halt = facts.summary.get("halt")
    if halt in RUN_WIDE:
        parts.append(
            Markup(
                '<p class="fault">One fault of the whole run, not one per contact: '
                f"{value(facts.summary.get('halt_message') or halt)}</p>"
            )
        )
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
                ["most frequent messages (IDs, numbers and URLs folded)", "contacts"],
                [
                    [
                        Markup(
                            f"{value(shape)}"
                            + (
                                f'<div class="meta">e.g. {value(example)}</div>'
                                if example != shape
                                else ""
                            )
                        ),
                        n,
                    ]
                    for shape, n, example in group.messages
                ],
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


def _quota(facts: RunFacts, f: Figures) -> Markup:
    quota = facts.summary.get("quota") or {}
    remaining, limit, reset = quota.get("remaining"), quota.get("limit"), quota.get("reset")
    if remaining is None or f.counted is None:
        return section(
            "quota",
            "Daily quota",
            Markup(
                "<p>LeadLex reported no quota (nothing was sent, or the plan is unmetered).</p>"
            ),
        )
    remaining = int(remaining)
    before = remaining + f.counted
    rows: list[list[object]] = [
        ["the day's quota", "" if limit is None else int(limit)],
        ["left before this run", before],
        ["left after this run", remaining],
    ]
    if reset:
        rows.append(["resets", utc_minute(int(reset))])
    used = max(0, int(limit) - before) if limit else 0
    chart = charts.stacked_bar(
        "The day's quota",
        [
            ("used before", used, charts.GREY),
            ("this run", f.counted, charts.BLUE),
            ("left", remaining, charts.GOOD),
        ],
    )
    return section(
        "quota",
        "Daily quota",
        table(["", "calls"], rows, numeric=[1]),
        Markup(
            f'<p class="meta">This run: {f.counted:,} calls counted against it (under '
            '<a href="#calls">Calls</a>). Left before: what LeadLex reported after this '
            "run's first counted call, plus that call.</p>"
        ),
        Markup(f'<div class="chart small">{chart}</div>'),
    )


def _files(facts: RunFacts) -> Markup:
    rows = [[link(name, name), _FILES.get(what, "")] for what, name in facts.files]
    if facts.summary.get("job"):
        rows.append([link(f"../../{HISTORY}", HISTORY), "the job's nights"])
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
                ("next", "What next"),
                ("outcomes", "Outcome"),
                ("calls", "Calls"),
                ("rate", "Over time"),
                ("failures", "Failures"),
                ("rejects", "Rejects"),
                ("quota", "Quota"),
                ("files", "Files"),
            )
        )
        + "</nav>"
    )
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    f = figures(s)
    title = "bulktag dry run" if f.dry_run else "bulktag run"
    return page(
        f"{title} {s.get('started_at', '')}",
        title + job,
        [
            meta,
            _next(facts, f),
            nav,
            _outcomes(facts, f),
            _calls(facts, f),
            _rate(facts, f),
            _failures(facts),
            _rejects(facts),
            _quota(facts, f),
            _files(facts),
        ],
        footer=f"Written by bulktag {__version__} at {written} from the files in this folder; "
        f"bulktag report {facts.run_dir} writes it again.",
    )
