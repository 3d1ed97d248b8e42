"""Where a dispatch's time goes: httpcore2's pool, counted, around a real run.

``python -m bench.poolstats OUT.json bulktag run ...`` or
``python -m bench.poolstats OUT.json bareloop httpx2 URL KEY N C --uvloop`` runs the
command in this process with two probes, and writes what they counted:

- every time the pool re-assigns connections (twice a request: when it comes and
  when its response is closed), how many connections it holds, how many are idle,
  and how many requests it holds. The pool polls every idle connection's socket
  (``has_expired`` -> ``is_socket_readable``) each time, so idle connections cost
  every other request;
- the seconds the workers spent, summed, in each phase of a bulktag run: waiting
  for a contact, in the HTTP call, waiting for the outcome to be committed.

A bench diagnostic only: it patches httpcore2 and bulktag from the outside.
"""

from __future__ import annotations

import atexit
import functools
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpcore2._async.connection_pool as pool_module
from anyio.streams import memory

from bench.bareloop import main as bareloop
from bulktag.cli.commands import main as bulktag
from bulktag.send.dispatch import Dispatcher
from bulktag.state.journal import Journal

counts: Counter[str] = Counter()
seconds: dict[str, float] = defaultdict(float)


def _count_pool() -> None:
    pool = pool_module.AsyncConnectionPool
    assign = pool._assign_requests_to_connections

    def probe(self: Any) -> Any:
        counts["pool events"] += 1
        counts["connections"] += len(self._connections)
        counts["idle connections"] += sum(c.is_idle() for c in self._connections)
        counts["requests in the pool"] += len(self._requests)
        return assign(self)

    pool._assign_requests_to_connections = probe  # type: ignore[method-assign]  # the probe wraps it


def _time(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - started

    setattr(owner, name, timed)


def _time_sync(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - started

    setattr(owner, name, timed)


def _report(out: Path, started: float) -> None:
    events = counts["pool events"] or 1
    out.write_text(
        json.dumps(
            {
                "wall_seconds": time.perf_counter() - started,
                "pool_events": counts["pool events"],
                "connections_per_event": counts["connections"] / events,
                "idle_per_event": counts["idle connections"] / events,
                "requests_per_event": counts["requests in the pool"] / events,
                "worker_seconds": dict(seconds),
            }
        ),
        encoding="utf-8",
    )


def main() -> None:
    out, program, *args = sys.argv[1:]
    _count_pool()
    atexit.register(_report, Path(out), time.perf_counter())
    if program == "bareloop":
        sys.argv = ["bareloop", *args]
        bareloop()
        return
    _time(memory.MemoryObjectReceiveStream, "receive", "waiting for a contact")
    _time(Dispatcher, "_send", "in the HTTP call")
    _time_sync(Journal, "record", "waiting for the commit")
    sys.argv = ["bulktag", *args]
    bulktag()


if __name__ == "__main__":
    main()
