"""Failures: typed, retried when retryable, and a failures file that is itself an input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import httpx2
import polars as pl
import pytest

from bulktag.cli.commands import main
from bulktag.emulator import Faults
from bulktag.errors import ExitCode
from tests.world import URL, World, read_results

UNKNOWN = "00000000-0000-4000-8000-000000000001"


def test_unknown_contact_is_a_permanent_not_found(world: World) -> None:
    """404 is not retried: one call, failed not_found, retryable false, exit 1."""
    source = world.write_csv("in.csv", [(UNKNOWN, "vip")])
    code, run_dir = world.run(str(source))
    assert code == ExitCode.FAILURES
    assert world.statuses() == {"404": 1}
    row = read_results(run_dir / "failures.csv").row(0, named=True)
    assert (row["contact_id"], row["tags"], row["status"]) == (UNKNOWN, "vip", "failed")
    assert (row["error_type"], row["retryable"], row["http_status"]) == (
        "not_found",
        "false",
        "404",
    )
    assert row["error_code"] == "not_found"
    assert row["request_id"]


def test_a_400_is_never_retried_end_to_end(world: World) -> None:
    """LeadLex refusing the tags (400 validation_error) on every call, --max-attempts 5: one
    call a contact, failed validation_error, retryable false, exit 1; its message kept."""
    envelope = (
        b'{"error":{"code":"validation_error","message":"Invalid tags",'
        b'"details":{"fields":{"tags":"too long"}}}}'
    )

    class Refuses(httpx2.AsyncBaseTransport):
        def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
            self.inner, self.calls = inner, 0

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            if request.method != "POST":
                return await self.inner.handle_async_request(request)
            self.calls += 1
            headers = {"content-type": "application/json"}
            return httpx2.Response(400, content=envelope, headers=headers, request=request)

    ids = world.contact_ids[:6]
    source = world.write_csv("in.csv", [(cid, "x") for cid in ids])
    runtime = world.runtime()
    assert runtime.transport is not None
    refuses = Refuses(runtime.transport)
    argv = ["run", str(source), "--out", str(world.folder / "run"), "--api-url", URL]
    code = main([*argv, "--max-attempts", "5"], runtime=replace(runtime, transport=refuses))
    assert code == ExitCode.FAILURES
    assert refuses.calls == len(ids)
    failures = read_results(world.folder / "run" / "failures.csv")
    assert failures["contact_id"].to_list() == ids
    assert set(failures["error_type"]) == {"validation_error"}
    assert set(failures["attempts"]) == {"1"}
    assert set(failures["retryable"]) == {"false"}
    assert set(failures["http_status"]) == {"400"}
    assert set(failures["message"]) == {"Invalid tags (tags: too long)"}


def test_server_errors_are_retried_until_they_pass(make_world: Callable[..., World]) -> None:
    """With 30 % 5xx answers every contact still ends ok, in at most 1.5 calls each on average."""
    world = make_world(contacts=200, faults=Faults(fault_rate=0.3), seed=11, per_minute=100_000)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "unmetered")
    assert code == ExitCode.OK
    assert set(read_results(run_dir / "results.csv")["status"]) == {"ok"}
    calls = sum(world.statuses().values())
    assert calls <= 1.5 * 200
    assert world.statuses()["200"] == 200


def test_retries_are_bounded(make_world: Callable[..., World]) -> None:
    """A server that always fails: each contact stops after --max-attempts; exit 75."""
    world = make_world(contacts=5, faults=Faults(fault_rate=1.0))
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--max-attempts", "3")
    assert code == ExitCode.WORK_LEFT
    results = read_results(run_dir / "results.csv")
    assert set(results["error_type"]) == {"server_error"}
    assert set(results["attempts"]) == {"3"}
    assert set(results["retryable"]) == {"true"}
    assert sum(world.statuses().values()) == 15


def test_retry_time_bounds_a_contact(make_world: Callable[..., World]) -> None:
    """--retry-time stops retrying once the next try would start too late."""
    world = make_world(contacts=1, faults=Faults(fault_rate=1.0))
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    world.run(str(source), "--max-attempts", "100", "--retry-time", "30")
    log = [e["t"] for e in world.emulator.log]
    assert len(log) < 20
    assert log[-1] - log[0] <= 30


def test_dropped_connections_are_retried_with_the_same_idempotency_key(
    make_world: Callable[..., World],
) -> None:
    """Drops before and after the merge: retried, replayed when applied, every contact ok."""
    world = make_world(contacts=80, faults=Faults(drop_rate=0.3), seed=5, per_minute=100_000)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, _ = world.run(str(source), "--plan", "unmetered")
    assert code == ExitCode.OK
    assert world.statuses()["dropped"] > 0
    assert world.emulator.replays > 0  # a retry after a drop-after is recognised
    assert all(world.tags_of(cid) == ["x"] for cid in world.contact_ids)
    # each contact's merge happened once: replays answered the rest
    assert max(world.emulator.tag_calls.values()) == 1


def test_malformed_success_is_retried(make_world: Callable[..., World]) -> None:
    """A 200 whose body is cut: unexpected_response, retried with the same key (LeadLex
    replays it, merging nothing twice), then ok: the outputs show each contact's attempts."""
    world = make_world(contacts=30, faults=Faults(malformed_rate=0.5), seed=2, per_minute=100_000)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "unmetered")
    assert code == ExitCode.OK
    results = read_results(run_dir / "results.csv")
    assert set(results["status"]) == {"ok"}
    attempts = results["attempts"].cast(int)
    retried = int((attempts > 1).sum())
    assert retried >= 5  # about half the answers were cut: those contacts went again
    assert int(attempts.sum()) == sum(world.statuses().values()) == 30 + world.emulator.replays
    assert max(world.emulator.tag_calls.values()) == 1  # the retries were replays
    assert all(world.tags_of(cid) == ["x"] for cid in world.contact_ids)
    assert read_results(run_dir / "failures.csv").height == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["calls"]["add_tags"] == int(attempts.sum())


