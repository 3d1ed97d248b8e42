"""Nightly at scale: what a job's night costs as its ledger grows.

A job's state is made directly (``JobState.record_applied`` of N pairs: the generator
writes the ledger, so the bench needs no night 1 of hours), and its export is a long CSV
of the same N pairs (four tags a contact). Then, each night a ``bulktag run --job`` of
its own process against ``bulktag emulator --plan unmetered --auto-create``:

- **unchanged**: the same export again: every pair is in the ledger, 0 calls;
- **1 % changed**: one contact in a hundred given a new tag: those calls only;
- **tiny input**: a 1,000-pair export (250 contacts, pairs no ledger holds: 250 calls),
  against the N-pair ledger, and against a fresh job (no ledger): the baseline;
- **under the quota**: an export a fresh job cannot finish in a day (the emulator's
  workspace allows 10,000 calls a day, the org plan's): night 1 sends 10,000 contacts and
  carries the rest over; night 2, measured, a day later (the emulator's clock moved on),
  sends the next 10,000 (the export is the same bytes: its plan is the carry-over alone,
  issue 29). Also the bytes of the night's results and failures files.

Figures per night: wall seconds, CPU seconds (the process's user + system), peak RSS
(``VmHWM``), the time to the first call (a ``--dry-run`` of the same night: everything up
to sending), and the state file's size. Targets (issue 29): memory under 1 GiB, and the
tiny night under 2x the fresh job's.

``python -m bench --only nightly`` (``--quick``: a 200,000-pair ledger and backlog; else 1M,
5M and 10M pairs, each exported whole, a 20M-pair ledger with a 10M-pair export, and a
backlog of 2M and 10M pairs).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

from bench.common import WORK, Section, emulator, method_of

#: Targets: a night's peak memory, and the tiny night against a fresh job's.
MAX_MIB = 1024
MAX_TINY_RATIO = 2.0
TAGS = ("seg-a", "seg-b", "seg-c", "seg-d")
TINY = ("tiny-a", "tiny-b", "tiny-c", "tiny-d")
#: The calls a day of the workspace the backlog nights meet (the org plan's).
BACKLOG_PER_DAY = 10_000

_CHILD = """
import json, sys, time
from bench.common import peak_rss_kib
from bulktag.cli.commands import main
started = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - started,
                  "peak_kib": peak_rss_kib()}))
"""


def _ids(n: int) -> pl.Expr:
    digits = pl.int_range(0, n, dtype=pl.Int64).cast(pl.String).str.pad_start(12, "0")
    return pl.lit("7a1c2a3e-0000-4000-8000-") + digits


def _export(path: Path, contacts: int, extra: int = 0, tags: tuple[str, ...] = TAGS) -> None:
    """``contacts`` contacts with four ``tags``, one row a pair; ``extra`` of them (every
    hundredth) with a fifth, new tag."""
    frame = pl.select(contact_id=_ids(contacts)).join(
        pl.DataFrame({"tags": list(tags)}), how="cross"
    )
    if extra:
        new = pl.select(contact_id=_ids(contacts)).gather_every(100).head(extra)
        frame = pl.concat([frame, new.with_columns(tags=pl.lit("seg-new"))])
    frame.write_csv(path)


def _job(folder: Path, export: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    job = folder / "job.toml"
    job.write_text(
        f'inputs = ["{export}"]\nout = "{folder / "job"}"\nreport = false\n'
        f'[api]\nurl = "{url}"\n[limits]\nplan = "unmetered"\nconcurrency = 16\n',
        encoding="utf-8",
    )
    return job


def _ledger(folder: Path, contacts: int) -> float:
    """The job's ledger holding every pair of the export, written directly; seconds."""
    from bulktag.state.job import JobState

    (folder / "job").mkdir(parents=True, exist_ok=True)
    ids = pl.select(contact_id=_ids(contacts))["contact_id"].to_list()
    started = time.perf_counter()
    with JobState(folder / "job") as state:
        state.record_applied(
            ((c, t) for c in ids for t in TAGS), time.time() - 86_400, "bench-night-1"
        )
    return time.perf_counter() - started


