"""A file still being written is not read as finished (``bulktag.read.landing``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import bulktag.run.stages
from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from bulktag.read.rules import CUT_LINE
from tests.machine.support import one_error, tagged
from tests.world import World

JOB = 'inputs = ["exports/*.csv"]\n'


def _landed(world: World, name: str, rows: list[tuple[str, str]], *, end: bool, age: float) -> Path:
    """An export in ``exports/``, its last line ended or not, changed ``age`` seconds ago."""
    folder = world.folder / "exports"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    text = "contact_id,tags\n" + "\n".join(f"{c},{t}" for c, t in rows) + ("\n" if end else "")
    path = folder / name
    path.write_text(text)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def _rejects(run_dir: Path) -> pl.DataFrame:
    return pl.read_csv(run_dir / "rejects.csv", infer_schema=False)


def test_a_file_growing_while_it_is_read_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: 188k, 198k or 234k of 400k rows read, exit 0. Now: 75, nothing sent."""
    source = world.write_csv("in.csv", [(c, "a") for c in world.contact_ids[:30]])
    prepare = getattr(bulktag.run.stages, "prepare_plan")  # noqa: B009  (the name the runner calls)

    def growing(*args: Any, **kwargs: Any) -> Any:
        planned = prepare(*args, **kwargs)
        with source.open("a") as handle:  # the exporter writes on
            handle.writelines(f"{c},a\n" for c in world.contact_ids[30:])
        return planned

    monkeypatch.setattr(bulktag.run.stages, "prepare_plan", growing)
    code, run_dir = world.run(str(source))
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert line.startswith(f"{source}: the file changed while it was read: is the export still")
    assert "nothing was sent" in line
    assert world.handled_tag_calls() == 0
    assert not run_dir.exists()
    monkeypatch.undo()
    assert world.run(str(source), out="run1")[0] == ExitCode.OK
    assert tagged(world, "a") == 60


def test_a_file_replaced_while_it_is_read_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same size, a new file renamed over it (a new inode): not the file that was read."""
    source = world.write_csv("in.csv", [(c, "a") for c in world.contact_ids])
    prepare = getattr(bulktag.run.stages, "prepare_plan")  # noqa: B009

    def replaced(*args: Any, **kwargs: Any) -> Any:
        planned = prepare(*args, **kwargs)
        fresh = source.with_name("in.csv.tmp")
        fresh.write_bytes(source.read_bytes())
        os.utime(fresh, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns))
        fresh.replace(source)
        return planned

    monkeypatch.setattr(bulktag.run.stages, "prepare_plan", replaced)
    assert world.run(str(source))[0] == ExitCode.WORK_LEFT
    assert "changed while it was read" in one_error(capsys.readouterr().err)


def test_a_last_line_cut_in_a_job_whose_exports_end_their_lines_is_a_reject(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the cut tag (newsletter-subscr) was applied, exit 0. Now: the last row is a
    reject naming why, the rest is sent, exit 1; the whole export next night sends it."""
    world = make_world(contacts=12)
    ids = world.contact_ids
    job = world.write_job(JOB)
    for night, tag in enumerate(["spring", "summer"]):
        _landed(world, f"day{night}.csv", [(c, tag) for c in ids], end=True, age=3600 - night)
        world.next_night()
        assert world.run_job(job)[0] == ExitCode.OK
    rows = [(c, "newsletter-subscriber") for c in ids[:-1]] + [(ids[-1], "newsletter-subscr")]
    _landed(world, "day2.csv", rows, end=False, age=60)
    world.next_night()
    code, run_dir = world.run_job(job)
    assert code == ExitCode.FAILURES
    assert run_dir is not None
    rejects = _rejects(run_dir)
    assert rejects.height == 1
    assert rejects["reason"][0] == CUT_LINE
    assert rejects["line"][0] == "13"
    assert "newsletter-subscr" not in world.tags_of(ids[-1])
    assert tagged(world, "newsletter-subscriber") == 11
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["plan"]["rejects"] == 1
    # the exporter finishes the file: the next night sends the last row
    rows[-1] = (ids[-1], "newsletter-subscriber")
    _landed(world, "day2.csv", rows, end=True, age=30)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    assert tagged(world, "newsletter-subscriber") == 12
    capsys.readouterr()


def test_exports_that_never_end_their_last_line_are_not_suspect(
    make_world: Callable[..., World],
) -> None:
    """Google Sheets ends no CSV with a line end: nothing to compare with, nothing cut."""
    world = make_world(contacts=6)
    ids = world.contact_ids
    job = world.write_job(JOB)
    for night, tag in enumerate(["one", "two", "three"]):
        _landed(world, f"d{night}.csv", [(c, tag) for c in ids], end=False, age=900 - night)
        world.next_night()
        assert world.run_job(job)[0] == ExitCode.OK
    assert tagged(world, "three") == 6


def test_a_first_export_has_no_history_to_be_suspect_against(
    make_world: Callable[..., World],
) -> None:
    """The limit, documented: a job's first export is read as it is."""
    world = make_world(contacts=4)
    job = world.write_job(JOB)
    _landed(world, "d.csv", [(c, "x") for c in world.contact_ids], end=False, age=900)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK


def test_a_dry_run_shows_the_suspect_row_without_noting_the_export(
    make_world: Callable[..., World],
) -> None:
    world = make_world(contacts=5)
    ids = world.contact_ids
    job = world.write_job(JOB)
    _landed(world, "a.csv", [(c, "x") for c in ids], end=True, age=900)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    _landed(world, "b.csv", [(c, "y") for c in ids], end=False, age=60)
    before = world.job_fingerprint()
    code, run_dir = world.run_job(job, "--dry-run")
    assert code == ExitCode.FAILURES
    assert run_dir is not None
    assert _rejects(run_dir)["reason"].to_list() == [CUT_LINE]
    assert world.job_fingerprint() == before


def test_settle_seconds_leaves_a_fresh_export_for_later(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(contacts=5)
    job = world.write_job(JOB + "[read]\nsettle_seconds = 600\n")
    path = _landed(world, "a.csv", [(c, "x") for c in world.contact_ids], end=True, age=5)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.WORK_LEFT
    line = one_error(capsys.readouterr().err)
    assert line.startswith(f"{path}: the file changed 5 s ago, less than [read] settle_seconds")
    assert world.handled_tag_calls() == 0
    stamp = time.time() - 700
    os.utime(path, (stamp, stamp))
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    assert tagged(world, "x") == 5


@pytest.mark.parametrize(
    ("value", "said"),
    [("-1", "must be between 0 and 86400"), ("100000", "must be between 0 and 86400")],
)
def test_settle_seconds_is_checked_in_the_job_file(
    world: World, capsys: pytest.CaptureFixture[str], value: str, said: str
) -> None:
    job = world.write_job(JOB + f"[read]\nsettle_seconds = {value}\n")
    assert main(["check-job", str(job)], runtime=world.runtime()) == ExitCode.CONFIG
    assert f"[read] settle_seconds {said}" in one_error(capsys.readouterr().err)
