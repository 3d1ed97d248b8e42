"""GET /v1/contacts/{id}, GET /v1/contacts (paged) and GET /v1/contacts/export (CSV)."""

from __future__ import annotations

import csv
import io

import httpx2
import pytest

from bulktag.emulator import Emulator, generate_contacts
from bulktag.emulator.model import EXPORT_FIELDS
from tests.conftest import READ_ONLY_KEY, SEED_CONTACT, WRITE_ONLY_KEY, EmulatorFactory

pytestmark = pytest.mark.anyio


def rows(response: httpx2.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_get_contact_returns_its_tags(api: httpx2.AsyncClient) -> None:
    """The contact comes in the data envelope with its tags array."""
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["vip"]})
    response = await api.get(f"/v1/contacts/{SEED_CONTACT}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == SEED_CONTACT
    assert data["tags"] == ["existing-tag", "vip"]
    assert set(data) >= set(EXPORT_FIELDS)


async def test_get_contact_accepts_upper_case_uuid(api: httpx2.AsyncClient) -> None:
    """A UUID in upper case names the same contact."""
    response = await api.get(f"/v1/contacts/{SEED_CONTACT.upper()}")
    assert response.json()["data"]["id"] == SEED_CONTACT


async def test_list_is_paged_with_meta(api: httpx2.AsyncClient) -> None:
    """Lists add meta.page, meta.per_page and meta.total; pages partition the contacts."""
    seen: list[str] = []
    for page in (1, 2, 3):
        body = (await api.get("/v1/contacts", params={"page": page, "per_page": 8})).json()
        assert body["meta"] == {"page": page, "per_page": 8, "total": 21}
        seen += [c["id"] for c in body["data"]]
    assert len(seen) == len(set(seen)) == 21


async def test_list_rejects_bad_paging(api: httpx2.AsyncClient) -> None:
    """per_page above 100 or a page below 1 is a validation_error naming the field."""
    response = await api.get("/v1/contacts", params={"per_page": 101, "page": 0})
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]["fields"]) == {"per_page", "page"}


async def test_export_is_csv_with_the_default_columns(api: httpx2.AsyncClient) -> None:
    """text/csv; charset=utf-8, header first, the nine documented columns, tags one quoted cell."""
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["vip", "legal"]})
    response = await api.get("/v1/contacts/export")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    header = response.text.splitlines()[0]
    assert header == ",".join(f'"{f}"' for f in EXPORT_FIELDS)
    exported = rows(response)
    assert len(exported) == 21
    seed = next(r for r in exported if r["id"] == SEED_CONTACT)
    assert seed["tags"] == "existing-tag,vip,legal"
    assert '"existing-tag,vip,legal"' in response.text


async def test_export_tag_filters_combine_as_and(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """Repeated tag= parameters keep only contacts that carry all of them."""
    some = list(emulator.contacts)[:5]
    for contact_id in some:
        await api.post(f"/v1/contacts/{contact_id}/tags", json={"tags": ["a"]})
    for contact_id in some[:2]:
        await api.post(f"/v1/contacts/{contact_id}/tags", json={"tags": ["b"]})
    only_a = rows(await api.get("/v1/contacts/export", params={"tag": "a"}))
    both = rows(await api.get("/v1/contacts/export", params=[("tag", "a"), ("tag", "b")]))
    assert {r["id"] for r in only_a} == set(some)
    assert {r["id"] for r in both} == set(some[:2])


async def test_export_fields_and_limit(api: httpx2.AsyncClient) -> None:
    """fields= chooses the columns in order; limit= caps the rows."""
    response = await api.get("/v1/contacts/export", params={"fields": "tags,id", "limit": 3})
    assert response.text.splitlines()[0] == '"tags","id"'
    assert len(rows(response)) == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 50_001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"fields": "id,shoe_size"}, "fields"),
        ({"created_after": "yesterday"}, "created_after"),
    ],
)
async def test_export_rejects_bad_parameters(
    api: httpx2.AsyncClient, params: dict[str, str | int], field: str
) -> None:
    """limit beyond 1..50,000, unknown fields, unparsable dates: 400 naming the field."""
    response = await api.get("/v1/contacts/export", params=params)
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


async def test_export_accepts_the_maximum_limit(make_emulator: EmulatorFactory) -> None:
    """limit=50000 returns 50,000 rows when there are more contacts."""
    from bulktag.emulator import EmulatorTransport
    from tests.conftest import KEY

    emulator = make_emulator(contacts=list(generate_contacts(50_010, seed=3)), plan="unmetered")
    async with httpx2.AsyncClient(
        transport=EmulatorTransport(emulator),
        base_url="http://leadlex.test",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        response = await client.get("/v1/contacts/export", params={"limit": 50_000, "fields": "id"})
    assert len(response.text.splitlines()) == 50_001


async def test_export_created_window_pages_without_overlap(api: httpx2.AsyncClient) -> None:
    """created_after / created_before are exclusive bounds in created_at order."""
    everything = rows(await api.get("/v1/contacts/export", params={"fields": "id,created_at"}))
    created = [r["created_at"] for r in everything]
    assert created == sorted(created)
    middle = created[10]
    before = rows(await api.get("/v1/contacts/export", params={"created_before": middle}))
    after = rows(await api.get("/v1/contacts/export", params={"created_after": middle}))
    assert len(before) == 10
    assert len(after) == 10
    assert {r["id"] for r in before} | {r["id"] for r in after} | {everything[10]["id"]} == {
        r["id"] for r in everything
    }


async def test_export_needs_read_permission(api: httpx2.AsyncClient) -> None:
    """A write-only key gets 403 on the export; a read-only key gets the CSV."""
    denied = await api.get(
        "/v1/contacts/export", headers={"Authorization": f"Bearer {WRITE_ONLY_KEY}"}
    )
    allowed = await api.get(
        "/v1/contacts/export", headers={"Authorization": f"Bearer {READ_ONLY_KEY}"}
    )
    assert denied.status_code == 403
    assert allowed.status_code == 200


async def test_export_is_limited_to_ten_calls_an_hour(api: httpx2.AsyncClient) -> None:
    """The 11th export within an hour is 429 with Retry-After; an hour later it works again."""
    for _ in range(10):
        assert (await api.get("/v1/contacts/export", params={"limit": 1})).status_code == 200
        await api.post("/_emulator/clock", json={"advance_seconds": 90})  # stay under 50/min
    refused = await api.get("/v1/contacts/export", params={"limit": 1})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) == 3600 - 10 * 90
    assert (
        await api.get(f"/v1/contacts/{SEED_CONTACT}")
    ).status_code == 200  # other calls unaffected
    await api.post("/_emulator/clock", json={"advance_seconds": 2700})
    assert (await api.get("/v1/contacts/export", params={"limit": 1})).status_code == 200
