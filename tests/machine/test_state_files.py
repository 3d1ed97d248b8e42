"""State that is damaged or from another version never blocks the nights.

A damaged job state, quota store, journal or run folder is moved aside, named, and the job
goes on from what can be trusted (the run folders, the CRM's answers); a file of a newer
bulktag is refused in one line before anything is sent; an older one is brought up to date.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from bulktag.state.job import STATE_VERSION
from tests.machine.support import one_error, resume, said, tagged
from tests.world import Crash, World

JOB = 'inputs = ["in.csv"]\n'


def _export(world: World, tag: str = "spring") -> Path:
    return world.write_csv("in.csv", [(c, tag) for c in world.contact_ids])


def _garble(path: Path) -> None:
    """The file's first page overwritten: SQLite says "file is not a database"."""
    data = bytearray(path.read_bytes())
    data[:100] = b"\xde\xad\xbe\xef" * 25
    path.write_bytes(bytes(data))


def _cut(path: Path) -> None:
    """The file cut to its first two pages: its header is whole, its pages are not."""
    data = path.read_bytes()
    path.write_bytes(data[:8192])


def _set_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


def _crash_night(world: World, job: Path, calls: int) -> Path:
    world.next_night()
    world.crash_after(calls)
    world.crashing("--job", str(job))
    runs = sorted((world.folder / "job" / "runs").iterdir())
    return runs[-1]


@pytest.mark.parametrize("damage", [_garble, _cut], ids=["garbled", "cut"])
def test_a_damaged_job_state_is_moved_aside_and_the_night_asks_the_crm(
    make_world: Callable[..., World],
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], None],
) -> None:
    """Before: exit 78 every night with "make it writable". Now: moved aside, named; the
    ledger is lost, so the night asks the CRM and sends nothing already there."""
    world = make_world(contacts=30)
    _export(world)
    job = world.write_job(JOB)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    state = world.folder / "job" / "state.sqlite"
    damage(state)
    capsys.readouterr()
    codes = []
    for _night in range(2):
        world.next_night()
        codes.append(world.run_job(job)[0])
    errors, warnings = said(capsys.readouterr().err)
    # found as it is opened, or as the night uses it (then the next night goes on): never
    # a night lost to it twice
    assert codes in ([ExitCode.OK, ExitCode.OK], [ExitCode.WORK_LEFT, ExitCode.OK]), errors
    told = [w for w in [*warnings, *errors] if "state.sqlite" in w and "moved aside to" in w]
    assert told, warnings
    assert any("asks the CRM" in w for w in warnings), warnings
    assert list((world.folder / "job").glob("state.sqlite.damaged-*"))
    assert world.handled_tag_calls() == 30  # what the CRM has was not sent again
    assert tagged(world, "spring") == 30


