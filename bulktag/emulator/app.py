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

import csv
import io
import logging
import re
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from bulktag.emulator.control import LIMITS, control_routes
from bulktag.emulator.faults import Decision, FaultInjector, Faults, LeakyBucket
from bulktag.emulator.model import (
    DEFAULT_KEY,
    DEFAULT_WORKSPACE,
    EXPORT_FIELDS,
    PLANS,
    Contact,
    EmulatorClock,
    Key,
    StoredResponse,
    Workspace,
)
from bulktag.emulator.params import (
    accepts_csv,
    includes,
    int_param,
    list_order,
    no_such_list,
    tags_problem,
    time_param,
)
from bulktag.emulator.responses import (
    DROP_EXTENSION,
    ConnectionDroppedError,
    DropConnection,
    SlowResponse,
    error,
    json_response,
    parse_json,
    rate_limited,
)
from bulktag.leadlex import EXPORT_MAX_LIMIT

__all__ = ["DROP_EXTENSION", "GATEWAY_PREFIX", "ConnectionDroppedError", "Emulator"]

#: ASGI scope extension through which the server lets the app drop a connection.
IDEMPOTENCY_TTL = 24 * 3600.0
EXPORT_DEFAULT_LIMIT = 10_000
#: The path of LeadLex's documented base URL: the API is served below it, and only there.
#: How statistics and the log name the add-tags route.
TAGS_ROUTE = "/v1/contacts/{id}/tags"
GATEWAY_PREFIX = "/functions/v1/api-gateway"
CONTROL_PREFIX = "/_emulator"
#: The largest request body the gateway reads (100 tags of 100 characters take ~10 KB).
MAX_BODY = 1 << 20
LIST_DEFAULT_PER_PAGE = 50
LIST_MAX_PER_PAGE = 100
LIST_SORTS = ("created_at", "updated_date", "full_name")
_BEARER = re.compile(r"Bearer\s+(\S+)\s*$", re.IGNORECASE)

log = logging.getLogger("bulktag.emulator")

