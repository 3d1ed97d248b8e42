"""``bulktag demo``: the whole story on sample_data/, against an emulator with faults.

1. start ``bulktag emulator`` on loopback: the sample CRM, Org plan, faults on
   (5xx answers, dropped connections, latency);
2. ``bulktag run`` on every sample file: some contacts are unknown to the CRM,
   some rows are bad, some calls fail and are retried;
3. turn the faults off and ``bulktag run`` the failures file, until only
   permanent failures (contacts the CRM does not know) are left;
4. end with the path of the first run's ``report.html``, the page to open.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx2
import polars as pl

from bulktag.errors import ConfigError, ExitCode
from bulktag.state.rundir import RunPaths

__all__ = ["run_demo", "sample_folder"]

SEED_CONTACT = "123e4567-e89b-12d3-a456-426614174000"
INPUTS = (
    "contacts_long.csv",
    "segment_excel_utf8.csv",
    "segment_excel_ansi.csv",
    "webinar.xlsx",
    "scoring.parquet",
)
FAULTS = ("--fault-rate", "0.15", "--drop-rate", "0.05", "--latency-ms", "5:40", "--seed", "7")


def _say(text: str = "") -> None:
    print(text, flush=True)


def _bulktag(args: Sequence[str], env: dict[str, str]) -> int:
    _say(f"\n$ bulktag {' '.join(args)}")
    command = [sys.executable, "-m", "bulktag", *args]
    return subprocess.run(command, env=env, check=False).returncode  # noqa: S603  (our own module)


def _failures(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def _permanent(failures: Path) -> pl.DataFrame:
    """What the last run left: its failures, and the permanent failures of the file it was
    given, which it set aside in its rejects (not sent again)."""
    columns = ["contact_id", "tags", "error_type"]
    found = _failures(failures).select(columns)
    rejects = _failures(RunPaths(failures.parent).output("rejects", "csv"))
    set_aside = rejects.filter(pl.col("column") == "retryable").select(
        "contact_id", "tags", error_type=pl.col("reason").str.extract(r"^(\w+):")
    )
    return pl.concat([found, set_aside])


def sample_folder() -> Path:
    """The demo's samples: ``./sample_data`` in the repository, else the copy an installed
    package carries (``bulktag/samples``, see pyproject.toml)."""
    here = Path("sample_data")
    shipped = Path(__file__).parent.parent / "samples"  # bulktag/samples
    return shipped if not here.is_dir() and shipped.is_dir() else here


def _samples(data: Path | None) -> Path:
    """The sample folder (``data``, else :func:`sample_folder`), checked whole."""
    data = data or sample_folder()
    missing = [name for name in ("crm_contacts.csv", *INPUTS) if not (data / name).is_file()]
    if missing:
        raise ConfigError(
            f"{data}: sample files missing: {', '.join(missing)}; give --data FOLDER with the "
            "samples (sample_data/ of the repository)"
        )
    return data


def run_demo(data: Path | None = None, out: Path | None = None) -> int:
    """Run the demo; returns 0 when the story ended as expected."""
    data = _samples(data)
    out = out or Path("runs") / f"demo-{time.strftime('%Y%m%dT%H%M%S')}"
    started = time.monotonic()
    emulator_args = [
        "emulator",
        "--port",
        "0",
        "--contacts",
        str(data / "crm_contacts.csv"),
        "--plan",
        "org",
        *FAULTS,
    ]
    _say(f"$ bulktag {' '.join(emulator_args)}")
    emulator = subprocess.Popen(  # noqa: S603  (our own module)
        [sys.executable, "-m", "bulktag", *emulator_args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert emulator.stdout is not None
        ready = json.loads(emulator.stdout.readline())
        _say(json.dumps(ready))
        url, key = ready["url"], next(iter(ready["keys"]))
        env = os.environ | {"LEADLEX_API_KEY": key, "LEADLEX_API_URL": url}
        common = [
            "--plan",
            "org",
            "-v",
            "--log-format",
            "text",
            "--no-progress",
            "--retry-time",
            "20",
        ]
        first = _bulktag(
            [
                "run",
                *(str(data / name) for name in INPUTS),
                "--out",
                str(out / "1-first-run"),
                *common,
            ],
            env,
        )
        failures = RunPaths(out / "1-first-run").output("failures", "csv")
        left = _failures(failures)
        _say(f"\nfirst run: exit {first}; {left.height} contacts in {failures} to re-run:")
        _say(str(left.group_by("error_type").len().sort("len", descending=True)))
        _say(
            '\n$ curl -X POST $CONTROL/faults -d \'{"fault_rate": 0, "drop_rate": 0}\''
            f"   # CONTROL={ready['control']}"
        )
        with httpx2.Client(base_url=ready["control"]) as control:
            control.post("/faults", json={"fault_rate": 0, "drop_rate": 0})
            rounds, code = 1, first
            while code == ExitCode.WORK_LEFT and rounds < 4:
                rounds += 1
                run_dir = out / f"{rounds}-re-run"
                code = _bulktag(["run", str(failures), "--out", str(run_dir), *common], env)
                failures = RunPaths(run_dir).output("failures", "csv")
            left = _permanent(failures)
            _say(f"\nafter {rounds} runs: exit {code}; left, for a person to look at:")
            _say(str(left))
            seed = control.get(f"/contacts/{SEED_CONTACT}").json()["data"]
            stats = control.get("/stats").json()
        _say(f"\nthe CRM's copy of {SEED_CONTACT}: tags {seed['tags']}")
        _say(
            f"calls the emulator handled: {stats['tag_calls_handled']}; requests by status: "
            f"{stats['requests'].get('POST /v1/contacts/{id}/tags', {})}"
        )
        permanent_only = bool(left.height) and set(left["error_type"]) <= {"not_found"}
        converged = code == ExitCode.FAILURES and permanent_only
        _say(
            f"\n{'converged' if converged else 'did NOT converge'}: "
            "only permanent failures are left "
            f"({time.monotonic() - started:.0f} s). Files are in {out}/."
        )
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(timeout=10)
    report = RunPaths(out / "1-first-run").report.resolve()
    if report.is_file():
        _say(f"\nthe first run's report, to open in a browser: {report}")
    else:
        _say(f"\nthe first run wrote no report ({report} is missing)")
        converged = False
    return ExitCode.OK if converged else ExitCode.FAILURES
