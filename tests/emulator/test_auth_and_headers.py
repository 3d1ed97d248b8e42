"""Keys, permissions, and the headers every answer carries."""

from __future__ import annotations

import uuid

import httpx2
import pytest

from bulktag.emulator import Emulator, Faults
from tests.constants import CONTROL, KEY, READ_ONLY_KEY, SEED_CONTACT, T0, WRITE_ONLY_KEY

pytestmark = pytest.mark.anyio

TAGS = f"/v1/contacts/{SEED_CONTACT}/tags"
NEXT_MIDNIGHT = int(T0) + 12 * 3600


def invalid_key(response: httpx2.Response) -> bool:
    return response.status_code == 401 and response.json() == {
        "error": {"code": "invalid_key", "message": "Invalid or missing API key"}
    }


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wbk_unknown", f"Basic {KEY}", f"Token {KEY}", f"Bearer {KEY}x"],
)
async def test_missing_or_unknown_key_is_401(
    api: httpx2.AsyncClient, authorization: str | None
) -> None:
    """No header, a malformed one, or a key LeadLex does not know: 401 invalid_key."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    api.headers.pop("Authorization")
    response = await api.post(TAGS, json={"tags": ["x"]}, headers=headers)
    assert invalid_key(response)


async def test_revoked_key_is_401(api: httpx2.AsyncClient) -> None:
    """Revoking a key through the control API turns its next call into 401."""
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 200
    await api.post(f"{CONTROL}/keys", json={"key": KEY, "revoked": True})
    assert invalid_key(await api.post(TAGS, json={"tags": ["x"]}))


async def test_expired_key_is_401(api: httpx2.AsyncClient) -> None:
    """A key past its expiry date is refused like an unknown one."""
    await api.post(f"{CONTROL}/keys", json={"key": KEY, "expires_at": "2026-11-26T13:00:00+00:00"})
    assert (await api.get(f"/v1/contacts/{SEED_CONTACT}")).status_code == 200
    await api.post(f"{CONTROL}/clock", json={"advance_seconds": 3600})
    assert invalid_key(await api.get(f"/v1/contacts/{SEED_CONTACT}"))


async def test_write_only_key_cannot_read(api: httpx2.AsyncClient) -> None:
    """GET needs the Read permission."""
    response = await api.get(
        f"/v1/contacts/{SEED_CONTACT}", headers={"Authorization": f"Bearer {WRITE_ONLY_KEY}"}
    )
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "insufficient_permissions",
        "message": "Missing contacts:read permission",
    }


async def test_permission_removed_mid_run_is_403(api: httpx2.AsyncClient) -> None:
    """Taking Write away from a key makes its next add-tags call 403."""
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 200
    await api.post(f"{CONTROL}/keys", json={"key": KEY, "permissions": ["read"]})
    assert (await api.post(TAGS, json={"tags": ["x"]})).status_code == 403


async def _every_kind_of_answer(
    api: httpx2.AsyncClient, emulator: Emulator
) -> list[httpx2.Response]:
    answers = [
        await api.post(TAGS, json={"tags": ["x"]}),  # 200
        await api.post(TAGS, json={"tags": []}),  # 400
        await api.post(f"/v1/contacts/{uuid.uuid4()}/tags", json={"tags": ["x"]}),  # 404
        await api.post(
            TAGS, json={"tags": ["x"]}, headers={"Authorization": f"Bearer {READ_ONLY_KEY}"}
        ),
        await api.post(TAGS, json={"tags": ["x"]}, headers={"Authorization": "Bearer nope"}),  # 401
        await api.get(f"/v1/contacts/{SEED_CONTACT}"),
        await api.get("/v1/contacts"),
        await api.get("/v1/contacts/export"),
    ]
    for status in (500, 502, 503):
        emulator.injector.faults = Faults(fault_rate=1.0)
        while (response := await api.post(TAGS, json={"tags": ["x"]})).status_code != status:
            pass
        answers.append(response)
    emulator.injector.faults = Faults()
    await api.post(f"{CONTROL}/limits", json={"per_minute": 1})
    await api.post(f"{CONTROL}/clock", json={"advance_seconds": 61})
    await api.post(TAGS, json={"tags": ["x"]})
    answers.append(await api.post(TAGS, json={"tags": ["x"]}))  # 429
    return answers


async def test_every_answer_carries_request_id_and_rate_limit_headers(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """200, 400, 401, 403, 404, 429, 500, 502, 503 and CSV answers all carry the four headers."""
    answers = await _every_kind_of_answer(api, emulator)
    assert sorted({r.status_code for r in answers}) == [200, 400, 401, 403, 404, 429, 500, 502, 503]
    for response in answers:
        uuid.UUID(response.headers["x-request-id"])
        assert int(response.headers["x-ratelimit-limit"]) == 1000
        assert 0 <= int(response.headers["x-ratelimit-remaining"]) <= 1000
        assert int(response.headers["x-ratelimit-reset"]) == NEXT_MIDNIGHT


async def test_request_ids_are_unique(api: httpx2.AsyncClient) -> None:
    """Each answer has its own X-Request-ID (support tickets quote it)."""
    ids = {
        (await api.get(f"/v1/contacts/{SEED_CONTACT}")).headers["x-request-id"] for _ in range(20)
    }
    assert len(ids) == 20


async def test_rate_limit_headers_describe_the_daily_quota(api: httpx2.AsyncClient) -> None:
    """Limit is the plan's calls per day, Remaining counts down, Reset is the next UTC midnight."""
    first = await api.post(TAGS, json={"tags": ["x"]})
    second = await api.post(TAGS, json={"tags": ["y"]})
    assert first.headers["x-ratelimit-limit"] == "1000"
    assert first.headers["x-ratelimit-remaining"] == "999"
    assert second.headers["x-ratelimit-remaining"] == "998"
    assert second.headers["x-ratelimit-reset"] == str(NEXT_MIDNIGHT)


async def test_errors_use_the_envelope_everywhere(api: httpx2.AsyncClient) -> None:
    """Unknown routes and methods answer LeadLex's 404 envelope, with its headers."""
    missing = await api.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await api.delete(TAGS)
    assert wrong.status_code == 404
    assert wrong.json()["error"]["code"] == "not_found"
    for response in (missing, wrong):
        uuid.UUID(response.headers["x-request-id"])
        assert response.headers["x-ratelimit-limit"] == "1000"
