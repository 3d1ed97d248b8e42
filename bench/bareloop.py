"""A bare client loop: N add-tag calls with C workers and no bookkeeping.

``python -m bench.bareloop CLIENT URL KEY N C [--no-sniffio]``; CLIENT is httpx2,
httpx (0.28) or aiohttp. Same request as bulktag's, same connection limit.
Prints the elapsed seconds. Runs on uvloop when bulktag does (``--uvloop``).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator


def ids(n: int) -> list[str]:
    """The bench's contact ids: deterministic UUIDs (the emulator auto-creates them)."""
    return [str(uuid.UUID(int=(i + 1) * 2654435761, version=4)) for i in range(n)]


async def _workers(c: int, todo: Iterator[str], call: Callable[[str], Awaitable[None]]) -> None:
    async def worker() -> None:
        for contact in todo:  # a shared iterator: each id is taken once
            await call(contact)

    await asyncio.gather(*(worker() for _ in range(c)))


async def _httpx2(url: str, key: str, n: int, c: int) -> None:
    import httpx2

    limits = httpx2.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx2.AsyncClient(
        base_url=url, limits=limits, headers={"Authorization": f"Bearer {key}"}
    ) as client:

        async def call(contact: str) -> None:
            response = await client.post(f"/v1/contacts/{contact}/tags", json={"tags": ["vip"]})
            response.raise_for_status()

        await _workers(c, iter(ids(n)), call)


async def _httpx(url: str, key: str, n: int, c: int) -> None:
    import httpx

    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, headers={"Authorization": f"Bearer {key}"}
    ) as client:

        async def call(contact: str) -> None:
            response = await client.post(f"/v1/contacts/{contact}/tags", json={"tags": ["vip"]})
            response.raise_for_status()

        await _workers(c, iter(ids(n)), call)


async def _aiohttp(url: str, key: str, n: int, c: int) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Authorization": f"Bearer {key}"}
    ) as session:

        async def call(contact: str) -> None:
            # Whole URLs: aiohttp's base_url would drop the base's path for "/v1/..."
            async with session.post(
                f"{url}/v1/contacts/{contact}/tags", json={"tags": ["vip"]}
            ) as response:
                await response.read()
                response.raise_for_status()

        await _workers(c, iter(ids(n)), call)


CLIENTS = {"httpx2": _httpx2, "httpx": _httpx, "aiohttp": _aiohttp}


def main() -> None:
    client, url, key, n, c = sys.argv[1:6]
    if "--no-sniffio" in sys.argv:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # every import of it fails
    job = CLIENTS[client](url, key, int(n), int(c))
    started = time.perf_counter()
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(job)
    else:
        asyncio.run(job)
    print(f"{time.perf_counter() - started:.6f}")


if __name__ == "__main__":
    main()
