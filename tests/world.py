"""A world for end-to-end tests: an in-process emulator and bulktag on one virtual clock.

``world.run(args)`` calls the real ``bulktag run`` command in-process under trio
with ``MockClock(autojump_threshold=0)``: the emulator and bulktag share one
virtual time, so a run that takes five minutes of rate limiting takes
milliseconds, and tests can assert exact schedules.
"""

from __future__ import annotations

import csv
import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import polars as pl
import trio.testing

from bulktag.cli.commands import main
from bulktag.clock import SourceClock
from bulktag.emulator import (
    Contact,
    Emulator,
    EmulatorClock,
    EmulatorTransport,
    Key,
    generate_contacts,
)
from bulktag.run.runner import Runtime
from tests.constants import API_URL, KEY, T0

URL = API_URL

#: Builds an emulator for a test (the ``make_emulator`` fixture).
EmulatorFactory = Callable[..., Emulator]


class Crash(BaseException):
    """The process dies here (what kill -9 does, without a process)."""


async def inline(function: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking call on the loop: a thread would let virtual time jump ahead."""
    return function(*args)


class _Hooked(httpx2.AsyncBaseTransport):
    """The emulator's transport, with hooks that may act before and after each request."""

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        hook: Callable[[httpx2.Request], None] | None,
        after: Callable[[httpx2.Request, httpx2.Response], None] | None,
    ) -> None:
        self._inner = inner
        self._hook = hook
        self._after = after

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._hook is not None:
            self._hook(request)
        response = await self._inner.handle_async_request(request)
        if self._after is not None:
            self._after(request, response)
        return response


