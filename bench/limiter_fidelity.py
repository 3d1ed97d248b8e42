"""Limiter fidelity: the rate achieved against the rate allowed, and the 429s received.

Four set-ups: bulktag configured right (50 and 200 calls a minute, the emulator
enforcing the same), and configured 2x too high (100 and 400 against 50 and
200). Each runs for three minutes of the emulator's sliding window, measured
from the emulator's own log: calls handled in the first 180 s, 429s in the first
minute and after.

Two measurements of the same thing: on virtual time (the emulator in-process
and bulktag on trio's MockClock: same code, same limits, exact and repeatable,
median of 5 runs), and, in full mode, one run each over loopback in real time
(bulktag and the emulator as processes, stopped with SIGTERM after 3 minutes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import trio.testing

from bench.bareloop import ids
from bench.common import API_URL, Section, emulator, median
from bulktag.cli.commands import main
from bulktag.clock import SourceClock
from bulktag.emulator import Emulator, EmulatorClock, EmulatorTransport, Key
from bulktag.run.runner import Runtime

T0 = 1_795_694_400.0  # 2026-11-26 12:00 UTC
KEY = "wbk_bench_fidelity"
SETUPS = [(50, 50), (200, 200), (50, 100), (200, 400)]  # (server limit, bulktag's rate)
WINDOW = 180.0


async def _inline(function: Any, *args: Any) -> Any:
    return function(*args)


def _measure(times: list[float], limited: list[float], allowed: int) -> dict[str, float]:
    start = min(times + limited)
    handled = [t for t in times if t < start + WINDOW]
    return {
        "per_minute": len(handled) / (WINDOW / 60),
        "share": len(handled) / (WINDOW / 60) / allowed,
        "429_first_minute": sum(t < start + 60 for t in limited),
        "429_after": sum(start + 60 <= t < start + WINDOW for t in limited),
        "429_later": sum(t >= start + WINDOW for t in limited),  # after the 3 minutes
    }


def virtual_run(server: int, client: int, folder: Path) -> dict[str, float]:
    mock = trio.testing.MockClock(autojump_threshold=0)
    clock = EmulatorClock(start=T0, source=mock.current_time)
    clock.now()
    emulator = Emulator(
        per_minute=server,
        per_day=1_000_000,
        keys=[Key(KEY, "default", frozenset({"write"}))],
        clock=clock,
        auto_create=True,
    )
    count = int(client * 8)  # eight minutes of work: past the limiter's 5-minute recovery
    source = folder / f"in-{server}-{client}.csv"
    source.write_text("contact_id,tags\n" + "".join(f"{i},x\n" for i in ids(count)))
    runtime = Runtime(
        transport=EmulatorTransport(emulator),
        clock=SourceClock(mock.current_time, T0),
        backend="trio",
        backend_options={"clock": mock},
        environ={"LEADLEX_API_KEY": KEY, "BULKTAG_STATE_DIR": str(folder / "state")},
        handle_signals=False,
        offload=_inline,
    )
    out = Path(tempfile.mkdtemp(dir=folder))
    main(
        [
            "run",
            str(source),
            "--out",
            str(out / "run"),
            "--api-url",
            API_URL,
            "--plan",
            "unmetered",
            "--rate-per-minute",
            str(client),
            "-q",
        ],
        runtime=runtime,
    )
    times = [e["t"] for e in emulator.log if e["handled"]]
    limited = [e["t"] for e in emulator.log if e["status"] == "429"]
    return _measure(times, limited, server)


def real_run(server: int, client: int, folder: Path) -> dict[str, float]:
    count = int(client * (WINDOW / 60) + client)
    source = folder / f"real-{server}-{client}.csv"
    source.write_text("contact_id,tags\n" + "".join(f"{i},x\n" for i in ids(count)))
    with emulator("--plan", "unmetered", "--per-minute", str(server), "--auto-create") as ready:
        env = os.environ | {
            "LEADLEX_API_KEY": next(iter(ready["keys"])),
            "LEADLEX_API_URL": ready["url"],
            "BULKTAG_STATE_DIR": str(folder / "state"),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bulktag",
                "run",
                str(source),
                "--out",
                str(Path(tempfile.mkdtemp(dir=folder)) / "run"),
                "--plan",
                "unmetered",
                "--rate-per-minute",
                str(client),
                "-q",
            ],
            env=env,
        )
        time.sleep(WINDOW + 5)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        with httpx2.Client(base_url=ready["control"]) as control:
            log = control.get("/log").json()["data"]
    times = [e["t"] for e in log if e["handled"]]
    limited = [e["t"] for e in log if e["status"] == "429"]
    return _measure(times, limited, server)


def run(*, quick: bool) -> Section:
    runs = 1 if quick else 5
    section = Section(
        key="limiter",
        title="Limiter fidelity: achieved rate and 429s over three minutes",
        method=(
            "The emulator enforces a sliding 60 s window; bulktag runs `--rate-per-minute R` "
            "against it for 180 s (the emulator's log counts what it handled). Virtual: emulator "
            f"in-process, trio MockClock, median of {runs} run(s). "
            + (
                ""
                if quick
                else "Real: one run over loopback in real time, bulktag stopped by SIGTERM. "
            )
            + "Targets: configured right, at least 98 % of the allowed rate and no 429; configured "
            "2x too high, at most 3 429s in the first minute and none after."
        ),
        columns=[
            "server limit/min",
            "bulktag rate/min",
            "clock",
            "achieved/min",
            "of allowed",
            "429s 1st min",
            "429s after",
        ],
    )
    folder = Path(tempfile.mkdtemp(prefix="bulktag-bench-limiter-"))
    verdicts = []
    for server, client in SETUPS:
        results = [virtual_run(server, client, folder) for _ in range(runs)]
        measured = {k: median([r[k] for r in results]) for k in results[0]}
        rows = [("virtual", measured)]
        if not quick:
            rows.append(("real", real_run(server, client, folder)))
        for clock, m in rows:
            section.rows.append(
                [
                    server,
                    client,
                    clock,
                    m["per_minute"],
                    f"{m['share']:.1%}",
                    int(m["429_first_minute"]),
                    int(m["429_after"]),
                ]
            )
            section.figures[f"{server}-{client}-{clock}"] = m
            if client == server:
                ok = m["share"] >= 0.98 and m["429_first_minute"] + m["429_after"] == 0
            else:
                ok = m["429_first_minute"] <= 3 and m["429_after"] == 0
            verdicts.append(ok)
            verdict = "met" if ok else "NOT met"
            section.notes.append(f"{server}/min server, {client}/min bulktag, {clock}: {verdict}")
    section.figures["all_met"] = all(verdicts)
    return section
