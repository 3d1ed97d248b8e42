"""SIGINT and SIGTERM in a real run (the README's promise): drain, the grace, a second signal.

The signals are real (``os.kill`` of this process) and bulktag's own handler takes
them; the run is on the virtual clock, the emulator answering each call after a
fixed latency, so the times asserted are exact.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import pytest

from bulktag.cli.commands import main
from bulktag.emulator import Faults
from bulktag.errors import ExitCode
from tests.world import URL, World, read_results

CONTACTS = 30


@dataclass
class Stopped:
    code: int
    results: Any
    summary: dict[str, Any]
    signalled_at: float  # virtual
    ended_at: float
    starts: list[float]  # every add-tags call's start


def _signalled(
    world: World, at_call: int, signals: Sequence[signal.Signals], *args: str
) -> Stopped:
    """Run CONTACTS contacts at concurrency 4; as call ``at_call`` goes out, send ``signals``."""
    starts: list[float] = []
    signalled: list[float] = []

    def hook(request: httpx2.Request) -> None:
        if not request.url.path.endswith("/tags"):
            return
        starts.append(world.clock.current_time())
        if len(starts) == at_call:
            signalled.append(world.clock.current_time())
            for signum in signals:
                os.kill(os.getpid(), signum)

    world.hook = hook
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids[:CONTACTS]])
    run_dir = world.folder / "run"
    argv = ["run", str(source), "--out", str(run_dir), "--api-url", URL, "--concurrency", "4"]
    code = main([*argv, *args], runtime=replace(world.runtime(), handle_signals=True))
    results = read_results(run_dir / "results.csv")
    assert results.height == CONTACTS
    summary = json.loads((run_dir / "summary.json").read_text())
    return Stopped(code, results, summary, signalled[0], world.clock.current_time(), starts)


def _statuses(stopped: Stopped) -> dict[str, int]:
    return dict(stopped.results["status"].value_counts().rows())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_drains_the_calls_in_flight_and_exits_75(
    make_world: Callable[..., World], signum: signal.Signals, capsys: pytest.CaptureFixture[str]
) -> None:
    """Calls take 1 s; a signal as call 6 goes out: no call starts after it, the calls in
    flight finish within their second and are recorded ok, the rest not_attempted, exit 75."""
    world = make_world(contacts=CONTACTS, faults=Faults(latency_ms=(1000.0, 1000.0)))
    stopped = _signalled(world, 6, [signum])
    assert stopped.code == ExitCode.WORK_LEFT
    assert stopped.summary["halt"] == "interrupted"
    assert f"{signum.name}: finishing requests in flight" in capsys.readouterr().err
    assert max(stopped.starts) == stopped.signalled_at  # the signalled call was the last
    assert stopped.ended_at - stopped.signalled_at <= 1.0 + 1e-6  # no grace waited out
    handled = world.handled_tag_calls()
    assert handled == len(stopped.starts) >= 3  # several in flight, all answered
    assert _statuses(stopped) == {"ok": handled, "not_attempted": CONTACTS - handled}


def test_the_default_grace_is_10_seconds(make_world: Callable[..., World]) -> None:
    """Calls take 60 s; after SIGINT (no --grace) the calls in flight get exactly 10 s, then
    are abandoned (timeout, may have been applied) and the files are published, exit 75."""
    world = make_world(contacts=CONTACTS, faults=Faults(latency_ms=(60_000.0, 60_000.0)))
    stopped = _signalled(world, 3, [signal.SIGINT])
    assert stopped.code == ExitCode.WORK_LEFT
    assert 10.0 <= stopped.ended_at - stopped.signalled_at < 10.5
    abandoned = stopped.results.filter(stopped.results["status"] == "failed")
    assert abandoned.height == 2  # calls 2 and 3 were in flight
    assert set(abandoned["error_type"]) == {"timeout"}
    assert all("abandoned after the grace period" in m for m in abandoned["message"])
    assert _statuses(stopped) == {"ok": 1, "failed": 2, "not_attempted": CONTACTS - 3}


def test_grace_sets_the_time_given_to_calls_in_flight(make_world: Callable[..., World]) -> None:
    """--grace 25: the same run waits 25 s for the calls in flight, not 10."""
    world = make_world(contacts=CONTACTS, faults=Faults(latency_ms=(60_000.0, 60_000.0)))
    stopped = _signalled(world, 3, [signal.SIGINT], "--grace", "25")
    assert 25.0 <= stopped.ended_at - stopped.signalled_at < 25.5


def test_a_second_signal_stops_at_once(make_world: Callable[..., World]) -> None:
    """SIGINT, then SIGTERM before the grace is over: the calls in flight are abandoned at
    once (no 10 s wait), the files are still published, exit 75."""
    world = make_world(contacts=CONTACTS, faults=Faults(latency_ms=(60_000.0, 60_000.0)))
    stopped = _signalled(world, 3, [signal.SIGINT, signal.SIGTERM])
    assert stopped.code == ExitCode.WORK_LEFT
    assert stopped.ended_at - stopped.signalled_at < 0.5
    assert _statuses(stopped) == {"ok": 1, "failed": 2, "not_attempted": CONTACTS - 3}