def _night(job: Path, env: dict[str, str], *flags: str) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "run", "--job", str(job), "--no-progress", *flags],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"the night failed: {done.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(lines[-1])
    found["wall"] = wall
    found["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return found


def _backlog(ready: dict[str, Any], pairs: int) -> dict[str, Any]:
    """Night 2 of an export of ``pairs`` that the workspace's 10,000 calls a day cannot
    finish (see the module docstring): its figures, and its files' bytes."""
    import httpx2

    folder = WORK / "nightly" / f"backlog-{pairs}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    export = folder / "export.csv"
    _export(export, pairs // len(TAGS))
    job = _job(folder, export, ready["url"])
    with httpx2.Client(base_url=ready["control"]) as control:
        control.post("/limits", json={"per_day": BACKLOG_PER_DAY, "used_today": 0})
        first = _night(job, _env(ready, folder / "state-1"))
        control.post("/clock", json={"advance_seconds": 86_400})
        second = _night(job, _env(ready, folder / "state-2"))  # a new day in the quota store
        control.post("/limits", json={"per_day": None, "used_today": 0})
    runs = sorted((folder / "job" / "runs").iterdir())
    files = [runs[-1] / name for name in ("results.csv", "failures.csv")]
    second["files_bytes"] = sum(f.stat().st_size for f in files if f.exists())
    carry = folder / "job" / "carry-over.parquet"
    second["carry_over_bytes"] = carry.stat().st_size if carry.exists() else 0
    second["first_night_code"] = first["code"]
    return second


def _env(ready: dict[str, Any], state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEX_")}
    return env | {
        "LEADLEX_API_KEY": next(iter(ready["keys"])),
        "BULKTAG_STATE_DIR": str(state),
    }


def run(*, quick: bool = False) -> Section:
    # (ledger pairs, export pairs): the last, the case, a 10M export against a
    # ledger twice its size (the pairs of contacts that left the export stay in it)
    sizes = (
        ((200_000, 200_000),)
        if quick
        else ((1_000_000,) * 2, (5_000_000,) * 2, (10_000_000,) * 2, (20_000_000, 10_000_000))
    )
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    notes: list[str] = []
    with emulator("--plan", "unmetered", "--auto-create") as ready:
        tiny_folder = WORK / "nightly" / "fresh"
        shutil.rmtree(tiny_folder, ignore_errors=True)
        tiny = tiny_folder / "tiny.csv"
        tiny_folder.mkdir(parents=True)
        _export(tiny, 250, tags=TINY)  # pairs new to every ledger: 250 calls each time
        env = _env(ready, tiny_folder / "state")
        fresh = _night(_job(tiny_folder, tiny, ready["url"]), env)
        rows.append(
            [
                "0 (fresh job)",
                "tiny input",
                fresh["wall"],
                fresh["cpu"],
                fresh["peak_kib"] / 1024,
                "-",
                "-",
            ]
        )
        for pairs, exported in sizes:
            contacts = exported // len(TAGS)
            folder = WORK / "nightly" / f"ledger-{pairs}-{exported}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            export = folder / "export.csv"
            _export(export, contacts)
            insert = _ledger(folder, pairs // len(TAGS))
            job = _job(folder, export, ready["url"])
            env = _env(ready, folder / "state")
            state_mib = (folder / "job" / "state.sqlite").stat().st_size / 2**20
            first = _night(job, env, "--dry-run")
            unchanged = _night(job, env)
            _export(export, contacts, extra=contacts // 100)
            changed = _night(job, env)
            shutil.copy(tiny, export)
            small = _night(job, env)
            label = f"{pairs:,}" + ("" if exported == pairs else f" ({exported:,} exported)")
            for name, night, to_first in (
                ("unchanged", unchanged, first["wall"]),
                ("1 % changed", changed, None),
                ("tiny input", small, None),
            ):
                rows.append(
                    [
                        label,
                        name,
                        night["wall"],
                        night["cpu"],
                        night["peak_kib"] / 1024,
                        "-" if to_first is None else to_first,
                        state_mib,
                    ]
                )
            figures[f"{pairs}-{exported}"] = {
                "ledger_insert_seconds": insert,
                "state_mib": state_mib,
                "unchanged": unchanged,
                "changed": changed,
                "tiny": small,
                "to_first_call": first["wall"],
            }
            ratio = small["wall"] / fresh["wall"]
            peak = max(n["peak_kib"] for n in (unchanged, changed, small)) / 1024
            notes.append(
                f"{pairs:,}-pair ledger{'' if exported == pairs else f', {exported:,} exported'}: "
                f"written in {insert:.1f} s ({pairs / insert:,.0f} pairs/s); "
                f"the tiny night {ratio:.2f}x a fresh job's (target under {MAX_TINY_RATIO}x: "
                f"{'met' if ratio < MAX_TINY_RATIO else 'NOT met'}); the highest peak "
                f"{peak:,.0f} MiB (target under {MAX_MIB:,}: "
                f"{'met' if peak < MAX_MIB else 'NOT met'})."
            )
        for pairs in (200_000,) if quick else (2_000_000, 10_000_000):
            night = _backlog(ready, pairs)
            rows.append(
                [
                    f"{pairs:,} exported, under the quota",
                    "night 2 (10,000 calls)",
                    night["wall"],
                    night["cpu"],
                    night["peak_kib"] / 1024,
                    "-",
                    "-",
                ]
            )
            figures[f"backlog-{pairs}"] = night
            notes.append(
                f"{pairs:,} pairs under {BACKLOG_PER_DAY:,} calls a day: night 2 wrote "
                f"{night['files_bytes'] / 2**20:,.1f} MiB of results and failures (the "
                f"carry-over {night['carry_over_bytes'] / 2**20:,.1f} MiB), exit "
                f"{night['code']}."
            )
    figures["fresh_tiny"] = fresh
    return Section(
        key="nightly",
        title="Nightly at scale: a night's cost as the ledger grows",
        method=method_of(__doc__),
        columns=[
            "ledger pairs",
            "night",
            "wall s",
            "CPU s",
            "peak RSS MiB",
            "to the first call s",
            "state MiB",
        ],
        rows=rows,
        notes=notes,
        figures=figures,
    )
