"""What cron needs: one instance at a time, a clean stop on SIGTERM, metrics, quiet success."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2

from bulktag.errors import ExitCode
from bulktag.outputs.metrics import write_metrics
from bulktag.outputs.summary import OutputFiles, QuotaView, RateView, Summary
from bulktag.plan.build import PlanStats
from tests.constants import API_URL
from tests.helpers import (
    contact_ids,
    emulator_env,
    run_bulktag,
    running_emulator,
    start_bulktag,
)


def _job(folder: Path, ids: list[str], extra: str = "") -> Path:
    (folder / "in.csv").write_text("contact_id,tags\n" + "".join(f"{i},cron\n" for i in ids))
    job = folder / "job.toml"
    job.write_text(f'inputs = ["in.csv"]\nout = "job"\n{extra}\n[limits]\nplan = "unmetered"\n')
    return job


def _stats(ready: dict[str, Any]) -> dict[str, Any]:
    stats: dict[str, Any] = httpx2.get(f"{ready['control']}/stats").json()
    return stats


def test_a_second_instance_exits_75_at_once_and_sends_nothing(tmp_path: Path) -> None:
    """While a job runs, starting it again exits 75 within a second; no call, no run folder."""
    with running_emulator(
        "--generate", "200", "--plan", "unmetered", "--latency-ms", "100:200"
    ) as ready:
        job = _job(tmp_path, contact_ids(ready, 200))
        command = ["run", "--job", str(job), "--concurrency", "2"]
        first = start_bulktag(command, emulator_env(ready), stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while _stats(ready)["tag_calls_handled"] < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            runs_before = set((tmp_path / "job" / "runs").iterdir())
            started = time.monotonic()
            second = run_bulktag(command, emulator_env(ready), timeout=30)
            elapsed = time.monotonic() - started
            runs_after = set((tmp_path / "job" / "runs").iterdir())
        finally:
            first.send_signal(signal.SIGTERM)
            first.communicate(timeout=60)
    assert second.returncode == ExitCode.WORK_LEFT
    assert "in use by another bulktag run" in second.stderr
    assert elapsed < 3  # the interpreter's start included; the lock itself fails at once
    assert runs_after == runs_before


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    """A lock held by a process killed with SIGKILL does not block the next run."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from bulktag.state.lock import FolderLock\n"
            "with FolderLock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(600)",
            str(tmp_path / "job"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.communicate()
    with running_emulator("--generate", "3", "--plan", "unmetered") as ready:
        job = _job(tmp_path, contact_ids(ready, 3))
        result = run_bulktag(
            ["run", "--job", str(job), "-v", "--log-format", "text"],
            emulator_env(ready),
            timeout=60,
        )
    assert result.returncode == ExitCode.OK, result.stderr
    assert f"the last run (pid {holder.pid}) ended without releasing its lock" in result.stderr


def test_sigterm_drains_publishes_and_exits_75(tmp_path: Path) -> None:
    """SIGTERM mid-run: in-flight calls finish, every contact is in the results, none lost."""
    with running_emulator(
        "--generate", "300", "--plan", "unmetered", "--latency-ms", "200:400"
    ) as ready:
        ids = contact_ids(ready, 300)
        source = tmp_path / "in.csv"
        source.write_text("contact_id,tags\n" + "".join(f"{i},drain\n" for i in ids))
        run = start_bulktag(
            [
                *("run", str(source), "--out", str(tmp_path / "run"), "--plan", "unmetered"),
                *("--grace", "10", "--log-format", "text"),
            ],
            emulator_env(ready),
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while _stats(ready)["tag_calls_handled"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
        handled = _stats(ready)["tag_calls_handled"]
    assert run.returncode == ExitCode.WORK_LEFT, err
    assert "SIGTERM: finishing requests in flight" in err
    with (tmp_path / "run" / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["contact_id"] for r in rows] == ids  # every contact, once
    statuses = {r["status"] for r in rows}
    assert statuses <= {"ok", "not_attempted"}
    ok = sum(r["status"] == "ok" for r in rows)
    assert ok == handled  # every call LeadLex handled is recorded: nothing lost
    assert 20 <= ok < 300
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["halt"] == "interrupted"


def test_metrics_file_content(tmp_path: Path) -> None:
    """Textfile-collector metrics: last success kept across a failed run, counts by status."""
    path = tmp_path / "bulktag.prom"
    stats = PlanStats(
        rows_read=7,
        rows_grouped=3,
        rows_rejected=4,
        rejects=4,
        rejects_by_reason={"contact id is not a UUID": 4},
        pairs=3,
        duplicate_pairs=0,
        contacts=3,
        requests=3,
    )
    summary = Summary(
        run_id="r",
        job='night"ly',
        resumed=False,
        started_at=1_799_999_987.5,
        finished_at=1_800_000_000.0,
        duration_seconds=12.5,
        exit_code=ExitCode.OK,
        dry_run=False,
        api_url=API_URL,
        plan=stats,
        contacts={"ok": 2, "failed": 1, "deferred": 0, "not_attempted": 0, "skipped": 0},
        skipped_by_reason={},
        failures_by_type={"not_found": 1},
        calls={"add_tags": 3},
        precheck=None,
        verified=0,
        quota=QuotaView(remaining=997),
        halt=None,
        halt_message="",
        rate=RateView(configured_per_minute=None),
        files=OutputFiles(*(tmp_path / n for n in ("r.csv", "f.csv", "j.csv", "s.json"))),
    )
    write_metrics(path, summary)
    text = path.read_text()
    assert 'bulktag_last_success_timestamp_seconds{job="night\\"ly"} 1800000000.0' in text
    assert 'bulktag_last_run_contacts{job="night\\"ly",status="failed"} 1' in text
    assert 'bulktag_last_run_failures{job="night\\"ly",error_type="not_found"} 1' in text
    assert 'bulktag_last_run_calls{job="night\\"ly",endpoint="add_tags"} 3' in text
    assert 'bulktag_quota_remaining{job="night\\"ly"} 997' in text
    assert "# TYPE bulktag_last_run_exit_code gauge" in text
    assert oct(path.stat().st_mode & 0o777) == "0o644"  # the collector must read it
    write_metrics(path, replace(summary, exit_code=ExitCode.WORK_LEFT, finished_at=1_800_086_400.0))
    later = path.read_text()
    assert 'bulktag_last_success_timestamp_seconds{job="night\\"ly"} 1800000000.0' in later
    assert 'bulktag_last_run_exit_code{job="night\\"ly"} 75' in later
    assert 'bulktag_last_run_timestamp_seconds{job="night\\"ly"} 1800086400.0' in later


def test_metrics_through_the_real_command(tmp_path: Path) -> None:
    """--metrics-file on a run writes the metrics of that run."""
    with running_emulator("--generate", "3", "--plan", "unmetered") as ready:
        ids = contact_ids(ready, 3)
        source = tmp_path / "in.csv"
        source.write_text("contact_id,tags\n" + "".join(f"{i},m\n" for i in ids))
        (tmp_path / "prom").mkdir()  # the collector's folder exists; bulktag does not make it
        result = run_bulktag(
            [
                "run",
                str(source),
                "--out",
                str(tmp_path / "run"),
                "--plan",
                "unmetered",
                "--metrics-file",
                str(tmp_path / "prom" / "bulktag.prom"),
            ],
            emulator_env(ready),
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "prom" / "bulktag.prom").read_text()
    assert 'bulktag_last_run_contacts{job="manual",status="ok"} 3' in text
    assert 'bulktag_last_run_exit_code{job="manual"} 0' in text
