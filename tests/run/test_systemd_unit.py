"""jobs/bulktag-nightly.service works as shipped: systemd accepts it, and what it hides
(the home folder) is not where bulktag keeps anything."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import bulktag_env, run_bulktag

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "jobs" / "bulktag-nightly.service"
TIMER = ROOT / "jobs" / "bulktag-nightly.timer"
JOB = ROOT / "jobs" / "nightly-export.toml"
STATE = "/var/lib"  # systemd's %S for a system unit


def settings(unit: Path) -> dict[str, list[str]]:
    """The unit's `Key=value` lines, each key's values in order."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text("utf-8").splitlines():
        if line.startswith(("#", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_keeps_state_where_it_may_write() -> None:
    unit = settings(UNIT)
    job = tomllib.loads(JOB.read_text("utf-8"))
    assert unit["ProtectHome"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    (directory,) = unit["StateDirectory"]
    state = f"{STATE}/{directory}"
    # The quota store: BULKTAG_STATE_DIR, inside the state directory systemd makes.
    (environment,) = unit["Environment"]
    name, _, value = environment.partition("=")
    assert name == "BULKTAG_STATE_DIR"
    assert value.replace("%S", STATE).startswith(state + "/")
    # The job's folder, its metrics file and its inputs: where the unit lets it.
    assert job["out"].startswith(state + "/")
    (writable,) = unit["ReadWritePaths"]
    assert Path(job["metrics_file"]).parent == Path(writable)
    (readable,) = unit["ReadOnlyPaths"]
    assert all(Path(pattern).parent == Path(readable) for pattern in job["inputs"])
    assert unit["SuccessExitStatus"] == ["75"]
    assert any("--job /opt/bulktag/jobs/nightly-export.toml" in v for v in unit["ExecStart"])


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_the_unit_and_its_timer(tmp_path: Path) -> None:
    """`systemd-analyze verify`, with ExecStart naming this checkout's bulktag (systemd
    checks that the program exists)."""
    bulktag = Path(sys.executable).parent / "bulktag"
    assert bulktag.is_file()
    text = UNIT.read_text("utf-8").replace("/opt/bulktag/.venv/bin/bulktag", str(bulktag))
    (tmp_path / UNIT.name).write_text(text, "utf-8")
    shutil.copy(TIMER, tmp_path / TIMER.name)
    verified = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(tmp_path / TIMER.name),
            str(tmp_path / UNIT.name),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    complaints = [
        line
        for line in verified.stderr.splitlines()
        # the container this may run in has no bulktag user, nor network-online.target's
        # providers: systemd says so, and says nothing else
        if "bulktag" in line and "Failed to resolve user" not in line
    ]
    assert verified.returncode == 0, verified.stderr
    assert not complaints, verified.stderr


def test_with_home_hidden_the_units_state_directory_is_what_works(tmp_path: Path) -> None:
    """ProtectHome=yes: bulktag's default quota store, under the home folder, cannot be
    made; the unit's BULKTAG_STATE_DIR can. check-job says so either way."""
    # ProtectHome=yes leaves the home folder empty and unwritable; a file where the
    # folder should be keeps even root out, as the unit keeps its user out.
    home = tmp_path / "home"
    home.write_text("", "utf-8")
    state = tmp_path / "var" / "lib" / "bulktag"
    state.mkdir(parents=True, mode=0o700)
    job = tmp_path / "job.toml"
    job.write_text(
        f'inputs = ["{tmp_path}/exports/*.csv"]\nout = "{state}/nightly"\n'
        '[api]\nurl = "http://127.0.0.1:9/functions/v1/api-gateway"\n',
        "utf-8",
    )
    # The unit's environment: none of the state folders this machine names, only its own.
    base = {
        k: v
        for k, v in bulktag_env(key="wbk_unit_test_key", HOME=str(home)).items()
        if not k.startswith(("BULKTAG_", "XDG_"))
    }
    (environment,) = settings(UNIT)["Environment"]
    value = environment.partition("=")[2].replace("%S", str(tmp_path / "var" / "lib"))

    def check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return run_bulktag(["check-job", str(job)], env)

    hidden = check(base)
    assert hidden.returncode == 78, hidden.stderr
    assert "BULKTAG_STATE_DIR" in hidden.stderr
    unit = check(base | {"BULKTAG_STATE_DIR": value})
    assert unit.returncode == 0, unit.stderr
    assert "Traceback" not in unit.stderr
