"""Sharing a key and a folder: the reserve holds between processes, a job's folder is one
job file's, the day is LeadLex's, and keep_runs prunes every run folder of the job."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from tests.constants import T0
from tests.helpers import contact_ids, emulator_env, running_emulator, start_bulktag
from tests.machine.support import one_error, said, tagged
from tests.world import World


def _two_jobs(folder: Path, ids: list[str], reserve: int) -> list[Path]:
    jobs = []
    for name, half in (("a", ids[:100]), ("b", ids[100:200])):
        export = folder / f"{name}.csv"
        export.write_text("contact_id,tags\n" + "".join(f"{c},{name}\n" for c in half))
        job = folder / f"{name}.toml"
        job.write_text(
            f'inputs = ["{export.name}"]\nout = "job-{name}"\n[limits]\nplan = "org"\n'
            f"rate_per_minute = 60000\nquota_reserve = {reserve}\nconcurrency = 8\n"
        )
        jobs.append(job)
    return jobs


def test_two_jobs_on_one_key_keep_the_reserve_between_them(tmp_path: Path) -> None:
    """Before: two jobs with a reserve of 20 of 100 used 88 every time (up to the
    concurrency of each went into the reserve). Now: each call is booked in the quota
    store before it goes; together they use at most 80, and each stops with 75."""
    with running_emulator(
        "--generate", "200", "--plan", "starter", "--per-day", "100", "--per-minute", "100000",
        "--latency-ms", "20:60",
    ) as ready:  # fmt: skip
        jobs = _two_jobs(tmp_path, contact_ids(ready, 200), reserve=20)
        env = {**emulator_env(ready), "BULKTAG_STATE_DIR": str(tmp_path / "state")}
        started = [
            start_bulktag(["run", "--job", str(job)], env, stderr=subprocess.PIPE, cwd=tmp_path)
            for job in jobs
        ]
        codes = [process.wait(timeout=120) for process in started]
        for process in started:
            assert process.stderr is not None
            process.stderr.close()
        quota: dict[str, Any] = httpx2.get(f"{ready['control']}/stats").json()["quota"]
    used = quota["default"]["used"]
    assert used <= 80, used
    assert used >= 60  # they did share the day: not one stopping the other at once
    assert codes == [ExitCode.WORK_LEFT, ExitCode.WORK_LEFT]


def test_two_job_files_naming_one_out_are_refused(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the second job's night sent the first job's carry-over with its own tags,
    and the histories mixed. Now: 78 naming the other job file; check-job says the same."""
    world = make_world(contacts=10)
    world.write_csv("in.csv", [(c, "first") for c in world.contact_ids])
    first = world.write_job('inputs = ["in.csv"]\n', name="first.toml")
    second = world.write_job('inputs = ["in.csv"]\n[tags]\nprefix = "x-"\n', name="second.toml")
    world.next_night()
    assert world.run_job(first)[0] == ExitCode.OK
    capsys.readouterr()
    world.next_night()
    assert world.run_job(second)[0] == ExitCode.CONFIG
    line = one_error(capsys.readouterr().err)
    assert f"it is the folder of the job 'first' ({first})" in line
    assert f"give {second} an out of its own" in line
    assert world.handled_tag_calls() == 10
    assert main(["check-job", str(second)], runtime=world.runtime()) == ExitCode.CONFIG
    assert "it is the folder of the job 'first'" in one_error(capsys.readouterr().err)
    assert world.run_job(second, "--dry-run")[0] == ExitCode.CONFIG


def test_a_job_file_moved_takes_its_folder_over(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(contacts=5)
    world.write_csv("in.csv", [(c, "a") for c in world.contact_ids])
    job = world.write_job('inputs = ["in.csv"]\n', name="nightly.toml")
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    moved = job.rename(job.with_name("renamed.toml"))
    capsys.readouterr()
    world.next_night()
    assert world.run_job(moved)[0] == ExitCode.OK
    _, warnings = said(capsys.readouterr().err)
    assert any("which no longer names it" in w and "takes it over" in w for w in warnings)


def test_a_local_clock_behind_leadlex_at_midnight_does_not_defer_everything(
    make_world: Callable[..., World],
) -> None:
    """The store says yesterday's quota is spent, LeadLex's day has turned, the local clock
    is 60 s behind: the run asks LeadLex (one call alone), and sends."""
    world = make_world(contacts=20, plan="starter", per_day=20)
    world.write_csv("day1.csv", [(c, "one") for c in world.contact_ids])
    world.next_night(hour=12)
    code, _ = world.run(str(world.folder / "day1.csv"))
    assert code == ExitCode.OK  # the day's 20 calls spent, the store knows it
    # LeadLex's midnight has passed by 30 s; this machine's clock says 23:59:30
    now = T0 + world.clock.current_time()
    midnight = (now // 86_400 + 1) * 86_400
    world.clock.jump(midnight + 30 - now)
    world.clock_offset = -60
    world.write_csv("day2.csv", [(c, "two") for c in world.contact_ids])
    code, _ = world.run(str(world.folder / "day2.csv"), "--concurrency", "1")
    assert code == ExitCode.OK
    assert tagged(world, "two") == 20


def test_keep_runs_prunes_the_folders_of_runs_killed_while_planning(
    make_world: Callable[..., World],
) -> None:
    """Before: a run killed while planning left a folder keep_runs never pruned."""
    world = make_world(contacts=5)
    world.write_csv("in.csv", [(c, "a") for c in world.contact_ids])
    job = world.write_job('inputs = ["in.csv"]\nkeep_runs = 2\n')
    runs = world.folder / "job" / "runs"
    nights = []
    for night in range(4):
        world.next_night()
        code, run_dir = world.run_job(job)
        assert code == ExitCode.OK
        assert run_dir is not None
        nights.append(run_dir.name)
        if night == 1:  # a night killed while it planned: a folder, no entry in the state
            killed = runs / "20000101T000000Z"
            (killed / ".bulktag").mkdir(parents=True)
            (killed / ".bulktag" / "config.json").write_text('{"run_id": "x", "started_at": 1}')
    left = sorted(p.name for p in runs.iterdir())
    assert left == nights[-2:]  # the newest two kept, the killed run's folder gone