def test_a_damaged_quota_store_is_moved_aside(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: exit 78 every night, with a misleading fix. Now: a warning and the run."""
    source = _export(world)
    assert world.run(str(source))[0] == ExitCode.OK
    store = Path(world.environ["BULKTAG_STATE_DIR"]) / "quota.sqlite"
    _garble(store)
    capsys.readouterr()
    more = world.write_csv("b.csv", [(world.contact_ids[0], "more")])
    assert world.run(str(more))[0] == ExitCode.OK
    _, warnings = said(capsys.readouterr().err)
    assert any(
        w.startswith(f"{store}: it is damaged") and "moved aside to quota.sqlite.damaged-" in w
        for w in warnings
    ), warnings
    assert list(store.parent.glob("quota.sqlite.damaged-*"))


def test_a_damaged_journal_of_an_interrupted_job_run(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: exit 1 and a traceback every night, 0 calls: three nights of exports never
    sent. Now: moved aside, the run's plan sent again, the night's new export too."""
    world = make_world(contacts=30)
    _export(world)
    job = world.write_job(JOB)
    run_dir = _crash_night(world, job, 10)
    _garble(run_dir / ".bulktag" / "journal.sqlite")
    world.write_csv("in.csv", [(c, "summer") for c in world.contact_ids])
    capsys.readouterr()
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    _, warnings = said(capsys.readouterr().err)
    assert any("journal.sqlite: it is damaged" in w and "sent again" in w for w in warnings)
    assert list((run_dir / ".bulktag").glob("journal.sqlite.damaged-*"))
    assert tagged(world, "spring") == 30
    assert tagged(world, "summer") == 30


def test_a_damaged_config_of_an_interrupted_job_run_sets_the_run_aside(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(contacts=20)
    _export(world)
    job = world.write_job(JOB)
    run_dir = _crash_night(world, job, 5)
    (run_dir / ".bulktag" / "config.json").write_text("{ cut")
    capsys.readouterr()
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    _, warnings = said(capsys.readouterr().err)
    assert any("cannot be finished: it is moved aside" in w for w in warnings), warnings
    assert not run_dir.exists()
    assert tagged(world, "spring") == 20  # the export still held them


def test_a_state_of_a_newer_bulktag_is_refused_before_sending(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a newer state (an added NOT NULL column, a renamed column) crashed every
    night after sending. Now: 78 in one line, nothing sent; check-job says the same."""
    world = make_world(contacts=10)
    _export(world)
    job = world.write_job(JOB)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    state = world.folder / "job" / "state.sqlite"
    db = sqlite3.connect(state)
    db.execute("ALTER TABLE ledger RENAME COLUMN tag TO tag_name")
    db.close()
    _set_version(state, STATE_VERSION + 1)
    _export(world, "summer")
    capsys.readouterr()
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.CONFIG
    line = one_error(capsys.readouterr().err)
    assert (
        f"{state}: it was written by a newer bulktag (its schema is version {STATE_VERSION + 1}"
        in line
    )
    assert "nothing was sent" in line
    assert world.handled_tag_calls() == 10
    assert main(["check-job", str(job)], runtime=world.runtime()) == ExitCode.CONFIG
    assert "newer bulktag" in one_error(capsys.readouterr().err)


def test_a_state_of_an_older_bulktag_is_brought_up_to_date(
    make_world: Callable[..., World],
) -> None:
    """A state file from before versions (user_version 0, no ``message`` column)."""
    world = make_world(contacts=10)
    _export(world)
    job = world.write_job(JOB)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    state = world.folder / "job" / "state.sqlite"
    db = sqlite3.connect(state)
    db.execute("ALTER TABLE nights DROP COLUMN message")
    db.execute("PRAGMA user_version = 0")
    db.close()
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    db = sqlite3.connect(state)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == STATE_VERSION
        assert "message" in {row[1] for row in db.execute("PRAGMA table_info(nights)")}
    finally:
        db.close()
    assert world.handled_tag_calls() == 10  # the ledger was kept


def _interrupted(world: World) -> Path:
    source = _export(world)
    world.crash_after(5)
    world.crashing(str(source))
    return world.folder / "run1"


def test_a_run_folder_of_a_newer_bulktag_is_refused_on_resume(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a newer config.json gave a TypeError traceback on --resume."""
    run_dir = _interrupted(world)
    config = run_dir / ".bulktag" / "config.json"
    stored = json.loads(config.read_text())
    config.write_text(
        json.dumps({**stored, "schema": 2, "dispatch": {**stored["dispatch"], "x": 1}})
    )
    capsys.readouterr()
    assert resume(world, run_dir) == ExitCode.CONFIG
    line = one_error(capsys.readouterr().err)
    assert f"{config}: it was written by a newer bulktag (its schema is version 2" in line


def test_settings_a_newer_patch_release_added_are_ignored_on_resume(world: World) -> None:
    """Same schema, a setting this bulktag does not know: ignored, not a TypeError."""
    run_dir = _interrupted(world)
    config = run_dir / ".bulktag" / "config.json"
    stored = json.loads(config.read_text())
    stored["dispatch"]["a_later_setting"] = 3
    stored["read"]["another"] = "x"
    config.write_text(json.dumps(stored))
    assert resume(world, run_dir) == ExitCode.OK
    assert tagged(world, "spring") == len(world.contact_ids)


def test_a_journal_of_a_newer_bulktag_is_refused_on_resume(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _interrupted(world)
    journal = run_dir / ".bulktag" / "journal.sqlite"
    _set_version(journal, 7)
    capsys.readouterr()
    assert resume(world, run_dir) == ExitCode.CONFIG
    assert "newer bulktag (its schema is version 7" in one_error(capsys.readouterr().err)


def test_a_dry_run_of_a_job_with_a_damaged_state_changes_nothing(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(contacts=10)
    _export(world)
    job = world.write_job(JOB)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    state = world.folder / "job" / "state.sqlite"
    _garble(state)
    before = state.read_bytes()
    capsys.readouterr()
    assert world.run_job(job, "--dry-run")[0] == ExitCode.OK
    _, warnings = said(capsys.readouterr().err)
    assert any("next night moves it aside" in w for w in warnings), warnings
    assert state.read_bytes() == before
    assert not list(state.parent.glob("state.sqlite.damaged-*"))


def test_check_job_names_a_damaged_state_and_what_a_night_does(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(contacts=5)
    _export(world)
    job = world.write_job(JOB)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    _garble(world.folder / "job" / "state.sqlite")
    capsys.readouterr()
    assert main(["check-job", str(job)], runtime=world.runtime()) == ExitCode.WORK_LEFT
    line = one_error(capsys.readouterr().err)
    assert "state.sqlite: it is damaged" in line
    assert "the next run moves it aside" in line


def test_a_night_after_the_state_was_removed_asks_the_crm(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """A state removed by hand is a state lost: the run folders and the CRM say the rest."""
    world = make_world(contacts=12)
    _export(world)
    job = world.write_job(JOB)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    for path in (world.folder / "job").glob("state.sqlite*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    capsys.readouterr()
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    _, warnings = said(capsys.readouterr().err)
    assert any("it is missing" in w for w in warnings), warnings
    assert world.handled_tag_calls() == 12


def test_a_crash_is_still_a_crash(world: World) -> None:
    """The net for faults of the machine does not swallow what is not one."""
    source = _export(world)
    world.crash_after(2)
    with pytest.raises((Crash, BaseExceptionGroup)):
        world.run(str(source))
