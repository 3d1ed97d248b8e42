"""A full or read-only disk in every phase of a run: one line naming the file and the fix,
75 when a re-run after the fix recovers, 78 when configuration must change, never 1 and
never a traceback; and nothing lost once it is fixed.

The disk is a real tmpfs (``conftest.py``): polars, SQLite and Python meet the kernel's
own ENOSPC and EROFS. ``test_seams.py`` injects the same faults by patching, without root.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import bulktag.run.stages
from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from bulktag.state.job import JobState
from tests.machine.support import Disk, after_calls, one_error, quota_calls, resume, said, tagged
from tests.world import Crash, World

DiskWorld = Callable[..., tuple[World, Disk]]


def _export(world: World, tag: str = "spring") -> Path:
    return world.write_csv("in.csv", [(c, tag) for c in world.contact_ids])


def test_a_full_disk_at_start_leaves_no_lock_and_no_run_folder(
    disk_world: DiskWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: exit 1, a traceback from writing the lock, ``.bulktag/.lock`` left."""
    world, disk = disk_world(contacts=20)
    source = _export(world)
    disk.fill()
    code, run_dir = world.run(str(source))
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert f"{run_dir}/.bulktag/.lock: the disk is full; free space on it (df -h" in line
    assert "nothing was sent; once fixed, run the same command" in line
    assert not run_dir.exists()  # no folder, so no lock file: the same --out works
    disk.free()
    assert world.run(str(source), out=run_dir.name)[0] == ExitCode.OK
    assert tagged(world, "spring") == 20


