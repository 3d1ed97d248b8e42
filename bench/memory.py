"""Memory: peak RSS of a whole run (read to results) against the plan's own size.

``python -m bench.memory N MODE`` (a worker) reads an N-row input and either
builds the plan only (``plan``) or runs bulktag end to end against a
``httpx2.MockTransport`` (``run``), then prints its peak RSS in KiB. The
dispatch must not grow with the number of contacts: the run may use at most
50 MiB more than building the plan alone, at every size.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import polars as pl

from bench.common import WORK, Section
from bench.overhead import handler

LIMIT_MIB = 50


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


def worker(rows: int, mode: str) -> None:
    from bulktag.cli import main
    from bulktag.runner import Runtime

    folder = Path(tempfile.mkdtemp(prefix="bulktag-memory-"))
    source = data(rows)
    runtime = Runtime(
        transport=httpx2.MockTransport(handler),
        environ={"LEADLEX_API_KEY": "wbk_bench", "BULKTAG_STATE_DIR": str(folder / "state")},
        handle_signals=False,
    )
    args = [
        "run",
        str(source),
        "--plan",
        "unmetered",
        "--out",
        str(folder / "run"),
        "--api-url",
        "https://leadlex.test",
        "-q",
    ]
    if mode == "plan":
        args.append("--dry-run")
    started = time.perf_counter()
    main(args, runtime=runtime)
    summary = json.loads((folder / "run" / "summary.json").read_text())
    print(
        json.dumps(
            {
                "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "seconds": time.perf_counter() - started,
                "contacts": summary["contacts"]["planned"],
            }
        )
    )


def run(*, quick: bool) -> Section:
    sizes = (100_000,) if quick else (100_000, 1_000_000, 10_000_000)
    section = Section(
        key="memory",
        title="Memory: peak RSS of a whole run",
        method=(
            "Peak RSS of one process reading an N-row long CSV (about 4 tags per contact) to "
            "results, against `httpx2.MockTransport` (the network does not change what a process "
            "holds), next to the same process planning only (`--dry-run`: read, plan, publish). "
            f"Target: the run at most {LIMIT_MIB} MiB above the plan alone, at every size."
        ),
        columns=[
            "rows",
            "contacts",
            "plan only MiB",
            "whole run MiB",
            "run - plan MiB",
            "run seconds",
        ],
    )
    for rows in sizes:
        results = {}
        for mode in ("plan", "run"):
            out = subprocess.run(
                [sys.executable, "-m", "bench.memory", str(rows), mode],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[mode] = json.loads(out)
        plan_mib, run_mib = results["plan"]["rss_kib"] / 1024, results["run"]["rss_kib"] / 1024
        section.rows.append(
            [
                rows,
                results["run"]["contacts"],
                plan_mib,
                run_mib,
                run_mib - plan_mib,
                results["run"]["seconds"],
            ]
        )
        section.figures[str(rows)] = results
        verdict = "met" if run_mib - plan_mib <= LIMIT_MIB else "NOT met"
        section.notes.append(
            f"{rows:,} rows: the run uses {run_mib - plan_mib:.0f} MiB above the plan ({verdict})."
        )
    return section


if __name__ == "__main__":
    worker(int(sys.argv[1]), sys.argv[2])