Handler = Callable[["_Call"], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """One LeadLex route: its name in statistics, the permission it needs, its handler."""

    route: str
    permission: str | None  #: None: no permission (an unrouted call's 404)
    handler: Handler
    export: bool = False


@dataclass(frozen=True, slots=True)
class _Call:
    """What a handler gets: the request, its body (read once, bounded), the workspace, time."""

    request: Request
    body: bytes
    workspace: Workspace
    now: float


class _BodyTooLargeError(Exception):
    pass


async def _bounded_body(request: Request) -> bytes:
    """The body, read to its end (an unread rest would reset the connection), kept up to
    :data:`MAX_BODY`; raises :class:`_BodyTooLargeError` beyond."""
    kept, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY:
            kept.append(chunk)
    if size > MAX_BODY:
        raise _BodyTooLargeError
    return b"".join(kept)


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
        self._unrouted = _Endpoint("(unrouted)", None, self.unrouted)
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
        if reset:
            self.requests.clear()
            self.handled.clear()
            self.tag_calls.clear()
            self.replays = 0
            self.log.clear()
        requests: dict[str, dict[str, int]] = defaultdict(dict)
        for (route, status), count in sorted(self.requests.items()):
            requests[route][status] = count
        now = self.clock.now()
        quota = {}
        for name, workspace in self.workspaces.items():
            workspace.refusal(now)  # rolls the day over if midnight has passed
            limit = workspace.per_day
            quota[name] = {
                "day": workspace.day,
                "used": workspace.used_today,
                "limit": limit,
                "remaining": None if limit is None else max(0, limit - workspace.used_today),
            }
        return {
            "requests": requests,
            "handled": dict(self.handled),
            "tag_calls_handled": self.handled[f"POST {TAGS_ROUTE}"],
            "replays": self.replays,
            "quota": quota,
            "clock": now,
        }

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

    def _contact(self, raw_id: str, workspace: Workspace, now: float) -> Contact | None:
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

    async def _serve(self, request: Request, endpoint: _Endpoint) -> Response:
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
            await _drain(request)  # closing with unread bytes would reset (RST), not close
            return DropConnection()
        return None

    def _refusal(
        self, key: Key | None, workspace: Workspace, endpoint: _Endpoint, now: float
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
            return rate_limited("Export limit exceeded (10 per hour)", refusal.retry_after)
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
        self, request: Request, endpoint: _Endpoint, key: Key, workspace: Workspace, now: float
    ) -> Response:
        """403, the body, ``Idempotency-Key`` replays, then the handler; never a bare 500."""
        if endpoint.permission is not None and endpoint.permission not in key.permissions:
            scope = "contacts:write" if endpoint.permission == "write" else "contacts:read"
            return error(403, "insufficient_permissions", f"Missing {scope} permission")
        try:
            body = await _bounded_body(request)
        except _BodyTooLargeError:
            return error(
                400,
                "validation_error",
                f"Request body too large (at most {MAX_BODY:,} bytes)",
                {"body": "too large"},
            )
        call = _Call(request, body, workspace, now)
        try:
            return await self._replayed(call, endpoint)
        except Exception:
            log.exception("emulator: %s %s failed", request.method, request.url.path)
            return error(500, "internal_error", "An unexpected error occurred")

    async def _replayed(self, call: _Call, endpoint: _Endpoint) -> Response:
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

    async def add_tags(self, call: _Call) -> Response:
        request = call.request
        contact = self._contact(request.path_params["contact_id"], call.workspace, call.now)
        if contact is None:
            return error(404, "not_found", "Contact not found")
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return error(400, "validation_error", "Content-Type must be application/json")
        try:
            payload = parse_json(call.body)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return error(400, "validation_error", "Request body is not valid JSON")
        problem = tags_problem(payload)
        if problem is not None:
            return error(
                400, "validation_error", "Missing or invalid tags array", {"tags": problem}
            )
        assert isinstance(payload, dict)
        known = set(contact.tags)
        for tag in payload["tags"]:
            if tag not in known:
                known.add(tag)
                contact.tags.append(tag)
                contact.touch(call.now)
        self.tag_calls[contact.id] += 1
        return json_response(200, {"data": {"contact_id": contact.id, "tags": list(contact.tags)}})

    async def get_contact(self, call: _Call) -> Response:
        params = call.request.query_params
        problems: dict[str, str] = {}
        embeds = includes(params.get("include"), problems)
        if problems:
            return error(400, "validation_error", "Invalid query parameters", problems)
        contact = self._contact(call.request.path_params["contact_id"], call.workspace, call.now)
        if contact is None:
            return error(404, "not_found", "Contact not found")
        # The emulator keeps no notes, tasks or deals: what is asked for comes empty.
        return json_response(200, {"data": contact.as_json() | {name: [] for name in embeds}})

    async def list_contacts(self, call: _Call) -> Response:
        params = call.request.query_params
        problems: dict[str, str] = {}
        page = int_param(params.get("page"), 1, low=1, high=None, name="page", problems=problems)
        per_page = int_param(
            params.get("per_page"),
            LIST_DEFAULT_PER_PAGE,
            low=1,
            high=LIST_MAX_PER_PAGE,
            name="per_page",
            problems=problems,
        )
        sort = params.get("sort", "created_at")
        if sort.removeprefix("-") not in LIST_SORTS:
            problems["sort"] = f"must be one of {', '.join(LIST_SORTS)}, with - to descend"
        after = time_param(params.get("created_after"), "created_after", problems)
        no_such_list(params.get("list_id"), problems)
        if problems:
            return error(400, "validation_error", "Invalid query parameters", problems)
        search = (params.get("search") or "").casefold()
        mine = [
            c
            for c in self._ordered
            if c.workspace == call.workspace.name
            and (after is None or c.created_at > after)
            and (not search or search in f"{c.names()[2]} {c.email}".casefold())
        ]
        mine.sort(key=list_order(sort.removeprefix("-")), reverse=sort.startswith("-"))
        start = (page - 1) * per_page
        return json_response(
            200,
            {
                "data": {"contacts": [c.list_item() for c in mine[start : start + per_page]]},
                "meta": {"page": page, "per_page": per_page, "total": len(mine)},
            },
        )

    async def export(self, call: _Call) -> Response:
        params = call.request.query_params
        if not accepts_csv(call.request.headers.get("accept")):
            return error(406, "not_acceptable", "The export is text/csv: send Accept: text/csv")
        problems: dict[str, str] = {}
        limit = int_param(
            params.get("limit"),
            EXPORT_DEFAULT_LIMIT,
            low=1,
            high=EXPORT_MAX_LIMIT,
            name="limit",
            problems=problems,
        )
        wanted = [f.strip() for f in params.get("fields", "").split(",") if f.strip()] or list(
            EXPORT_FIELDS
        )
        unknown = [f for f in wanted if f not in EXPORT_FIELDS]
        if unknown:
            problems["fields"] = f"unknown field(s): {', '.join(unknown)}"
        after = time_param(params.get("created_after"), "created_after", problems)
        before = time_param(params.get("created_before"), "created_before", problems)
        no_such_list(params.get("list_id"), problems)
        required = set(params.getlist("tag"))
        if "" in required:
            problems["tag"] = "must not be empty"
        if problems:
            return error(400, "validation_error", "Invalid query parameters", problems)
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(wanted)
        written = 0
        for contact in self._ordered:
            if written >= limit:
                break
            if (
                contact.workspace != call.workspace.name
                or (after is not None and contact.created_at <= after)
                or (before is not None and contact.created_at >= before)
                or not required.issubset(contact.tags)
            ):
                continue
            writer.writerow(contact.export_row(wanted))
            written += 1
        response = Response(out.getvalue().encode(), media_type="text/csv; charset=utf-8")
        response.headers["content-disposition"] = 'attachment; filename="contacts-export.csv"'
        return response

    async def unrouted(self, call: _Call) -> Response:
        """A path or method LeadLex does not serve, past the key check: 404 in its envelope."""
        return error(404, "not_found", f"No route for {call.request.method} {_shown_path(call)}")

    # -- routing ----------------------------------------------------------------

    async def _gate(
        self, methods: dict[str, _Endpoint], scope: Scope, receive: Receive, send: Send
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
                "GET": _Endpoint("/v1/contacts/export", "read", self.export, export=True)
            },
            tags: {"POST": _Endpoint(TAGS_ROUTE, "write", self.add_tags)},
            contact: {"GET": _Endpoint("/v1/contacts/{id}", "read", self.get_contact)},
            "/v1/contacts": {"GET": _Endpoint("/v1/contacts", "read", self.list_contacts)},
        }
        return [Route(path, _Gate(self, methods)) for path, methods in table.items()]


class _Gate:
    """A route's ASGI app: an app, not a function, so that the route takes every method
    (Starlette gives a function GET only) and one it does not serve is LeadLex's 404."""

    def __init__(self, emulator: Emulator, methods: dict[str, _Endpoint]) -> None:
        self._emulator = emulator
        self._methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._emulator._gate(self._methods, scope, receive, send)


async def _drain(request: Request) -> None:
    async for _ in request.stream():
        pass


def _shown_path(call: _Call) -> str:
    return call.request.url.path.removeprefix(GATEWAY_PREFIX)
