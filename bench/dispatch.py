"""Dispatch overhead: bulktag run's contacts/s against bare client loops, same server.

Every candidate sends N add-tag calls with C in flight to one `bulktag emulator
--plan unmetered --auto-create` process; the rate is read from the emulator's own
log (first to last handled call), so every candidate is timed the same way and
bulktag's start-up and planning are left out. Bare loops: httpx 0.28, httpx2
and aiohttp, with the same connection limit and no bookkeeping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx2

from bench.bareloop import ids
from bench.common import Section, emulator, median

TARGET_VS_HTTPX2 = 0.9


def _rate(control: httpx2.Client, n: int) -> float:
    log = control.get("/log", params={"route": "/v1/contacts/{id}/tags"}).json()["data"]
    times = [e["t"] for e in log if e["handled"]]
    assert len(times) == n, (len(times), n)
    return float((n - 1) / (max(times) - min(times)))


def _bulktag_run(
    url: str, key: str, n: int, c: int, folder: Path
) -> tuple[list[str], dict[str, str]]:
    """The ``bulktag run`` arguments and environment for N contacts at concurrency C."""
    source = folder / f"in-{n}.csv"
    if not source.exists():
        source.write_text("contact_id,tags\n" + "".join(f"{i},vip\n" for i in ids(n)))
    env = os.environ | {
        "LEADLEX_API_KEY": key,
        "LEADLEX_API_URL": url,
        "BULKTAG_STATE_DIR": str(folder / "state"),
    }
    out = Path(tempfile.mkdtemp(dir=folder)) / "run"
    args = ["run", str(source), "--plan", "unmetered", "--concurrency", str(c)]
    return [*args, "--out", str(out), "-q"], env


def _bulktag(url: str, key: str, n: int, c: int, folder: Path) -> None:
    args, env = _bulktag_run(url, key, n, c, folder)
    subprocess.run([sys.executable, "-m", "bulktag", *args], env=env, check=True)


def _bare(client: str, url: str, key: str, n: int, c: int, *flags: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "bench.bareloop", client, url, key, str(n), str(c), *flags],
        check=True,
        capture_output=True,
        text=True,
    )


def _poolstats(folder: Path, program: list[str], env: dict[str, str] | None = None) -> Any:
    out = folder / "poolstats.json"
    subprocess.run(
        [sys.executable, "-m", "bench.poolstats", str(out), *program],
        env=env,
        check=True,
        capture_output=True,
    )
    return json.loads(out.read_text(encoding="utf-8"))


def _where_time_goes(
    control: httpx2.Client, url: str, key: str, n: int, folder: Path, *, c: int = 32
) -> list[str]:
    """One probed run of each (bench/poolstats.py): the pool's idle connections, and
    where bulktag's workers wait."""
    control.delete("/stats")
    bare = _poolstats(folder, ["bareloop", "httpx2", url, key, str(n), str(c), "--uvloop"])
    control.delete("/stats")
    args, env = _bulktag_run(url, key, n, c, folder)
    ours = _poolstats(folder, ["bulktag", *args], env)
    busy = ours["worker_seconds"]
    total = sum(busy.values()) or 1.0
    shares = ", ".join(f"{label} {100 * s / total:.0f} %" for label, s in busy.items())
    return [
        f"where the time goes, concurrency {c} (one probed run each, bench/poolstats.py): "
        f"at each pool event (two per request) the pool held {ours['idle_per_event']:.1f} "
        f"idle connections for bulktag and {bare['idle_per_event']:.1f} for the bare loop; "
        "httpcore2 polls the socket of every idle connection at every event. bulktag's "
        f"workers' time: {shares}. See docs/performance.md.",
    ]


def run(*, quick: bool) -> Section:
    n, runs, levels = (2000, 3, (32,)) if quick else (20000, 5, (8, 32, 128))
    section = Section(
        key="dispatch",
        title="Dispatch overhead: contacts per second against one emulator",
        method=(
            f"{n:,} add-tag calls per run to `bulktag emulator --plan unmetered --auto-create`, "
            f"rate from the emulator's log (first to last handled call), median of {runs} runs. "
            "bulktag: `bulktag run --plan unmetered --concurrency C` (journal, limiter, budget, "
            "retries, recorder all on). Bare loops: C asyncio workers, the same connection "
            "limit, no bookkeeping, on uvloop like bulktag. Target: bulktag at least "
            f"{TARGET_VS_HTTPX2}x the bare httpx2 loop."
        ),
        columns=[
            "concurrency",
            "client",
            "median calls/s",
            "runs",
            "vs bare httpx2",
            "vs bare aiohttp",
        ],
    )
    candidates = ["bulktag", "httpx2", "httpx", "aiohttp"]
    folder = Path(tempfile.mkdtemp(prefix="bulktag-bench-dispatch-"))
    with emulator("--plan", "unmetered", "--auto-create") as ready:
        url, key = ready["url"], next(iter(ready["keys"]))
        with httpx2.Client(base_url=ready["control"], timeout=60) as control:
            for c in levels:
                rates: dict[str, list[float]] = {name: [] for name in candidates}
                for _ in range(runs):
                    for name in candidates:  # interleaved: drift hits every candidate alike
                        control.delete("/stats")
                        if name == "bulktag":
                            _bulktag(url, key, n, c, folder)
                        else:
                            _bare(name, url, key, n, c, "--uvloop")
                        rates[name].append(_rate(control, n))
                medians = {name: median(values) for name, values in rates.items()}
                for name in candidates:
                    section.rows.append(
                        [
                            c,
                            name if name == "bulktag" else f"bare {name}",
                            medians[name],
                            ", ".join(f"{r:,.0f}" for r in rates[name]),
                            f"{medians[name] / medians['httpx2']:.2f}x",
                            f"{medians[name] / medians['aiohttp']:.2f}x",
                        ]
                    )
                section.figures[f"c{c}"] = medians
                ratio = medians["bulktag"] / medians["httpx2"]
                verdict = "met" if ratio >= TARGET_VS_HTTPX2 else "NOT met"
                section.notes.append(
                    f"concurrency {c}: bulktag / bare httpx2 = {ratio:.2f}x ({verdict})"
                )
            section.notes += _where_time_goes(control, url, key, n, folder)
            # sniffio: does httpx2 need it declared? The same bare loop with its import blocked.
            sniff: dict[str, list[float]] = {"with": [], "without": []}
            for _ in range(runs):
                for label, flags in (("with", ()), ("without", ("--no-sniffio",))):
                    control.delete("/stats")
                    _bare("httpx2", url, key, n, 32, "--uvloop", *flags)
                    sniff[label].append(_rate(control, n))
            with_, without = median(sniff["with"]), median(sniff["without"])
            section.figures["sniffio"] = {"with": with_, "without": without}
            section.notes.append(
                f"sniffio: bare httpx2 at concurrency 32, {with_:,.0f} calls/s with sniffio "
                f"importable and {without:,.0f} with its import blocked "
                f"({without / with_:.2f}x). httpcore2 imports it once, at module level."
            )
    return section
