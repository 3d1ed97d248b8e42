"""Choosing how to pre-check, from the plan alone: per tag, full export, or not at all."""

from __future__ import annotations

from bulktag.plan.build import TagDemand
from bulktag.send.precheck import (
    Strategy,
    choose,
    history_never_found,
    wants_workspace_size,
)


def test_one_popular_tag_is_one_filtered_export() -> None:
    """2,000 contacts and one tag: one export call, worth it."""
    strategy = choose([TagDemand("q4", 2000)], contacts=2000, requests=2000)
    assert strategy == Strategy("per_tag", ("q4",), 1, "1 tag export(s)")


def test_a_tag_on_more_than_50000_contacts_needs_pages() -> None:
    """120,000 contacts with one tag: three pages of 50,000."""
    strategy = choose([TagDemand("big", 120_000)], contacts=120_000, requests=120_000)
    assert strategy.estimated_calls == 3


def test_tags_on_one_contact_each_are_not_worth_checking() -> None:
    """A tag for a single contact: its export costs what sending costs."""
    demand = [TagDemand(f"t{i}", 1) for i in range(5)]
    assert choose(demand, contacts=5, requests=5).kind == "none"


def test_the_export_budget_keeps_the_tags_that_save_most() -> None:
    """15 tags, 10 exports an hour: the 10 with the most contacts are checked."""
    demand = [TagDemand(f"t{i:02d}", 100 + i) for i in range(15)]
    strategy = choose(demand, contacts=2000, requests=2000, export_budget=10)
    assert strategy.kind == "per_tag"
    assert strategy.tags == tuple(f"t{i:02d}" for i in range(14, 4, -1))


def test_many_tags_on_a_small_workspace_prefer_one_full_export() -> None:
    """40 tags over 8,000 contacts in a 30,000-contact workspace: one full export."""
    demand = [TagDemand(f"t{i}", 200) for i in range(40)]
    assert wants_workspace_size(demand)
    strategy = choose(demand, contacts=8000, requests=8000, workspace_size=30_000)
    assert strategy.kind == "full"
    assert strategy.estimated_calls == 1


def test_a_huge_workspace_keeps_per_tag_exports() -> None:
    """The same tags in a 2-million-contact workspace: 40 pages are too many; per tag wins."""
    demand = [TagDemand(f"t{i}", 200) for i in range(40)]
    strategy = choose(demand, contacts=8000, requests=8000, workspace_size=2_000_000)
    assert strategy.kind == "per_tag"
    assert len(strategy.tags) == 10


def test_few_tags_do_not_ask_for_the_workspace_size() -> None:
    """One or two tags: pricing a full export (a list call) would not pay."""
    assert not wants_workspace_size([TagDemand("a", 5000), TagDemand("b", 10)])


def test_history_skips_tags_found_nowhere_recently() -> None:
    """A tag no contact carried a day ago is not checked; a week-old zero is checked again."""
    now = 1_800_000_000.0
    history = {"new": (now - 86_400, 0), "old": (now - 8 * 86_400, 0), "seen": (now - 3600, 40)}
    never = history_never_found(history, now)
    assert never == frozenset({"new"})
    demand = [TagDemand("new", 500), TagDemand("old", 500), TagDemand("seen", 500)]
    assert choose(demand, contacts=1500, requests=1500, never_found=never).tags == ("old", "seen")
