"""A job's nights: recorded by every run, shown by history.html and `bulktag history`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from tests.world import World


def _three_nights(world: World, extra: str = "") -> tuple[Path, list[int]]:
    """25 contacts, 10 calls a day: a job finishes them in three nights."""
    world.write_csv("backlog.csv", [(cid, "import") for cid in world.contact_ids])
    job = world.write_job(f'inputs = ["backlog.csv"]\n{extra}[limits]\nplan = "starter"\n')
    codes = []
    for _night in range(3):
        world.next_night()
        code, _run_dir = world.run_job(job)
        codes.append(code)
    return job, codes


def _history(job: Path, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["history", "--job", str(job), *more])
    return code, capsys.readouterr().out


def test_each_night_is_a_row_and_a_point(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Three nights: ok 10, 10, 5; backlog 15, 5, 0; nights to finish 2, 1, 0."""
    world = make_world(contacts=25, plan="starter", per_day=10)
    job, codes = _three_nights(world)
    assert codes == [ExitCode.WORK_LEFT, ExitCode.WORK_LEFT, ExitCode.OK]
    code, out = _history(job, capsys, "--json")
    assert code == ExitCode.OK
    nights = json.loads(out)["nights"]
    assert [n["ok"] for n in nights] == [10, 10, 5]
    assert [n["deferred"] for n in nights] == [15, 5, 0]
    assert [n["backlog"] for n in nights] == [15, 5, 0]
    assert [n["nights_to_finish"] for n in nights] == [2, 1, 0]
    assert [n["calls"] for n in nights] == [10, 10, 5]
    assert [n["per_night"] for n in nights] == [10, 10, 10]
    assert [n["exit_code"] for n in nights] == [75, 75, 0]
    page = (world.folder / "job" / "history.html").read_text(encoding="utf-8")
    assert page.count('<a href="runs/') == 3  # each night links its report.html
    assert "Contacts per night" in page
    assert "the backlog left" in page


def test_history_prints_the_nights_as_a_table(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """`bulktag history --job`: a header, one line per night, and the outlook."""
    world = make_world(contacts=25, plan="starter", per_day=10)
    job, _codes = _three_nights(world)
    code, out = _history(job, capsys)
    assert code == ExitCode.OK
    lines = out.splitlines()
    assert lines[0] == "job job: 3 nights"
    assert lines[1].split()[:3] == ["night", "(UTC)", "exit"]
    assert [line.split()[2:6] for line in lines[2:5]] == [
        ["75", "10", "15", "0"],
        ["75", "10", "5", "0"],
        ["0", "5", "0", "0"],
    ]
    assert lines[-1].endswith("the backlog is done")


def test_report_job_writes_history_html(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """`bulktag report --job FILE` writes history.html again and prints its path."""
    world = make_world(contacts=25, plan="starter", per_day=10)
    job, _codes = _three_nights(world)
    history = world.folder / "job" / "history.html"
    history.unlink()
    capsys.readouterr()
    assert main(["report", "--job", str(job)]) == ExitCode.OK
    assert capsys.readouterr().out.strip() == str(history)
    assert "Night by night" in history.read_text(encoding="utf-8")


def test_report_false_writes_no_page_but_keeps_the_nights(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """`report = false` in a job file: no report.html nor history.html; the nights are kept."""
    world = make_world(contacts=25, plan="starter", per_day=10)
    job, _codes = _three_nights(world, "report = false\n")
    assert not list((world.folder / "job").rglob("*.html"))
    code, out = _history(job, capsys, "--json")
    assert code == ExitCode.OK
    assert len(json.loads(out)["nights"]) == 3


def test_the_history_outlives_pruned_run_folders(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """keep_runs = 1 removes old run folders; their nights stay in the history."""
    world = make_world(contacts=25, plan="starter", per_day=10)
    job, _codes = _three_nights(world, "keep_runs = 1\n")
    assert len(list((world.folder / "job" / "runs").iterdir())) == 1
    _code, out = _history(job, capsys, "--json")
    assert [n["ok"] for n in json.loads(out)["nights"]] == [10, 10, 5]


@pytest.mark.parametrize("command", ["history", "report"])
def test_a_job_that_never_ran_is_exit_65(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """No state yet: exit 65, one line naming the job file and the command that records one."""
    job = tmp_path / "job.toml"
    job.write_text('inputs = ["in.csv"]\nout = "job"\n')
    assert main([command, "--job", str(job)]) == ExitCode.INPUT_UNUSABLE
    err = capsys.readouterr().err
    assert err.startswith(f"bulktag: error: {job}: the job has not run yet")
    assert f"bulktag run --job {job}" in err
    assert err.count("\n") == 1


def test_history_needs_a_job(capsys: pytest.CaptureFixture[str]) -> None:
    """`bulktag history` without --job: usage error, exit 2."""
    assert main(["history"]) == ExitCode.USAGE
    assert "--job" in capsys.readouterr().err
