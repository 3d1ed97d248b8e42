"""Every figure the report shows, defined once, from ``summary.json`` alone.

A page that says "calls saved -37" beside "141 calls made" and "109 counted" reads as
three contradictions; each is true of something else. Here each figure has one name
and one definition, and the report shows it once, under that name:

- *calls made*: every request this run sent to LeadLex, on every endpoint, retries
  included (``summary.json`` ``calls.total``);
- *retries*: add-tags requests sent again after a 429, a 5xx, no answer or a timeout.
  A retry that then succeeded is not a failure, and its contact is ``ok``;
- *answered 429* and *errors LeadLex does not count* (5xx, no answer): the calls made
  that LeadLex's daily quota does not count (LeadLex counts the requests its handler
  answers: 2xx and 4xx other than 429);
- *calls counted against the daily quota*: what LeadLex says it counted (left before
  less left after), which is the calls made less the two above, unless something else
  used the key meanwhile;
- *calls a naive run makes*: one add-tags call per request of the plan, before skipping
  anything done;
- *calls saved*: one per contact skipped as done (in the CRM already, applied by the
  job, failed for good before) less the pre-check's exports. Contacts left for later
  save nothing.

The calls-per-minute counts (429s, errors, retries) are the last session's: for a run
resumed by hand :attr:`Figures.whole` is False and the page says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Figures", "allowed_per_minute", "count", "figures"]


def count(mapping: Mapping[str, Any] | None, key: str) -> int:
    """A count in ``summary.json``; a mapping of counts (by endpoint) summed."""
    found = (mapping or {}).get(key) or 0
    if isinstance(found, Mapping):
        return sum(int(n or 0) for n in found.values())
    return int(found)


@dataclass(frozen=True, slots=True)
class Figures:
    planned: int
    ok: int
    failed: int
    deferred: int
    not_attempted: int
    skipped: int
    rejected: int
    naive: int
    made: int
    add_tags: int
    other_calls: Mapping[str, int]  #: calls made on other endpoints, by endpoint
    retries: int
    answered_429: int
    uncounted_errors: int  #: 5xx, no answer: made, not counted by LeadLex
    counted: int | None  #: LeadLex's figure: left before less left after (None: unknown)
    saved: int
    precheck: int  #: the pre-check's exports (part of calls made)
    whole: bool  #: the per-attempt counts cover the whole run (not only its last session)
    dry_run: bool
    would_contacts: int
    would_tags: int
    would_calls: int

    @property
    def first_tries(self) -> int:
        return self.add_tags - self.retries

    @property
    def expected_counted(self) -> int:
        """The calls made that LeadLex's quota counts, by its rule."""
        return self.made - self.answered_429 - self.uncounted_errors


def figures(summary: Mapping[str, Any]) -> Figures:
    contacts = summary.get("contacts") or {}
    calls = summary.get("calls") or {}
    timeline = summary.get("timeline") or {}
    minutes = timeline.get("minutes") or []
    quota = summary.get("quota") or {}
    before, after = quota.get("before"), quota.get("remaining")
    would = summary.get("would_send") or {}
    skipped = count(contacts, "skipped")
    precheck = count(calls, "export")
    return Figures(
        planned=count(contacts, "planned"),
        ok=count(contacts, "ok"),
        failed=count(contacts, "failed"),
        deferred=count(contacts, "deferred"),
        not_attempted=count(contacts, "not_attempted"),
        skipped=skipped,
        rejected=count(summary.get("rejects"), "total"),
        naive=count(summary, "naive_calls"),
        made=count(calls, "total"),
        add_tags=count(calls, "add_tags"),
        other_calls={
            name: int(n) for name, n in calls.items() if name not in ("total", "add_tags") and n
        },
        retries=sum(int(m.get("retries", 0)) for m in minutes),
        answered_429=sum(int(m.get("rate_limited", 0)) for m in minutes),
        uncounted_errors=sum(int(m.get("uncounted", 0)) for m in minutes),
        counted=None if before is None or after is None else max(0, int(before) - int(after)),
        saved=skipped - precheck,
        precheck=precheck,
        whole=not summary.get("resumed"),
        dry_run=bool(summary.get("dry_run")),
        would_contacts=count(would, "contacts"),
        would_tags=count(would, "tags"),
        would_calls=count(would, "calls"),
    )


def allowed_per_minute(timeline: Mapping[str, Any]) -> int | None:
    """The calls a minute LeadLex let through, as seen: the most calls answered other than
    429 in a minute it also answered 429 (None: it never answered 429). LeadLex sends no
    per-minute header; this is the only way to know its limit."""
    refused = [
        int(m["calls"]) - int(m["rate_limited"])
        for m in timeline.get("minutes") or []
        if int(m.get("rate_limited", 0))
    ]
    return max(refused) if refused else None
