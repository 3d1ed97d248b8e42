"""What a run tells its user: the plan before sending, the summary after, the exit code."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bulktag.config import DispatchSettings
from bulktag.errors import ExitCode
from bulktag.leadlex import EXPORT_MAX_LIMIT
from bulktag.outcomes import ADD_TAGS, Status
from bulktag.plan.build import PlanStats, TagDemand
from bulktag.read.rules import NO_TAGS, PERMANENT_BEFORE
from bulktag.send.precheck import choose

if TYPE_CHECKING:  # the summary is not needed to describe a plan
    from bulktag.outputs.summary import Summary

__all__ = ["describe_plan", "duration", "export_calls", "summary_lines"]


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _counts(items: Mapping[str, int]) -> str:
    return ", ".join(f"{n:,} {name}" for name, n in items.items() if n)


@dataclass(frozen=True, slots=True)
class PlanEstimate:
    minutes: float | None  #: at the configured rate; None when unlimited
    days: int  #: days of the plan's daily quota
    exceeds_today: bool


def estimate(stats: PlanStats, settings: DispatchSettings, quota_left: int | None) -> PlanEstimate:
    rate = settings.rate_per_minute
    minutes = None if rate is None else stats.requests / rate
    per_day = settings.per_day
    days = 1 if not per_day else max(1, math.ceil(stats.requests / per_day))
    today = quota_left if quota_left is not None else per_day
    exceeds = today is not None and stats.requests > max(0, today - settings.quota_reserve)
    return PlanEstimate(minutes, days, exceeds)


def describe_plan(
    stats: PlanStats,
    settings: DispatchSettings,
    plan_name: str | None,
    quota_left: int | None = None,
) -> list[str]:
    """The plan, as lines for a person."""
    lines = []
    for item in stats.inputs:
        encoding = ""
        if item.encoding:
            how = item.encoding_note or ("detected" if item.encoding_detected else "given")
            encoding = f", {item.encoding} ({how})"
        header = f" below the header on line {item.header_line}" if item.header_line else ""
        column = "email column" if item.match == "email" else "ID column"
        lines.append(
            f"input {item.source}: {item.format}{encoding}, {item.rows:,} rows{header}, "
            f"{column} {item.id_column!r}, tags from "
            + ", ".join(repr(t) for t in item.tag_columns)
        )
        lines.extend(f"  {note}" for note in item.notes)
    lines.extend(_by_email(stats))
    lines.extend(what_the_data_suggests(stats))
    blank = f" ({stats.blank_rows:,} blank rows skipped)" if stats.blank_rows else ""
    lines.append(
        f"rows: {stats.rows_read:,} read, {stats.rows_grouped:,} grouped, "
        f"{stats.rows_rejected:,} rejected{blank}"
    )
    if stats.rejects:
        lines.append(f"rejects ({stats.rejects:,}): {_counts(stats.rejects_by_reason)}")
    lines.append(
        f"contacts: {stats.contacts:,} ({stats.pairs - stats.duplicate_pairs:,} tags to add, "
        f"{stats.duplicate_pairs:,} repeated pairs merged); requests: {stats.requests:,}"
    )
    plan_estimate = estimate(stats, settings, quota_left)
    if plan_estimate.minutes is not None:
        lines.append(
            f"time: about {duration(plan_estimate.minutes * 60)} at {settings.rate_per_minute:g} "
            "calls a minute"
        )
    if settings.per_day:
        plan_label = f"the {plan_name} plan's" if plan_name else "a daily quota of"
        exports = export_calls(stats)
        if exports is None:
            calls = f"{stats.requests:,} add-tags calls and the directory's export calls"
        elif exports:
            calls = (
                f"{stats.requests + exports:,} calls ({stats.requests:,} add-tags, "
                f"{_plural(exports, 'export', 'exports')})"
            )
        else:
            calls = f"{stats.requests:,} calls"
        lines.append(
            f"quota: {calls} of {plan_label} {settings.per_day:,} a day "
            f"({plan_estimate.days} day{'s' if plan_estimate.days > 1 else ''} of quota)"
        )
    return lines


def what_the_data_suggests(stats: PlanStats) -> list[str]:
    """Plain words for what the counts show: nothing to send, a tags column that is empty."""
    lines = [
        f"no data rows in {item.source}: nothing to send from it"
        for item in stats.inputs
        if item.rows == 0
    ]
    permanent = {
        reason.removesuffix(PERMANENT_BEFORE): n
        for reason, n in stats.rejects_by_reason.items()
        if reason.endswith(PERMANENT_BEFORE)
    }
    if permanent:
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in permanent.items())
        lines.append(
            f"{sum(permanent.values()):,} rows of a failures file failed for good in the run "
            f"that wrote it ({kinds}): not sent again; --retry-permanent sends them"
        )
    every_row_untagged = stats.rows_read and stats.rows_rejected == stats.rows_read
    if every_row_untagged and set(stats.rejects_by_reason) == {NO_TAGS}:
        named = ", ".join(repr(t) for i in stats.inputs for t in i.tag_columns)
        found = ", ".join(repr(h) for i in stats.inputs for h in i.header)
        lines.append(
            f"every row's tags column ({named}) is empty: is the tags column another "
            f"one? Columns found: {found}; name it with --tags-column"
        )
    return lines


def describe_precheck(
    demand: Sequence[TagDemand], stats: PlanStats, settings: DispatchSettings
) -> list[str]:
    """What ``--skip-existing`` would cost and could save, before any call."""
    strategy = choose(demand, contacts=stats.contacts, requests=stats.requests)
    if strategy.kind == "none":
        return [f"with --skip-existing: no pre-check ({strategy.reason}); {stats.requests:,} calls"]
    best = strategy.estimated_calls
    worst = best + stats.requests
    days = ""
    if settings.per_day:
        low, high = (max(1, math.ceil(n / settings.per_day)) for n in (best, worst))
        days = f"; {low} to {high} day(s) of quota"
    return [
        f"with --skip-existing: {strategy.reason}, about {best:,} export call(s), then 0 to "
        f"{stats.requests:,} add-tag calls: {best:,} to {worst:,} calls in all{days}",
        f"without it: {stats.requests:,} calls",
    ]


def _reset_text(reset: int | None) -> str:
    if reset is None:
        return ""
    return f" (resets {datetime.fromtimestamp(reset, UTC):%Y-%m-%d %H:%M} UTC)"


def summary_lines(
    summary: Summary, advice: Sequence[str] = (), would: tuple[int, int, int] | None = None
) -> list[str]:
    """The human summary printed after a run; ``advice`` last (what to do next); ``would``:
    a dry run's contacts, tags and calls a run would send."""
    counts, types = summary.contacts, summary.failures_by_type
    status_text = _counts({s: counts.get(s, 0) for s in Status})
    if summary.dry_run and would is not None:  # what a run would send, not "not_attempted"
        contacts, tags, calls = would
        skipped = counts.get(Status.SKIPPED, 0)
        lines = [
            f"dry run: nothing was sent; {contacts:,} contacts would get {tags:,} tags in "
            f"{calls:,} calls" + (f" ({skipped:,} contacts skipped)" if skipped else "")
        ]
        types = {}
    else:
        lines = [f"{summary.plan.contacts:,} contacts: {status_text or 'none'}"]
    if types:
        lines.append(
            f"failure types: {_counts(dict(sorted(types.items(), key=lambda kv: -kv[1])))}"
        )
    files = summary.files
    if summary.plan.rejects:
        lines.append(f"{summary.plan.rejects:,} input problems rejected (see {files.rejects.name})")
    quota = summary.quota
    if summary.total_calls or quota.remaining is not None:
        left = ""
        if quota.remaining is not None:
            of = f" of {quota.limit:,}" if quota.limit else ""
            left = f"; quota left today: {quota.remaining:,}{of}{_reset_text(quota.reset)}"
        others = {e: n for e, n in summary.calls.items() if e != ADD_TAGS and n}
        by_endpoint = ", ".join(f"{n:,} {e}" for e, n in sorted(others.items()))
        add_tags = summary.calls.get(ADD_TAGS, 0)
        extra = f" ({add_tags:,} add-tags, {by_endpoint})" if by_endpoint else ""
        lines.append(
            f"{summary.total_calls:,} calls to LeadLex{extra} in "
            f"{duration(summary.duration_seconds)}{left}"
        )
    lines.extend(_by_email_calls(summary))
    rate = summary.rate
    if rate.rate_limited_429s:
        now = (
            f"rate now {rate.final_per_minute:g}/min" if rate.final_per_minute else "rate unlimited"
        )
        lines.append(f"{rate.rate_limited_429s:,} per-minute 429s; {now}")
    if summary.halt is not None:
        lines.append(f"stopped sending: {summary.halt} ({summary.halt_message})")
    names = ", ".join(p.name for p in (files.results, files.failures, files.rejects, files.summary))
    lines.append(f"files in {files.summary.parent}: {names}")
    code = summary.exit_code
    meaning = code.meaning
    if summary.dry_run and code is ExitCode.OK:
        meaning = "the plan is whole (no input problem)"
    elif summary.dry_run and code is ExitCode.FAILURES:
        meaning = "input problems rejected (the rest would be sent)"
    lines.append(f"exit {int(code)}: {meaning}")
    lines.extend(advice)
    return lines


