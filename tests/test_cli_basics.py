"""The bulktag command itself: help, version, exit codes, the first demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bulktag import __version__
from bulktag.cli import main
from bulktag.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    """bulktag --help documents each exit code with its meaning."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for code in ExitCode:
        assert f"{code.value:>3}  {code.meaning}" in out


def test_python_dash_m_is_the_same_command() -> None:
    """python -m bulktag --version prints the version."""
    result = subprocess.run(
        [sys.executable, "-m", "bulktag", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"bulktag {__version__}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown sub-command exits 2 with one line, no traceback."""
    assert main(["frobnicate"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("bulktag: error:")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    """bulktag demo: a run with faults, re-runs down to permanent failures, then the report."""
    result = subprocess.run(
        [sys.executable, "-m", "bulktag", "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "converged: only permanent failures are left" in result.stdout
    assert "tags ['existing-tag', 'vip', 'legal']" in result.stdout
    assert "Traceback" not in result.stderr
    assert (tmp_path / "demo" / "1-first-run" / "summary.json").is_file()
    report = (tmp_path / "demo" / "1-first-run" / "report.html").resolve()
    assert result.stdout.rstrip().endswith(
        f"the first run's report, to open in a browser: {report}"
    )
