"""Serving the emulator: over loopback with uvicorn, or in-process through httpx2.

Over loopback, an injected "dropped connection" really closes the socket (the
server lends the app its transport's ``close`` through an ASGI scope extension).
In-process, :class:`EmulatorTransport` turns the same fault into the exception a
real socket produces, so client code cannot tell the two apart.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx2
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bulktag.config import is_loopback
from bulktag.emulator.app import Emulator
from bulktag.emulator.responses import DROP_EXTENSION, ConnectionDroppedError

__all__ = ["EmulatorTransport", "serve"]


class EmulatorTransport(httpx2.AsyncBaseTransport):
    """Drives an :class:`Emulator` in-process, as ``httpx2.ASGITransport`` does.

    An injected drop surfaces as ``httpx2.RemoteProtocolError``, the error a
    client sees when a server closes the connection without answering.
    """

    def __init__(self, emulator: Emulator) -> None:
        self._asgi = httpx2.ASGITransport(app=emulator)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except ConnectionDroppedError:
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None


class _DroppingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, lending each request a way to drop its connection."""

    def on_headers_complete(self) -> None:
        # The scope is created per request in on_message_begin; the ASGI task it
        # is handed to starts after this method returns.
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        # close(), not abort(): a FIN without an answer, as a crashed upstream gives.
        extensions[DROP_EXTENSION] = self.transport.close
        super().on_headers_complete()


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal after its graceful shutdown; a stop we
        # were asked for is a clean exit (status 0), not a death by signal.
        self._captured_signals.clear()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._on_ready()


def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    base_path: str = "",
    announce: Callable[[str], dict[str, Any]] | None = None,
    backlog: int = 4096,
    tls: tuple[Path, Path] | None = None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM.

    Once connections are accepted, prints one JSON line: ``{"url": ROOT + base_path}``
    plus ``announce(ROOT)`` (for the emulator: its control URL, keys and plan), where
    ROOT is ``http://HOST:PORT`` (``https://`` with ``tls``: a certificate file and its
    key file, PEM).
    """
    if not is_loopback(host):
        raise ValueError(f"the emulator only listens on loopback, not {host!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    bound = sock.getsockname()[1]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    root = f"{'https' if tls else 'http'}://{shown_host}:{bound}"

    def ready() -> None:
        line = {"url": root + base_path} | (announce(root) if announce else {})
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    config = uvicorn.Config(
        app,
        http=_DroppingProtocol,
        loop=_loop(),
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=backlog,
        timeout_keep_alive=60,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    _Server(config, ready).run(sockets=[sock])


def _loop() -> str:
    try:
        import uvloop  # noqa: F401, PLC0415  (optional: not on Windows)
    except ImportError:  # pragma: no cover
        return "asyncio"
    return "uvloop"