def _plural(n: int, one: str, several: str) -> str:
    return f"{n:,} {one if n == 1 else several}"


def export_calls(stats: PlanStats) -> int | None:
    """The export calls the plan's matching by email made for the directory (0 when it
    matches none); None when they are not known (``validate`` reads no directory)."""
    found = stats.by_email
    if found is None:
        return 0
    if found.get("directory_contacts") is None:
        return None
    return int(found["export_calls"])


def _by_email(stats: PlanStats) -> list[str]:
    """Matching by email: the addresses, and the calls it takes both ways (the export's
    directory, or one search an address)."""
    found = stats.by_email
    if found is None:
        return []
    addresses = int(found["addresses"])
    given = f"matching by email: {_plural(addresses, 'distinct address', 'distinct addresses')}"
    one_by_one = f"against {_plural(addresses, 'call', 'calls')} one address at a time"
    calls = export_calls(stats)
    if calls is None:  # validate: nothing read
        return [
            f"{given}, the workspace's directory costs 1 export call per "
            f"{EXPORT_MAX_LIMIT:,} contacts (validate makes no call, so the directory's size "
            f"is not known here; LeadLex also limits exports an hour), {one_by_one}"
        ]
    contacts = int(found["directory_contacts"])
    refused = int(found.get("export_refused") or 0)
    waited = (
        f"; {_plural(refused, 'more was', 'more were')} refused first by the hourly export "
        "limit (not counted by LeadLex)"
        if refused
        else ""
    )
    lines = [
        f"{given}, the workspace's directory costs {_plural(calls, 'export call', 'export calls')}"
        f" ({contacts:,} contacts, {found.get('why') or 'read now'}{waited}), {one_by_one}"
    ]
    if found.get("unknown") or found.get("ambiguous"):
        unknown = int(found["unknown"])
        lines.append(
            f"  {_plural(unknown, 'address', 'addresses')} no contact has (unknown_email), "
            f"{int(found['ambiguous']):,} shared by several contacts (ambiguous_email): "
            "rejects, never sent"
        )
    return lines


