"""A call as the emulator's gateway sees it: the endpoint it is routed to (with the
permission it needs), the request with its body read within bounds, its workspace and
time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from bulktag.emulator.model import (
    Workspace,
)

__all__ = ["CONTROL_PREFIX", "GATEWAY_PREFIX", "MAX_BODY", "Handler"]


#: The path of LeadLex's documented base URL: the API is served below it, and only there.
GATEWAY_PREFIX = "/functions/v1/api-gateway"


CONTROL_PREFIX = "/_emulator"


#: The largest request body the gateway reads (100 tags of 100 characters take ~10 KB).
MAX_BODY = 1 << 20


Handler = Callable[["Call"], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One LeadLex route: its name in statistics, the permission it needs, its handler."""

    route: str
    permission: str | None  #: None: no permission (an unrouted call's 404)
    handler: Handler
    export: bool = False


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the request, its body (read once, bounded), the workspace, time."""

    request: Request
    body: bytes
    workspace: Workspace
    now: float


class BodyTooLargeError(Exception):
    pass


async def bounded_body(request: Request) -> bytes:
    """The body, read to its end (an unread rest would reset the connection), kept up to
    :data:`MAX_BODY`; raises :class:`BodyTooLargeError` beyond."""
    kept, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY:
            kept.append(chunk)
    if size > MAX_BODY:
        raise BodyTooLargeError
    return b"".join(kept)


async def drain(request: Request) -> None:
    async for _ in request.stream():
        pass


def shown_path(call: Call) -> str:
    return call.request.url.path.removeprefix(GATEWAY_PREFIX)
