"""When a run stops sending: the daily quota, rate limits, a rejected key; and its exit code."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx2
import polars as pl
import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from bulktag.state.journal import Journal
from tests.constants import KEY
from tests.world import World, read_results, sliding_window_max


def _all(world: World, tags: str = "x") -> Path:
    return world.write_csv("in.csv", [(cid, tags) for cid in world.contact_ids])


def test_daily_quota_stop_leaves_exactly_the_unsent_contacts_deferred(
    make_world: Callable[..., World],
) -> None:
    """30 calls left today, 50 contacts: 30 ok, 20 deferred quota_exhausted, no 429, exit 75."""
    world = make_world(contacts=50)
    world.emulator.workspace("default").refusal(world.emulator.clock.now())
    world.workspace_used(970)
    code, run_dir = world.run(str(_all(world)))
    assert code == ExitCode.WORK_LEFT
    assert world.statuses() == {"200": 30}
    results = read_results(run_dir / "results.csv")
    ok = results.filter(results["status"] == "ok")["contact_id"].to_list()
    deferred = results.filter(results["status"] == "deferred")
    assert len(ok) == 30
    assert set(deferred["error_type"]) == {"quota_exhausted"}
    assert set(deferred["retryable"]) == {"true"}
    assert deferred["contact_id"].to_list() == [c for c in world.contact_ids if c not in ok]
    failures = read_results(run_dir / "failures.csv")
    assert failures["contact_id"].to_list() == deferred["contact_id"].to_list()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["halt"] == "quota_exhausted"
    assert summary["quota"]["remaining"] == 0


def test_quota_reserve_is_left_unused(make_world: Callable[..., World]) -> None:
    """--quota-reserve 10 with 30 calls left: 20 calls, 10 left for the rest of the day."""
    world = make_world(contacts=50)
    world.emulator.workspace("default").refusal(world.emulator.clock.now())
    world.workspace_used(970)
    code, run_dir = world.run(str(_all(world)), "--quota-reserve", "10")
    assert code == ExitCode.WORK_LEFT
    assert world.statuses() == {"200": 20}
    assert json.loads((run_dir / "summary.json").read_text())["quota"]["remaining"] == 10


def test_quota_429_from_the_server_stops_the_run(make_world: Callable[..., World]) -> None:
    """A 429 with X-RateLimit-Remaining: 0 (another client spent the quota) stops at once."""
    world = make_world(contacts=40)
    sent = {"n": 0}

    def other_client_spends_it(request: httpx2.Request) -> None:
        sent["n"] += 1
        if sent["n"] == 10:
            world.workspace_used(1000)

    world.hook = other_client_spends_it
    code, run_dir = world.run(str(_all(world)))
    assert code == ExitCode.WORK_LEFT
    results = read_results(run_dir / "results.csv")
    assert (results["status"] == "ok").sum() == 9
    assert set(results.filter(results["status"] != "ok")["error_type"]) == {"quota_exhausted"}
    assert world.statuses()["429"] <= 8  # only what was in flight


def test_invalid_key_stops_the_run_with_77(world: World) -> None:
    """An unknown key: the first answer is 401, nothing more is sent, the rest not_attempted."""
    world.environ["LEADLEX_API_KEY"] = "wbk_wrong"
    code, run_dir = world.run(str(_all(world)))
    assert code == ExitCode.KEY_REJECTED
    assert world.statuses() == {"401": 1}  # the probe; then the run stopped
    results = read_results(run_dir / "results.csv")
    assert results["status"].value_counts().sort("status").rows() == [
        ("failed", 1),
        ("not_attempted", 59),
    ]
    assert results["error_type"][0] == "invalid_key"


def test_key_revoked_mid_run_stops_sending(world: World) -> None:
    """The key is revoked after 10 calls: in-flight calls finish, no new one starts, exit 77."""
    sent = {"n": 0}

    def revoke(request: httpx2.Request) -> None:
        sent["n"] += 1
        if sent["n"] == 10:
            world.emulator.keys[KEY].revoked = True

    world.hook = revoke
    code, run_dir = world.run(str(_all(world)))
    assert code == ExitCode.KEY_REJECTED
    assert world.statuses()["200"] == 9
    assert world.statuses()["401"] <= 8
    counts = dict(read_results(run_dir / "results.csv")["status"].value_counts().rows())
    assert counts["ok"] == 9
    assert counts["not_attempted"] == 60 - 9 - world.statuses()["401"]


def test_a_rejected_key_outranks_permanent_failures_exit_77_not_1(world: World) -> None:
    """A reject, a 404 (each exit 1 alone), then the key revoked: exit 77, the README's
    precedence (77 > 78 > 75 > 1 > 0); the 404 and the reject are still in the files."""
    ids = world.contact_ids
    unknown = "00000000-0000-4000-8000-000000000009"
    rows = [(unknown, "x"), ("not-an-id", "x"), *((cid, "x") for cid in ids[:5])]
    source = world.write_csv("in.csv", rows)
    sent = {"n": 0}

    def revoke(request: httpx2.Request) -> None:
        sent["n"] += 1
        if sent["n"] == 3:
            world.emulator.keys[KEY].revoked = True

    world.hook = revoke
    code, run_dir = world.run(str(source), "--concurrency", "1")
    assert code == ExitCode.KEY_REJECTED
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exit_code"] == 77
    assert summary["failures_by_type"]["not_found"] == 1
    assert summary["failures_by_type"]["invalid_key"] == 1
    assert summary["rejects"]["total"] == 1
    assert read_results(run_dir / "rejects.csv")["contact_id"].to_list() == ["not-an-id"]


def test_permission_removed_mid_run_stops_with_77(world: World) -> None:
    """Write permission taken away: 403 insufficient_permissions stops the run."""
    sent = {"n": 0}

    def read_only(request: httpx2.Request) -> None:
        sent["n"] += 1
        if sent["n"] == 5:
            world.emulator.keys[KEY].permissions = frozenset({"read"})

    world.hook = read_only
    code, run_dir = world.run(str(_all(world)))
    assert code == ExitCode.KEY_REJECTED
    results = read_results(run_dir / "results.csv")
    assert "insufficient_permissions" in set(results["error_type"])


def test_retry_after_is_honoured(world: World) -> None:
    """A 2-minute 429 storm: no call in the storm after the first 429s, all ok afterwards."""
    world.emulator.storm_until = world.emulator.clock.now() + 120
    code, _ = world.run(str(_all(world)))
    assert code == ExitCode.OK
    limited = [e["t"] for e in world.emulator.log if e["status"] == "429"]
    served = [e["t"] for e in world.emulator.log if e["status"] == "200"]
    assert len(limited) == 1  # the probe met the storm; everyone waited for Retry-After
    assert min(served) >= limited[0] + 120


def test_retry_after_beyond_max_wait_defers_the_rest(world: World) -> None:
    """A Retry-After beyond --max-wait stops sending: the rest deferred rate_limited, exit 75."""
    world.emulator.storm_until = world.emulator.clock.now() + 3600
    code, run_dir = world.run(str(_all(world)), "--max-wait", "600")
    assert code == ExitCode.WORK_LEFT
    results = read_results(run_dir / "results.csv")
    assert set(results["status"]) == {"deferred"}
    assert set(results["error_type"]) == {"rate_limited"}
    assert world.statuses() == {"429": 1}


def test_rate_configured_too_high_adapts_after_the_first_429s(
    make_world: Callable[..., World],
) -> None:
    """bulktag at 100/min against a 50/min server: a few 429s in the first minute, none after."""
    world = make_world(contacts=200)
    code, _ = world.run(str(_all(world)), "--rate-per-minute", "100")
    assert code == ExitCode.OK
    log = world.emulator.log
    start = log[0]["t"]
    early = [e for e in log if e["status"] == "429" and e["t"] < start + 60]
    late = [e for e in log if e["status"] == "429" and e["t"] >= start + 60]
    assert 1 <= len(early) <= 3
    assert late == []
    assert sliding_window_max([e["t"] for e in log if e["status"] == "200"]) <= 50


@pytest.mark.parametrize(
    ("args", "environ", "message"),
    [
        ((), {}, "no API key: set LEADLEX_API_KEY"),
        (("--api-url", "http://leadlex.example.com"), {"LEADLEX_API_KEY": KEY}, "plain http"),
        (("--api-url", "ftp://x"), {"LEADLEX_API_KEY": KEY}, "not an http(s) URL"),
    ],
)
def test_configuration_errors_are_78_before_any_request(
    world: World,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    environ: dict[str, str],
    message: str,
) -> None:
    """Missing key, plain http to a remote host, a bad URL: exit 78, one line, nothing sent."""
    world.environ = environ | {"BULKTAG_STATE_DIR": str(world.folder / "state")}
    code, _ = world.run(str(_all(world)), *args)
    assert code == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert world.emulator.requests == {}


def test_api_key_file_is_read_and_a_loose_one_is_warned_about(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--api-key-file works; a file readable by others gets a warning naming chmod 600."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o644)
    world.environ = {"BULKTAG_STATE_DIR": str(world.folder / "state")}
    code, _ = world.run(str(_all(world)), "--api-key-file", str(key_file))
    assert code == ExitCode.OK
    assert "chmod 600" in capsys.readouterr().err
    key_file.chmod(0o600)
    world.run(str(_all(world)), "--api-key-file", str(key_file))
    assert "chmod 600" not in capsys.readouterr().err


def test_resume_across_many_plan_slices(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan meets the journal in slices of 7 contacts: a run halted by the quota, then
    resumed the next day, sends each contact once and publishes one row per contact."""
    asked: set[tuple[int, int]] = set()
    between = Journal.between

    def spy(journal: Journal, first: int, last: int, columns: Sequence[str]) -> pl.DataFrame:
        asked.add((first, last))
        return between(journal, first, last, columns)

    monkeypatch.setattr(Journal, "between", spy)
    world = make_world(contacts=45)
    world.slice_rows = 7
    unknown = [f"00000000-0000-4000-8000-{n:012d}" for n in range(3)]
    ids = [*world.contact_ids[:20], *unknown, *world.contact_ids[20:]]
    source = world.write_csv("in.csv", [(cid, "x") for cid in ids])
    world.workspace_used(970)  # 30 calls left today
    code, run_dir = world.run(str(source), out="run")
    assert code == ExitCode.WORK_LEFT
    first = read_results(run_dir / "results.csv")
    assert first["contact_id"].to_list() == ids
    assert first["status"].value_counts().sort("status").rows() == [
        ("deferred", 18),
        ("failed", 3),
        ("ok", 27),
    ]
    world.next_night()
    code = main(["run", "--resume", str(run_dir)], runtime=world.runtime())
    assert code == ExitCode.FAILURES  # the three unknown contacts
    results = read_results(run_dir / "results.csv")
    assert results["contact_id"].to_list() == ids
    assert dict(zip(results["contact_id"], results["status"], strict=True)) == {
        cid: "failed" if cid in unknown else "ok" for cid in ids
    }
    assert world.handled_tag_calls() == len(ids)  # none sent twice
    assert asked == {(first, min(first + 6, 47)) for first in range(0, 48, 7)}
