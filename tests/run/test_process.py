"""bulktag run as a process against bulktag emulator over loopback: the real thing."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx2
import polars as pl

from bulktag.errors import ExitCode
from tests.helpers import contact_ids, emulator_env, run_bulktag, running_emulator

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


def bulktag(
    args: list[str], ready: dict[str, Any], *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_bulktag(args, emulator_env(ready), stdin=stdin)


def test_run_over_loopback_with_real_dropped_connections(tmp_path: Path) -> None:
    """Faults and drops on a real socket: every contact ends ok; stderr lines are JSON objects."""
    with running_emulator(
        "--generate",
        "40",
        "--plan",
        "unmetered",
        "--drop-rate",
        "0.15",
        "--fault-rate",
        "0.15",
        "--seed",
        "3",
    ) as ready:
        ids = contact_ids(ready, 40)
        source = tmp_path / "in.csv"
        source.write_text("contact_id,tags\n" + "".join(f"{i},loopback\n" for i in ids))
        result = bulktag(
            [
                "run",
                str(source),
                "--out",
                str(tmp_path / "run"),
                "--plan",
                "unmetered",
                "--max-attempts",
                "10",
                "-v",
            ],
            ready,
        )
        assert result.returncode == ExitCode.OK, result.stderr
        with httpx2.Client(base_url=ready["control"]) as control:
            stats = control.get("/stats").json()
            assert all(
                "loopback" in control.get(f"/contacts/{i}").json()["data"]["tags"] for i in ids
            )
    assert stats["requests"]["POST /v1/contacts/{id}/tags"].get("dropped", 0) > 0
    lines = result.stderr.strip().splitlines()
    assert lines
    for line in lines:
        json.loads(line)  # one JSON object per line when stderr is not a terminal


def test_quiet_on_success_without_a_terminal(tmp_path: Path) -> None:
    """From cron (no terminal, no -v): a run where every contact is ok prints nothing at all."""
    with running_emulator("--generate", "5", "--plan", "unmetered") as ready:
        ids = contact_ids(ready, 5)
        source = tmp_path / "in.csv"
        source.write_text("contact_id,tags\n" + "".join(f"{i},quiet\n" for i in ids))
        result = bulktag(
            ["run", str(source), "--out", str(tmp_path / "run"), "--plan", "unmetered"], ready
        )
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ""


def test_stdin_input(tmp_path: Path) -> None:
    """`bulktag run -` reads CSV from standard input."""
    with running_emulator("--generate", "3", "--plan", "unmetered") as ready:
        ids = contact_ids(ready, 3)
        text = "Contact ID;Tags\r\n" + "".join(f"{i};a|b\r\n" for i in ids)
        result = bulktag(
            ["run", "-", "--out", str(tmp_path / "run"), "--plan", "unmetered"],
            ready,
            stdin=text,
        )
    assert result.returncode == 0, result.stderr
    results = pl.read_csv(tmp_path / "run" / "results.csv", infer_schema=False)
    assert results["tags"].to_list() == ["a,b"] * 3
    assert set(results["source"]) == {"<stdin>"}


def test_every_sample_file_through_the_real_command(tmp_path: Path) -> None:
    """All sample inputs against the sample CRM: the expected oks, not_founds and rejects."""
    with running_emulator(
        "--contacts", str(SAMPLES / "crm_contacts.csv"), "--plan", "unmetered"
    ) as ready:
        inputs = [
            str(p)
            for p in sorted(SAMPLES.glob("*"))
            if p.suffix in (".csv", ".xlsx", ".parquet") and p.name != "crm_contacts.csv"
        ]
        result = bulktag(
            ["run", *inputs, "--out", str(tmp_path / "run"), "--plan", "unmetered"], ready
        )
    assert result.returncode == ExitCode.FAILURES, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["contacts"]["planned"] == 104
    assert summary["contacts"]["failed"] == 5
    assert summary["failures_by_type"] == {"not_found": 5}
    assert summary["rejects"]["total"] == 8
    with (tmp_path / "run" / "rejects.csv").open(newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert all(r["source"] and r["line"] and r["reason"] for r in rejects)
