"""``--skip-existing``: ask the CRM which planned tags contacts already carry, before sending.

One ``GET /v1/contacts/export`` returns up to 50,000 rows, and ``tag=`` filters
it, so a few calls can replace thousands of add-tags calls that would change
nothing. The exports cost calls too (and only 10 an hour are allowed), so the
strategy is chosen from the plan:

- *per tag*: one filtered export per distinct tag (``fields=id,created_at``),
  paged with ``created_after`` past 50,000 rows; exact, whatever the tags hold;
- *full*: the whole workspace with its ``tags`` column, paged the same way;
  cheaper when many distinct tags share few contacts (its size is learned with
  one ``GET /v1/contacts?per_page=1``).

A tag is only checked when checking it can save more calls than it costs (its
planned contacts outnumber its export calls), and when the job's history does
not say it is never found (a tag new to the CRM: checked once, then not for
``FORGET_DAYS`` days). The pre-check spends at most half of the calls left today
(:func:`export_budget`): a small daily quota is never all spent on asking, night
after night, with nothing left to send. Without Read permission, or when an export fails, the
pre-check warns once and the run goes on without it: never fail a run for an
optimisation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from bulktag.leadlex import EXPORT_MAX_LIMIT, EXPORT_PER_HOUR
from bulktag.plan.build import TagDemand
from bulktag.send.exports import Paging, Reads, paged_export

__all__ = [
    "Precheck",
    "Strategy",
    "choose",
    "export_budget",
    "run_precheck",
    "tag_demand",
]

log = logging.getLogger("bulktag")

#: A tag a pre-check found on no contact is not checked again for this long.
FORGET_DAYS = 7


@dataclass(frozen=True, slots=True)
class Strategy:
    kind: Literal["per_tag", "full", "none"]
    tags: tuple[str, ...] = ()  #: the tags it checks (all of them for "full")
    estimated_calls: int = 0
    reason: str = ""


def _pages(rows: int) -> int:
    return max(1, math.ceil(rows / EXPORT_MAX_LIMIT))


def choose(
    demand: Sequence[TagDemand],
    *,
    contacts: int,
    requests: int,
    workspace_size: int | None = None,
    export_budget: int = EXPORT_PER_HOUR,
    never_found: frozenset[str] = frozenset(),
) -> Strategy:
    """The cheapest way to learn what the plan's contacts already carry, or none.

    ``workspace_size`` (when known) prices the full export; ``never_found`` are
    tags the job's history says no contact carries.
    """
    worth = [d for d in demand if d.tag not in never_found and d.contacts > _pages(d.contacts)]
    worth.sort(key=lambda d: -d.contacts)
    chosen, cost, covered = [], 0, 0
    for item in worth:
        pages = _pages(item.contacts)
        if cost + pages > export_budget:
            continue
        chosen.append(item.tag)
        cost += pages
        covered += item.contacts
    per_tag = Strategy("per_tag", tuple(chosen), cost, f"{len(chosen)} tag export(s)")
    if workspace_size is not None:
        full_cost = _pages(workspace_size)
        full_covers = sum(d.contacts for d in demand if d.tag not in never_found)
        if full_cost <= export_budget and full_cost < cost and full_covers > full_cost:
            tags = tuple(d.tag for d in demand if d.tag not in never_found)
            return Strategy(
                "full", tags, full_cost, f"a full export of {workspace_size:,} contacts"
            )
    if not chosen or cost >= min(covered, requests):
        skipped = sum(d.tag in never_found for d in demand)
        why = (
            f"{skipped} tag(s) never found before"
            if skipped
            else "today's quota leaves no room for it"
            if export_budget < 1
            else "it would cost more than it can save"
        )
        return Strategy("none", (), 0, why)
    return per_tag


def tag_demand(plan: Path, column: str = "send") -> list[TagDemand]:
    """How many of a plan's contacts each tag would go to."""
    frame = (
        pl.scan_parquet(plan)
        .select("contact_id", tag=column)
        .explode("tag")
        .filter(pl.col("tag").is_not_null())
        .group_by("tag")
        .agg(contacts=pl.len())
        .sort("contacts", "tag", descending=[True, False])
        .collect()
    )
    return [TagDemand(t, n) for t, n in frame.iter_rows()]


