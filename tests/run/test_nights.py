"""A backlog larger than the daily quota, finished over consecutive nights with no manual step."""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl
import pytest

from bulktag.errors import ExitCode
from tests.world import World, read_results


def test_three_nights_finish_a_250_contact_backlog_on_starter(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Starter (100 a day): 100, 100, 50 calls, then a night with nothing to do; 75, 75, 0, 0.
    Each night's results list the contacts it sent, no other; the job's carry-over holds
    every contact no night has sent yet."""
    world = make_world(contacts=250, plan="starter")
    world.write_csv("backlog.csv", [(cid, "import-2026-11") for cid in world.contact_ids])
    job = world.write_job('inputs = ["backlog.csv"]\n[limits]\nplan = "starter"\n')
    carry = world.folder / "job" / "carry-over.parquet"
    codes, calls, statuses = [], [], []
    sent: set[str] = set()
    for _night in range(4):
        world.next_night()
        before = world.handled_tag_calls()
        code, run_dir = world.run_job(job)
        assert run_dir is not None
        codes.append(code)
        calls.append(world.handled_tag_calls() - before)
        summary = json.loads((run_dir / "summary.json").read_text())
        statuses.append({k: v for k, v in summary["contacts"].items() if v and k != "planned"})
        results = read_results(run_dir / "results.csv")
        assert results.height == calls[-1]
        assert set(results["status"]) <= {"ok"}
        assert not sent & set(results["contact_id"])
        sent |= set(results["contact_id"])
        assert read_results(run_dir / "failures.csv").height == 0
        left = set(pl.read_parquet(carry)["contact_id"]) if carry.exists() else set()
        assert left == set(world.contact_ids) - sent
        told = f"the {len(left)} contacts not sent are in its carry-over.parquet"
        assert (told in capsys.readouterr().err) is bool(left)
    assert codes == [ExitCode.WORK_LEFT, ExitCode.WORK_LEFT, ExitCode.OK, ExitCode.OK]
    assert calls == [100, 100, 50, 0]
    assert statuses == [
        {"ok": 100, "deferred": 150},
        # the same export: the plan is the carry-over alone (tests/run/test_unchanged.py)
        {"ok": 100, "deferred": 50},
        {"ok": 50},
        {"skipped": 250},  # nothing carried over: the export read again
    ]
    assert world.statuses() == {"200": 250}  # not a single 429, not a single repeated call
    assert all(world.tags_of(cid) == ["import-2026-11"] for cid in world.contact_ids)
    assert not (world.folder / "job" / "carry-over.parquet").exists()


def test_carried_over_contacts_go_first(make_world: Callable[..., World]) -> None:
    """The second night sends yesterday's leftovers before the new export's contacts."""
    world = make_world(contacts=30, plan="starter", per_day=10)
    ids = world.contact_ids
    world.write_csv("export.csv", [(cid, "a") for cid in ids[:15]])
    job = world.write_job('inputs = ["export.csv"]\n[limits]\nplan = "starter"\n')
    world.next_night()
    world.run_job(job)
    world.write_csv("export.csv", [(cid, "b") for cid in ids[15:30]])  # tonight's export
    world.next_night()
    code, run_dir = world.run_job(job)
    assert run_dir is not None
    results = read_results(run_dir / "results.csv")
    sent = results.filter(results["status"] == "ok")["contact_id"].to_list()
    assert sent == ids[10:15] + ids[15:20]  # 5 carried over first, then 5 of the new export
    assert code == ExitCode.WORK_LEFT
