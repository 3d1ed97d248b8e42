"""An interrupted run, resumed: the same files as if it had never stopped, nothing sent twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import httpx2
import pytest

from bulktag.cli import main
from bulktag.errors import ExitCode
from tests.world import URL, World, read_results


class Crash(BaseException):
    """The process dies here (what kill -9 does, without a process)."""


def crash_after(world: World, calls: int) -> None:
    sent = {"n": 0}

    def hook(request: httpx2.Request) -> None:
        sent["n"] += 1
        if sent["n"] > calls:
            raise Crash

    world.hook = hook


def test_resume_finishes_as_if_never_stopped(make_world: Callable[..., World]) -> None:
    """Crash after 40 of 100 calls; --resume sends only what is not recorded; same results."""
    world = make_world(contacts=100)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    crash_after(world, 40)
    with pytest.raises(BaseExceptionGroup):
        world.run(str(source), out="run")
    recorded_calls = world.handled_tag_calls()
    assert recorded_calls == 40
    world.hook = None
    code = main(["run", "--resume", str(world.folder / "run")], runtime=world.runtime())
    assert code == ExitCode.OK
    results = read_results(world.folder / "run" / "results.csv")
    assert results["contact_id"].to_list() == world.contact_ids
    assert set(results["status"]) == {"ok"}
    assert world.handled_tag_calls() == 100  # not one call repeated
    summary = json.loads((world.folder / "run" / "summary.json").read_text())
    assert summary["resumed"] is True
    assert summary["calls"]["add_tags"] == 100


def test_a_call_whose_answer_was_lost_is_replayed_on_resume(
    make_world: Callable[..., World],
) -> None:
    """The crash hits after LeadLex applied call 5: the resume resends it with the same key."""
    world = make_world(contacts=10)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    keys: list[str] = []
    transport = world.runtime().transport
    assert transport is not None
    inner: httpx2.AsyncBaseTransport = transport

    class LoseFifthAnswer(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            keys.append(request.headers["idempotency-key"])
            response = await inner.handle_async_request(request)
            if len(keys) == 5:
                raise Crash  # applied by LeadLex, never recorded by bulktag
            return response

    with pytest.raises(BaseExceptionGroup):
        main(
            [
                "run",
                str(source),
                "--out",
                str(world.folder / "run"),
                "--api-url",
                URL,
                "--concurrency",
                "1",
            ],
            runtime=replace(world.runtime(), transport=LoseFifthAnswer()),
        )
    code = main(
        ["run", "--resume", str(world.folder / "run")],
        runtime=replace(world.runtime(), transport=LoseFifthAnswer()),
    )
    assert code == ExitCode.OK
    assert keys.count(keys[4]) == 2  # the lost call went again, with the same Idempotency-Key
    assert world.emulator.replays == 1  # and LeadLex answered it from its replay store
    assert max(world.emulator.tag_calls.values()) == 1  # no contact merged twice


def test_resume_of_a_folder_that_is_not_a_run_is_78(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """--resume on an unrelated folder: one line, exit 78."""
    code = main(["run", "--resume", str(world.folder)], runtime=world.runtime())
    assert code == ExitCode.CONFIG
    assert "not a bulktag run folder" in capsys.readouterr().err


def test_a_second_run_into_the_same_folder_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out onto a folder that holds a run: exit 78, pointing to --resume."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    world.run(str(source), out="same")
    code, _ = world.run(str(source), out="same")
    assert code == ExitCode.CONFIG
    assert "--resume" in capsys.readouterr().err


def test_resume_with_inputs_is_a_usage_error(world: World) -> None:
    """--resume continues the run's own inputs; giving INPUT as well is refused."""
    assert main(["run", "x.csv", "--resume", str(world.folder)], runtime=world.runtime()) == 2


def test_resume_with_out_is_a_usage_error(world: World) -> None:
    """--resume continues RUN_DIR in place; an --out as well would be silently ignored."""
    argv = ["run", "--resume", str(world.folder), "--out", str(world.folder / "elsewhere")]
    assert main(argv, runtime=world.runtime()) == 2
