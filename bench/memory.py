"""Memory: peak RSS of a whole run (read to results) against the plan's own size.

``python -m bench.memory N`` (a worker) reads an N-row input and runs bulktag end
to end against a ``httpx2.MockTransport``, and prints two peaks of its RSS: when
the plan is ready (reading, normalising, grouping, the plan written), and at the
end (after dispatching every contact and publishing the results). The dispatch
must not grow with the number of contacts: the end's peak may be at most 50 MiB
above the plan's, at every size. (``ru_maxrss`` only grows, so the difference is
what dispatch and publishing added above the planning's peak.)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def worker(rows: int) -> None:
    import bulktag.runner
    from bulktag.cli import main

    folder = Path(tempfile.mkdtemp(prefix="bulktag-memory-"))
    source = data(rows)
    runtime = bulktag.runner.Runtime(
        transport=httpx2.MockTransport(handler),
        environ={"LEADLEX_API_KEY": "wbk_bench", "BULKTAG_STATE_DIR": str(folder / "state")},
        handle_signals=False,
    )
    planned: dict[str, float] = {}
    prepare = bulktag.runner.prepare_plan

    def probed(*args: Any) -> Any:
        result = prepare(*args)
        planned["rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        planned["seconds"] = time.perf_counter() - started
        return result

    bulktag.runner.prepare_plan = probed  # type: ignore[assignment]
    args = [str(source), "--plan", "unmetered", "--out", str(folder / "run")]
    started = time.perf_counter()
    main(["run", *args, "--api-url", "https://leadlex.test", "-q"], runtime=runtime)
    summary = json.loads((folder / "run" / "summary.json").read_text())
    print(
        json.dumps(
            {
                "plan_rss_kib": planned["rss_kib"],
                "plan_seconds": planned["seconds"],
                "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "seconds": time.perf_counter() - started,
                "contacts": summary["contacts"]["planned"],
                "ok": summary["contacts"].get("ok"),
            }
        )
    )


def run(*, quick: bool) -> Section:
    sizes = (100_000,) if quick else (100_000, 1_000_000, 10_000_000)
    section = Section(
        key="memory",
        title="Memory: peak RSS of a whole run",
        method=(
            "One `bulktag run` process reading an N-row long CSV (about 4 tags per contact) to "
            "results, against `httpx2.MockTransport` (the network does not change what a process "
            "holds). Its peak RSS (`ru_maxrss`) when the plan is ready (read, normalised, "
            "grouped, written), and at the end, after dispatching every contact and publishing. "
            f"Target: the end's peak at most {LIMIT_MIB} MiB above the plan's, at every size."
        ),
        columns=[
            "rows",
            "contacts",
            "peak at plan MiB",
            "peak at end MiB",
            "end - plan MiB",
            "run seconds",
        ],
    )
    for rows in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "bench.memory", str(rows)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out)
        plan_mib, run_mib = result["plan_rss_kib"] / 1024, result["rss_kib"] / 1024
        section.rows.append(
            [rows, result["contacts"], plan_mib, run_mib, run_mib - plan_mib, result["seconds"]]
        )
        section.figures[str(rows)] = result
        verdict = "met" if run_mib - plan_mib <= LIMIT_MIB else "NOT met"
        section.notes.append(
            f"{rows:,} rows: dispatching {result['contacts']:,} contacts and publishing raised "
            f"the peak {run_mib - plan_mib:.0f} MiB above the plan's ({verdict})."
        )
    return section


if __name__ == "__main__":
    worker(int(sys.argv[1]))
