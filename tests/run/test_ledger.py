"""The ledger: a job never spends a call on a (contact, tag) pair it already applied."""

from __future__ import annotations

import json

from bulktag.errors import ExitCode
from tests.world import World, read_results


def test_applied_pairs_are_skipped_not_sent(world: World) -> None:
    """The second run of the same export: every contact skipped (already_applied), 0 calls;
    the night's results list the contacts it sent (none), the summary counts the skipped."""
    world.write_csv("in.csv", [(cid, "a, b") for cid in world.contact_ids[:10]])
    job = world.write_job('inputs = ["in.csv"]\n')
    world.run_job(job)
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert world.handled_tag_calls() == 10
    assert read_results(run_dir / "results.csv").height == 0
    assert read_results(run_dir / "failures.csv").height == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["contacts"]["skipped"] == 10
    assert summary["skipped_by_reason"] == {"already_applied": 10}
    assert summary["calls"]["add_tags"] == 0


def test_only_the_new_tags_are_sent(world: World) -> None:
    """A contact with one applied tag and one new: one call with the new tag only."""
    cid = world.contact_ids[0]
    world.write_csv("in.csv", [(cid, "a")])
    job = world.write_job('inputs = ["in.csv"]\n')
    world.run_job(job)
    world.write_csv("in.csv", [(cid, "a, b")])
    world.hook = lambda request: sent.append(request.content)
    sent: list[bytes] = []
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert sent == [b'{"tags":["b"]}']
    assert run_dir is not None
    assert read_results(run_dir / "results.csv")["tags"].to_list() == ["a,b"]


def test_force_ignores_the_ledger(world: World) -> None:
    """--force sends every pair again."""
    world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids[:5]])
    job = world.write_job('inputs = ["in.csv"]\n')
    world.run_job(job)
    world.run_job(job, "--force")
    assert world.handled_tag_calls() == 10


def test_ledger_days_resend_after_expiry(world: World) -> None:
    """ledger days = 2: the pair is skipped the next night, and sent again three nights later."""
    world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    job = world.write_job('inputs = ["in.csv"]\n[ledger]\ndays = 2\n')
    world.run_job(job)
    world.next_night()
    world.run_job(job)
    assert world.handled_tag_calls() == 1
    for _ in range(3):
        world.next_night()
    world.run_job(job)
    assert world.handled_tag_calls() == 2


def test_ledger_can_be_turned_off(world: World) -> None:
    """[ledger] enabled = false: every run sends everything."""
    world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    job = world.write_job('inputs = ["in.csv"]\n[ledger]\nenabled = false\n')
    world.run_job(job)
    world.run_job(job)
    assert world.handled_tag_calls() == 2
