"""The LeadLex client: one method per endpoint, each returning an :class:`Attempt`.

The ``httpx2.AsyncClient`` is injected (tests pass the emulator's transport or a
``MockTransport``); :func:`make_http_client` builds the real one with explicit
limits and timeouts. The key travels in an ``httpx2.Auth``, not in the client's
default headers, and redirects are never followed, so the ``Authorization``
header cannot reach another host.
"""

from __future__ import annotations

import ssl
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path

import httpx2

from bulktag import __version__
from bulktag.clock import Clock
from bulktag.config import ApiKey
from bulktag.errors import ConfigError
from bulktag.outcomes import Attempt
from bulktag.send.answers import classify_response
from bulktag.send.faults import classify_exception

__all__ = ["LeadLexClient", "check_trust_settings", "make_http_client", "trusting"]


class BearerAuth(httpx2.Auth):
    """Adds ``Authorization: Bearer <key>`` to each request; its repr hides the key."""

    def __init__(self, key: ApiKey) -> None:
        self._key = key

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth({self._key!r})"


def make_http_client(
    api_url: str,
    key: ApiKey,
    *,
    concurrency: int,
    timeout: float,
    transport: httpx2.AsyncBaseTransport | None = None,
    ca_bundle: Path | None = None,
) -> httpx2.AsyncClient:
    """The AsyncClient bulktag uses: one connection per worker, no redirects, TLS verified.

    Company networks: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name the CAs to trust and
    ``HTTPS_PROXY`` / ``NO_PROXY`` the proxy (httpx2 reads them); ``ca_bundle`` adds a
    CA bundle to the system's. Verification cannot be turned off.
    """
    return httpx2.AsyncClient(
        base_url=api_url,
        auth=BearerAuth(key),
        transport=transport,
        verify=True if ca_bundle is None else trusting(ca_bundle),
        timeout=httpx2.Timeout(timeout, connect=min(timeout, 15.0)),
        limits=httpx2.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=30
        ),
        follow_redirects=False,
        headers={"User-Agent": f"bulktag/{__version__}", "Accept": "application/json"},
    )


def check_trust_settings(environ: Mapping[str, str], ca_bundle: Path | None) -> None:
    """``SSL_CERT_FILE``, ``SSL_CERT_DIR`` and ``--ca-bundle`` can be used, or ConfigError
    (exit 78) names the one that cannot, before any call (httpx2 would raise a traceback
    when it builds its TLS context)."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        value = environ.get(name)
        if not value:
            continue
        try:
            if name == "SSL_CERT_FILE":
                ssl.create_default_context(cafile=value)
            else:
                ssl.create_default_context(capath=value)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(
                f"{name}={value}: cannot load it ({reason}); point it at a PEM bundle of the "
                "CAs to trust (a company's CA bundle), or unset it"
            ) from None
    if ca_bundle is not None:
        trusting(ca_bundle)


def trusting(ca_bundle: Path) -> ssl.SSLContext:
    """The system's trusted CAs and those of ``ca_bundle`` (PEM); ConfigError (78) if it
    cannot be read."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"--ca-bundle {ca_bundle}: cannot read it as PEM certificates ({reason})"
        ) from None
    return context


class LeadLexClient:
    """LeadLex's contact endpoints, as :class:`Attempt` values instead of exceptions."""

    def __init__(self, http: httpx2.AsyncClient, clock: Clock) -> None:
        self._http = http
        self._clock = clock

    async def add_tags(
        self, contact_id: str, tags: Sequence[str], idempotency_key: str | None = None
    ) -> Attempt:
        """``POST /v1/contacts/{id}/tags``."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        try:
            response = await self._http.post(
                f"/v1/contacts/{contact_id}/tags", json={"tags": list(tags)}, headers=headers
            )
        except (httpx2.HTTPError, OSError) as exc:
            return _transport_failure(exc)
        return classify_response(response, tags, self._clock.wall())

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def get_contact(self, contact_id: str) -> tuple[Attempt, list[str] | None]:
        """``GET /v1/contacts/{id}``: the attempt, and the contact's tags when it is ok."""
        try:
            response = await self._http.get(f"/v1/contacts/{contact_id}")
        except (httpx2.HTTPError, OSError) as exc:
            return _transport_failure(exc), None
        attempt = classify_response(response, (), self._clock.wall())
        return attempt, (response.json()["data"]["tags"] if attempt.ok else None)

    async def count_contacts(self) -> tuple[Attempt, int | None]:
        """``GET /v1/contacts?per_page=1``: how many contacts the workspace holds."""
        try:
            response = await self._http.get("/v1/contacts", params={"per_page": 1})
        except (httpx2.HTTPError, OSError) as exc:
            return _transport_failure(exc), None
        attempt = classify_response(response, (), self._clock.wall(), check=_has_total)
        return attempt, (int(response.json()["meta"]["total"]) if attempt.ok else None)

    async def export(self, params: Sequence[tuple[str, str]]) -> tuple[Attempt, str | None]:
        """``GET /v1/contacts/export``: the attempt, and the CSV text when it is ok."""
        try:
            response = await self._http.get(
                "/v1/contacts/export", params=list(params), headers={"Accept": "text/csv"}
            )
        except (httpx2.HTTPError, OSError) as exc:
            return _transport_failure(exc), None
        attempt = classify_response(response, (), self._clock.wall(), check=_is_csv)
        return attempt, (response.text if attempt.ok else None)


def _is_csv(response: httpx2.Response) -> str | None:
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/csv"):
        return f"an export answered {kind or 'no content type'}, not text/csv"
    return None


def _has_total(response: httpx2.Response) -> str | None:
    """A list answer: ``{"data": {"contacts": [...]}, "meta": {"total": N, ...}}``."""
    try:
        body = response.json()
        total, contacts = body["meta"]["total"], body["data"]["contacts"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return "a contact list that is not data.contacts with meta.total"
    if isinstance(total, int) and not isinstance(total, bool) and isinstance(contacts, list):
        return None
    return "a contact list that is not data.contacts with meta.total"


def _transport_failure(exc: httpx2.HTTPError | OSError) -> Attempt:
    attempt = classify_exception(exc)
    if attempt is None:  # pragma: no cover  (EXCEPTION_TYPES covers HTTPError and OSError)
        raise exc
    return attempt
