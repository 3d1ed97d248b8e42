"""The fault matrix: one test per fault, each bounded in attempts and (virtual) time.

Every case runs the real command against the in-process emulator on the virtual
clock, through a transport that injects exactly one kind of fault, and checks
the final failure type, the attempts, that the run ends within a bounded time,
and that every contact is accounted for in the results.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from bulktag.cli.commands import main
from bulktag.emulator import Faults, Key
from bulktag.errors import ExitCode
from tests.constants import KEY, READ_ONLY_KEY, T0
from tests.world import URL, World, read_results

CONTACTS = 12
MAX_ATTEMPTS = 4
Inject = Callable[[httpx2.Request, "Faulty"], Awaitable[httpx2.Response]]


class Faulty(httpx2.AsyncBaseTransport):
    """Sends add-tags calls through ``inject``; everything else goes straight through."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, inject: Inject) -> None:
        self.inner = inner
        self.inject = inject
        self.calls = 0

    async def forward(self, request: httpx2.Request) -> httpx2.Response:
        return await self.inner.handle_async_request(request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST":
            return await self.forward(request)
        self.calls += 1
        return await self.inject(request, self)


@dataclass
class Outcome:
    code: int
    results: Any
    summary: dict[str, Any]
    seconds: float  # virtual
    calls: int


def run_with(world: World, inject: Inject, *args: str, contacts: int = CONTACTS) -> Outcome:
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids[:contacts]])
    runtime = world.runtime()
    assert runtime.transport is not None
    faulty = Faulty(runtime.transport, inject)
    start = world.clock.current_time()
    run_dir = world.folder / "run"
    code = main(
        [
            "run",
            str(source),
            "--out",
            str(run_dir),
            "--api-url",
            URL,
            "--plan",
            "unmetered",
            "--max-attempts",
            str(MAX_ATTEMPTS),
            *args,
        ],
        runtime=replace(runtime, transport=faulty),
    )
    results = read_results(run_dir / "results.csv")
    assert results.height == contacts  # conservation: every contact, once
    assert results["contact_id"].n_unique() == contacts
    summary = json.loads((run_dir / "summary.json").read_text())
    counts = summary["contacts"]
    assert counts["planned"] == sum(
        counts[s] for s in ("ok", "failed", "deferred", "not_attempted", "skipped")
    )
    return Outcome(code, results, summary, world.clock.current_time() - start, faulty.calls)


