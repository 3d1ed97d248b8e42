"""--skip-existing end to end: spend the quota only on contacts that lack their tags."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bulktag.cli.commands import main
from bulktag.emulator import Key
from bulktag.errors import ExitCode
from tests.constants import KEY
from tests.world import World, read_results


def _tag(world: World, ids: list[str], *tags: str) -> None:
    for cid in ids:
        for tag in tags:
            if tag not in world.emulator.contacts[cid].tags:
                world.emulator.contacts[cid].tags.append(tag)


def _summary(run_dir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return summary


def test_95_percent_already_tagged_costs_under_6_percent_of_naive(
    make_world: Callable[..., World],
) -> None:
    """2,000 contacts, 1,900 already tagged: 1 export + 100 add-tags, every contact tagged."""
    world = make_world(contacts=2000, plan="org")
    ids = world.contact_ids
    _tag(world, ids[:1900], "q4-segment")
    source = world.write_csv("in.csv", [(cid, "q4-segment") for cid in ids])
    code, run_dir = world.run(str(source), "--plan", "org", "--skip-existing")
    assert code == ExitCode.OK
    summary = _summary(run_dir)
    calls = summary["calls"]
    assert calls == {"add_tags": 100, "export": 1, "total": 101}
    assert summary["naive_calls"] == 2000
    assert summary["calls_saved"] == 1899
    assert calls["total"] <= 0.06 * summary["naive_calls"]
    assert summary["contacts"]["skipped"] == 1900
    assert summary["skipped_by_reason"] == {"already_tagged": 1900}
    assert summary["precheck"]["strategy"] == "per_tag"
    assert all("q4-segment" in world.tags_of(cid) for cid in ids)
    statuses = read_results(run_dir / "results.csv")["status"].value_counts().sort("status")
    assert statuses.rows() == [("ok", 100), ("skipped", 1900)]


def test_50_percent_already_tagged_costs_1_001_calls(make_world: Callable[..., World]) -> None:
    """The README's row: 2,000 contacts, one tag, 1,000 already tagged: 1 export + 1,000."""
    world = make_world(contacts=2000, plan="org")
    ids = world.contact_ids
    _tag(world, ids[::2], "q4-segment")
    source = world.write_csv("in.csv", [(cid, "q4-segment") for cid in ids])
    code, run_dir = world.run(str(source), "--plan", "org", "--skip-existing")
    assert code == ExitCode.OK
    summary = _summary(run_dir)
    assert summary["calls"] == {"add_tags": 1000, "export": 1, "total": 1001}
    assert summary["naive_calls"] == 2000
    assert summary["skipped_by_reason"] == {"already_tagged": 1000}
    assert all("q4-segment" in world.tags_of(cid) for cid in ids)


def test_0_percent_already_tagged_costs_1_plus_n_calls_then_n(
    make_world: Callable[..., World],
) -> None:
    """The README's row (2,000 contacts there, 1,000 here to stay quick: 1 + N, then N): a
    tag none carries costs 1 export + N the first night; the job's next night sends the tag
    again (the ledger off) with no export."""
    world = make_world(contacts=1000, plan="org")
    world.write_csv("in.csv", [(cid, "brand-new") for cid in world.contact_ids])
    job = world.write_job(
        'inputs = ["in.csv"]\nskip_existing = true\n[limits]\nplan = "org"\n'
        "[ledger]\nenabled = false\n"
    )
    code, first = world.run_job(job)
    assert code == ExitCode.OK
    assert first is not None
    assert _summary(first)["calls"] == {"add_tags": 1000, "export": 1, "total": 1001}
    world.next_night()
    code, after = world.run_job(job)
    assert code == ExitCode.OK
    assert after is not None
    assert after != first
    assert _summary(after)["calls"] == {"add_tags": 1000, "total": 1000}


def test_contacts_get_exactly_the_tags_they_lack(world: World) -> None:
    """A contact with a and c of a, b, c gets one call carrying only b."""
    ids = world.contact_ids[:20]
    _tag(world, ids[:10], "a", "c")
    _tag(world, ids[10:], "a", "b", "c")
    bodies: list[bytes] = []
    world.hook = lambda request: (
        bodies.append(request.content) if request.method == "POST" else None
    )
    source = world.write_csv("in.csv", [(cid, "a, b, c") for cid in ids])
    code, run_dir = world.run(str(source), "--skip-existing")
    assert code == ExitCode.OK
    assert bodies == [b'{"tags":["b"]}'] * 10
    assert all(world.tags_of(cid) == ["a", "c", "b"] for cid in ids[:10])
    results = read_results(run_dir / "results.csv")
    assert results["tags"].to_list() == ["a,b,c"] * 20  # what was asked, whatever was skipped


