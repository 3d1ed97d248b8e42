"""What the environment provides to a run: the transport, the clock, the event loop, the
environment variables and signals. Tests inject their own :class:`Runtime`.

Importing this module is cheap (nothing of httpx2 or anyio until a run needs it), so the
command line can read the environment through :func:`environment` at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx2

    from bulktag.clock import Clock

__all__ = ["Offload", "Runtime", "environment"]

#: Runs a blocking call away from the event loop (``anyio.to_thread.run_sync``).
Offload = Callable[..., Awaitable[Any]]


def _fast_loop() -> dict[str, Any]:
    """uvloop when it is installed (it is a dependency, except on Windows)."""
    try:
        import uvloop  # noqa: F401, PLC0415  (imported to learn whether it is installed)
    except ImportError:  # pragma: no cover
        return {}
    return {"use_uvloop": True}


def _loop_clock() -> Clock:
    from bulktag.clock import LoopClock  # noqa: PLC0415  (anyio only when a run starts)

    return LoopClock()


def _to_thread() -> Offload:
    import anyio.to_thread  # noqa: PLC0415  (anyio only when a run starts)

    return anyio.to_thread.run_sync


@dataclass(frozen=True)
class Runtime:
    """What the environment provides; tests replace it."""

    transport: httpx2.AsyncBaseTransport | None = None
    clock: Clock = field(default_factory=_loop_clock)
    backend: str = "asyncio"
    backend_options: Mapping[str, Any] | None = field(default_factory=_fast_loop)
    environ: Mapping[str, str] | None = field(default=None, repr=False)  # may hold the key
    handle_signals: bool = True
    seed: int | None = None
    #: Runs blocking calls (plan queries, plan reads) off the event loop. Tests on
    #: a virtual clock run them inline: a thread would let virtual time jump ahead.
    offload: Offload = field(default_factory=_to_thread)
    #: Plan rows taken at a time where the plan meets the journal and where outputs are
    #: written (None: each stage's own size, see journal.SLICE_ROWS, publish.WRITE_ROWS).
    #: Tests make it small to cross many slices with a few contacts.
    slice_rows: int | None = None

    @property
    def env(self) -> Mapping[str, str]:
        return environment(self)


def environment(runtime: Runtime | None) -> Mapping[str, str]:
    """The environment variables a run sees: the runtime's, else the process's."""
    return os.environ if runtime is None or runtime.environ is None else runtime.environ
