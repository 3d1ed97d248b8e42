"""How many add-tag calls a second the emulator answers, against uvicorn's floor.

The baseline is the same uvicorn server (same protocol, loop and socket) serving
a trivial ASGI app that answers every request with a fixed JSON body: the ratio
is the emulator's own cost. The load comes from ``wrk`` when installed, else from
``bench.loadgen`` (a keep-alive Python client in its own process).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import Section, emulator, median

CONTACT = "6f1c1d5e-1c2b-4c8e-9a7e-0a1b2c3d4e5f"
PATH = f"/v1/contacts/{CONTACT}/tags"
TARGET = 5_000


def _load(url: str, key: str, seconds: float, connections: int) -> tuple[float, int]:
    """Calls a second to ``url`` (the base URL, with LeadLex's path) and failures."""
    path = urlsplit(url).path + PATH
    wrk = shutil.which("wrk")
    if wrk is None:
        rate, errors = subprocess.run(
            [sys.executable, "-m", "bench.loadgen", url, path, key, str(seconds), str(connections)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return float(rate), int(errors)
    script = (
        'wrk.method = "POST"\n'
        'wrk.body = \'{"tags":["vip","legal"]}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        f'wrk.path = "{path}"\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %d\\n", summary.requests, summary.duration,'
        " summary.errors.status + summary.errors.connect + summary.errors.read"
        " + summary.errors.write + summary.errors.timeout))\n"
        "end\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        report = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", handle.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(handle.name).unlink()
    requests, duration_us, failures = (int(v) for v in report.split("RESULT")[1].split())
    return requests / (duration_us / 1e6), failures


def run(*, quick: bool) -> Section:
    runs, seconds, connections = (3, 2.0, 32) if quick else (5, 5.0, 32)
    tool = "wrk" if shutil.which("wrk") else "bench.loadgen"
    section = Section(
        key="emulator",
        title="Emulator throughput",
        method=(
            f"`bulktag emulator --plan unmetered --auto-create`, faults off, POST add-tags with "
            f"{connections} keep-alive connections for {seconds:g} s, median of {runs} runs, load "
            f"from `{tool}` on the other core. Baseline: the same uvicorn set-up serving a fixed "
            f"JSON answer (`bench.floor_app`). Target: at least {TARGET:,} calls/s."
        ),
        columns=["server", "median calls/s", "runs (calls/s)", "non-200 answers", "vs floor"],
    )
    results: dict[str, tuple[float, list[float], int]] = {}
    for name, module, args in (
        ("uvicorn floor (fixed answer)", "bench.floor_app", []),
        ("bulktag emulator", "bulktag", ["--plan", "unmetered", "--auto-create"]),
    ):
        rates, errors = [], 0
        with emulator(*args, module=module) as ready:
            key = next(iter(ready["keys"]))
            _load(ready["url"], key, 1.0, connections)  # warm-up
            for _ in range(runs):
                rate, errs = _load(ready["url"], key, seconds, connections)
                rates.append(rate)
                errors += errs
        results[name] = (median(rates), rates, errors)
    floor = results["uvicorn floor (fixed answer)"][0]
    for name, (rate, rates, errors) in results.items():
        section.rows.append(
            [name, rate, ", ".join(f"{r:,.0f}" for r in rates), errors, f"{rate / floor:.2f}x"]
        )
    achieved = results["bulktag emulator"][0]
    section.figures = {"emulator_calls_per_s": achieved, "floor_calls_per_s": floor, "tool": tool}
    verdict = "met" if achieved >= TARGET else "NOT met"
    section.notes.append(f"Target {TARGET:,} calls/s: {verdict} ({achieved:,.0f}).")
    return section


if __name__ == "__main__":
    print(json.dumps(run(quick=True).figures))
