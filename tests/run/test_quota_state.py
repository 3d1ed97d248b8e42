"""One budget per key and day, shared by every run on the machine, corrected by LeadLex."""

from __future__ import annotations

import json

from bulktag.errors import ExitCode
from tests.world import World


def test_afternoon_run_and_nightly_run_share_the_budget(world: World) -> None:
    """A manual run spends 990 of 1,000; the job the same day knows only 10 are left."""
    world.workspace_used(0)
    manual = world.write_csv("manual.csv", [(cid, "m") for cid in world.contact_ids[:10]])
    world.run(str(manual))
    world.workspace_used(990)  # people used LeadLex too
    world.write_csv("in.csv", [(cid, "n") for cid in world.contact_ids[10:40]])
    job = world.write_job('inputs = ["in.csv"]\n')
    code, run_dir = world.run_job(job)
    assert code == ExitCode.WORK_LEFT
    assert run_dir is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["contacts"]["ok"] == 10
    assert summary["quota"]["remaining"] == 0
    assert world.statuses() == {"200": 20}  # no 429: the budget stopped the run


def test_a_spent_day_costs_not_a_single_call(world: World) -> None:
    """The store remembers 0 left today: the next run sends nothing and defers everything."""
    world.emulator.workspace("default").refusal(world.emulator.clock.now())
    world.workspace_used(999)
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids[:5]])
    world.run(str(source))
    calls = sum(world.statuses().values())
    code, run_dir = world.run(str(source))
    assert code == ExitCode.WORK_LEFT
    assert sum(world.statuses().values()) == calls  # nothing more was sent
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["contacts"]["deferred"] == 5


def test_the_budget_resets_at_utc_midnight(world: World) -> None:
    """After midnight the remembered count no longer applies: the run sends again."""
    world.emulator.workspace("default").refusal(world.emulator.clock.now())
    world.workspace_used(1000)
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids[:5]])
    world.run(str(source))
    world.next_night()
    code, _ = world.run(str(source))
    assert code == ExitCode.OK
    assert world.statuses()["200"] == 5
