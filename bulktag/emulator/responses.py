"""The emulator's HTTP answers: JSON as LeadLex writes it, its error envelope, and the
answers fault injection needs (a dropped connection, a body sent late).

Both the API (:mod:`bulktag.emulator.app`) and the control API
(:mod:`bulktag.emulator.control`) answer through :func:`json_response`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import anyio.lowlevel
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = [
    "DROP_EXTENSION",
    "ConnectionDroppedError",
    "DropConnection",
    "SlowResponse",
    "error",
    "json_response",
    "parse_json",
    "rate_limited",
]

#: The ASGI scope extension through which the server lets the app drop a connection.
DROP_EXTENSION = "bulktag.drop_connection"


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> object:
    """Strict JSON: NaN and Infinity are refused; raises ValueError (RecursionError for
    nesting too deep for the parser)."""
    return json.loads(body, parse_constant=_reject_constant)


class ConnectionDroppedError(Exception):
    """Raised in-process (no server to drop a connection) where a drop was injected."""


def json_response(status: int, payload: object) -> Response:
    """``payload`` as compact JSON (UTF-8, not ASCII-escaped), as LeadLex answers."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type="application/json")


def error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response:
    """LeadLex's error envelope."""
    envelope: dict[str, Any] = {"code": code, "message": message}
    if fields:
        envelope["details"] = {"fields": fields}
    return json_response(status, {"error": envelope})


def rate_limited(message: str, retry_after: float | None) -> Response:
    response = error(429, "rate_limited", message)
    if retry_after is not None:
        response.headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    return response


class DropConnection(Response):
    """Closes the connection without a byte of answer."""

    def __init__(self) -> None:
        super().__init__(status_code=599)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        drop = scope.get("extensions", {}).get(DROP_EXTENSION)
        if drop is None:
            raise ConnectionDroppedError
        drop()
        # Let the server see the connection go before the app returns.
        await anyio.lowlevel.checkpoint()


class SlowResponse(Response):
    """Sends the headers at once and the body after ``delay`` seconds."""

    def __init__(self, inner: Response, delay: float) -> None:
        super().__init__(bytes(inner.body), status_code=inner.status_code)
        self.raw_headers = list(inner.raw_headers)
        self.delay = delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await anyio.sleep(self.delay)
        await send({"type": "http.response.body", "body": self.body})
