"""A minimal HTTP/1.1 keep-alive load generator, used when ``wrk`` is not installed.

It runs in its own process (one core), sends the same request on each of
``connections`` sockets in a loop for ``seconds`` and counts complete answers.
Run: ``python -m bench.loadgen URL SECONDS CONNECTIONS`` -> prints requests/s.
"""

from __future__ import annotations

import asyncio
import sys
import time
from urllib.parse import urlsplit

BODY = b'{"tags":["vip","legal"]}'


def request_bytes(host: str, path: str, key: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


async def _connection(
    host: str, port: int, request: bytes, deadline: float, counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            counts[0] += 1
            if not head.startswith(b"HTTP/1.1 200"):
                counts[1] += 1
    finally:
        writer.close()


async def _run(
    url: str, path: str, key: str, seconds: float, connections: int
) -> tuple[float, int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = request_bytes(f"{host}:{port}", path, key)
    counts = [0, 0]
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(
        *(_connection(host, port, request, deadline, counts) for _ in range(connections))
    )
    return counts[0] / (time.monotonic() - start), counts[1]


def main() -> None:
    url, path, key, seconds, connections = sys.argv[1:6]
    job = _run(url, path, key, float(seconds), int(connections))
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        rate, errors = asyncio.run(job)
    else:
        rate, errors = uvloop.run(job)
    print(f"{rate:.1f} {errors}")


if __name__ == "__main__":
    main()
