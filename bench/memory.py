"""Memory: what a whole run holds (read to results), phase by phase.

``python -m bench.memory N`` (a worker) runs bulktag end to end on an N-row input
against a ``httpx2.MockTransport`` (the network does not change what a process
holds) while a thread samples its resident set (``/proc/self/statm``, every
10 ms). It prints, per phase, the RSS at the phase's start and its peak during
the phase: planning (reading, normalising, grouping, the plan written, what is
left to send), dispatch (``Dispatcher.run``: every contact sent and its outcome
committed) and publishing (the results, failures and rejects written). Dispatch
must not grow with the number of contacts: its peak at most 50 MiB above the RSS
it started from, at every size. (``ru_maxrss`` alone cannot show this: the
planning's peak, reached first, hides whatever stays below it.) ``run()`` starts
the worker with polars' allocator returning freed pages at once (``FREE_AT_ONCE``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import polars as pl

from bench.common import API_URL, WORK, Section
from bench.overhead import handler

LIMIT_MIB = 50
#: polars' allocator (jemalloc) returns freed pages at once, so RSS follows what is live
#: (by default it keeps them ~10 s, and a phase would inherit the previous one's pages).
FREE_AT_ONCE = "dirty_decay_ms:0,muzzy_decay_ms:0"
PHASES = ("planning", "dispatch", "publishing")
STATM = Path("/proc/self/statm")  # Linux: size, resident, ... in pages


class Sampler(threading.Thread):
    """Samples the process's current RSS: each phase's RSS at its start, and its peak."""

    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self._interval = interval
        self._page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._phase = ""
        self.start_kib: dict[str, int] = {}
        self.peak_kib: dict[str, int] = {}

    def rss_kib(self) -> int:
        return int(STATM.read_text(encoding="ascii").split()[1]) * self._page_kib

    def enter(self, phase: str) -> None:
        """End the current phase (one last sample) and start ``phase`` ("" for none)."""
        self.sample()
        rss = self.rss_kib()
        with self._lock:
            self._phase = phase
            if phase:
                self.start_kib[phase] = self.peak_kib[phase] = rss

    def sample(self) -> None:
        rss = self.rss_kib()
        with self._lock:
            if self._phase:
                self.peak_kib[self._phase] = max(self.peak_kib[self._phase], rss)

    def run(self) -> None:
        while not self._done.wait(self._interval):
            self.sample()

    def stop(self) -> None:
        self._done.set()
        self.join()
        self.enter("")


def data(rows: int) -> Path:
    """rows lines, about 4 tags per contact, a contact's rows scattered (seeded)."""
    path = WORK / f"memory-{rows}.csv"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    contacts = max(1, rows // 4)
    frame = pl.DataFrame({"n": pl.arange(0, rows, eager=True)}).select(
        contact_id=(pl.col("n").hash(seed=7) % contacts)
        .cast(pl.String)
        .str.zfill(12)
        .map_elements(lambda s: f"6f1c1d5e-1c2b-4c8e-9a7e-{s}", return_dtype=pl.String),
        tag=pl.format("tag-{}", pl.col("n").hash(seed=11) % 40),
    )
    frame.write_csv(path)
    return path


def worker(rows: int) -> None:
    import bulktag.run.runner
    from bulktag.cli.commands import main
    from bulktag.send.dispatch import Dispatcher

    folder = Path(tempfile.mkdtemp(prefix="bulktag-memory-"))
    source = WORK / f"memory-{rows}.csv"  # written by run(): generating it here would count
    runtime = bulktag.run.runner.Runtime(
        transport=httpx2.MockTransport(handler),
        environ={"LEADLEX_API_KEY": "wbk_bench", "BULKTAG_STATE_DIR": str(folder / "state")},
        handle_signals=False,
    )
    sampler = Sampler()
    dispatch = Dispatcher.run

    async def dispatching(self: Dispatcher, *args: Any, **kwargs: Any) -> None:
        sampler.enter("dispatch")  # the plan is on disk, and what is left to send
        try:
            await dispatch(self, *args, **kwargs)
        finally:
            sampler.enter("publishing")

    Dispatcher.run = dispatching  # type: ignore[method-assign]  # the probe wraps it
    args = [str(source), "--plan", "unmetered", "--out", str(folder / "run")]
    sampler.enter("planning")
    sampler.start()
    started = time.perf_counter()
    main(["run", *args, "--api-url", API_URL, "-q"], runtime=runtime)
    seconds = time.perf_counter() - started
    sampler.stop()
    summary = json.loads((folder / "run" / "summary.json").read_text())
    print(
        json.dumps(
            {
                "start_kib": sampler.start_kib,
                "peak_kib": sampler.peak_kib,
                "seconds": seconds,
                "contacts": summary["contacts"]["planned"],
                "ok": summary["contacts"].get("ok"),
            }
        )
    )


def empty_section() -> Section:
    return Section(
        key="memory",
        title="Memory: RSS of a whole run, phase by phase",
        method=(
            "One `bulktag run` process reading an N-row long CSV (about 4 tags per contact) to "
            "results, against `httpx2.MockTransport` (the network does not change what a process "
            "holds), while a thread samples its resident set every 10 ms; polars' allocator "
            f"set to return freed pages at once (`_RJEM_MALLOC_CONF={FREE_AT_ONCE}`), so RSS "
            "follows what is live. Planning: read, normalise, group, write the plan and what is "
            "left to send. Dispatch: every contact sent and committed (the plan read back in "
            "slices of 10,000). Publishing: results, failures, rejects written. Growth is a "
            "phase's peak less the RSS it started from. Target: dispatch grows at most "
            f"{LIMIT_MIB} MiB, at every size. Whole run: the highest sample (not `ru_maxrss`, "
            "which a child started from a larger parent inherits on Linux)."
        ),
        columns=[
            "rows",
            "contacts",
            "planning peak MiB",
            "dispatch start MiB",
            "dispatch growth MiB",
            "publishing growth MiB",
            "whole-run peak MiB",
            "run seconds",
        ],
    )


def run(*, quick: bool) -> Section:
    section = empty_section()
    for rows in (100_000,) if quick else (100_000, 1_000_000, 10_000_000):
        data(rows)  # before the worker starts: its peak is the run's alone
        out = subprocess.run(
            [sys.executable, "-m", "bench.memory", str(rows)],
            env=os.environ | {"_RJEM_MALLOC_CONF": FREE_AT_ONCE},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        add_row(section, rows, json.loads(out))
    return section


def add_row(section: Section, rows: int, result: dict[str, Any]) -> None:
    """One worker's figures as a row of the table, and its verdict."""
    start = {k: v / 1024 for k, v in result["start_kib"].items()}
    peak = {k: v / 1024 for k, v in result["peak_kib"].items()}
    growth = {k: peak[k] - start[k] for k in PHASES}
    section.rows.append(
        [
            rows,
            result["contacts"],
            peak["planning"],
            start["dispatch"],
            growth["dispatch"],
            growth["publishing"],
            max(peak.values()),
            result["seconds"],
        ]
    )
    section.figures[str(rows)] = result
    verdict = "met" if growth["dispatch"] <= LIMIT_MIB else "NOT met"
    section.notes.append(
        f"{rows:,} rows: dispatching {result['contacts']:,} contacts grew the RSS by "
        f"{growth['dispatch']:.0f} MiB ({verdict}); publishing by "
        f"{growth['publishing']:.0f} MiB."
    )


if __name__ == "__main__":
    worker(int(sys.argv[1]))
