"""The control API under /_emulator/: introspection, clock, statistics."""

from __future__ import annotations

import httpx2
import pytest

from bulktag.emulator import Emulator
from tests.constants import CONTROL, SEED_CONTACT, T0

pytestmark = pytest.mark.anyio


async def test_contact_introspection_shows_tags_and_calls(api: httpx2.AsyncClient) -> None:
    """/_emulator/contacts/{id} shows the stored tags and how many add-tags calls it handled."""
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["vip"]})
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["vip"]})
    data = (await api.get(f"{CONTROL}/contacts/{SEED_CONTACT}")).json()["data"]
    assert data["tags"] == ["existing-tag", "vip"]
    assert data["tag_calls"] == 2
    assert data["workspace"] == "default"


async def test_introspection_spends_no_quota(api: httpx2.AsyncClient) -> None:
    """Control calls are not API calls: they neither count nor need a key."""
    api.headers.pop("Authorization")
    for _ in range(5):
        await api.get(f"{CONTROL}/contacts/{SEED_CONTACT}")
    stats = (await api.get(f"{CONTROL}/stats")).json()
    assert stats["quota"]["default"]["used"] == 0
    assert stats["requests"] == {}


async def test_stats_count_by_route_and_status(api: httpx2.AsyncClient) -> None:
    """Requests by route and status, handled tag calls, quota used today; DELETE resets them."""
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["a"]})
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": []})
    await api.get(f"/v1/contacts/{SEED_CONTACT}")
    stats = (await api.get(f"{CONTROL}/stats")).json()
    assert stats["requests"] == {
        "GET /v1/contacts/{id}": {"200": 1},
        "POST /v1/contacts/{id}/tags": {"200": 1, "400": 1},
    }
    assert stats["tag_calls_handled"] == 2
    assert stats["quota"]["default"] == {
        "day": "2026-11-26",
        "used": 3,
        "limit": 1000,
        "remaining": 997,
    }
    cleared = (await api.delete(f"{CONTROL}/stats")).json()
    assert cleared["requests"] == {}
    assert cleared["quota"]["default"]["used"] == 3  # the quota is the service's, not a statistic


async def test_log_lists_calls_with_their_time(api: httpx2.AsyncClient) -> None:
    """/_emulator/log gives each API call's emulated time, route and status."""
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["a"]})
    await api.post(f"{CONTROL}/clock", json={"advance_seconds": 5})
    await api.get(f"/v1/contacts/{SEED_CONTACT}")
    log = (await api.get(f"{CONTROL}/log", params={"route": "/v1/contacts/{id}/tags"})).json()[
        "data"
    ]
    assert [(e["t"], e["status"], e["handled"]) for e in log] == [(T0, "200", True)]


async def test_clock_moves_forward_and_freezes(api: httpx2.AsyncClient) -> None:
    """advance_seconds moves the frozen clock exactly; it cannot go back."""
    now = (await api.get(f"{CONTROL}/clock")).json()
    assert now == {"now": T0, "iso": "2026-11-26T12:00:00+00:00", "frozen": True}
    moved = (await api.post(f"{CONTROL}/clock", json={"advance_seconds": 90})).json()
    assert moved["now"] == T0 + 90
    assert (await api.post(f"{CONTROL}/clock", json={"advance_seconds": -1})).status_code == 400


async def test_running_clock_moves_with_time(emulator: Emulator) -> None:
    """Unfrozen, the clock follows its time source from the start time."""
    ticks = iter([100.0, 100.0, 130.5])
    from bulktag.emulator import EmulatorClock

    clock = EmulatorClock(start=T0, source=lambda: next(ticks))
    assert clock.now() == T0
    assert clock.now() == T0
    assert clock.now() == T0 + 30.5


async def test_keys_can_be_added_at_run_time(api: httpx2.AsyncClient) -> None:
    """POST /_emulator/keys creates a key with exactly its permissions: a read-only key
    reads, and its write is refused 403 insufficient_permissions, the contact unchanged."""
    await api.post(f"{CONTROL}/keys", json={"key": "wbk_new", "permissions": ["read"]})
    as_new = {"Authorization": "Bearer wbk_new"}
    response = await api.get(f"/v1/contacts/{SEED_CONTACT}", headers=as_new)
    assert response.status_code == 200
    refused = await api.post(
        f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["vip"]}, headers=as_new
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_permissions"
    data = (await api.get(f"{CONTROL}/contacts/{SEED_CONTACT}")).json()["data"]
    assert data["tags"] == ["existing-tag"]
    assert data["tag_calls"] == 0


async def test_bad_control_requests_are_400(api: httpx2.AsyncClient) -> None:
    """Malformed control calls say what is wrong instead of failing silently."""
    assert (await api.post(f"{CONTROL}/keys", json={"permissions": ["read"]})).status_code == 400
    assert (
        await api.post(f"{CONTROL}/keys", json={"key": "k", "permissions": ["root"]})
    ).status_code == 400
    assert (await api.post(f"{CONTROL}/limits", json={"per_week": 3})).status_code == 400
    assert (await api.post(f"{CONTROL}/clock", content=b"[1]")).status_code == 400
