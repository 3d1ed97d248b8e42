"""GET /v1/contacts/{id}, GET /v1/contacts (paged) and GET /v1/contacts/export (CSV)."""

from __future__ import annotations

import csv
import io

import httpx2
import pytest

from bulktag.emulator import Emulator, EmulatorTransport, generate_contacts
from bulktag.emulator.model import EXPORT_FIELDS
from tests.constants import API_URL, CONTROL, KEY, READ_ONLY_KEY, SEED_CONTACT, WRITE_ONLY_KEY
from tests.world import EmulatorFactory

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


async def test_get_contact_has_the_documented_fields(api: httpx2.AsyncClient) -> None:
    """GET says company, created_date and updated_date (not the list's names); names filled."""
    data = (await api.get(f"/v1/contacts/{SEED_CONTACT}")).json()["data"]
    assert set(data) == {
        "id",
        "first_name",
        "last_name",
        "full_name",
        "email",
        "phone",
        "job_title",
        "company",
        "related_company_id",
        "linkedin_url",
        "priority",
        "custom_fields",
        "tags",
        "created_date",
        "updated_date",
    }
    assert (data["first_name"], data["last_name"], data["full_name"]) == (
        "Example",
        "Person",
        "Example Person",
    )
    assert isinstance(data["priority"], int)
    assert isinstance(data["custom_fields"], dict)
    assert data["created_date"] == "2026-11-25T12:00:00Z"


async def test_adding_a_tag_moves_updated_date(api: httpx2.AsyncClient, emulator: Emulator) -> None:
    """updated_date follows the last change; a call that adds nothing leaves it."""
    before = (await api.get(f"/v1/contacts/{SEED_CONTACT}")).json()["data"]["updated_date"]
    emulator.clock.advance(60)
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["existing-tag"]})
    same = (await api.get(f"/v1/contacts/{SEED_CONTACT}")).json()["data"]["updated_date"]
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["new"]})
    after = (await api.get(f"/v1/contacts/{SEED_CONTACT}")).json()["data"]["updated_date"]
    assert before == same == "2026-11-25T12:00:00Z"
    assert after == "2026-11-26T12:01:00Z"


async def test_name_fields_are_filled_for_a_contact_without_a_name(
    make_emulator: EmulatorFactory,
) -> None:
    """A contact stored without a name still has first, last and full names."""
    emulator = make_emulator(auto_create=True)
    async with httpx2.AsyncClient(
        transport=EmulatorTransport(emulator),
        base_url=API_URL,
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        new = "6f1c1d5e-1c2b-4c8e-9a7e-0a1b2c3d4e5f"
        data = (await client.get(f"/v1/contacts/{new}")).json()["data"]
    assert all(data[name] for name in ("first_name", "last_name", "full_name"))


@pytest.mark.parametrize(
    ("include", "embedded"),
    [
        ("notes", {"recent_notes"}),
        ("tasks,deals", {"open_tasks", "open_deals"}),
        ("*", {"recent_notes", "open_tasks", "open_deals"}),
    ],
)
async def test_get_contact_include_embeds_arrays(
    api: httpx2.AsyncClient, include: str, embedded: set[str]
) -> None:
    """include= embeds recent_notes, open_tasks, open_deals (empty here), only those asked."""
    data = (await api.get(f"/v1/contacts/{SEED_CONTACT}", params={"include": include})).json()
    extra = set(data["data"]) - {"recent_notes", "open_tasks", "open_deals"}
    assert set(data["data"]) - extra == embedded
    assert all(data["data"][name] == [] for name in embedded)


async def test_get_contact_unknown_include_is_400(api: httpx2.AsyncClient) -> None:
    """An include value LeadLex does not document is a validation_error naming include."""
    response = await api.get(f"/v1/contacts/{SEED_CONTACT}", params={"include": "emails"})
    assert response.status_code == 400
    assert "include" in response.json()["error"]["details"]["fields"]


async def test_get_contact_accepts_upper_case_uuid(api: httpx2.AsyncClient) -> None:
    """A UUID in upper case names the same contact."""
    response = await api.get(f"/v1/contacts/{SEED_CONTACT.upper()}")
    assert response.json()["data"]["id"] == SEED_CONTACT


async def test_list_is_paged_with_meta(api: httpx2.AsyncClient) -> None:
    """data.contacts holds the page; meta.page, meta.per_page and meta.total; pages partition."""
    seen: list[str] = []
    for page in (1, 2, 3):
        body = (await api.get("/v1/contacts", params={"page": page, "per_page": 8})).json()
        assert set(body) == {"data", "meta"}
        assert body["meta"] == {"page": page, "per_page": 8, "total": 21}
        seen += [c["id"] for c in body["data"]["contacts"]]
    assert len(seen) == len(set(seen)) == 21


async def test_list_items_have_the_list_fields_and_no_tags(api: httpx2.AsyncClient) -> None:
    """A list item: company_name and created_at (the GET's names differ), and no tags."""
    body = (await api.get("/v1/contacts")).json()
    assert body["meta"]["per_page"] == 50  # the documented default
    item = body["data"]["contacts"][0]
    assert set(item) == {
        "id",
        "full_name",
        "email",
        "phone",
        "job_title",
        "company_name",
        "linkedin_url",
        "created_at",
        "updated_date",
    }


async def test_list_sorts(api: httpx2.AsyncClient) -> None:
    """sort=created_at (default), updated_date, full_name; a leading - descends."""

    async def order(sort: str | None) -> list[dict[str, str]]:
        params = {"per_page": 100} | ({"sort": sort} if sort else {})
        contacts: list[dict[str, str]] = (await api.get("/v1/contacts", params=params)).json()[
            "data"
        ]["contacts"]
        return contacts

    default = await order(None)
    assert [c["created_at"] for c in default] == sorted(c["created_at"] for c in default)
    assert await order("created_at") == default
    assert await order("-created_at") == default[::-1]
    by_name = [c["full_name"].casefold() for c in await order("full_name")]
    assert by_name == sorted(by_name)
    await api.post(f"/v1/contacts/{default[5]['id']}/tags", json={"tags": ["new"]})
    assert (await order("-updated_date"))[0]["id"] == default[5]["id"]


async def test_list_search_and_created_after(api: httpx2.AsyncClient) -> None:
    """search matches names and e-mails; created_after keeps later contacts."""
    everyone = (await api.get("/v1/contacts", params={"per_page": 100})).json()["data"]["contacts"]
    found = (await api.get("/v1/contacts", params={"search": "PERSON@example"})).json()
    assert [c["id"] for c in found["data"]["contacts"]] == [SEED_CONTACT]
    assert found["meta"]["total"] == 1
    later = await api.get("/v1/contacts", params={"created_after": everyone[9]["created_at"]})
    assert later.json()["meta"]["total"] == len(everyone) - 10


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"per_page": 101, "page": 0}, {"per_page", "page"}),
        ({"per_page": "ten"}, {"per_page"}),
        ({"sort": "email"}, {"sort"}),
        ({"sort": "--full_name"}, {"sort"}),
        ({"created_after": "last week"}, {"created_after"}),
        ({"list_id": "8c1f0a2e-5d7b-4e9a-b3c6-1f2e3d4c5b6a"}, {"list_id"}),
    ],
)
async def test_list_rejects_bad_parameters(
    api: httpx2.AsyncClient, params: dict[str, str | int], fields: set[str]
) -> None:
    """per_page above 100, page below 1, an unknown sort, a bad date, an unknown list: 400."""
    response = await api.get("/v1/contacts", params=params)
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]["fields"]) == fields


