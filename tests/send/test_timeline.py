"""Calls per minute: counted by the dispatcher in O(minutes), written to summary.json."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

from bulktag.errors import ExitCode
from bulktag.send.timeline import Timeline, TimelineMinute, timeline_json
from tests.helpers import contact_ids, emulator_env, running_emulator, start_bulktag
from tests.world import World


def test_attempts_fall_in_the_minute_they_were_answered() -> None:
    """Minute = (now - origin) // 60; 429s apart from other failures; empty minutes left out."""
    timeline = Timeline(origin=100.0, started_at=1_000.0)
    timeline.count(100.0, retry=False, limited=False, failed=False)
    timeline.count(159.9, retry=True, limited=True, failed=True)
    timeline.count(160.0, retry=False, limited=False, failed=True)
    timeline.count(400.0, retry=True, limited=False, failed=False)
    assert timeline.snapshot() == (
        TimelineMinute(0, calls=2, rate_limited=1, retries=1, failed=0),
        TimelineMinute(1, calls=1, rate_limited=0, retries=0, failed=1),
        TimelineMinute(5, calls=1, rate_limited=0, retries=1, failed=0),
    )
    as_json = timeline_json(timeline.started_at, timeline.snapshot(), 50.0, 45.0)
    assert as_json is not None
    assert as_json["started_at"] == "1970-01-01T00:16:40Z"
    assert [m["minute"] for m in as_json["minutes"]] == [0, 1, 5]
    assert timeline_json(None, (), 50.0) is None


def test_the_timeline_holds_every_call_within_the_rate(make_world: Callable[..., World]) -> None:
    """Starter (10 a minute), 35 contacts: 10, 10, 10, 5 calls, summed = the calls made."""
    world = make_world(contacts=35, plan="starter")
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "starter")
    assert code == ExitCode.OK
    summary = json.loads((run_dir / "summary.json").read_text())
    timeline = summary["timeline"]
    assert timeline["rate_per_minute"] == 10.0
    assert [m["calls"] for m in timeline["minutes"]] == [10, 10, 10, 5]
    assert sum(m["calls"] for m in timeline["minutes"]) == summary["calls"]["total"]
    assert summary["quota"]["before"] == 100  # a fresh day of the starter plan


def test_429s_and_retries_are_marked(make_world: Callable[..., World]) -> None:
    """LeadLex allows 5 a minute, bulktag sends 10: the timeline's 429s are the limiter's,
    each followed by a retry, and the report says how many."""
    world = make_world(contacts=20, plan="starter", per_minute=5)
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "starter")
    assert code == ExitCode.OK
    summary = json.loads((run_dir / "summary.json").read_text())
    minutes = summary["timeline"]["minutes"]
    limited = sum(m["rate_limited"] for m in minutes)
    assert limited == summary["rate"]["rate_limited_429s"] > 0
    assert sum(m["retries"] for m in minutes) >= limited
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert f"{limited:,} answered 429" in page
    assert "lowered to" in page  # the limiter's rate after the 429s
    # LeadLex's own limit, as its 429s showed it (no header tells it), drawn and said
    assert "the limit LeadLex allowed: 5 a minute (seen in its 429s)" in page
    assert "LeadLex let about 5 a minute through" in page


def test_an_interrupted_run_writes_its_report(tmp_path: Path) -> None:
    """SIGTERM mid-run: exit 75, and report.html shows the contacts not attempted."""
    with running_emulator(
        "--generate", "200", "--plan", "unmetered", "--latency-ms", "50:80"
    ) as ready:
        ids = contact_ids(ready, 200)
        source = tmp_path / "in.csv"
        source.write_text("contact_id,tags\n" + "".join(f"{i},stop\n" for i in ids))
        env = emulator_env(ready)
        command = ["run", str(source), "--out", str(tmp_path / "run")]
        process = start_bulktag(
            [*command, "--plan", "unmetered", "--concurrency", "1"], env, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                handled = httpx2.get(f"{ready['control']}/stats").json()["tag_calls_handled"]
                if handled >= 5:
                    break
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.WORK_LEFT, err
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "were not sent: finish this run:" in page  # What next
    assert f"bulktag run --resume {tmp_path / 'run'}" in page
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["contacts"]["not_attempted"] > 0
    assert (
        f'data-tile="not attempted"><div class="number">{summary["contacts"]["not_attempted"]:,}'
        in page
    )
