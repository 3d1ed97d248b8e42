"""The emulator's ASGI application: LeadLex's API, its limits, and injected faults.

Every ``/v1/`` request goes through one gateway, in this order (the order LeadLex's
own gateway appears to follow, see docs/emulator.md)::

    faults (latency, 429 storm, 5xx, drop before)
      -> 401 invalid_key -> 429 daily quota -> 429 per-minute window
      -> quota spent -> 403 insufficient_permissions -> Idempotency-Key replay
      -> handler (200 / 400 / 404) -> faults (drop after, malformed or slow body)

and every answer carries ``X-Request-ID`` and ``X-RateLimit-Limit/Remaining/Reset``
(the DAILY quota). The API is served only below LeadLex's gateway prefix
(``/functions/v1/api-gateway/v1/...``); ``/_emulator/`` at the root is the control
API for tests and demos; any other path is the host's bare 404, not LeadLex's.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import Counter, deque
from collections.abc import Iterable
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from bulktag.emulator import endpoints
from bulktag.emulator.calls import (
    CONTROL_PREFIX,
    GATEWAY_PREFIX,
    MAX_BODY,
    BodyTooLargeError,
    Call,
    Endpoint,
    bounded_body,
    drain,
)
from bulktag.emulator.control import LIMITS, control_routes, statistics_of
from bulktag.emulator.faults import Decision, FaultInjector, Faults, LeakyBucket
from bulktag.emulator.model import (
    DEFAULT_KEY,
    DEFAULT_WORKSPACE,
    PLANS,
    Contact,
    EmulatorClock,
    Key,
    StoredResponse,
    Workspace,
)
from bulktag.emulator.responses import (
    DROP_EXTENSION,
    ConnectionDroppedError,
    DropConnection,
    SlowResponse,
    error,
    rate_limited,
)

__all__ = ["DROP_EXTENSION", "TAGS_ROUTE", "ConnectionDroppedError", "Emulator"]

#: How long a replayed Idempotency-Key is remembered (docs/emulator.md).
IDEMPOTENCY_TTL = 24 * 3600.0
#: How statistics and the log name the add-tags route.
TAGS_ROUTE = "/v1/contacts/{id}/tags"
_BEARER = re.compile(r"Bearer\s+(\S+)\s*$", re.IGNORECASE)

log = logging.getLogger("bulktag.emulator")


_GATEWAY_429 = (
    b"<html><head><title>429 Too Many Requests</title></head>"
    b"<body><h1>429 Too Many Requests</h1><hr><center>nginx</center></body></html>"
)
_CAPTIVE_PORTAL = (
    b"<!DOCTYPE html><html><head><title>Guest Wi-Fi</title></head>"
    b"<body><h1>Welcome</h1><p>Please sign in to use the Internet.</p></body></html>"
)
_GATEWAY_BODIES = {
    502: (
        b"<html><head><title>502 Bad Gateway</title></head>"
        b"<body><h1>502 Bad Gateway</h1></body></html>",
        "text/html",
    ),
    503: (
        b"upstream connect error or disconnect/reset before headers. reset reason: overflow",
        "text/plain",
    ),
}


class Emulator:
    """A LeadLex workspace set in memory, served as an ASGI app (the emulator itself)."""

    def __init__(
        self,
        *,
        plan: str = "pro",
        per_minute: int | None = None,
        per_day: int | None = None,
        export_per_hour: int | None = 10,
        keys: Iterable[Key] = (),
        contacts: Iterable[Contact] = (),
        clock: EmulatorClock | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        auto_create: bool = False,
        log_size: int = 100_000,
    ) -> None:
        base = PLANS[plan]
        self.plan = plan
        self._limits = (
            base.per_minute if per_minute is None else per_minute,
            base.per_day if per_day is None else per_day,
            export_per_hour,
        )
        self.clock = clock or EmulatorClock()
        self.injector = FaultInjector(faults, seed)
        self.auto_create = auto_create
        self.keys: dict[str, Key] = {}
        for key in keys:
            self.keys[key.secret] = key
        if not self.keys:
            self.keys[DEFAULT_KEY] = Key(
                DEFAULT_KEY, DEFAULT_WORKSPACE, frozenset({"read", "write"})
            )
        self.workspaces: dict[str, Workspace] = {}
        self.contacts: dict[str, Contact] = {}
        self._ordered: list[Contact] = []
        for contact in contacts:
            self.add_contact(contact)
        self._ordered.sort(key=lambda c: (c.created_at, c.id))
        self.requests: Counter[tuple[str, str]] = Counter()
        self.handled: Counter[str] = Counter()
        self.tag_calls: Counter[str] = Counter()  # add-tags calls that merged, per contact
        self.replays = 0
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.storm_until = 0.0
        self._gateway = LeakyBucket()
        self._unrouted = Endpoint("(unrouted)", None, partial(endpoints.unrouted, self))
        self._api = Router(routes=self._routes(), redirect_slashes=False, default=self._default)
        self._control = Router(routes=control_routes(self), redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.injector.faults.captive_portal and not path.startswith(CONTROL_PREFIX + "/"):
            await Response(_CAPTIVE_PORTAL, 200, media_type="text/html")(scope, receive, send)
        elif path.startswith(GATEWAY_PREFIX + "/"):
            # ASGI's convention: the path stays whole, root_path names the mount point.
            await self._api(dict(scope, root_path=GATEWAY_PREFIX), receive, send)
        elif path.startswith(CONTROL_PREFIX + "/"):
            await self._control(scope, receive, send)
        else:  # outside the gateway: the host's own 404, which is not LeadLex's envelope
            body = b'{"message":"no Route matched with those values"}'
            await Response(body, 404, media_type="application/json")(scope, receive, send)

    # -- what the control API reads and steers (bulktag.emulator.control) ---------

    def inspect(self, contact_id: str) -> dict[str, Any] | None:
        """A contact as stored, with its workspace and the add-tags calls it merged."""
        found = self.contacts.get(contact_id.lower())
        if found is None:
            return None
        return found.as_json() | {
            "workspace": found.workspace,
            "tag_calls": self.tag_calls[found.id],
        }

    def statistics(self, *, reset: bool = False) -> dict[str, Any]:
        """Requests by route and status, calls handled, replays, quota per workspace
        (``reset``: forget the requests, calls and log first)."""
        return statistics_of(self, reset=reset)

    def contact_ids(self) -> list[str]:
        """Every contact's ID, in creation order (as the list and the export give them)."""
        return [c.id for c in self._ordered]

    def log_entries(self, route: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.log if route is None or e["route"] == route]

    def steer_faults(
        self, changes: dict[str, Any], *, seed: int | None, storm_for: float | None
    ) -> dict[str, Any]:
        """Change fault settings (and the seed; a 429 storm for ``storm_for`` seconds)."""
        injector = self.injector
        injector.faults = injector.faults.updated(changes)
        if seed is not None:
            injector.reseed(seed)
        if storm_for is not None:
            self.storm_until = self.clock.now() + storm_for
        return self.fault_settings()

    def fault_settings(self) -> dict[str, Any]:
        return self.injector.faults.as_json() | {"seed": self.injector.seed}

    def set_key(self, key: Key) -> None:
        self.keys[key.secret] = key

    def set_limits(self, name: str, limits: dict[str, int | None]) -> dict[str, Any]:
        """Set a workspace's limits (or its calls used today); returns them all."""
        workspace = self.workspace(name)
        workspace.refusal(self.clock.now())  # roll the day before setting used_today
        for limit, value in limits.items():
            setattr(workspace, limit, value)
        return {"workspace": name} | {n: getattr(workspace, n) for n in LIMITS}

    # -- state ------------------------------------------------------------------

    def workspace(self, name: str) -> Workspace:
        found = self.workspaces.get(name)
        if found is None:
            per_minute, per_day, per_hour = self._limits
            found = self.workspaces[name] = Workspace(name, per_minute, per_day, per_hour)
        return found

    def add_contact(self, contact: Contact) -> None:
        self.workspace(contact.workspace)
        if contact.id not in self.contacts:
            self._ordered.append(contact)
        self.contacts[contact.id] = contact

    @property
    def ordered(self) -> list[Contact]:
        """The contacts in the order LeadLex lists them (created, then id)."""
        return self._ordered

    def lookup(self, raw_id: str, workspace: Workspace, now: float) -> Contact | None:
        """The contact ``raw_id`` names in ``workspace`` (None: not found there)."""
        try:
            contact_id = str(uuid.UUID(raw_id)) if len(raw_id) == 36 else ""
        except ValueError:
            contact_id = ""
        if not contact_id:
            return None
        contact = self.contacts.get(contact_id)
        if contact is None and self.auto_create:
            contact = Contact(contact_id, workspace.name, "", "", "", "", "", "", [], now)
            self.add_contact(contact)
        if contact is None or contact.workspace != workspace.name:
            return None  # another workspace's contact is "not found", never 403
        return contact

    # -- the gateway ------------------------------------------------------------

    async def _serve(self, request: Request, endpoint: Endpoint) -> Response:
        decision = self.injector.decide()
        if decision.latency:
            await anyio.sleep(decision.latency)
        now = self.clock.now()
        key = self._authenticate(request, now)
        workspace = self.workspace(key.workspace if key else DEFAULT_WORKSPACE)
        handled = False
        response = await self._gateway_fault(request, decision, now) or self._refusal(
            key, workspace, endpoint, now
        )
        if response is None:
            assert key is not None  # _refusal answered 401 otherwise
            handled = True
            workspace.spend(now, export=endpoint.export)
            self.handled[f"{request.method} {endpoint.route}"] += 1
            response = self._handler_fault(
                await self._handle(request, endpoint, key, workspace, now), decision
            )
        dropped = isinstance(response, DropConnection)
        status = "dropped" if dropped else str(response.status_code)
        self.requests[(f"{request.method} {endpoint.route}", status)] += 1
        self.log.append(
            {
                "t": now,
                "method": request.method,
                "route": endpoint.route,
                "path": request.url.path,
                "status": status,
                "handled": handled,
            }
        )
        if not dropped:
            response.raw_headers.append((b"x-request-id", str(uuid.uuid4()).encode()))
            response.raw_headers.extend(workspace.rate_headers(self.clock.now()))
        return response

    def _authenticate(self, request: Request, now: float) -> Key | None:
        match = _BEARER.match(request.headers.get("authorization", ""))
        key = self.keys.get(match.group(1)) if match else None
        return key if key is not None and key.valid_at(now) else None

    async def _gateway_fault(
        self, request: Request, decision: Decision, now: float
    ) -> Response | None:
        """Faults that strike before the call reaches LeadLex: a gateway's limit, storms,
        5xx, early drops."""
        limit = self.injector.faults.gateway_per_minute
        if limit and not self._gateway.admit(now, limit):
            return Response(_GATEWAY_429, status_code=429, media_type="text/html")
        if decision.start_storm and now >= self.storm_until:
            self.storm_until = now + self.injector.faults.storm_seconds
        if now < self.storm_until:
            return rate_limited("Rate limit exceeded. Please slow down.", self.storm_until - now)
        if decision.error_status == 500:
            return error(500, "internal_error", "An unexpected error occurred")
        if decision.error_status is not None:
            body, media_type = _GATEWAY_BODIES[decision.error_status]
            return Response(body, status_code=decision.error_status, media_type=media_type)
        if decision.drop == "before":
            await drain(request)  # closing with unread bytes would reset (RST), not close
            return DropConnection()
        return None

    def _refusal(
        self, key: Key | None, workspace: Workspace, endpoint: Endpoint, now: float
    ) -> Response | None:
        """401 for a bad key, 429 for a spent limit; ``None`` lets the call through."""
        if key is None:
            return error(401, "invalid_key", "Invalid or missing API key")
        refusal = workspace.refusal(now, export=endpoint.export)
        if refusal is None:
            return None
        if refusal.limit == "day":
            return error(429, "rate_limited", "Daily request quota exceeded. Resets at 00:00 UTC.")
        if refusal.limit == "export_hour":
            told = f"Export limit exceeded ({workspace.export_per_hour} per hour)"
            return rate_limited(told, refusal.retry_after)
        return rate_limited("Rate limit exceeded. Please slow down.", refusal.retry_after)

    def _handler_fault(self, response: Response, decision: Decision) -> Response:
        """Faults that strike after the call was handled: late drops, cut or slow bodies."""
        if decision.drop == "after":
            return DropConnection()
        if decision.malformed and response.status_code < 300:
            cut = bytes(response.body)[: max(1, len(response.body) // 2)]
            response.body = cut
            response.headers["content-length"] = str(len(cut))
        if decision.slow:
            return SlowResponse(response, self.injector.faults.slow_ms / 1000.0)
        return response

    async def _handle(
        self, request: Request, endpoint: Endpoint, key: Key, workspace: Workspace, now: float
    ) -> Response:
        """403, the body, ``Idempotency-Key`` replays, then the handler; never a bare 500."""
        if endpoint.permission is not None and endpoint.permission not in key.permissions:
            scope = "contacts:write" if endpoint.permission == "write" else "contacts:read"
            return error(403, "insufficient_permissions", f"Missing {scope} permission")
        try:
            body = await bounded_body(request)
        except BodyTooLargeError:
            return error(
                400,
                "validation_error",
                f"Request body too large (at most {MAX_BODY:,} bytes)",
                {"body": "too large"},
            )
        call = Call(request, body, workspace, now)
        try:
            return await self._replayed(call, endpoint)
        except Exception:
            log.exception("emulator: %s %s failed", request.method, request.url.path)
            return error(500, "internal_error", "An unexpected error occurred")

    async def _replayed(self, call: Call, endpoint: Endpoint) -> Response:
        """The handler's answer, or the stored one for a repeated ``Idempotency-Key``."""
        request, workspace = call.request, call.workspace
        idempotency_key = request.headers.get("idempotency-key")
        if request.method != "POST" or not idempotency_key or endpoint.permission is None:
            return await endpoint.handler(call)
        fingerprint = (request.method, request.url.path, call.body)
        workspace.forget_expired_replays(call.now)
        stored = workspace.idempotency.get(idempotency_key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                return error(
                    400,
                    "validation_error",
                    "Idempotency-Key was already used with a different request",
                    {"Idempotency-Key": "reused with a different request"},
                )
            self.replays += 1
            replay = Response(stored.body, status_code=stored.status, media_type="application/json")
            replay.headers["idempotency-replayed"] = "true"
            return replay
        response = await endpoint.handler(call)
        workspace.idempotency[idempotency_key] = StoredResponse(
            fingerprint, call.now + IDEMPOTENCY_TTL, response.status_code, bytes(response.body)
        )
        return response

    # -- LeadLex endpoints ------------------------------------------------------

    # -- routing ----------------------------------------------------------------

    async def _gate(
        self, methods: dict[str, Endpoint], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """One path's methods through the gateway; any other method is LeadLex's 404."""
        request = Request(scope, receive)
        try:
            response = await self._serve(request, methods.get(request.method, self._unrouted))
        except ClientDisconnect:
            # The client went away mid-request (killed, timed out): nobody to
            # answer. 499 is nginx's "client closed request"; it is never sent.
            response = Response(status_code=499)
        await response(scope, receive, send)

    async def _default(self, scope: Scope, receive: Receive, send: Send) -> None:
        """No route matched below the prefix: the gateway still checks the key first."""
        await self._gate({}, scope, receive, send)

    def _routes(self) -> list[Route]:
        contact, tags = "/v1/contacts/{contact_id}", "/v1/contacts/{contact_id}/tags"
        table = {
            "/v1/contacts/export": {
                "GET": Endpoint(
                    "/v1/contacts/export", "read", partial(endpoints.export, self), export=True
                )
            },
            tags: {"POST": Endpoint(TAGS_ROUTE, "write", partial(endpoints.add_tags, self))},
            contact: {
                "GET": Endpoint("/v1/contacts/{id}", "read", partial(endpoints.get_contact, self))
            },
            "/v1/contacts": {
                "GET": Endpoint("/v1/contacts", "read", partial(endpoints.list_contacts, self))
            },
        }
        return [Route(path, _Gate(self, methods)) for path, methods in table.items()]


class _Gate:
    """A route's ASGI app: an app, not a function, so that the route takes every method
    (Starlette gives a function GET only) and one it does not serve is LeadLex's 404."""

    def __init__(self, emulator: Emulator, methods: dict[str, Endpoint]) -> None:
        self._emulator = emulator
        self._methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._emulator._gate(self._methods, scope, receive, send)