def _by_email_calls(summary: Summary) -> list[str]:
    """A run by email's calls against the bound: the directory's pages (one per
    EXPORT_MAX_LIMIT contacts, none when kept) plus one add-tags call a request."""
    found = summary.plan.by_email
    if found is None or found.get("directory_contacts") is None:
        return []
    contacts = int(found["directory_contacts"])
    pages = int(found["export_calls"])
    waiting = int(found.get("waiting") or 0)
    if waiting:
        return [
            f"by email: {_plural(pages, 'export call', 'export calls')} read {contacts:,} "
            "contacts of the directory before LeadLex's hourly export limit; the rows of "
            f"{_plural(waiting, 'address', 'addresses')} wait for it (rejects: rate_limited)"
        ]
    least_pages = 0 if found.get("kept_since") is not None else contacts // EXPORT_MAX_LIMIT + 1
    add_tags = summary.calls.get(ADD_TAGS, 0)
    requests = summary.plan.requests
    matched = int(found.get("matched") or 0)
    for_contacts = _plural(summary.plan.contacts, "contact", "contacts")
    if matched != summary.plan.contacts:
        for_contacts += f", {matched:,} matched by email"
    else:
        for_contacts = _plural(matched, "matched contact", "matched contacts")
    made, least = pages + add_tags, least_pages + requests
    if summary.dry_run:
        against = "a dry run sends none"
    elif made == least:
        against = "the least this input allows"
    elif made > least:
        against = f"{made - least:,} more than the least this input allows ({least:,})"
    else:
        against = f"{least - made:,} fewer than the plan's {least:,}: the rest is left to send"
    refused = int(found.get("export_refused") or 0)
    apart = f" ({_plural(refused, 'refused 429', 'refused 429s')} apart)" if refused else ""
    return [
        f"by email: {_plural(pages, 'export call', 'export calls')}{apart} for {contacts:,} "
        f"contacts in the directory, {_plural(add_tags, 'add-tags call', 'add-tags calls')} "
        f"for {for_contacts}: {against}"
    ]
