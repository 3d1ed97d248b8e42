"""Outages ridden out or deferred, a stopped contact's history, a gateway's unknown limit.

The in-process tests run the real command on the virtual clock (``tests/world.py``),
through a transport that makes LeadLex unreachable for a stretch of virtual time; the
others run real processes on loopback.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx2

from bulktag.cli.commands import main
from bulktag.emulator import Faults
from bulktag.errors import ExitCode
from tests.helpers import running_emulator, start_bulktag
from tests.network.support import contacts_csv, environment
from tests.world import URL, World, read_results

SIGTERMED = ("--plan", "unmetered", "--grace", "2")
RIDING_OUT = ("--plan", "unmetered", "--concurrency", "2", "--max-wait", "120")


class Outage(httpx2.AsyncBaseTransport):
    """The emulator, except that from the ``after``-th add-tags call, for ``seconds`` of
    virtual time, every call is refused (as from a proxy whose upstream is down)."""

    def __init__(self, world: World, after: int, seconds: float) -> None:
        runtime = world.runtime()
        assert runtime.transport is not None
        self.inner = runtime.transport
        self.clock = world.clock
        self.after, self.seconds = after, seconds
        self.calls = 0
        self.started: float | None = None
        self.refused = 0
        self.in_flight = 0
        self.most_in_flight_during = 0

    def down(self) -> bool:
        now = self.clock.current_time()
        if self.started is None and self.calls >= self.after:
            self.started = now
        return self.started is not None and now < self.started + self.seconds

    def fail(self, request: httpx2.Request) -> httpx2.Response:
        """What a call meets while LeadLex is down: here, a refused connection."""
        error = ConnectionRefusedError(111, "Connection refused")
        raise httpx2.ConnectError("[Errno 111] Connection refused", request=request) from error

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST":
            self.calls += 1
            if self.down():
                self.refused += 1
                self.in_flight += 1
                self.most_in_flight_during = max(self.most_in_flight_during, self.in_flight)
                try:
                    return self.fail(request)
                finally:
                    self.in_flight -= 1
        return await self.inner.handle_async_request(request)


class ProxyOutage(Outage):
    """The same outage seen through a proxy whose upstream is down: it answers each call
    itself, 502 (an HTML page) and 503 (plain text) in turn."""

    def fail(self, request: httpx2.Request) -> httpx2.Response:
        if self.refused % 2:
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            status, kind = 502, "text/html"
        else:
            page, status, kind = b"upstream connect error", 503, "text/plain"
        return httpx2.Response(
            status, content=page, headers={"content-type": kind}, request=request
        )


def _run(world: World, transport: httpx2.AsyncBaseTransport, *args: str) -> tuple[int, Path]:
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    out = world.folder / "run"
    argv = ["run", str(source), "--out", str(out), "--api-url", URL, *args]
    return main(argv, runtime=replace(world.runtime(), transport=transport)), out


def test_a_one_minute_outage_mid_run_is_ridden_out(make_world: Callable[..., World]) -> None:
    """LeadLex unreachable for 60 s after 20 calls: every contact ends ok, exit 0, and during
    the outage calls went one at a time, each contact keeping its own backoff."""
    world = make_world(contacts=60, plan="unmetered")
    outage = Outage(world, after=20, seconds=60)
    code, out = _run(world, outage, "--plan", "pro")
    assert code == ExitCode.OK
    assert set(read_results(out / "results.csv")["status"]) == {"ok"}
    assert outage.started is not None
    assert 1 <= outage.refused <= 16  # a few probes with backoff, not 8 workers x 10 attempts


def test_a_one_minute_proxy_outage_of_502s_and_503s_is_ridden_out(
    make_world: Callable[..., World],
) -> None:
    """A proxy answering 502/503 for 60 s after 20 calls: every contact ok, one probe at a time."""
    world = make_world(contacts=60, plan="unmetered")
    outage = ProxyOutage(world, after=20, seconds=60)
    code, out = _run(world, outage, "--plan", "pro")
    assert code == ExitCode.OK
    assert set(read_results(out / "results.csv")["status"]) == {"ok"}
    assert outage.started is not None
    assert 2 <= outage.refused <= 16  # a few probes with backoff, not 8 workers x 10 attempts
    assert world.clock.current_time() >= outage.started + 60  # it did wait the outage out


def test_an_outage_longer_than_max_wait_defers_the_rest(make_world: Callable[..., World]) -> None:
    """Unreachable for two hours from the 20th call, --max-wait 300: exit 75 within about
    300 s of the outage's start; what was not sent is deferred to the next run."""
    world = make_world(contacts=60, plan="unmetered")
    outage = Outage(world, after=20, seconds=7200)
    code, out = _run(world, outage, "--plan", "pro", "--max-wait", "300")
    assert code == ExitCode.WORK_LEFT
    summary = json.loads((out / "summary.json").read_text())
    assert summary["halt"] == "outage"
    assert outage.started is not None
    stopped = world.clock.current_time() - outage.started
    assert 300 <= stopped <= 300 + 70  # --max-wait, plus at most one backoff
    results = read_results(out / "results.csv")
    deferred = results.filter(results["status"] == "deferred")
    assert deferred.height >= 30
    assert set(deferred["error_type"]) == {"network_error"}
    assert set(results["status"]) <= {"ok", "failed", "deferred"}
    assert outage.refused <= 20