async def test_export_is_csv_with_the_default_columns(api: httpx2.AsyncClient) -> None:
    """text/csv; charset=utf-8 as an attachment, header first, the nine documented columns,
    fields quoted only when needed (tags with a comma are)."""
    await api.post(f"/v1/contacts/{SEED_CONTACT}/tags", json={"tags": ["vip", "legal"]})
    response = await api.get("/v1/contacts/export", headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="contacts-export.csv"'
    header = response.text.splitlines()[0]
    assert header == ",".join(EXPORT_FIELDS)
    exported = rows(response)
    assert len(exported) == 21
    seed = next(r for r in exported if r["id"] == SEED_CONTACT)
    assert seed["tags"] == "existing-tag,vip,legal"
    assert '"existing-tag,vip,legal"' in response.text
    assert f'"{SEED_CONTACT}"' not in response.text


async def test_export_refuses_a_json_only_accept(api: httpx2.AsyncClient) -> None:
    """The export is CSV: Accept: application/json alone is 406 in the envelope."""
    response = await api.get("/v1/contacts/export", headers={"Accept": "application/json"})
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"
    for accept in ("text/csv", "text/csv, application/json;q=0.5", "*/*"):
        ok = await api.get("/v1/contacts/export", headers={"Accept": accept}, params={"limit": 1})
        assert ok.status_code == 200


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
    assert response.text.splitlines()[0] == "tags,id"
    assert len(rows(response)) == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 50_001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"fields": "id,shoe_size"}, "fields"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-13-01"}, "created_before"),
        ({"list_id": "8c1f0a2e-5d7b-4e9a-b3c6-1f2e3d4c5b6a"}, "list_id"),
        ({"tag": ""}, "tag"),
    ],
)
async def test_export_rejects_bad_parameters(
    api: httpx2.AsyncClient, params: dict[str, str | int], field: str
) -> None:
    """limit beyond 1..50,000, unknown fields, bad dates, an unknown list: 400 naming it."""
    response = await api.get("/v1/contacts/export", params=params)
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


async def test_export_accepts_the_maximum_limit(make_emulator: EmulatorFactory) -> None:
    """limit=50000 returns 50,000 rows when there are more contacts."""
    from bulktag.emulator import EmulatorTransport
    from tests.constants import KEY

    emulator = make_emulator(contacts=list(generate_contacts(50_010, seed=3)), plan="unmetered")
    async with httpx2.AsyncClient(
        transport=EmulatorTransport(emulator),
        base_url=API_URL,
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
        await api.post(f"{CONTROL}/clock", json={"advance_seconds": 90})  # stay under 50/min
    refused = await api.get("/v1/contacts/export", params={"limit": 1})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["message"] == "Export limit exceeded (10 per hour)"
    assert int(refused.headers["retry-after"]) == 3600 - 10 * 90
    assert (
        await api.get(f"/v1/contacts/{SEED_CONTACT}")
    ).status_code == 200  # other calls unaffected
    await api.post(f"{CONTROL}/clock", json={"advance_seconds": 2700})
    assert (await api.get("/v1/contacts/export", params={"limit": 1})).status_code == 200