def test_failures_file_rerun_converges_to_permanent_failures(
    make_world: Callable[..., World],
) -> None:
    """Run with faults, then re-run failures.csv with faults off: every contact ok; the one
    not_found is left: in the rejects if the first run knew it permanent, else found now."""
    world = make_world(contacts=100, faults=Faults(fault_rate=0.5, drop_rate=0.2), seed=9)
    rows = [(cid, "a, b") for cid in world.contact_ids] + [(UNKNOWN, "c")]
    source = world.write_csv("in.csv", rows)
    code, run_dir = world.run(str(source), "--plan", "unmetered", "--max-attempts", "2")
    assert code == ExitCode.WORK_LEFT
    first = read_results(run_dir / "failures.csv")
    assert first.height > 1
    world.emulator.injector.faults = Faults()
    code, rerun = world.run(str(run_dir / "failures.csv"), "--plan", "unmetered")
    assert code == ExitCode.FAILURES  # the permanent failure is left
    left = read_results(rerun / "failures.csv").select("contact_id", "tags", "error_type")
    rejects = read_results(rerun / "rejects.csv")
    known = first.filter(first["contact_id"] == UNKNOWN)["error_type"].to_list() == ["not_found"]
    if known:  # found permanent in the first run: not sent again, set aside in the rejects
        assert left.height == 0
        assert rejects.select("contact_id", "tags").rows() == [(UNKNOWN, "c")]
        assert rejects["reason"][0].startswith("not_found: a permanent failure")
    else:  # its first run ended on a fault: sent again, found permanent now
        assert left.rows() == [(UNKNOWN, "c", "not_found")]
        assert rejects.height == 0
    assert all(world.tags_of(cid) == ["a", "b"] for cid in world.contact_ids)


def test_failures_file_holds_only_the_tags_still_to_apply(world: World) -> None:
    """A contact whose first chunk passed and second failed re-runs with the second only."""
    cid = world.contact_ids[0]
    tags = [f"t{i:03d}" for i in range(150)]
    calls = {"n": 0}

    def fail_second(request: httpx2.Request) -> None:
        if request.url.path.endswith("/tags"):
            calls["n"] += 1
            if calls["n"] == 2:
                world.emulator.keys.clear()  # the key vanishes: 401 from now on

    world.hook = fail_second
    source = world.write_csv("in.csv", [(cid, ",".join(tags))])
    code, run_dir = world.run(str(source))
    assert code == ExitCode.KEY_REJECTED
    failures = read_results(run_dir / "failures.csv")
    assert failures["tags"].to_list() == [",".join(tags[100:])]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "ndjson", "xlsx"])
def test_failures_file_reads_back_as_the_same_pairs(world: World, fmt: str) -> None:
    """Whatever the format, re-reading failures gives the planned (contact, tags) exactly."""
    ids = world.contact_ids
    rows = [(UNKNOWN, "-negative, =formula, @at, +plus, 'quoted"), (ids[0], "ok")]
    source = world.write_csv("in.csv", rows)
    _, run_dir = world.run(str(source), "--format", fmt)
    again = str(run_dir / f"failures.{fmt}")  # a not_found row: sent again only when asked
    code, rerun = world.run(again, "--dry-run", "--format", "parquet", "--retry-permanent")
    assert code == ExitCode.OK
    planned = pl.read_parquet(rerun / "results.parquet")
    assert planned.select("contact_id", "tags").rows() == [
        (UNKNOWN, ["-negative", "=formula", "@at", "+plus", "'quoted"])
    ]