def test_a_disk_full_mid_run_stops_with_the_resume_command_and_loses_nothing(
    disk_world: DiskWorld, make_disk: Callable[..., Disk], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: exit 1 and a 62-line exception-group traceback (``database or disk is
    full``), no summary, no "--resume". Now: 75, the calls made, the command; the calls are
    booked (the quota store is on another disk); --resume after freeing space finishes."""
    world, disk = disk_world(contacts=60)
    store = make_disk("4m")
    world.environ["BULKTAG_STATE_DIR"] = str(store.path)
    source = _export(world)
    after_calls(world, 20, disk.fill)
    code, run_dir = world.run(str(source), "--concurrency", "4")
    world.hook = None
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert line.startswith(f"{run_dir}/.bulktag/journal.sqlite: the disk is full")
    assert "the run stopped after 2" in line  # 20 sent, and those in flight
    assert f"nothing is lost; once fixed: bulktag run --resume {run_dir}" in line
    booked = quota_calls(store.path)
    assert booked >= 20
    disk.free()
    assert resume(world, run_dir) == ExitCode.OK
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["contacts"]["ok"] == 60
    assert tagged(world, "spring") == 60
    # each contact once, but those in flight when the disk filled (answered, not recorded)
    assert world.handled_tag_calls() <= 60 + 4


def test_a_disk_full_while_publishing(
    disk_world: DiskWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: exit 1, a traceback, no summary.json. Now: 75 with --resume, which publishes
    without sending anything again."""
    world, disk = disk_world(contacts=30)
    source = _export(world)
    publish = getattr(bulktag.run.stages, "publish")  # noqa: B009  (the name the runner calls)

    def full_first(*args: Any, **kwargs: Any) -> Any:
        disk.fill()
        return publish(*args, **kwargs)

    monkeypatch.setattr(bulktag.run.stages, "publish", full_first)
    code, run_dir = world.run(str(source))
    monkeypatch.setattr(bulktag.run.stages, "publish", publish)
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert "the disk is full" in line
    assert "the run stopped after 30 calls to LeadLex; what was answered is kept" in line
    assert not (run_dir / "summary.json").exists()
    disk.free()
    assert resume(world, run_dir) == ExitCode.OK
    assert json.loads((run_dir / "summary.json").read_text())["contacts"]["ok"] == 30
    assert world.handled_tag_calls() == 30  # nothing sent twice


def test_a_quota_store_whose_disk_fills_mid_run_is_a_warning_not_a_false_exit(
    disk_world: DiskWorld, make_disk: Callable[..., Disk], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: all 400 sent and published, then exit 78 "cannot create or open it" (so
    "nothing was sent" was false). Now: the run's own exit code, and a warning naming the
    store and the calls it could not book."""
    world, _ = disk_world(contacts=40)
    store = make_disk("4m")
    world.environ["BULKTAG_STATE_DIR"] = str(store.path)
    source = _export(world)
    after_calls(world, 10, store.fill)
    code, run_dir = world.run(str(source))
    errors, warnings = said(capsys.readouterr().err)
    assert code == ExitCode.OK, errors
    assert not errors
    assert any(
        w.startswith(f"{store.path}/quota.sqlite: the quota store could not book this run's")
        and "(the disk is full)" in w
        for w in warnings
    ), warnings
    assert json.loads((run_dir / "summary.json").read_text())["contacts"]["ok"] == 40


def test_a_read_only_interrupted_folder_on_resume(
    disk_world: DiskWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a traceback. Now: 78 naming the read-only file system; once writable,
    --resume finishes what the killed run left."""
    world, disk = disk_world(contacts=30)
    source = _export(world)
    world.crash_after(12)
    world.crashing(str(source))
    run_dir = world.folder / "run1"
    capsys.readouterr()
    disk.read_only()
    code = resume(world, run_dir)
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.CONFIG
    assert "the file system is read-only; give bulktag a writable folder" in line
    disk.writable()
    assert resume(world, run_dir) == ExitCode.OK
    assert tagged(world, "spring") == 30
    assert world.handled_tag_calls() == 30


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_job_folder_full_or_read_only_fails_each_night_in_one_line_as_check_job_does(
    disk_world: DiskWorld, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    """Before: exit 1 and a traceback every night, while check-job said 0. Now: 75 (full)
    or 78 (read-only), the same from check-job, and the night after the fix sends all."""
    world, disk = disk_world(contacts=20)
    _export(world, "first")
    job = world.write_job('inputs = ["in.csv"]\n')
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    _export(world, "second")
    disk.fill() if fault == "full" else disk.read_only()
    expected = ExitCode.WORK_LEFT if fault == "full" else ExitCode.CONFIG
    words = "the disk is full" if fault == "full" else "the file system is read-only"
    capsys.readouterr()
    for _night in range(2):
        world.next_night()
        code = world.run_job(job)[0]
        line = one_error(capsys.readouterr().err)
        assert code == expected
        assert words in line
        assert "nothing was sent" in line
    assert main(["check-job", str(job)], runtime=world.runtime()) == expected
    assert words in one_error(capsys.readouterr().err)
    disk.free() if fault == "full" else disk.writable()
    checked = main(["check-job", str(job)], runtime=world.runtime())
    assert checked == ExitCode.OK, capsys.readouterr().err
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    assert tagged(world, "second") == 20


@pytest.mark.parametrize("phase", ["ledger", "report"])
def test_a_job_stopped_after_sending_is_finished_by_the_next_night(
    disk_world: DiskWorld,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    phase: str,
) -> None:
    """The disk fills after the night sent everything: as its ledger is written, or its
    pages (report, history). 75, "the job's next night finishes this run"; it does, sending
    nothing again, its ledger whole (a third night sends nothing)."""
    world, disk = disk_world(contacts=25)
    _export(world)
    job = world.write_job('inputs = ["in.csv"]\n')
    owner: object = JobState if phase == "ledger" else bulktag.run.stages
    name = "record_applied" if phase == "ledger" else "after_run"
    original = getattr(owner, name)

    def full_first(*args: Any, **kwargs: Any) -> Any:
        disk.fill()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, full_first)
    world.next_night()
    code = world.run_job(job)[0]
    monkeypatch.setattr(owner, name, original)
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert "the disk is full" in line
    assert "the run stopped after 25 calls" in line
    assert "once fixed, the job's next night finishes this run" in line
    disk.free()
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    assert world.handled_tag_calls() == 25
    assert tagged(world, "spring") == 25


def test_a_run_killed_while_the_disk_was_full_resumes_whole(
    disk_world: DiskWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """Full mid-run, then killed while stopping: the journal kept what was answered."""
    world, disk = disk_world(contacts=30)
    source = _export(world)
    after_calls(world, 10, disk.fill)
    code, run_dir = world.run(str(source), "--concurrency", "1")
    assert code == ExitCode.WORK_LEFT
    world.hook = None
    disk.free()
    world.crash_after(5)
    with contextlib.suppress(Crash, BaseExceptionGroup):
        resume(world, run_dir)
    world.hook = world.after = None
    capsys.readouterr()
    assert resume(world, run_dir) == ExitCode.OK
    assert tagged(world, "spring") == 30
    assert world.handled_tag_calls() <= 31
