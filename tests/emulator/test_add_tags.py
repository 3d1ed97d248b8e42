"""POST /v1/contacts/{id}/tags: LeadLex's documented behaviour and the emulator's stated choices."""

from __future__ import annotations

import json
import uuid

import httpx2
import pytest

from bulktag.emulator import Emulator, EmulatorTransport, Key
from tests.constants import API_URL, READ_ONLY_KEY, SEED_CONTACT
from tests.world import EmulatorFactory

pytestmark = pytest.mark.anyio

TAGS = f"/v1/contacts/{SEED_CONTACT}/tags"


async def test_seed_example_merges_existing_tags_first(api: httpx2.AsyncClient) -> None:
    """The documentation's example: ["vip", "legal"] on a contact with one tag gives all three."""
    response = await api.post(TAGS, json={"tags": ["vip", "legal"]})
    assert response.status_code == 200
    assert response.json() == {
        "data": {"contact_id": SEED_CONTACT, "tags": ["existing-tag", "vip", "legal"]}
    }


async def test_merge_drops_duplicates_and_keeps_request_order(api: httpx2.AsyncClient) -> None:
    """Tags already present, or repeated in the request, are not added twice."""
    await api.post(TAGS, json={"tags": ["b"]})
    response = await api.post(TAGS, json={"tags": ["c", "existing-tag", "a", "c", "b"]})
    assert response.json()["data"]["tags"] == ["existing-tag", "b", "c", "a"]


async def test_repeating_a_call_leaves_the_same_state(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """The operation is idempotent: the second identical call changes nothing."""
    first = await api.post(TAGS, json={"tags": ["vip"]})
    second = await api.post(TAGS, json={"tags": ["vip"]})
    assert first.json() == second.json()
    assert emulator.contacts[SEED_CONTACT].tags == ["existing-tag", "vip"]


async def test_tag_case_is_kept_and_compared_exactly(api: httpx2.AsyncClient) -> None:
    """ "VIP" and "vip" are two tags: stored as sent, duplicates found by exact string."""
    response = await api.post(TAGS, json={"tags": ["VIP", "vip"]})
    assert response.json()["data"]["tags"] == ["existing-tag", "VIP", "vip"]


async def test_unknown_contact_is_404(api: httpx2.AsyncClient) -> None:
    """A UUID that is no contact gets 404 not_found in the envelope."""
    response = await api.post(f"/v1/contacts/{uuid.uuid4()}/tags", json={"tags": ["x"]})
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Contact not found"}}


@pytest.mark.parametrize("contact_id", ["not-a-uuid", "12345", "123e4567e89b12d3a456426614174000"])
async def test_id_that_is_not_a_uuid_is_404(api: httpx2.AsyncClient, contact_id: str) -> None:
    """The emulator answers a non-UUID id with 404 not_found (Part B)."""
    response = await api.post(f"/v1/contacts/{contact_id}/tags", json={"tags": ["x"]})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_contact_of_another_workspace_is_404_not_403(make_emulator: EmulatorFactory) -> None:
    """A key of workspace B asking for a contact of workspace A gets 404, never 403."""
    emulator = make_emulator(keys=[Key("wbk_other", "other", frozenset({"read", "write"}))])
    async with httpx2.AsyncClient(
        transport=EmulatorTransport(emulator),
        base_url=API_URL,
        headers={"Authorization": "Bearer wbk_other"},
    ) as other:
        response = await other.post(TAGS, json={"tags": ["x"]})
        assert response.status_code == 404
        assert (await other.get(f"/v1/contacts/{SEED_CONTACT}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "is required"),
        ({"tags": []}, "must be a non-empty array of strings"),
        ({"tags": "vip"}, "must be a non-empty array of strings"),
        ({"tags": ["ok", 3]}, "every tag must be a non-empty string"),
        ({"tags": ["ok", None]}, "every tag must be a non-empty string"),
        ({"tags": [""]}, "every tag must be a non-empty string"),
        ({"tags": ["x" * 101]}, "every tag must be at most 100 characters"),
        ({"tags": ["bad\ttab"]}, "tags cannot contain control characters"),
        ({"tags": ["bad\x00nul"]}, "tags cannot contain control characters"),
        ({"tags": [f"t{i}" for i in range(101)]}, "at most 100 tags per request"),
        (["vip"], "is required"),
    ],
)
async def test_invalid_tags_are_400_with_field_details(
    api: httpx2.AsyncClient, emulator: Emulator, body: object, problem: str
) -> None:
    """Each tag rule of Part B: 400 validation_error, details.fields.tags, no change stored."""
    response = await api.post(TAGS, json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "Missing or invalid tags array",
            "details": {"fields": {"tags": problem}},
        }
    }
    assert emulator.contacts[SEED_CONTACT].tags == ["existing-tag"]


async def test_limits_of_the_tag_rules_are_accepted(api: httpx2.AsyncClient) -> None:
    """100 tags of 100 characters each is still valid."""
    tags = [f"{i:03d}" + "x" * 97 for i in range(100)]
    response = await api.post(TAGS, json={"tags": tags})
    assert response.status_code == 200
    assert len(response.json()["data"]["tags"]) == 101


async def test_bad_json_is_400(api: httpx2.AsyncClient) -> None:
    """A body that is not JSON is a validation_error."""
    response = await api.post(TAGS, content=b"{tags:", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


async def test_wrong_content_type_is_400(api: httpx2.AsyncClient) -> None:
    """JSON sent as text/plain is refused with a validation_error."""
    body = json.dumps({"tags": ["vip"]})
    response = await api.post(TAGS, content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


async def test_content_type_with_charset_is_accepted(api: httpx2.AsyncClient) -> None:
    """application/json; charset=utf-8 is JSON."""
    body = json.dumps({"tags": ["vip"]})
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert (await api.post(TAGS, content=body, headers=headers)).status_code == 200


async def test_missing_write_permission_is_403(api: httpx2.AsyncClient, emulator: Emulator) -> None:
    """A read-only key may not add tags: 403 insufficient_permissions, nothing stored."""
    response = await api.post(
        TAGS, json={"tags": ["vip"]}, headers={"Authorization": f"Bearer {READ_ONLY_KEY}"}
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "insufficient_permissions",
            "message": "Missing contacts:write permission",
        }
    }
    assert emulator.contacts[SEED_CONTACT].tags == ["existing-tag"]
