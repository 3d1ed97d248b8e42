"""kill -9 at random points of real runs, then resume: nothing lost, nothing sent twice.

``python -m bench.killsoak --points 200`` (the soak); ``tests/run/test_kill.py``
runs 50 points. Each round starts ``bulktag run`` (or ``--resume``) as a process
against ``bulktag emulator`` (latency on) and kills it with SIGKILL: a quarter of
the kills at a random moment of start-up (reading, planning, opening the journal),
the rest within 0.4 s after its first add-tags call lands, so most hit requests in
flight. Each kill records what the journal held and what the emulator had handled.
A final resume runs each run folder to its end. Then, per run folder:

- every contact appears exactly once in the results, and ends ok;
- no contact recorded in the journal at a kill got a handled call afterwards;
- the calls repeated across a kill (contacts handled before the kill and again
  after it) are at most ``concurrency``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

__all__ = ["SoakReport", "soak"]

TAGS_ROUTE = "/v1/contacts/{id}/tags"


@dataclass
class SoakReport:
    points: int = 0
    runs: int = 0
    contacts: int = 0
    handled_calls: int = 0
    repeated_calls: int = 0
    worst_repeats_per_kill: int = 0
    resent_after_recorded: int = 0
    duplicates_in_results: int = 0
    not_ok: int = 0
    kills_mid_sending: int = 0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _recorded(run_dir: Path) -> set[str]:
    journal = run_dir / ".bulktag" / "journal.sqlite"
    if not journal.exists():
        return set()
    with sqlite3.connect(journal) as db:
        try:
            return {r[0] for r in db.execute("SELECT contact_id FROM outcomes")}
        except sqlite3.OperationalError:
            return set()


def _tag_calls(control: httpx2.Client) -> int:
    return int(control.get("/stats").json()["tag_calls_handled"])


def _wait_for_sending(
    control: httpx2.Client, process: subprocess.Popen[bytes], limit: float = 10.0
) -> None:
    """Until the run's first add-tags call lands (or it ends): kills then hit mid-sending."""
    start = _tag_calls(control)
    deadline = time.monotonic() + limit
    while process.poll() is None and time.monotonic() < deadline:
        if _tag_calls(control) > start:
            return
        time.sleep(0.01)


def _handled(control: httpx2.Client) -> list[str]:
    """Contact ids of every handled add-tags call so far, in order."""
    log = control.get("/log", params={"route": TAGS_ROUTE}).json()["data"]
    return [e["path"].split("/")[-2] for e in log if e["handled"]]  # .../contacts/ID/tags


def _settings(concurrency: int) -> list[str]:
    """A new run's settings; --resume takes them from the run folder."""
    return ["--plan", "unmetered", "--concurrency", str(concurrency)]


def soak(
    points: int,
    folder: Path,
    *,
    contacts: int = 600,
    concurrency: int = 8,
    kills_per_run: int = 10,
    seed: int = 7,
) -> SoakReport:
    rng = random.Random(seed)
    report = SoakReport()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEX_")}
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bulktag",
            "emulator",
            "--port",
            "0",
            "--plan",
            "unmetered",
            "--generate",
            str(contacts),
            "--seed",
            str(seed),
            "--latency-ms",
            "5:30",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        ready = json.loads(emulator.stdout.readline())
        key = next(iter(ready["keys"]))
        env |= {
            "LEADLEX_API_KEY": key,
            "LEADLEX_API_URL": ready["url"],
            "BULKTAG_STATE_DIR": str(folder / "state"),
        }
        with httpx2.Client(base_url=ready["control"], timeout=30) as control:
            ids: list[str] = []
            with httpx2.Client(
                base_url=ready["url"], headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as api:
                page = 1
                while len(ids) < contacts:
                    answer = api.get("/v1/contacts", params={"page": page, "per_page": 100})
                    ids += [c["id"] for c in answer.json()["data"]["contacts"]]
                    page += 1
            run_number = 0
            while report.points < points:
                run_number += 1
                tag = f"soak-{run_number}"
                source = folder / f"in-{run_number}.csv"
                source.write_text(
                    "contact_id,tags\n" + "".join(f"{i},{tag}\n" for i in ids), encoding="utf-8"
                )
                run_dir = folder / f"run-{run_number}"
                before = len(_handled(control))
                snapshots: list[tuple[int, set[str]]] = []
                for _ in range(min(kills_per_run, points - report.points)):
                    args = (
                        ["--resume", str(run_dir)]  # with the settings it started with
                        if (run_dir / ".bulktag" / "config.json").exists()
                        else [str(source), "--out", str(run_dir), *_settings(concurrency)]
                    )
                    process = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "bulktag",
                            "run",
                            *args,
                            "-q",
                        ],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    if rng.random() < 0.25:
                        # start-up: reading, planning, opening the journal
                        time.sleep(rng.uniform(0.05, 1.0))
                    else:
                        _wait_for_sending(control, process)
                        time.sleep(rng.uniform(0.0, 0.4))
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    handled_now = len(_handled(control))
                    report.points += 1
                    if (snapshots and handled_now > snapshots[-1][0]) or (
                        not snapshots and handled_now > before
                    ):
                        report.kills_mid_sending += 1
                    snapshots.append((handled_now, _recorded(run_dir)))
                final_args = (
                    ["--resume", str(run_dir)]
                    if (run_dir / ".bulktag" / "config.json").exists()
                    else [str(source), "--out", str(run_dir), *_settings(concurrency)]
                )
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bulktag",
                        "run",
                        *final_args,
                        "-q",
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=300,
                )
                if done.returncode != 0:
                    report.problems.append(
                        f"run {run_number}: final resume exit {done.returncode}: "
                        + done.stderr[-300:]
                    )
                _check(
                    report,
                    run_dir=run_dir,
                    ids=ids,
                    handled=_handled(control)[before:],
                    snapshots=[(n - before, rec) for n, rec in snapshots],
                    concurrency=concurrency,
                )
                report.runs += 1
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.communicate(timeout=30)
    return report


def _check(
    report: SoakReport,
    *,
    run_dir: Path,
    ids: list[str],
    handled: list[str],
    snapshots: list[tuple[int, set[str]]],
    concurrency: int,
) -> None:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    seen = Counter(r["contact_id"] for r in rows)
    report.contacts += len(ids)
    report.duplicates_in_results += sum(n - 1 for n in seen.values() if n > 1) + len(
        set(ids) - set(seen)
    )
    report.not_ok += sum(r["status"] != "ok" for r in rows)
    report.handled_calls += len(handled)
    report.repeated_calls += len(handled) - len(set(handled))
    for index, (position, recorded) in enumerate(snapshots):
        after = handled[position:]
        resent = [c for c in after if c in recorded]
        report.resent_after_recorded += len(resent)
        earlier = set(handled[:position])
        # repeated across this kill: handled before it, and again before the next kill ends
        until = snapshots[index + 1][0] if index + 1 < len(snapshots) else len(handled)
        repeats = len({c for c in handled[position:until] if c in earlier})
        report.worst_repeats_per_kill = max(report.worst_repeats_per_kill, repeats)
        if repeats > concurrency:
            report.problems.append(
                f"{run_dir.name}: {repeats} calls repeated across kill {index + 1}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.killsoak", description=__doc__)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bulktag-soak-") as folder:
        report = soak(args.points, Path(folder), contacts=args.contacts)
    print(json.dumps(report.as_json(), indent=2))
    raise SystemExit(
        1 if report.problems or report.resent_after_recorded or report.duplicates_in_results else 0
    )


if __name__ == "__main__":
    main()
