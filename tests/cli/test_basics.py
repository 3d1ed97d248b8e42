"""The bulktag command itself: help, version, exit codes, the first demo."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bulktag import __version__
from bulktag.cli.commands import main
from bulktag.cli.demo import INPUTS
from bulktag.errors import ExitCode
from tests.helpers import bulktag_env, run_bulktag

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    """bulktag --help documents each exit code with its meaning."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for code in ExitCode:
        assert f"{code.value:>3}  {code.meaning}" in out


def _formats(text: str) -> set[str]:
    return set(re.findall(r"\b(?:CSV|XLSX|XLS|ODS|Parquet|NDJSON)\b", text))


def test_ods_and_xls_are_documented_with_xlsx(capsys: pytest.CaptureFixture[str]) -> None:
    """README's "What bulktag reads", bulktag --help and run --help name ODS and XLS with XLSX."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### What bulktag reads", 1)[1].split("\n#", 1)[0]
    format_column = "\n".join(
        row.split("|")[2] for row in table.splitlines() if row.startswith("| ")
    )
    assert {"XLSX", "XLS", "ODS"} <= _formats(format_column)
    for argv in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
        before, after = capsys.readouterr().out.split("positional arguments:")
        # bulktag's description; run's INPUT (not only --sheet's "workbook sheet")
        said = before.split("\n\n")[1] if argv == ["--help"] else after.split("\n\n")[0]
        assert {"XLSX", "XLS", "ODS"} <= _formats(said), (argv, said)


def test_python_dash_m_is_the_same_command() -> None:
    """python -m bulktag --version prints the version."""
    result = run_bulktag(["--version"], bulktag_env())
    assert result.returncode == 0
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
    result = run_bulktag(["demo", "--out", str(tmp_path / "demo")], bulktag_env(), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "converged: only permanent failures are left" in result.stdout
    assert "tags ['existing-tag', 'vip', 'legal']" in result.stdout
    assert "Traceback" not in result.stderr
    assert (tmp_path / "demo" / "1-first-run" / "summary.json").is_file()
    report = (tmp_path / "demo" / "1-first-run" / "report.html").resolve()
    assert result.stdout.rstrip().endswith(
        f"the first run's report, to open in a browser: {report}"
    )


def test_an_installed_package_carries_the_demo_samples(tmp_path: Path) -> None:
    """pipx/uv tool install: the wheel holds the samples and `demo` finds them anywhere."""
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    built = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": sys.executable},
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("bulktag-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bulktag.cli.demo import sample_folder; print(sample_folder())",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
        env=bulktag_env(PYTHONPATH=str(tmp_path / "site")),
    ).stdout.strip()
    folder = Path(found)
    assert folder == tmp_path / "site" / "bulktag" / "samples"
    for name in ("crm_contacts.csv", *INPUTS):
        assert (folder / name).read_bytes() == (ROOT / "sample_data" / name).read_bytes()
