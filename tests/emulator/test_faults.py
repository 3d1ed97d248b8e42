"""Fault injection: each fault as a client sees it, and the same seed giving the same faults."""

from __future__ import annotations

import json

import anyio
import httpx2
import pytest
import trio.testing

from bulktag.emulator import Emulator, Faults
from bulktag.emulator.faults import FaultInjector
from tests.constants import API_URL, CONTROL, SEED_CONTACT
from tests.world import EmulatorFactory

pytestmark = pytest.mark.anyio

TAGS = f"/v1/contacts/{SEED_CONTACT}/tags"


@pytest.fixture
def emulator(make_emulator: EmulatorFactory) -> Emulator:
    """Pro's daily quota, without the minute window (these tests make many calls at one instant)."""
    return make_emulator(per_minute=100_000)


async def set_faults(api: httpx2.AsyncClient, **settings: object) -> dict[str, object]:
    response = await api.post(f"{CONTROL}/faults", json=settings)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_faults_are_off_by_default(api: httpx2.AsyncClient) -> None:
    """A fresh emulator answers 200 to a hundred calls in a row."""
    statuses = {(await api.post(TAGS, json={"tags": ["x"]})).status_code for _ in range(100)}
    assert statuses == {200}


async def test_server_errors_have_their_documented_bodies(api: httpx2.AsyncClient) -> None:
    """500 is the JSON envelope internal_error; 502 is HTML and 503 plain text from the gateway."""
    await set_faults(api, fault_rate=1.0)
    seen: dict[int, httpx2.Response] = {}
    while len(seen) < 3:
        response = await api.post(TAGS, json={"tags": ["x"]})
        seen[response.status_code] = response
    assert set(seen) == {500, 502, 503}
    assert seen[500].json() == {
        "error": {"code": "internal_error", "message": "An unexpected error occurred"}
    }
    assert seen[502].headers["content-type"].startswith("text/html")
    assert seen[503].headers["content-type"].startswith("text/plain")
    for status in (502, 503):
        with pytest.raises(json.JSONDecodeError):
            seen[status].json()


async def test_fault_rate_is_roughly_the_share_asked(api: httpx2.AsyncClient) -> None:
    """With fault_rate 0.3, about 30 % of 1,000 calls fail with a 5xx."""
    await set_faults(api, fault_rate=0.3, seed=7)
    statuses = [(await api.get(f"/v1/contacts/{SEED_CONTACT}")).status_code for _ in range(1000)]
    failed = sum(s >= 500 for s in statuses)
    assert 240 <= failed <= 360


async def test_same_seed_same_faults(make_emulator: EmulatorFactory) -> None:
    """Two emulators with the same seed and faults answer the same sequence of statuses."""
    faults = Faults(fault_rate=0.3, malformed_rate=0.1, storm_rate=0.0)

    async def statuses(seed: int) -> list[int]:
        emulator = make_emulator(faults=faults, seed=seed, per_minute=100_000)
        async with _client(emulator) as api:
            return [(await api.post(TAGS, json={"tags": ["x"]})).status_code for _ in range(200)]

    first, second, other = await statuses(11), await statuses(11), await statuses(12)
    assert first == second
    assert first != other


def test_decisions_depend_only_on_seed_and_request_number() -> None:
    """The injector draws the same values per request, whatever the faults chosen."""
    faults = Faults(fault_rate=0.5, drop_rate=0.5, malformed_rate=0.5, latency_ms=(1, 5))
    a = FaultInjector(faults, seed=3)
    b = FaultInjector(faults, seed=3)
    assert [a.decide() for _ in range(500)] == [b.decide() for _ in range(500)]


async def test_drop_before_loses_the_call(api: httpx2.AsyncClient, emulator: Emulator) -> None:
    """A dropped connection: a protocol error for the client; the tags may or may not be applied."""
    emulator.injector.faults = Faults(drop_rate=1.0)
    outcomes = []
    for i in range(40):
        before = list(emulator.contacts[SEED_CONTACT].tags)
        with pytest.raises(httpx2.RemoteProtocolError):
            await api.post(TAGS, json={"tags": [f"t{i}"]})
        outcomes.append(emulator.contacts[SEED_CONTACT].tags != before)
    stats = (await api.get(f"{CONTROL}/stats")).json()
    assert stats["requests"]["POST /v1/contacts/{id}/tags"]["dropped"] == 40
    # half before (not applied), half after (applied): both kinds occur
    assert 0 < sum(outcomes) < 40
    assert stats["tag_calls_handled"] == sum(outcomes)


async def test_drop_after_applies_the_tags(api: httpx2.AsyncClient, emulator: Emulator) -> None:
    """A drop after handling applied the tags and spent quota, yet the client got no answer."""
    emulator.injector.faults = Faults(drop_rate=1.0)
    applied = 0
    for i in range(20):
        try:
            await api.post(TAGS, json={"tags": [f"t{i}"]})
        except httpx2.RemoteProtocolError:
            applied += f"t{i}" in emulator.contacts[SEED_CONTACT].tags
    emulator.injector.faults = Faults()
    quota = (await api.get(f"/v1/contacts/{SEED_CONTACT}")).headers["x-ratelimit-remaining"]
    assert applied > 0
    assert int(quota) == 1000 - applied - 1


