"""Plans, the daily quota across a UTC midnight, the sliding minute window, idempotency replay."""

from __future__ import annotations

import uuid

import httpx2
import pytest

from bulktag.emulator import PLANS, Emulator, EmulatorTransport, Faults
from tests.constants import API_URL, CONTROL, KEY, SEED_CONTACT, T0
from tests.world import EmulatorFactory

pytestmark = pytest.mark.anyio

TAGS = f"/v1/contacts/{SEED_CONTACT}/tags"
MIDNIGHT = int(T0) + 12 * 3600


async def advance(api: httpx2.AsyncClient, seconds: float) -> None:
    await api.post(f"{CONTROL}/clock", json={"advance_seconds": seconds})


async def limits(api: httpx2.AsyncClient, **values: int | None) -> None:
    response = await api.post(f"{CONTROL}/limits", json=values)
    assert response.status_code == 200


def test_plans_have_the_documented_figures() -> None:
    """Starter 100/day 10/min, Pro 1,000/50, Org 10,000/200, and unmetered for benchmarks."""
    assert {name: (p.per_day, p.per_minute) for name, p in PLANS.items()} == {
        "starter": (100, 10),
        "pro": (1_000, 50),
        "org": (10_000, 200),
        "unmetered": (None, None),
    }


async def test_daily_quota_spent_is_429_with_remaining_zero(make_emulator: EmulatorFactory) -> None:
    """After 100 calls on Starter: 429, Remaining 0, Reset at midnight, no Retry-After."""
    emulator = make_emulator(plan="starter")
    async with _client(emulator) as api:
        for i in range(100):
            await advance(api, 7)  # stay under 10 a minute
            assert (await api.post(TAGS, json={"tags": [f"t{i}"]})).status_code == 200
        await advance(api, 7)
        refused = await api.post(TAGS, json={"tags": ["one-too-many"]})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-reset"] == str(MIDNIGHT)
    assert "retry-after" not in refused.headers
    assert "one-too-many" not in emulator.contacts[SEED_CONTACT].tags


async def test_quota_resets_at_utc_midnight(api: httpx2.AsyncClient) -> None:
    """The count restarts at 00:00 UTC, and Reset moves to the following midnight."""
    await limits(api, per_day=2)
    assert (await api.post(TAGS, json={"tags": ["a"]})).status_code == 200
    assert (await api.post(TAGS, json={"tags": ["b"]})).status_code == 200
    await advance(api, 12 * 3600 - 1)  # 23:59:59
    still = await api.post(TAGS, json={"tags": ["c"]})
    assert still.status_code == 429
    await advance(api, 1)  # 00:00:00 the next day
    fresh = await api.post(TAGS, json={"tags": ["c"]})
    assert fresh.status_code == 200
    assert fresh.headers["x-ratelimit-remaining"] == "1"
    assert fresh.headers["x-ratelimit-reset"] == str(MIDNIGHT + 86_400)


async def test_minute_window_is_sliding_not_fixed(api: httpx2.AsyncClient) -> None:
    """3 calls at :50 :55 :58 still count at 1:02, where a fixed window would have reset."""
    await limits(api, per_minute=3)
    await advance(api, 50)
    for gap in (0, 5, 3):
        await advance(api, gap)
        assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 200
    await advance(api, 4)  # 62 s after the start: a new fixed minute, same sliding window
    refused = await api.post(TAGS, json={"tags": ["x"]})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "48"  # the call at :50 leaves the window at 1:50
    assert refused.json()["error"]["code"] == "rate_limited"
    await advance(api, 47)
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 429
    await advance(api, 1)
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 200


async def test_per_minute_429_keeps_quota_headers(api: httpx2.AsyncClient) -> None:
    """A per-minute 429 has Retry-After and a non-zero Remaining: it is not the daily quota."""
    await limits(api, per_minute=1)
    await api.post(TAGS, json={"tags": ["x"]})
    refused = await api.post(TAGS, json={"tags": ["x"]})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["x-ratelimit-remaining"] == "999"


