"""Ambiguous outcomes: read the contact once before deciding the call failed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from tests.world import URL, World, read_results


class DropFirstCall(httpx2.AsyncBaseTransport):
    """Each contact's first add-tags call loses its answer, before or after it is applied."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, applied: bool) -> None:
        self._inner = inner
        self._applied = applied
        self._seen: set[str] = set()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path not in self._seen:
            self._seen.add(request.url.path)
            if self._applied:
                await self._inner.handle_async_request(request)
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return await self._inner.handle_async_request(request)


def _run(world: World, *args: str, applied: bool) -> tuple[int, Path, dict[str, Any]]:
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids[:10]])
    runtime = world.runtime()
    assert runtime.transport is not None
    transport = DropFirstCall(runtime.transport, applied=applied)
    run_dir = world.folder / f"run-{applied}-{len(args)}"
    code = main(
        ["run", str(source), "--out", str(run_dir), "--api-url", URL, *args],
        runtime=replace(runtime, transport=transport),
    )
    return code, run_dir, json.loads((run_dir / "summary.json").read_text())


def test_lost_answer_after_apply_is_verified_not_resent(world: World) -> None:
    """Dropped after LeadLex applied it: one read shows the tags; ok, verified, no second call."""
    code, run_dir, summary = _run(world, "--verify-ambiguous", applied=True)
    assert code == ExitCode.OK
    assert summary["calls"] == {"add_tags": 10, "get_contact": 10, "total": 20}
    assert summary["verified"] == 10
    assert world.handled_tag_calls() == 10  # no duplicate add-tags call
    results = read_results(run_dir / "results.csv")
    assert set(results["verified"]) == {"true"}
    assert set(results["status"]) == {"ok"}


def test_lost_answer_before_apply_is_read_then_retried(world: World) -> None:
    """Dropped before LeadLex got it: the read shows no tag, so the call is sent again."""
    code, run_dir, summary = _run(world, "--verify-ambiguous", applied=False)
    assert code == ExitCode.OK
    assert summary["calls"] == {"add_tags": 20, "get_contact": 10, "total": 30}
    assert summary["verified"] == 0
    assert all(world.tags_of(cid) == ["x"] for cid in world.contact_ids[:10])
    assert set(read_results(run_dir / "results.csv")["verified"]) == {"false"}


def test_without_verification_the_call_is_retried(world: World) -> None:
    """--no-verify-ambiguous: the lost call is sent again (LeadLex replays it)."""
    code, _, summary = _run(world, "--no-verify-ambiguous", applied=True)
    assert code == ExitCode.OK
    assert summary["calls"] == {"add_tags": 20, "total": 20}
    assert world.emulator.replays == 10


def test_job_files_verify_by_default(world: World) -> None:
    """A job run verifies ambiguous outcomes unless the job file says otherwise."""
    world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids[:5]])
    job = world.write_job('inputs = ["in.csv"]\n')
    runtime = world.runtime()
    assert runtime.transport is not None
    code = main(
        ["run", "--job", str(job), "--api-url", URL],
        runtime=replace(runtime, transport=DropFirstCall(runtime.transport, applied=True)),
    )
    assert code == ExitCode.OK
    assert world.handled_tag_calls() == 5
    assert world.emulator.handled["GET /v1/contacts/{id}"] == 5


def test_a_key_without_read_falls_back_to_retrying(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Verification needs Read: a 403 on the read turns it off and the call is retried."""
    from bulktag.emulator import Key
    from tests.constants import KEY

    world = make_world(contacts=10, keys=[Key(KEY, "default", frozenset({"write"}))])
    code, _, summary = _run(world, "--verify-ambiguous", applied=True)
    assert code == ExitCode.OK
    # the reads already in flight when the first 403 came back; then no more
    assert 1 <= summary["calls"]["get_contact"] <= 8
    assert summary["calls"]["add_tags"] == 20
    assert capsys.readouterr().err.count("cannot read contacts") == 1
