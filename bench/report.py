"""The report: how long report.html takes to build, and how big it is, for 1k and 1M contacts.

A run folder is made synthetically with polars, in the shapes a run writes:
``summary.json`` (with a day of calls-per-minute timeline, 1,440 minutes),
``.bulktag/config.json``, ``results.csv``, ``failures.csv`` and ``rejects.csv``.
Two mixes per size: *everyday* (10 % of the contacts not ok: not found, server errors
with 20 different messages, deferred; 1 % of the rows rejected) and *all deferred*
(the quota was spent at once: every contact is in the failures file, the worst case
for the scans). What is timed is ``bulktag.outputs.pages.write_run_report`` in-process (read
the files, aggregate with polars, draw with pygal, write the page), median of several
builds after one warm-up; the first build of the process (pygal's import included) is
given too.

``python -m bench --only report`` (``--quick``: 1k and 10k contacts).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl

from bench.common import WORK, Section, median
from bulktag.outputs.pages import write_run_report

#: Target: the report of a 1M-contact run builds in at most this many seconds.
MAX_SECONDS = 0.5
MINUTES = 1_440


def _ids(n: int) -> pl.Expr:
    hexed = pl.int_range(0, n, dtype=pl.Int64).cast(pl.String).str.pad_start(12, "0")
    return pl.lit("6f1c2a3e-0000-4000-8000-") + hexed


def _summary(
    n: int, failed: int, deferred: int, rejects: int, reasons: dict[str, int]
) -> dict[str, Any]:
    ok = n - failed - deferred
    per_minute = max(1, (ok + failed) // MINUTES)
    return {
        "bulktag": "bench",
        "run_id": "00000000-0000-4000-8000-000000000000",
        "job": None,
        "resumed": False,
        "started_at": "2026-11-26T00:00:00Z",
        "finished_at": "2026-11-27T00:00:00Z",
        "duration_seconds": 86_400.0,
        "exit_code": 75,
        "exit_meaning": "work left to re-run",
        "dry_run": False,
        "api_url": "https://leadlex.test/functions/v1/api-gateway",
        "plan": {
            "rows_read": n + rejects,
            "rows_grouped": n,
            "rows_rejected": rejects,
            "blank_rows": 0,
            "rejects": rejects,
            "rejects_by_reason": reasons,
            "pairs": 2 * n,
            "duplicate_pairs": 0,
            "contacts": n,
            "requests": n,
            "inputs": [
                {
                    "source": "/srv/exports/segment.csv",
                    "format": "csv",
                    "rows": n + rejects,
                    "id_column": "contact_id",
                }
            ],
        },
        "contacts": {
            "planned": n,
            "ok": ok,
            "failed": failed,
            "deferred": deferred,
            "not_attempted": 0,
            "skipped": 0,
        },
        "skipped_by_reason": {},
        "failures_by_type": {
            k: v
            for k, v in {
                "not_found": failed // 2,
                "server_error": failed - failed // 2,
                "quota_exhausted": deferred,
            }.items()
            if v
        },
        "rejects": {"total": rejects, "by_reason": reasons},
        "calls": {"add_tags": ok + failed, "total": ok + failed},
        "naive_calls": n,
        "calls_saved": deferred,
        "precheck": None,
        "verified": 0,
        "quota": {"limit": None, "remaining": 0, "reset": None, "before": ok + failed},
        "halt": "quota_exhausted",
        "halt_message": "the daily quota (less the reserve) is spent",
        "rate": {"configured_per_minute": None, "final_per_minute": None, "rate_limited_429s": 0},
        "timeline": {
            "started_at": "2026-11-26T00:00:00Z",
            "bucket_seconds": 60,
            "rate_per_minute": float(per_minute + per_minute // 5),
            "final_rate_per_minute": None,
            "minutes": [
                {
                    "minute": m,
                    "calls": per_minute,
                    "rate_limited": m % 37 == 0,
                    "retries": m % 11,
                    "failed": m % 7,
                }
                for m in range(MINUTES)
            ],
        },
        "files": {name: f"/runs/x/{name}.csv" for name in ("results", "failures", "rejects")},
    }


def make_run(folder: Path, n: int, *, everyone_deferred: bool) -> Path:
    """A finished run folder of ``n`` contacts (see the module docstring)."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / ".bulktag").mkdir(parents=True)
    failed = 0 if everyone_deferred else n // 50
    deferred = n if everyone_deferred else n * 8 // 100
    ok_until = n - failed - deferred
    results = pl.select(seq=pl.int_range(0, n, dtype=pl.Int64)).select(
        contact_id=_ids(n),
        tags=pl.lit("customer,newsletter"),
        status=pl.when(pl.col("seq") < ok_until)
        .then(pl.lit("ok"))
        .when(pl.col("seq") < ok_until + failed)
        .then(pl.lit("failed"))
        .otherwise(pl.lit("deferred")),
        error_type=pl.when(pl.col("seq") < ok_until)
        .then(None)
        .when(pl.col("seq") < ok_until + failed // 2)
        .then(pl.lit("not_found"))
        .when(pl.col("seq") < ok_until + failed)
        .then(pl.lit("server_error"))
        .otherwise(pl.lit("quota_exhausted")),
        seq="seq",
    )
    message = (
        pl.when(pl.col("error_type") == "not_found")
        .then(pl.lit("Contact not found"))
        .when(pl.col("error_type") == "server_error")
        .then(pl.lit("HTTP 503 from the gateway, attempt ") + (pl.col("seq") % 20).cast(pl.String))
        .otherwise(pl.lit("the daily quota (less the reserve) is spent"))
    )
    full = results.with_columns(
        retryable=pl.col("error_type") != "not_found",
        http_status=pl.when(pl.col("error_type") == "not_found")
        .then(404)
        .when(pl.col("error_type") == "server_error")
        .then(503),
        error_code=pl.lit(None, pl.String),
        message=pl.when(pl.col("error_type").is_null()).then(None).otherwise(message),
        attempts=pl.lit(1),
        request_id=pl.lit("req_") + pl.col("seq").cast(pl.String),
        source=pl.lit("/srv/exports/segment.csv"),
        line=pl.col("seq") + 2,
    ).drop("seq")
    full.write_csv(folder / "results.csv")
    full.filter(pl.col("status") != "ok").write_csv(folder / "failures.csv")
    rejects = n // 100
    reasons = [
        "contact id is not a UUID",
        "missing contact id",
        "no tags",
        "tag longer than 100 characters",
        "contact id is a number",
    ]
    pl.select(line=pl.int_range(0, rejects, dtype=pl.Int64)).select(
        contact_id=pl.lit("CUST-") + pl.col("line").cast(pl.String),
        tags=pl.lit("vip"),
        source=pl.lit("/srv/exports/segment.csv"),
        line=pl.col("line") * 97 + 2,
        column=pl.lit("contact_id"),
        reason=(pl.col("line") % len(reasons)).replace_strict(
            dict(enumerate(reasons)), return_dtype=pl.String
        ),
        error_type=pl.lit("invalid_input"),
    ).write_csv(folder / "rejects.csv")
    by_reason = {
        r: rejects // len(reasons) + (i < rejects % len(reasons)) for i, r in enumerate(reasons)
    }
    summary = _summary(n, failed, deferred, rejects, {r: c for r, c in by_reason.items() if c})
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (folder / ".bulktag" / "config.json").write_text(
        json.dumps({"dispatch": {"per_day": None, "quota_reserve": 0}}), encoding="utf-8"
    )
    return folder


def _build(folder: Path, runs: int) -> tuple[float, float, int]:
    """(first build s, median of ``runs`` builds s, page bytes)."""
    started = time.perf_counter()
    page = write_run_report(folder)
    first = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        write_run_report(folder)
        times.append(time.perf_counter() - started)
    return first, median(times), page.stat().st_size


def run(*, quick: bool) -> Section:
    sizes = [1_000, 10_000] if quick else [1_000, 1_000_000]
    runs = 3 if quick else 7
    section = Section(
        key="report",
        title="The report: report.html of a run",
        method=(
            "A run folder made synthetically with polars (summary.json with 1,440 minutes of "
            "timeline, results, failures and rejects as CSV), then "
            "`bulktag.outputs.pages.write_run_report` in-process: the files read and aggregated "
            "(polars, lazy), the charts drawn (pygal), the page written. Median of "
            f"{runs} builds after one warm-up; the first build of the process (imports "
            "included) beside it. Everyday: 10 % of the contacts not ok, 1 % of the rows "
            "rejected; all deferred: every contact in the failures file. "
            f"Target: at most {MAX_SECONDS} s at 1M contacts."
        ),
        columns=["contacts", "mix", "failures rows", "median s", "first s", "page bytes"],
    )
    figures: dict[str, Any] = {}
    for n in sizes:
        for everyone in (False, True):
            mix = "all deferred" if everyone else "everyday"
            folder = make_run(
                WORK / "report" / f"{n}-{mix.replace(' ', '-')}", n, everyone_deferred=everyone
            )
            rows = pl.scan_csv(folder / "failures.csv").select(pl.len()).collect().item()
            first, seconds, size = _build(folder, runs)
            section.rows.append([n, mix, rows, seconds, first, size])
            figures[f"{n}:{mix}"] = {"seconds": seconds, "first_seconds": first, "bytes": size}
            if n == 1_000_000:
                met = "met" if seconds <= MAX_SECONDS else "NOT met"
                section.notes.append(
                    f"Target {MAX_SECONDS} s at 1M contacts ({mix}): {met} ({seconds:.2f} s)."
                )
    section.figures = figures
    return section