async def test_429_and_5xx_do_not_spend_quota_but_4xx_do(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """Only calls that reach the handler count: 2xx and 4xx other than 429."""
    await limits(api, per_minute=2)
    await api.post(TAGS, json={"tags": ["x"]})  # 200, counts
    await api.post(f"/v1/contacts/{uuid.uuid4()}/tags", json={"tags": ["x"]})  # 404, counts
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 429  # does not count
    await limits(api, per_minute=None)
    await api.post(TAGS, json={"tags": []})  # 400 counts
    emulator.injector.faults = Faults(fault_rate=1.0)
    for _ in range(6):
        assert (await api.post(TAGS, json={"tags": ["x"]})).status_code >= 500  # do not count
    emulator.injector.faults = Faults()
    response = await api.get(f"/v1/contacts/{SEED_CONTACT}")  # counts
    assert response.headers["x-ratelimit-remaining"] == str(1000 - 4)
    stats = (await api.get(f"{CONTROL}/stats")).json()
    assert stats["quota"]["default"]["used"] == 4


async def test_unmetered_plan_never_refuses(make_emulator: EmulatorFactory) -> None:
    """The benchmark plan answers every call, with a large daily limit in the headers."""
    async with _client(make_emulator(plan="unmetered")) as api:
        answers = [await api.post(TAGS, json={"tags": [f"t{i}"]}) for i in range(300)]
    assert {a.status_code for a in answers} == {200}
    assert int(answers[-1].headers["x-ratelimit-remaining"]) > 10**8


async def test_idempotency_key_replays_the_first_answer(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """Same key and body: the stored answer again, marked Idempotency-Replayed, no new merge."""
    headers = {"Idempotency-Key": "job-1:contact-1:0"}
    first = await api.post(TAGS, json={"tags": ["vip"]}, headers=headers)
    await api.post(TAGS, json={"tags": ["later"]})
    replay = await api.post(TAGS, json={"tags": ["vip"]}, headers=headers)
    assert replay.status_code == 200
    assert replay.headers["idempotency-replayed"] == "true"
    assert "idempotency-replayed" not in first.headers
    assert replay.json() == first.json()  # the first answer, without "later"
    assert emulator.replays == 1
    assert emulator.tag_calls[SEED_CONTACT] == 2


async def test_idempotency_key_with_another_body_is_refused(api: httpx2.AsyncClient) -> None:
    """Reusing a key for a different request is a validation_error, not a silent replay."""
    headers = {"Idempotency-Key": "k"}
    await api.post(TAGS, json={"tags": ["vip"]}, headers=headers)
    response = await api.post(TAGS, json={"tags": ["other"]}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


async def test_idempotency_replay_expires_after_24_hours(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """After 24 h the same key runs the call again."""
    headers = {"Idempotency-Key": "k"}
    await api.post(TAGS, json={"tags": ["vip"]}, headers=headers)
    await advance(api, 24 * 3600 - 1)
    assert (await api.post(TAGS, json={"tags": ["vip"]}, headers=headers)).headers.get(
        "idempotency-replayed"
    )
    await advance(api, 1)
    again = await api.post(TAGS, json={"tags": ["vip"]}, headers=headers)
    assert "idempotency-replayed" not in again.headers
    assert emulator.tag_calls[SEED_CONTACT] == 2


async def test_idempotency_keys_are_per_workspace(make_emulator: EmulatorFactory) -> None:
    """The same key in two workspaces are two different requests."""
    from bulktag.emulator import Key

    emulator = make_emulator(
        keys=[Key(KEY, "default", frozenset({"write"})), Key("wbk_b", "b", frozenset({"write"}))]
    )
    async with _client(emulator) as api:
        headers = {"Idempotency-Key": "same"}
        await api.post(TAGS, json={"tags": ["x"]}, headers=headers)
        other = await api.post(
            TAGS, json={"tags": ["x"]}, headers=headers | {"Authorization": "Bearer wbk_b"}
        )
    assert other.status_code == 404
    assert "idempotency-replayed" not in other.headers


def _client(emulator: Emulator) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=EmulatorTransport(emulator),
        base_url=API_URL,
        headers={"Authorization": f"Bearer {KEY}"},
    )