async def test_malformed_body_is_cut_json_after_applying(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """A malformed 200 carries half a JSON document; the merge did happen."""
    await set_faults(api, malformed_rate=1.0)
    response = await api.post(TAGS, json={"tags": ["vip"]})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert "vip" in emulator.contacts[SEED_CONTACT].tags


async def test_malformed_never_touches_errors(api: httpx2.AsyncClient) -> None:
    """Only successful answers are cut short; a 404 keeps its envelope."""
    await set_faults(api, malformed_rate=1.0)
    response = await api.get("/v1/contacts/00000000-0000-4000-8000-000000000000")
    assert response.json()["error"]["code"] == "not_found"


async def test_storm_answers_429_with_retry_after_until_it_ends(api: httpx2.AsyncClient) -> None:
    """storm_for N: every API call is 429 with Retry-After counting down, then service resumes."""
    await set_faults(api, storm_for=120)
    first = await api.post(TAGS, json={"tags": ["x"]})
    assert first.status_code == 429
    assert first.headers["retry-after"] == "120"
    await api.post(f"{CONTROL}/clock", json={"advance_seconds": 100})
    assert (await api.post(TAGS, json={"tags": ["x"]})).headers["retry-after"] == "20"
    await api.post(f"{CONTROL}/clock", json={"advance_seconds": 20})
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 200


async def test_storm_rate_starts_storms_at_random(api: httpx2.AsyncClient) -> None:
    """With storm_rate 1, the first call starts a storm of storm_seconds."""
    await set_faults(api, storm_rate=1.0, storm_seconds=45)
    response = await api.post(TAGS, json={"tags": ["x"]})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "45"


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_latency_delays_answers(api: httpx2.AsyncClient) -> None:
    """latency_ms 30:40 makes every call take 30 to 40 ms, on a virtual clock (trio's
    MockClock): five calls take between 150 and 200 ms exactly, however busy the machine."""
    await set_faults(api, latency_ms=[30, 40])
    start = anyio.current_time()
    for _ in range(5):
        await api.get(f"/v1/contacts/{SEED_CONTACT}")
    assert 5 * 0.030 <= anyio.current_time() - start <= 5 * 0.040


async def test_faults_can_be_turned_off_without_restart(api: httpx2.AsyncClient) -> None:
    """POST /_emulator/faults with zeros restores normal service; GET shows the settings."""
    await set_faults(api, fault_rate=1.0)
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code >= 500
    shown = await set_faults(api, fault_rate=0.0)
    assert shown["fault_rate"] == 0.0
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 200


@pytest.mark.parametrize(
    "settings",
    [{"fault_rate": 1.5}, {"latency_ms": [5, 1]}, {"no_such_fault": 1}, {"drop_rate": "x"}],
)
async def test_bad_fault_settings_are_refused(
    api: httpx2.AsyncClient, settings: dict[str, object]
) -> None:
    """Out-of-range or unknown settings are a 400 and change nothing."""
    response = await api.post(f"{CONTROL}/faults", json=settings)
    assert response.status_code == 400
    assert (await api.get(f"{CONTROL}/faults")).json()["fault_rate"] == 0.0


def _client(emulator: Emulator) -> httpx2.AsyncClient:
    from bulktag.emulator import EmulatorTransport
    from tests.constants import KEY

    return httpx2.AsyncClient(
        transport=EmulatorTransport(emulator),
        base_url=API_URL,
        headers={"Authorization": f"Bearer {KEY}"},
    )


async def test_a_captive_portal_answers_everything_with_an_html_200(
    api: httpx2.AsyncClient,
) -> None:
    """captive_portal: any path, below the prefix or not, gets 200 text/html; the control
    API still answers (and turns it off)."""
    await set_faults(api, captive_portal=True)
    for path in (TAGS, f"{CONTROL.removesuffix('/_emulator')}/v1/contacts", "/v1/nothing"):
        response = await api.post(path, json={"tags": ["x"]})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "sign in" in response.text.lower()
    assert (await set_faults(api, captive_portal=False))["captive_portal"] is False
    assert (await api.post(TAGS, json={"tags": ["x"]})).json()["data"]["tags"]


async def test_a_gateway_limiter_refuses_calls_sooner_than_its_rate(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """gateway_per_minute 60 (nginx's limit_req): a call sooner than 1 s after the last one
    let through is 429, HTML, without Retry-After, and never reaches LeadLex's quota."""
    await set_faults(api, gateway_per_minute=60)
    used = emulator.workspace("default").used_today
    answers: list[tuple[float, httpx2.Response]] = []
    for step in (0.0, 0.4, 1.0, 1.5, 2.0):  # since the start; a refused call does not count
        emulator.clock.advance(step - (answers[-1][0] if answers else 0.0))
        answers.append((step, await api.post(TAGS, json={"tags": ["x"]})))
    statuses = [response.status_code for _, response in answers]
    assert statuses == [200, 429, 200, 429, 200]
    refused = answers[1][1]
    assert refused.headers["content-type"].startswith("text/html")
    assert "retry-after" not in refused.headers
    assert "error" not in refused.text
    assert emulator.workspace("default").used_today == used + 3