@dataclass
class World:
    """An emulator, a virtual clock, and a folder; ``run`` is the real command."""

    emulator: Emulator
    clock: trio.testing.MockClock
    folder: Path
    environ: dict[str, str] = field(default_factory=dict)
    hook: Callable[[httpx2.Request], None] | None = None
    #: acts after the emulator answered (a kill after a call was applied, say)
    after: Callable[[httpx2.Request, httpx2.Response], None] | None = None
    handle_signals: bool = False  #: the command's own SIGTERM handling, on this process
    runs: int = 0
    slice_rows: int | None = None  #: plan rows at a time (Runtime.slice_rows)
    clock_offset: float = 0.0  #: bulktag's wall clock this far from the emulator's (s)

    def __post_init__(self) -> None:
        if not self.environ:
            self.environ = {"LEADLEX_API_KEY": KEY, "BULKTAG_STATE_DIR": str(self.folder / "state")}

    @property
    def contact_ids(self) -> list[str]:
        return self.emulator.contact_ids()

    def runtime(self) -> Runtime:
        transport: httpx2.AsyncBaseTransport = EmulatorTransport(self.emulator)
        if self.hook is not None or self.after is not None:
            transport = _Hooked(transport, self.hook, self.after)
        return Runtime(
            transport=transport,
            clock=SourceClock(self.clock.current_time, T0 + self.clock_offset),
            backend="trio",
            backend_options={"clock": self.clock},
            environ=self.environ,
            handle_signals=self.handle_signals,
            seed=1,
            offload=inline,
            slice_rows=self.slice_rows,
        )

    def run(self, *args: str, out: str | None = None) -> tuple[int, Path]:
        """``bulktag run ARGS --out DIR --api-url URL``; returns (exit code, run folder)."""
        self.runs += 1
        run_dir = self.folder / (out or f"run{self.runs}")
        argv = ["run", *args, "--out", str(run_dir)]
        if "--api-url" not in args:
            argv += ["--api-url", URL]
        return main(argv, runtime=self.runtime()), run_dir

    def run_job(self, job: Path, *args: str) -> tuple[int, Path | None]:
        """``bulktag run --job JOB ARGS --api-url URL``; returns (exit code, newest run folder:
        of ``dry-runs/`` for a ``--dry-run``)."""
        code = main(["run", "--job", str(job), *args, "--api-url", URL], runtime=self.runtime())
        kind = "dry-runs" if "--dry-run" in args else "runs"
        runs = (
            sorted((self.folder / "job" / kind).glob("*")) if (self.folder / "job").exists() else []
        )
        return code, (runs[-1] if runs else None)

    def crash_after(self, calls: int, *, applied: bool = False) -> None:
        """The add-tags call after ``calls`` more kills the command (:class:`Crash`): before
        the emulator sees it, or once it has applied it (``applied``). Others pass."""
        seen = {"n": 0}

        def count(request: httpx2.Request) -> bool:
            if request.method == "POST" and request.url.path.endswith("/tags"):
                seen["n"] += 1
            return seen["n"] > calls

        def before(request: httpx2.Request) -> None:
            if not applied and count(request):
                raise Crash

        def after(request: httpx2.Request, response: httpx2.Response) -> None:
            if applied and count(request):
                raise Crash

        self.hook, self.after = before, after

    def crashing(self, *args: str) -> None:
        """``bulktag run ARGS`` (a job's when ARGS start with --job) that must meet its crash."""
        try:
            if args[:1] == ("--job",):
                self.run_job(Path(args[1]), *args[2:])
            else:
                self.run(*args)
        except BaseException as exc:
            crashed = isinstance(exc, Crash) or (
                isinstance(exc, BaseExceptionGroup) and exc.subgroup(Crash) is not None
            )
            if not crashed:
                raise
        else:
            raise AssertionError("the command did not crash")
        finally:
            self.hook = self.after = None

    def write_job(self, text: str, name: str = "job.toml") -> Path:
        """A job file whose ``out`` is ``<folder>/job``; TEXT adds keys and sections."""
        path = self.folder / name
        path.write_text(f'out = "job"\n{text}', encoding="utf-8")
        return path

    def workspace_used(self, calls: int) -> None:
        """Set the default workspace's calls used today (rolling the day first)."""
        workspace = self.emulator.workspace("default")
        workspace.refusal(self.emulator.clock.now())
        workspace.used_today = calls

    def next_night(self, hour: float = 2.5) -> None:
        """Move the virtual clock to HOUR o'clock UTC of the next day."""
        now = T0 + self.clock.current_time()
        midnight = (now // 86_400 + 1) * 86_400
        self.clock.jump(midnight + hour * 3600 - now)

    def write_csv(
        self,
        name: str,
        rows: Iterable[Sequence[str]],
        header: Sequence[str] = ("contact_id", "tags"),
    ) -> Path:
        path = self.folder / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    def job_fingerprint(self, job: str = "job") -> dict[str, str]:
        """What a dry run must leave as it was: the job's folder (but its dry runs), its
        state (as data), carry-over, history, and the user's quota store (as data)."""
        folder = self.folder / job
        found = {}
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if relative.startswith("dry-runs") or path.name.endswith(("-wal", "-shm")):
                continue
            if path.suffix == ".sqlite":
                found[relative] = _dump(path)
            elif path.is_file():
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[relative] = "folder"
        store = Path(self.environ["BULKTAG_STATE_DIR"]) / "quota.sqlite"
        found["quota store"] = _dump(store) if store.exists() else "none"
        return found

    def tags_of(self, contact_id: str) -> list[str]:
        return list(self.emulator.contacts[contact_id].tags)

    def handled_tag_calls(self) -> int:
        return self.emulator.handled["POST /v1/contacts/{id}/tags"]

    def statuses(self) -> dict[str, int]:
        return {
            status: n
            for (route, status), n in self.emulator.requests.items()
            if route.endswith("/tags")
        }


def _dump(path: Path) -> str:
    """A SQLite file's content as SQL, read only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


def read_results(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.read_parquet(path)


def new_world(folder: Path, contacts: int = 60, **options: Any) -> World:
    """An emulator with ``contacts`` untagged contacts on a fresh virtual clock."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    emulator_clock = EmulatorClock(start=T0, source=clock.current_time)
    emulator_clock.now()  # pin the emulator's origin to virtual time 0
    listed: list[Contact] = list(generate_contacts(contacts, seed=3))
    for contact in listed:
        contact.tags.clear()
    settings: dict[str, Any] = {
        "plan": "pro",
        "keys": [Key(KEY, "default", frozenset({"read", "write"}))],
        "contacts": listed,
        "clock": emulator_clock,
    }
    settings.update(options)
    folder.mkdir(parents=True, exist_ok=True)
    return World(Emulator(**settings), clock, folder)


def sliding_window_max(times: Sequence[float], window: float = 60.0) -> int:
    """The most calls in any (t - window, t] interval, as the server counts them."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window + 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best