def export_budget(calls_today: int | None) -> int:
    """The calls a pre-check may spend: the export limit's 10 an hour, and at most half of
    the calls left today (``calls_today``, None: not known), so that sending goes on."""
    if calls_today is None:
        return EXPORT_PER_HOUR
    return max(0, min(EXPORT_PER_HOUR, calls_today // 2))


def wants_workspace_size(demand: Sequence[TagDemand], export_budget: int = EXPORT_PER_HOUR) -> bool:
    """Whether pricing a full export (one list call) can pay: many tags for the budget."""
    return sum(_pages(d.contacts) for d in demand) > max(2, export_budget // 2)


@dataclass
class Precheck:
    """What the pre-check learned and what it cost."""

    strategy: Strategy
    present: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"contact_id": pl.String, "tag": pl.String})
    )
    calls: dict[str, int] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)  #: tag -> contacts found carrying it
    warning: str | None = None

    @property
    def cost(self) -> int:
        return sum(self.calls.values())


async def _paged(
    reads: Reads, params: list[tuple[str, str]], result: Precheck, fields: str
) -> pl.DataFrame | None:
    """Every row of one export (:func:`~bulktag.send.exports.paged_export`), its calls
    counted in ``result``; None when a call fails (``result.warning`` says why)."""
    paging = Paging()
    rows = await paged_export(reads, params, fields, paging)
    result.calls["export"] = result.calls.get("export", 0) + paging.calls
    if paging.warning is not None:
        result.warning = paging.warning
    return rows


async def run_precheck(
    reads: Reads,
    demand: Sequence[TagDemand],
    *,
    contacts: int,
    requests: int,
    never_found: frozenset[str] = frozenset(),
    calls_today: int | None = None,
) -> Precheck:
    """Choose a strategy within the budget (``calls_today``: the calls left today, less the
    reserve; None: not known), run it, return the (contact, tag) pairs the CRM already has."""
    size = None
    spent: dict[str, int] = {}
    budget = export_budget(calls_today)
    if budget > 2 and wants_workspace_size(demand, budget):
        answer = await reads.count_contacts()
        spent["list_contacts"] = 1
        budget -= 1
        if answer is not None and answer[0].ok:
            size = answer[1]
    strategy = choose(
        demand,
        contacts=contacts,
        requests=requests,
        workspace_size=size,
        export_budget=budget,
        never_found=never_found,
    )
    result = Precheck(strategy, calls=spent)
    pairs: list[pl.DataFrame] = []
    if strategy.kind == "per_tag":
        for tag in strategy.tags:
            rows = await _paged(reads, [("tag", tag)], result, "id,created_at")
            if rows is None:
                break
            result.checked[tag] = rows.height
            pairs.append(rows.select(contact_id=pl.col("id"), tag=pl.lit(tag)))
    elif strategy.kind == "full":
        rows = await _paged(reads, [], result, "id,tags,created_at")
        if rows is not None:
            exploded = rows.select(
                contact_id=pl.col("id"), tag=pl.col("tags").fill_null("").str.split(",")
            ).explode("tag")
            wanted = set(strategy.tags)
            found = exploded.filter(pl.col("tag").is_in(list(wanted)))
            counts = found.group_by("tag").len()
            result.checked = dict.fromkeys(wanted, 0) | dict(
                zip(counts["tag"], counts["len"], strict=True)
            )
            pairs.append(found)
    if result.warning:
        log.warning("--skip-existing: %s; the rest is sent without checking", result.warning)
    if pairs:
        result.present = pl.concat(pairs).unique()
    return result


def history_never_found(history: Mapping[str, tuple[float, int]], now: float) -> frozenset[str]:
    """Tags a recent pre-check found on no contact: ``{tag: (checked_at, found)}``."""
    horizon = now - FORGET_DAYS * 86_400
    return frozenset(tag for tag, (at, found) in history.items() if found == 0 and at >= horizon)