def test_a_stopped_contact_keeps_its_history(tmp_path: Path) -> None:
    """SIGTERM while contacts are being retried (every answer a 5xx): each contact that was
    tried is failed with its last error and attempt count, not not_attempted; only contacts
    never sent are not_attempted, and the failures file re-runs them all."""
    source = contacts_csv(tmp_path, 30)
    with running_emulator("--generate", "30", "--plan", "unmetered", "--fault-rate", "1") as ready:
        env = environment(ready["url"], tmp_path)
        process = start_bulktag(
            ["run", str(source), "--out", str(tmp_path / "run"), *SIGTERMED],
            env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(4)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == ExitCode.WORK_LEFT
    results = read_results(tmp_path / "run" / "results.csv")
    tried = results.filter(results["attempts"].cast(int) > 0)
    untried = results.filter(results["attempts"].cast(int) == 0)
    assert tried.height >= 2
    assert set(tried["status"]) == {"failed"}
    assert set(tried["error_type"]) == {"server_error"}
    assert all("then the run stopped: stopped by SIGTERM" in m for m in tried["message"])
    assert set(untried["status"]) == {"not_attempted"}
    failures = read_results(tmp_path / "run" / "failures.csv")
    assert failures.height == 30


def _handled(url: str) -> int:
    control = url.removesuffix("/functions/v1/api-gateway") + "/_emulator/stats"
    return int(httpx2.get(control).json()["tag_calls_handled"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_upstream_that_dies_and_comes_back(tmp_path: Path) -> None:
    """Over loopback: the emulator killed mid-run and started again 8 s later on the same
    port (connections refused meanwhile): the run rides it out, every contact ok."""
    port = _free_port()
    args = ["--port", str(port), "--generate", "80", "--plan", "unmetered", "--latency-ms", "40:60"]
    command = ["emulator", *args]
    first = start_bulktag(command, stdout=subprocess.PIPE)
    assert first.stdout is not None
    url = json.loads(first.stdout.readline())["url"]
    source = contacts_csv(tmp_path, 80)
    run = start_bulktag(
        ["run", str(source), "--out", str(tmp_path / "run"), *RIDING_OUT],
        environment(url, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    second = None
    try:
        deadline = time.monotonic() + 30
        while _handled(url) < 10 and time.monotonic() < deadline:  # mid-run: sending
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(8)
        second = start_bulktag(command, stdout=subprocess.PIPE)
        assert second.stdout is not None
        second.stdout.readline()
        _, err = run.communicate(timeout=120)
    finally:
        for process in (first, second, run):
            if process is not None:
                if process.poll() is None:
                    process.kill()
                process.communicate()  # waits, and closes its pipes
    assert run.returncode == ExitCode.OK, err
    assert set(read_results(tmp_path / "run" / "results.csv")["status"]) == {"ok"}


def test_behind_a_gateway_of_unknown_rate(make_world: Callable[..., World]) -> None:
    """A gateway allowing 120 a minute (nginx's limit_req) under the Org plan's 200, its
    429s without Retry-After, 1-10 ms of jitter: the rate converges to at least 90 % of
    120 a minute, with at most 3 % of calls answered 429."""
    world = make_world(
        contacts=2500,
        plan="unmetered",
        faults=Faults(gateway_per_minute=120, latency_ms=(1.0, 10.0)),
    )
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, _ = world.run(str(source), "--plan", "org", "--max-wait", "3600")
    assert code == ExitCode.OK
    log = list(world.emulator.log)
    limited = sum(entry["status"] == "429" for entry in log)
    assert limited / len(log) <= 0.03
    accepted = [entry["t"] for entry in log if entry["status"] == "200"]
    settled = [t for t in accepted if t >= accepted[0] + 600]  # after ten minutes
    per_minute = len(settled) / ((settled[-1] - settled[0]) / 60)
    assert per_minute >= 0.9 * 120
    assert per_minute <= 120.5
