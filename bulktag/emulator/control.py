"""The control API under ``/_emulator/``: a prefix LeadLex does not use.

Tests and the demo read the emulator's state and steer it here: contacts as
stored, request statistics and log, fault settings, the clock, keys and limits.
It needs no key; the emulator only listens on loopback. This module is HTTP only:
what it reads and changes, the emulator does (:class:`Steerable`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulktag.emulator.model import DEFAULT_WORKSPACE, PERMISSIONS, EmulatorClock, Key
from bulktag.emulator.responses import json_response

if TYPE_CHECKING:
    from bulktag.emulator.app import Emulator

__all__ = ["Steerable", "control_routes", "statistics_of"]


class Steerable(Protocol):
    """What the control API needs of an emulator."""

    clock: EmulatorClock
    keys: dict[str, Key]

    def inspect(self, contact_id: str) -> dict[str, Any] | None: ...
    def statistics(self, *, reset: bool = False) -> dict[str, Any]: ...
    def log_entries(self, route: str | None = None) -> list[dict[str, Any]]: ...
    def steer_faults(
        self, changes: dict[str, Any], *, seed: int | None, storm_for: float | None
    ) -> dict[str, Any]: ...
    def fault_settings(self) -> dict[str, Any]: ...
    def set_key(self, key: Key) -> None: ...
    def set_limits(self, name: str, limits: dict[str, int | None]) -> dict[str, Any]: ...


#: What the control API may set of a workspace.
LIMITS = ("per_minute", "per_day", "export_per_hour", "used_today")


class _BadRequestError(ValueError):
    pass


async def _payload(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        data = json.loads(body) if body else {}
    except ValueError as exc:
        raise _BadRequestError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _BadRequestError("the body must be a JSON object")
    return data


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(method: Endpoint) -> Endpoint:
    """Turn a bad control request into a 400 that says what is wrong."""

    async def endpoint(request: Request) -> Response:
        try:
            return await method(request)
        except (ValueError, TypeError, KeyError) as exc:
            message = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            return json_response(400, {"error": {"code": "validation_error", "message": message}})

    return endpoint


class _Control:
    def __init__(self, emulator: Steerable) -> None:
        self.emulator = emulator

    async def contact(self, request: Request) -> Response:
        found = self.emulator.inspect(str(request.path_params["contact_id"]))
        if found is None:
            return json_response(
                404, {"error": {"code": "not_found", "message": "Contact not found"}}
            )
        return json_response(200, {"data": found})

    async def stats(self, request: Request) -> Response:
        return json_response(200, self.emulator.statistics(reset=request.method == "DELETE"))

    async def log(self, request: Request) -> Response:
        route = request.query_params.get("route")
        return json_response(200, {"data": self.emulator.log_entries(route)})

    async def faults(self, request: Request) -> Response:
        if request.method != "POST":
            return json_response(200, self.emulator.fault_settings())
        data = await _payload(request)
        seed = data.pop("seed", None)
        storm_for = data.pop("storm_for", None)
        settings = self.emulator.steer_faults(
            data,
            seed=None if seed is None else int(seed),
            storm_for=None if storm_for is None else float(storm_for),
        )
        return json_response(200, settings)

    async def clock(self, request: Request) -> Response:
        clock = self.emulator.clock
        if request.method == "POST":
            data = await _payload(request)
            if "frozen" in data:
                clock.freeze(bool(data["frozen"]))
            if "advance_seconds" in data:
                clock.advance(float(data["advance_seconds"]))
        now = clock.now()
        iso = datetime.fromtimestamp(now, UTC).isoformat()
        return json_response(200, {"now": now, "iso": iso, "frozen": clock.frozen})

    async def keys(self, request: Request) -> Response:
        data = await _payload(request)
        secret = str(data["key"])
        current = self.emulator.keys.get(secret)
        default_permissions = sorted(current.permissions) if current else ["read", "write"]
        permissions = frozenset(data.get("permissions", default_permissions))
        if not permissions <= PERMISSIONS:
            raise _BadRequestError(f"permissions must be among {sorted(PERMISSIONS)}")
        expires = data.get("expires_at")
        key = Key(
            secret=secret,
            workspace=str(
                data.get("workspace", current.workspace if current else DEFAULT_WORKSPACE)
            ),
            permissions=permissions,
            expires_at=datetime.fromisoformat(expires).timestamp() if expires else None,
            revoked=bool(data.get("revoked", False)),
        )
        self.emulator.set_key(key)
        body = {"data": {"workspace": key.workspace, "permissions": sorted(permissions)}}
        return json_response(200, body)

    async def limits(self, request: Request) -> Response:
        data = await _payload(request)
        name = str(data.pop("workspace", DEFAULT_WORKSPACE))
        unknown = set(data) - set(LIMITS)
        if unknown:
            raise _BadRequestError(f"unknown limit(s): {sorted(unknown)}")
        limits = {n: None if data[n] is None else int(data[n]) for n in LIMITS if n in data}
        return json_response(200, {"data": self.emulator.set_limits(name, limits)})


def control_routes(emulator: Steerable) -> list[Route]:
    """The ``/_emulator/`` routes, bound to one emulator."""
    control = _Control(emulator)
    return [
        Route("/_emulator/contacts/{contact_id}", _guarded(control.contact), methods=["GET"]),
        Route("/_emulator/stats", _guarded(control.stats), methods=["GET", "DELETE"]),
        Route("/_emulator/log", _guarded(control.log), methods=["GET"]),
        Route("/_emulator/faults", _guarded(control.faults), methods=["GET", "POST"]),
        Route("/_emulator/clock", _guarded(control.clock), methods=["GET", "POST"]),
        Route("/_emulator/keys", _guarded(control.keys), methods=["POST"]),
        Route("/_emulator/limits", _guarded(control.limits), methods=["POST"]),
    ]


def statistics_of(emulator: Emulator, *, reset: bool = False) -> dict[str, Any]:
    """Requests by route and status, calls handled, replays, quota per workspace
    (``reset``: forget the requests, calls and log first)."""
    if reset:
        emulator.requests.clear()
        emulator.handled.clear()
        emulator.tag_calls.clear()
        emulator.replays = 0
        emulator.log.clear()
    requests: dict[str, dict[str, int]] = defaultdict(dict)
    for (route, status), count in sorted(emulator.requests.items()):
        requests[route][status] = count
    now = emulator.clock.now()
    quota = {}
    for name, workspace in emulator.workspaces.items():
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
        "handled": dict(emulator.handled),
        "tag_calls_handled": emulator.handled["POST /v1/contacts/{id}/tags"],
        "replays": emulator.replays,
        "quota": quota,
        "clock": now,
    }