def test_without_read_permission_the_run_goes_on(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """A write-only key: the export is 403, one warning, every contact sent anyway."""
    world = make_world(contacts=10, keys=[Key(KEY, "default", frozenset({"write"}))])
    _tag(world, world.contact_ids, "x")
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--skip-existing")
    assert code == ExitCode.OK
    assert "lacks Read permission" in capsys.readouterr().err
    assert _summary(run_dir)["calls"] == {"add_tags": 10, "export": 1, "total": 11}


def test_a_failing_export_never_fails_the_run(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exports answer 503: warned, then the plan is sent as it is; exit 0."""

    def break_exports(request: httpx2.Request) -> None:
        world.emulator.injector.faults = world.emulator.injector.faults.updated(
            {"fault_rate": 1.0 if request.url.path.endswith("/export") else 0.0}
        )

    world.hook = break_exports
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids[:5]])
    code, _ = world.run(str(source), "--skip-existing")
    assert code == ExitCode.OK
    assert "--skip-existing: an export failed" in capsys.readouterr().err


def test_the_hourly_export_limit_stops_the_precheck_not_the_run(
    make_world: Callable[..., World],
) -> None:
    """Export limit 2 an hour, 3 tags worth checking: 2 tags checked, the third sent blind."""
    world = make_world(contacts=30, export_per_hour=2)
    ids = world.contact_ids
    _tag(world, ids, "a", "b", "c")
    rows = [
        (cid, tag)
        for tag, part in (("a", ids[:12]), ("b", ids[12:22]), ("c", ids[22:]))
        for cid in part
    ]
    source = world.write_csv("in.csv", rows)
    code, run_dir = world.run(str(source), "--skip-existing")
    assert code == ExitCode.OK
    summary = _summary(run_dir)
    assert summary["precheck"]["tags_checked"] == {"a": 30, "b": 30}
    assert summary["calls"]["export"] == 3  # the third answered 429 (limit), not retried
    assert summary["calls"]["add_tags"] == 8  # the contacts of tag c
    assert summary["rate"]["rate_limited_429s"] == 0  # the export limit paused nothing


def test_exports_page_past_50000_rows(make_world: Callable[..., World]) -> None:
    """A tag on 60,000 contacts: two export pages (created_after), every contact skipped."""
    world = make_world(contacts=60_000, plan="unmetered")
    for contact in world.emulator.contacts.values():
        contact.tags.append("big")
    source = world.write_csv("in.csv", [(cid, "big") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--skip-existing", "--plan", "unmetered")
    assert code == ExitCode.OK
    summary = _summary(run_dir)
    assert summary["calls"] == {"add_tags": 0, "export": 2, "total": 2}
    assert summary["contacts"]["skipped"] == 60_000
    assert summary["precheck"]["tags_checked"] == {"big": 60_000}


def test_the_precheck_is_not_used_when_it_cannot_pay(world: World) -> None:
    """3 contacts with 3 different tags each: exports would cost as much as sending."""
    rows = [(cid, f"t{i}") for i, cid in enumerate(world.contact_ids[:3])]
    source = world.write_csv("in.csv", rows)
    code, run_dir = world.run(str(source), "--skip-existing")
    assert code == ExitCode.OK
    summary = _summary(run_dir)
    assert summary["precheck"]["strategy"] == "none"
    assert summary["calls"] == {"add_tags": 3, "total": 3}


def test_a_tag_found_nowhere_is_not_checked_again(world: World) -> None:
    """0 % already tagged: the first night pays one export; the job's next nights do not."""
    ids = world.contact_ids
    world.write_csv("in.csv", [(cid, "brand-new") for cid in ids])
    job = world.write_job('inputs = ["in.csv"]\nskip_existing = true\n[ledger]\nenabled = false\n')
    world.run_job(job)
    world.next_night()
    world.write_csv(
        "in.csv", [(cid, "brand-new-2") for cid in ids] + [(cid, "brand-new") for cid in ids]
    )
    _, run_dir = world.run_job(job)
    assert run_dir is not None
    summary = _summary(run_dir)
    # "brand-new" was found on no contact last night: not checked again; "brand-new-2" is.
    assert summary["precheck"]["tags_checked"] == {"brand-new-2": 0}
    assert summary["calls"]["export"] == 1


def test_validate_shows_the_plan_with_and_without_the_precheck(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate: calls and days of quota with --skip-existing (a range) and without."""
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    assert main(["validate", str(source)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "with --skip-existing: 1 tag export(s), about 1 export call(s)" in out
    assert "1 to 61 calls in all" in out
    assert "without it: 60 calls" in out


def test_resume_does_not_precheck_again(world: World) -> None:
    """A run stopped by the quota, resumed the next day, keeps what its pre-check found: no
    second export, and only the contacts it could not send then."""
    _tag(world, world.contact_ids[:30], "x")
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    world.workspace_used(1000 - 10)  # ten calls left today
    code, _ = world.run(str(source), "--skip-existing", out="run")
    assert code == ExitCode.WORK_LEFT
    exports = world.emulator.handled["GET /v1/contacts/export"]
    assert exports == 1
    sent = world.handled_tag_calls()
    world.next_night()
    code = main(["run", "--resume", str(world.folder / "run")], runtime=world.runtime())
    assert code == ExitCode.OK
    assert world.emulator.handled["GET /v1/contacts/export"] == exports
    assert sent < 30
    assert world.handled_tag_calls() == 30  # the 30 untagged, each once
    assert all(world.tags_of(cid) == ["x"] for cid in world.contact_ids)


def test_many_tags_on_few_contacts_take_one_full_export(make_world: Callable[..., World]) -> None:
    """12 tags over 60 contacts: one list call sizes the workspace, one full export answers
    for every tag (data.contacts and meta.total, the tags column of the export)."""
    world = make_world(contacts=60, plan="org")
    ids = world.contact_ids
    tags = [f"t{n}" for n in range(12)]
    _tag(world, ids[:30], *tags)
    source = world.write_csv("in.csv", [(cid, ",".join(tags)) for cid in ids])
    code, run_dir = world.run(str(source), "--plan", "org", "--skip-existing")
    assert code == ExitCode.OK
    summary = _summary(run_dir)
    assert summary["precheck"]["strategy"] == "full"
    assert summary["calls"] == {"add_tags": 30, "export": 1, "list_contacts": 1, "total": 32}
    assert summary["contacts"]["skipped"] == 30
    assert all(set(tags) <= set(world.tags_of(cid)) for cid in ids)


def test_a_small_quota_is_never_all_spent_on_asking(make_world: Callable[..., World]) -> None:
    """A job with skip_existing on 5 calls a day and 5 tags: each night the pre-check spends
    at most half the day, the job's ledger keeps what the exports found (not asked again),
    and the backlog is done in a few nights, not 75 for ever (issue 22's state machine)."""
    world = make_world(contacts=8, plan="starter", per_day=5)
    ids = world.contact_ids
    tags = ["a", "b", "c", "d", "e"]
    rows = [(cid, tag) for i, cid in enumerate(ids[:6]) for tag in tags[i % 5 : i % 5 + 2]]
    for cid, tag in rows[:6]:
        world.emulator.contacts[cid].tags.append(tag)
    world.write_csv("export.csv", rows)
    job = world.write_job(
        'inputs = ["export.csv"]\nskip_existing = true\n[limits]\nplan = "starter"\n'
    )
    world.run(str(world.folder / "export.csv"), "--plan", "starter")  # spends today's 5
    codes, exports = [], []
    for _night in range(4):
        world.next_night()
        before = world.emulator.handled["GET /v1/contacts/export"]
        code, _ = world.run_job(job)
        codes.append(code)
        exports.append(world.emulator.handled["GET /v1/contacts/export"] - before)
    assert codes[-1] == ExitCode.OK
    assert codes.index(ExitCode.OK) <= 2
    assert all(n <= 2 for n in exports)  # half of 5, rounded down
    assert all({t for c, t in rows if c == cid} <= set(world.tags_of(cid)) for cid in ids[:6])


@pytest.mark.parametrize("skip_existing", [False, True])
def test_the_to_do_list_is_made_once_a_session(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, skip_existing: bool
) -> None:
    """The plan less the journal is joined once a session: before it without a pre-check,
    after the pre-check with one (never before and again after)."""
    import bulktag.run.session
    import bulktag.run.stages

    made: list[int] = []
    real = bulktag.run.session.unsent

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        made.append(found[1])
        return found

    monkeypatch.setattr(bulktag.run.session, "unsent", counted)
    monkeypatch.setattr(bulktag.run.stages, "unsent", counted)
    world = make_world(contacts=200, plan="org")
    _tag(world, world.contact_ids[:150], "q4-segment")
    source = world.write_csv("in.csv", [(cid, "q4-segment") for cid in world.contact_ids])
    flags = ["--skip-existing"] if skip_existing else []
    code, _ = world.run(str(source), "--plan", "org", *flags)
    assert code == ExitCode.OK
    assert made == ([50] if skip_existing else [200])
