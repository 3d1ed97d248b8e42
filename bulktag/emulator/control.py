"""The control API under ``/_emulator/``: a prefix LeadLex does not use.

Tests and the demo read the emulator's state and steer it here: contacts as
stored, request statistics and log, fault settings, the clock, keys and limits.
It needs no key; the emulator only listens on loopback.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulktag.emulator.model import DEFAULT_WORKSPACE, PERMISSIONS, Key

if TYPE_CHECKING:
    from bulktag.emulator.app import Emulator

#: How statistics name the add-tags route.
TAGS_ROUTE = "/v1/contacts/{id}/tags"

__all__ = ["control_routes"]


class _BadRequestError(ValueError):
    pass


def _json(payload: object, status: int = 200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status, media_type="application/json")


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
            return _json({"error": {"code": "validation_error", "message": message}}, 400)

    return endpoint


class _Control:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def contact(self, request: Request) -> Response:
        emulator = self.emulator
        found = emulator.contacts.get(str(request.path_params["contact_id"]).lower())
        if found is None:
            return _json({"error": {"code": "not_found", "message": "Contact not found"}}, 404)
        extra = {"workspace": found.workspace, "tag_calls": emulator.tag_calls[found.id]}
        return _json({"data": found.as_json() | extra})

    async def stats(self, request: Request) -> Response:
        emulator = self.emulator
        if request.method == "DELETE":
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
        return _json(
            {
                "requests": requests,
                "handled": dict(emulator.handled),
                "tag_calls_handled": emulator.handled[f"POST {TAGS_ROUTE}"],
                "replays": emulator.replays,
                "quota": quota,
                "clock": now,
            }
        )

    async def log(self, request: Request) -> Response:
        route = request.query_params.get("route")
        entries = [e for e in self.emulator.log if route is None or e["route"] == route]
        return _json({"data": entries})

    async def faults(self, request: Request) -> Response:
        injector = self.emulator.injector
        if request.method == "POST":
            data = await _payload(request)
            seed = data.pop("seed", None)
            storm_for = data.pop("storm_for", None)
            injector.faults = injector.faults.updated(data)
            if seed is not None:
                injector.reseed(int(seed))
            if storm_for is not None:
                self.emulator.storm_until = self.emulator.clock.now() + float(storm_for)
        return _json(injector.faults.as_json() | {"seed": injector.seed})

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
        return _json({"now": now, "iso": iso, "frozen": clock.frozen})

    async def keys(self, request: Request) -> Response:
        data = await _payload(request)
        secret = str(data["key"])
        current = self.emulator.keys.get(secret)
        default_permissions = sorted(current.permissions) if current else ["read", "write"]
        permissions = frozenset(data.get("permissions", default_permissions))
        if not permissions <= PERMISSIONS:
            raise _BadRequestError(f"permissions must be among {sorted(PERMISSIONS)}")
        expires = data.get("expires_at")
        self.emulator.keys[secret] = key = Key(
            secret=secret,
            workspace=str(
                data.get("workspace", current.workspace if current else DEFAULT_WORKSPACE)
            ),
            permissions=permissions,
            expires_at=datetime.fromisoformat(expires).timestamp() if expires else None,
            revoked=bool(data.get("revoked", False)),
        )
        return _json({"data": {"workspace": key.workspace, "permissions": sorted(permissions)}})

    async def limits(self, request: Request) -> Response:
        data = await _payload(request)
        workspace = self.emulator.workspace(str(data.pop("workspace", DEFAULT_WORKSPACE)))
        names = ("per_minute", "per_day", "export_per_hour", "used_today")
        unknown = set(data) - set(names)
        if unknown:
            raise _BadRequestError(f"unknown limit(s): {sorted(unknown)}")
        workspace.refusal(self.emulator.clock.now())  # roll the day before setting used_today
        for name in names:
            if name in data:
                setattr(workspace, name, None if data[name] is None else int(data[name]))
        return _json(
            {"data": {"workspace": workspace.name} | {n: getattr(workspace, n) for n in names}}
        )


def control_routes(emulator: Emulator) -> list[Route]:
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