def always(status: int, body: bytes, kind: str) -> Inject:
    async def inject(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        return httpx2.Response(
            status, content=body, headers={"content-type": kind}, request=request
        )

    return inject


ENVELOPE_500 = b'{"error":{"code":"internal_error","message":"An unexpected error occurred"}}'
HTML_502 = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def test_leadlexs_own_500_on_every_call_fails_each_contact(world: World) -> None:
    """LeadLex answers (its 500 envelope) but fails: the contact's fault, server_error after
    exactly --max-attempts each, bounded time."""
    outcome = run_with(world, always(500, ENVELOPE_500, "application/json"))
    assert outcome.code == ExitCode.WORK_LEFT
    assert set(outcome.results["error_type"]) == {"server_error"}
    assert set(outcome.results["attempts"]) == {str(MAX_ATTEMPTS)}
    assert outcome.calls == CONTACTS * MAX_ATTEMPTS
    assert outcome.seconds < 600  # backoff is bounded by --retry-time


@pytest.mark.parametrize(
    ("inject", "failure"),
    [
        (always(502, HTML_502, "text/html"), "server_error"),
        (always(503, b"upstream connect error", "text/plain"), "server_error"),
        (always(200, b'{"data":{"contact_id":', "application/json"), "unexpected_response"),
    ],
    ids=["502-html", "503-text", "200-malformed-json"],
)
def test_an_answer_that_never_gets_better(world: World, inject: Inject, failure: str) -> None:
    """LeadLex never answers as itself (a gateway's 5xx, a cut body): calls go one at a
    time with backoff, and after --max-wait the run stops (exit 75), the rest deferred;
    the contacts tried keep their type."""
    outcome = run_with(world, inject, "--max-wait", "120")
    assert outcome.code == ExitCode.WORK_LEFT
    assert outcome.summary["halt"] == "outage"
    assert outcome.seconds <= 120 + 30 + 1  # --max-wait, plus at most one probe's backoff
    assert outcome.calls <= 12
    results = outcome.results
    failed = results.filter(results["status"] == "failed")
    assert set(failed["attempts"]) <= {str(MAX_ATTEMPTS)}  # only those out of attempts
    assert set(results["status"]) <= {"deferred", "failed"}
    tried = results.filter(results["attempts"].cast(int) > 0)
    assert set(tried["error_type"]) == {failure}  # the tried keep their last error
    untried = results.filter(results["attempts"].cast(int) == 0)
    assert set(untried["error_type"]) <= {"network_error"}


def raise_always(error: type[httpx2.TransportError], *, applied: bool) -> Inject:
    async def inject(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        if applied:
            await transport.forward(request)
        raise error("injected", request=request)

    return inject


@pytest.mark.parametrize(
    ("inject", "failure", "applied"),
    [
        (raise_always(httpx2.RemoteProtocolError, applied=False), "network_error", False),
        (raise_always(httpx2.RemoteProtocolError, applied=True), "network_error", True),
        (raise_always(httpx2.ReadTimeout, applied=True), "timeout", True),
    ],
    ids=["dropped-before", "dropped-after", "read-timeout"],
)
def test_a_transport_error_on_every_call(
    world: World, inject: Inject, failure: str, applied: bool
) -> None:
    """Connections that drop, answers that never come: typed, retryable, each contact tried
    at most --max-attempts times, one call at a time (LeadLex never answered), never
    hanging: no contact retries past --retry-time, the run past --max-wait."""
    outcome = run_with(world, inject, "--max-wait", "300")
    assert outcome.code == ExitCode.WORK_LEFT
    results = outcome.results
    assert set(results["retryable"]) == {"true"}
    assert set(results["status"]) <= {"failed", "deferred"}
    tried = results.filter(results["attempts"].cast(int) > 0)
    assert set(tried["error_type"]) == {failure}
    assert tried["attempts"].cast(int).max() <= MAX_ATTEMPTS
    assert outcome.calls == tried["attempts"].cast(int).sum()
    assert outcome.seconds <= 300 + 30 + 1
    tagged = [world.tags_of(cid) == ["x"] for cid in tried["contact_id"]]
    assert all(tagged) is applied  # after a drop-after the tags are there; the client cannot know


def test_a_connection_that_is_never_made_stops_the_run(world: World) -> None:
    """Every connection refused from the start: a fault of the run, not of each contact.
    Three calls, one at a time, then exit 75; the contacts tried keep their network_error."""
    outcome = run_with(world, raise_always(httpx2.ConnectError, applied=False))
    assert outcome.code == ExitCode.WORK_LEFT
    assert outcome.calls == 3
    results = outcome.results
    failed = results.filter(results["status"] == "failed")
    assert set(failed["error_type"]) == {"network_error"}
    assert failed["attempts"].cast(int).sum() == 3  # 1 to 3 contacts, as the probes fell
    assert set(results["status"]) == {"failed", "not_attempted"}
    assert set(results.filter(results["attempts"] == "0")["status"]) == {"not_attempted"}
    assert outcome.summary["halt"] == "unreachable"
    assert "LeadLex never answered" in outcome.summary["halt_message"]


def test_a_connect_timeout_on_every_call_stops_the_run(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """No connection made within the timeout, from the start: 3 calls, exit 75, rest untried."""
    outcome = run_with(world, raise_always(httpx2.ConnectTimeout, applied=False))
    assert outcome.code == ExitCode.WORK_LEFT
    assert outcome.calls == 3
    assert outcome.summary["halt"] == "unreachable"
    message = outcome.summary["halt_message"]
    assert "no connection to" in message
    assert "within the timeout (3 calls in a row, LeadLex never answered)" in message
    assert message in capsys.readouterr().err  # said at once, not only in the files
    results = outcome.results
    assert set(results.filter(results["status"] == "failed")["error_type"]) == {"network_error"}
    untried = results.filter(results["attempts"] == "0")
    assert set(untried["status"]) == {"not_attempted"}
    assert untried.height >= CONTACTS - 3
    assert outcome.summary["contacts"]["not_attempted"] == untried.height


def once_per_contact(inject: Inject) -> Inject:
    """``inject`` for the first call of each contact but the run's very first contact,
    then the real answer. The run's first call is answered: a run whose first calls all
    fail to connect has never reached LeadLex, and stops (exit 75; see health.py)."""
    seen: set[str] = set()

    async def wrapped(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        if request.url.path in seen or not seen:
            seen.add(request.url.path)
            return await transport.forward(request)
        seen.add(request.url.path)
        return await inject(request, transport)

    return wrapped


@pytest.mark.parametrize(
    ("inject", "applied"),
    [
        (always(500, ENVELOPE_500, "application/json"), False),
        (always(502, HTML_502, "text/html"), False),
        (always(503, b"upstream connect error", "text/plain"), False),
        (always(200, b"{", "application/json"), False),
        (raise_always(httpx2.ConnectError, applied=False), False),
        (raise_always(httpx2.RemoteProtocolError, applied=False), False),
        (raise_always(httpx2.RemoteProtocolError, applied=True), True),
        (raise_always(httpx2.ReadTimeout, applied=False), False),
    ],
    ids=[
        "500",
        "502",
        "503",
        "malformed",
        "connection-refused",
        "dropped-before",
        "dropped-after",
        "timeout",
    ],
)
def test_a_fault_that_passes_is_retried_to_ok(world: World, inject: Inject, applied: bool) -> None:
    """The same faults once per contact after LeadLex first answered: every other contact
    ends ok in exactly two attempts, its tags merged once (a retry after a drop-after is
    replayed, not merged again)."""
    outcome = run_with(world, once_per_contact(inject))
    assert outcome.code == ExitCode.OK
    assert set(outcome.results["status"]) == {"ok"}
    attempts = outcome.results["attempts"].to_list()
    assert attempts[0] == "1"
    assert set(attempts[1:]) == {"2"}
    assert outcome.calls == 2 * CONTACTS - 1
    assert all(world.tags_of(cid) == ["x"] for cid in world.contact_ids[:CONTACTS])
    assert max(world.emulator.tag_calls.values()) == 1
    assert world.emulator.replays == (CONTACTS - 1 if applied else 0)


def test_a_two_minute_429_storm(world: World) -> None:
    """Every call 429 for 120 s with Retry-After: everyone waits once, then all ok."""
    world.emulator.storm_until = world.emulator.clock.now() + 120

    async def through(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        return await transport.forward(request)

    outcome = run_with(world, through)
    assert outcome.code == ExitCode.OK
    assert 120 <= outcome.seconds < 200
    assert outcome.calls <= CONTACTS + 8  # at most one 429 per worker
    assert max(outcome.results["attempts"].cast(int).to_list()) <= 2


def _rate_limited(retry_after: str | None) -> Inject:
    headers = {"content-type": "application/json", "x-ratelimit-remaining": "500"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    body = b'{"error":{"code":"rate_limited","message":"Rate limit exceeded"}}'

    async def inject(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        return httpx2.Response(429, content=body, headers=headers, request=request)

    return inject


def first_calls(n: int, inject: Inject) -> Inject:
    """``inject`` for the first ``n`` calls of the run (one episode), then the real answers."""

    async def wrapped(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        if transport.calls <= n:
            return await inject(request, transport)
        return await transport.forward(request)

    return wrapped


def _http_date(offset: float) -> str:
    return email.utils.formatdate(T0 + offset, usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "least", "most"),
    [
        ("30", 30, 90),  # three 429s, at most three pauses
        (None, 5, 60),  # no Retry-After: a backoff
        ("HTTP-DATE+45", 44, 135),
        ("HTTP-DATE-600", 0, 30),  # a date in the past: go again soon
    ],
    ids=["seconds", "absent", "http-date", "date-in-the-past"],
)
def test_retry_after_forms(
    world: World, retry_after: str | None, least: float, most: float
) -> None:
    """A 429 episode (3 calls) with Retry-After in each form: honoured once, then all ok."""
    value = retry_after
    if retry_after is not None and retry_after.startswith("HTTP-DATE"):
        value = _http_date(float(retry_after.removeprefix("HTTP-DATE")))
    outcome = run_with(world, first_calls(3, _rate_limited(value)))
    assert outcome.code == ExitCode.OK
    assert least <= outcome.seconds <= most
    # one contact may meet all three 429s of the episode (which worker goes first after a
    # pause is the scheduler's choice, and trio's varies on purpose), never a fourth try
    # for nothing: its attempts are the episode's three and the call that succeeded
    assert max(outcome.results["attempts"].cast(int).to_list()) <= 4
    assert outcome.calls == CONTACTS + 3


def test_an_absurd_retry_after_defers_instead_of_hanging(world: World) -> None:
    """Retry-After: 10^12 seconds: the run stops sending at once (deferred), exit 75."""
    outcome = run_with(world, _rate_limited("1000000000000"))
    assert outcome.code == ExitCode.WORK_LEFT
    assert set(outcome.results["status"]) == {"deferred"}
    assert set(outcome.results["error_type"]) == {"rate_limited"}
    assert outcome.seconds < 1
    assert outcome.calls <= 8


def _headers(mangle: Callable[[httpx2.Headers], None]) -> Inject:
    async def inject(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        response = await transport.forward(request)
        await response.aread()
        headers = httpx2.Headers(response.headers)
        mangle(headers)
        return httpx2.Response(
            response.status_code, headers=headers, content=response.content, request=request
        )

    return inject


def _drop_rate_headers(headers: httpx2.Headers) -> None:
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        del headers[name]


def _garbage_rate_headers(headers: httpx2.Headers) -> None:
    headers["x-ratelimit-limit"] = "lots"
    headers["x-ratelimit-remaining"] = "-3e2"
    headers["x-ratelimit-reset"] = "tomorrow"


@pytest.mark.parametrize(
    "mangle", [_drop_rate_headers, _garbage_rate_headers], ids=["missing", "garbage"]
)
def test_rate_limit_headers_missing_or_garbage(
    world: World, mangle: Callable[[httpx2.Headers], None]
) -> None:
    """Without readable X-RateLimit-* headers the run still goes through: quota unknown."""
    outcome = run_with(world, _headers(mangle))
    assert outcome.code == ExitCode.OK
    assert outcome.summary["quota"]["remaining"] is None
    assert outcome.calls == CONTACTS


def _after(n: int, action: Callable[[World], None], world: World) -> Inject:
    async def inject(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        if transport.calls == n:
            action(world)
        return await transport.forward(request)

    return inject


@pytest.mark.parametrize(
    ("action", "failure"),
    [
        (lambda w: setattr(w.emulator.keys[KEY], "revoked", True), "invalid_key"),
        (
            lambda w: setattr(w.emulator.keys[KEY], "permissions", frozenset({"read"})),
            "insufficient_permissions",
        ),
    ],
    ids=["key-revoked-401", "permission-removed-403"],
)
def test_the_key_turns_bad_mid_run(
    world: World, action: Callable[[World], None], failure: str
) -> None:
    """After 5 calls the key is revoked or loses Write: exit 77, the rest not_attempted."""
    outcome = run_with(world, _after(5, action, world), "--concurrency", "1")
    assert outcome.code == ExitCode.KEY_REJECTED
    counts = dict(outcome.results["status"].value_counts().rows())
    assert counts == {"ok": 4, "failed": 1, "not_attempted": CONTACTS - 5}
    assert outcome.results.filter(outcome.results["status"] == "failed")[
        "error_type"
    ].to_list() == [failure]
    assert outcome.calls == 5


BAD_KEY = "wbk_unknown_canary_0000"


@pytest.mark.parametrize(
    ("key", "failure"),
    [(BAD_KEY, "invalid_key"), (READ_ONLY_KEY, "insufficient_permissions")],
    ids=["401", "403"],
)
def test_requests_in_flight_at_a_401_or_403_finish_and_are_recorded(
    world: World, key: str, failure: str
) -> None:
    """Concurrency 8, each call 1 s: call 12 is refused (401/403) after 0.5 s while 7 others
    are in flight; those finish ok and are recorded, and no call starts after the refusal."""
    world.emulator.keys[READ_ONLY_KEY] = Key(READ_ONLY_KEY, "default", frozenset({"read"}))
    started: list[float] = []
    refused_at: list[float] = []
    in_flight: list[str] = []
    pending: set[str] = set()
    now = world.clock.current_time

    async def inject(request: httpx2.Request, transport: Faulty) -> httpx2.Response:
        started.append(now())
        if transport.calls == 12:
            await anyio.sleep(0.5)
            request.headers["authorization"] = f"Bearer {key}"
            response = await transport.forward(request)
            refused_at.append(now())
            in_flight.extend(pending)
            return response
        pending.add(request.url.path)
        await anyio.sleep(1.0)
        response = await transport.forward(request)
        pending.discard(request.url.path)
        return response

    outcome = run_with(world, inject, "--concurrency", "8", contacts=30)
    assert outcome.code == ExitCode.KEY_REJECTED
    assert len(refused_at) == 1
    assert len(in_flight) == 7  # several requests really were in flight at the refusal
    assert max(started) < refused_at[0]  # nothing is sent after the refusal
    results = outcome.results
    by_id = dict(zip(results["contact_id"], results["status"], strict=True))
    in_flight_ids = [path.split("/")[-2] for path in in_flight]
    assert {by_id[cid] for cid in in_flight_ids} == {"ok"}  # they finished and are recorded
    assert all(world.tags_of(cid) == ["x"] for cid in in_flight_ids)
    counts = dict(results["status"].value_counts().rows())
    assert counts == {"ok": outcome.calls - 1, "failed": 1, "not_attempted": 30 - outcome.calls}
    failed = results.filter(results["status"] == "failed")
    assert failed["error_type"].to_list() == [failure]


def test_thirty_percent_5xx_cost_at_most_1_5_calls_a_contact(
    make_world: Callable[..., World],
) -> None:
    """Faults(fault_rate=0.3): 30 % of calls answered 500 (JSON), 502 (HTML) or 503 (text),
    a third each: every contact ends ok, 1.5 calls a contact at most."""
    world = make_world(contacts=400, faults=Faults(fault_rate=0.3), seed=21, plan="unmetered")
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "unmetered")
    assert code == ExitCode.OK
    calls = sum(world.statuses().values())
    assert calls / 400 <= 1.5
    assert set(read_results(run_dir / "results.csv")["status"]) == {"ok"}


def test_a_real_read_timeout_over_loopback(tmp_path: Path) -> None:
    """Over a real socket, a body slower than --timeout is a timeout, and a retry ends ok."""

    from tests.helpers import emulator_env, run_bulktag, running_emulator

    with running_emulator(
        "--generate",
        "4",
        "--plan",
        "unmetered",
        "--slow-rate",
        "0.5",
        "--slow-ms",
        "3000",
        "--seed",
        "2",
    ) as ready:
        with httpx2.Client(
            base_url=ready["url"], headers={"Authorization": "Bearer wbk_demo_emulator_key"}
        ) as client:
            ids = [c["id"] for c in client.get("/v1/contacts").json()["data"]["contacts"]]
        source = tmp_path / "in.csv"
        source.write_text("contact_id,tags\n" + "".join(f"{i},slow\n" for i in ids))
        env = emulator_env(ready)
        result = run_bulktag(
            [
                "run",
                str(source),
                "--out",
                str(tmp_path / "run"),
                "--plan",
                "unmetered",
                "--timeout",
                "0.5",
                "--max-attempts",
                "10",
            ],
            env,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    results = read_results(tmp_path / "run" / "results.csv")
    assert set(results["status"]) == {"ok"}
    assert max(results["attempts"].cast(int).to_list()) >= 2  # some call timed out and went again
