"""The gateway as strict as LeadLex: only below its prefix, and no input that breaks it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulktag.emulator import Emulator, EmulatorTransport, Key, generate_contacts
from tests.constants import API_URL, CONTROL, KEY, SEED_CONTACT, seed_contact

pytestmark = pytest.mark.anyio

ROOT = API_URL.removesuffix("/functions/v1/api-gateway")
TAGS = f"/v1/contacts/{SEED_CONTACT}/tags"


def leadlex_answer(response: httpx2.Response) -> bool:
    """An answer LeadLex's gateway gave: its envelope, a request id, the quota headers."""
    body = response.json()
    envelope = ("data" in body) if response.status_code < 300 else ("error" in body)
    if response.status_code >= 300:
        error = body["error"]
        envelope = isinstance(error["code"], str) and isinstance(error["message"], str)
    uuid.UUID(response.headers["x-request-id"])
    return envelope and all(
        name in response.headers
        for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
    )


async def test_the_api_answers_below_the_gateway_prefix(api: httpx2.AsyncClient) -> None:
    """The client's base URL carries /functions/v1/api-gateway and every call goes below it."""
    response = await api.get(f"/v1/contacts/{SEED_CONTACT}")
    assert response.status_code == 200
    assert str(response.url) == f"{API_URL}/v1/contacts/{SEED_CONTACT}"


@pytest.mark.parametrize(
    "path",
    ["/v1/contacts", f"/v1/contacts/{SEED_CONTACT}", "/", "/functions/v1/api-gateway"],
)
async def test_outside_the_prefix_is_the_hosts_bare_404(api: httpx2.AsyncClient, path: str) -> None:
    """/v1/... at the root is not LeadLex's: a 404 without its envelope or its headers."""
    response = await api.get(ROOT + path)
    assert response.status_code == 404
    assert "error" not in response.json()
    assert "x-request-id" not in response.headers
    assert "x-ratelimit-remaining" not in response.headers


async def test_a_doubled_prefix_is_leadlexs_404(api: httpx2.AsyncClient) -> None:
    """/functions/v1/api-gateway twice: LeadLex's 404 (a client that joins URLs twice fails)."""
    response = await api.get(f"/functions/v1/api-gateway/v1/contacts/{SEED_CONTACT}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert leadlex_answer(response)


@pytest.mark.parametrize("path", ["/v1/contacts/", f"/v1/contacts/{SEED_CONTACT}/tags/"])
async def test_a_trailing_slash_is_not_redirected(api: httpx2.AsyncClient, path: str) -> None:
    """A trailing slash is a 404 of its own, never a redirect (out of the prefix or not)."""
    response = await api.request("POST" if path.endswith("tags/") else "GET", path)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert leadlex_answer(response)


async def test_unrouted_calls_pass_the_key_check_first(api: httpx2.AsyncClient) -> None:
    """An unknown path or method: 401 without a valid key, LeadLex's 404 with one."""
    for method, path in (("GET", "/v1/companies"), ("DELETE", TAGS), ("PUT", "/v1/contacts")):
        anonymous = await api.request(method, path, headers={"Authorization": "Bearer nope"})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "invalid_key"
        known = await api.request(method, path)
        assert known.status_code == 404
        assert known.json()["error"]["code"] == "not_found"
        assert leadlex_answer(known)


async def test_control_api_lives_at_the_root_only(api: httpx2.AsyncClient) -> None:
    """/_emulator/ answers at the host's root; below the API prefix it is an unrouted path."""
    assert (await api.get(f"{CONTROL}/stats")).status_code == 200
    below = await api.get("/_emulator/stats")
    assert below.status_code == 404
    assert below.json()["error"]["code"] == "not_found"


HOSTILE_BODIES: list[tuple[str, bytes]] = [
    ("lone surrogate", b'{"tags": ["\\ud800"]}'),
    ("lone surrogate among good tags", b'{"tags": ["vip", "x\\udfff"]}'),
    ("NaN", b'{"tags": ["vip"], "score": NaN}'),
    ("Infinity", b'{"tags": [Infinity]}'),
    ("-Infinity", b'{"tags": ["vip"], "x": -Infinity}'),
    ("deep nesting", b'{"tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("deep objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("not UTF-8", b'{"tags": ["\xff\xfe"]}'),
    ("10 MB", b'{"tags": ["' + b"x" * 10_000_000 + b'"]}'),
    ("empty", b""),
    ("NUL", b"\x00"),
]


@pytest.mark.parametrize(("name", "body"), HOSTILE_BODIES, ids=[n for n, _ in HOSTILE_BODIES])
async def test_hostile_body_is_400_and_the_contact_stays_readable(
    api: httpx2.AsyncClient, emulator: Emulator, name: str, body: bytes
) -> None:
    """Each gets 400 validation_error with LeadLex's envelope and headers; nothing is stored."""
    response = await api.post(TAGS, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, name
    assert response.json()["error"]["code"] == "validation_error"
    assert leadlex_answer(response)
    assert emulator.contacts[SEED_CONTACT].tags == ["existing-tag"]
    assert (await api.get(f"/v1/contacts/{SEED_CONTACT}")).status_code == 200
    assert (await api.get("/v1/contacts/export")).status_code == 200


async def test_a_handler_bug_is_an_enveloped_500(
    api: httpx2.AsyncClient, emulator: Emulator
) -> None:
    """Should a handler ever raise, the answer is still LeadLex's 500 envelope, never bare."""
    emulator.contacts[SEED_CONTACT].custom_fields["broken"] = object()  # not JSON: a bug
    response = await api.get(f"/v1/contacts/{SEED_CONTACT}")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert leadlex_answer(response)


_CHARACTERS = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(_CHARACTERS, max_size=120),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(_CHARACTERS, max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
_BODIES = st.one_of(
    _JSON.map(lambda v: json.dumps(v).encode()),
    _JSON.map(lambda v: json.dumps({"tags": v}).encode()),
    st.lists(st.text(_CHARACTERS, max_size=120), max_size=120).map(
        lambda tags: json.dumps({"tags": tags}).encode()
    ),
    st.binary(max_size=200),
)


def fresh() -> Emulator:
    return Emulator(
        plan="unmetered",
        keys=[Key(KEY, "default", frozenset({"read", "write"}))],
        contacts=[seed_contact(), *generate_contacts(3, seed=1)],
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_BODIES, content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_any_body_gets_leadlexs_envelope_never_a_bare_500(body: bytes, content_type: str) -> None:
    """For any body: 200, 400 or 404 in LeadLex's envelope, and the workspace stays readable."""
    emulator = fresh()

    async def exchange() -> list[httpx2.Response]:
        headers: dict[str, Any] = {"Authorization": f"Bearer {KEY}"}
        async with httpx2.AsyncClient(
            transport=EmulatorTransport(emulator), base_url=API_URL, headers=headers
        ) as client:
            sent = await client.post(TAGS, content=body, headers={"Content-Type": content_type})
            read = await client.get(f"/v1/contacts/{SEED_CONTACT}")
            export = await client.get("/v1/contacts/export")
            return [sent, read, export]

    sent, read, export = anyio.run(exchange)
    assert sent.status_code in (200, 400), sent.text
    assert leadlex_answer(sent)
    assert read.status_code == 200
    assert leadlex_answer(read)
    assert export.status_code == 200
