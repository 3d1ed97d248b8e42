"""Each phase of a run meets a fault of the machine injected by patching (no root needed):
one line naming the file, the fix and what was sent; 75 or 78, never 1; nothing lost once
fixed. ``test_disk.py`` meets the same faults from the kernel, on a tmpfs.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import bulktag.run.stages
from bulktag.errors import ExitCode
from bulktag.machine import guarded
from bulktag.state.journal import Journal
from bulktag.state.quota import QuotaStore
from bulktag.state.store import Connection
from tests.constants import KEY
from tests.machine.support import one_error, quota_calls, resume, said, tagged
from tests.world import World


def _export(world: World, tag: str = "spring") -> Path:
    return world.write_csv("in.csv", [(c, tag) for c in world.contact_ids])


def _full(*_: Any, **__: Any) -> Any:
    raise sqlite3.OperationalError("database or disk is full")


def _full_on_write(monkeypatch: pytest.MonkeyPatch, name: str, table: str) -> None:
    """SQLite's "database or disk is full" for writes to ``table`` of the file ``name``,
    met where the real one is: inside the connection."""
    execute, executemany = Connection.execute, Connection.executemany

    def failing(self: Connection, sql: str, *args: Any) -> Any:
        writing = sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        if self.path.name == name and writing and table in sql:
            with guarded(self.path):
                _full()
        return execute(self, sql, *args)

    def failing_many(self: Connection, sql: str, rows: Any) -> Any:
        if self.path.name == name and table in sql:
            with guarded(self.path):
                _full()
        return executemany(self, sql, rows)

    monkeypatch.setattr(Connection, "execute", failing)
    monkeypatch.setattr(Connection, "executemany", failing_many)


def _polars_full(*_: Any, **__: Any) -> Any:
    raise OSError("No space left on device (os error 28)")  # polars: no errno, only text


def test_the_lock(world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    source = _export(world)

    def pwrite(*_: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("bulktag.state.lock.os.pwrite", pwrite)
    code, run_dir = world.run(str(source))
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert line.startswith(f"{run_dir}/.bulktag/.lock: the disk is full")
    assert not run_dir.exists()
    monkeypatch.undo()
    assert world.run(str(source), out="run1")[0] == ExitCode.OK


def test_the_plan(world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    source = _export(world)
    monkeypatch.setattr(bulktag.run.stages, "prepare_plan", _polars_full)
    code, run_dir = world.run(str(source))
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert line.startswith(f"{run_dir}: the disk is full")
    assert "nothing was sent" in line
    assert not run_dir.exists()
    assert world.handled_tag_calls() == 0


def test_the_journal(world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    source = _export(world)
    record = Journal.record
    seen = {"n": 0}

    def filling(self: Journal, outcomes: Any) -> None:
        seen["n"] += 1
        if seen["n"] > 15:
            _full()
        record(self, outcomes)

    monkeypatch.setattr(Journal, "record", filling)
    code, run_dir = world.run(str(source), "--concurrency", "1")
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert line.startswith(f"{run_dir}/.bulktag/journal.sqlite: the disk is full")
    assert "the run stopped after 16 calls to LeadLex" in line
    assert f"once fixed: bulktag run --resume {run_dir}" in line
    assert quota_calls(Path(world.environ["BULKTAG_STATE_DIR"])) == 16  # booked
    monkeypatch.undo()
    assert resume(world, run_dir) == ExitCode.OK
    assert tagged(world, "spring") == len(world.contact_ids)
    assert world.handled_tag_calls() == len(world.contact_ids) + 1  # the one not recorded


def test_publishing_to_a_read_only_folder(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    source = _export(world)

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system", str(args[0].results))

    publish = getattr(bulktag.run.stages, "publish")  # noqa: B009  (the name the runner calls)
    monkeypatch.setattr(bulktag.run.stages, "publish", read_only)
    code, run_dir = world.run(str(source))
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.CONFIG
    assert line.startswith(f"{run_dir}/results.csv: the file system is read-only")
    assert f"once fixed: bulktag run --resume {run_dir}" in line
    monkeypatch.setattr(bulktag.run.stages, "publish", publish)
    assert resume(world, run_dir) == ExitCode.OK
    assert world.handled_tag_calls() == len(world.contact_ids)


def test_the_quota_store_after_sending(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    source = _export(world)
    monkeypatch.setattr(QuotaStore, "spend", _full)
    code, _ = world.run(str(source))
    errors, warnings = said(capsys.readouterr().err)
    assert code == ExitCode.OK
    assert not errors
    assert any("could not book this run's 60 calls (the disk is full)" in w for w in warnings)


def test_the_quota_store_before_sending(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    source = _export(world)
    execute = Connection.execute

    def failing(self: Connection, sql: str, *args: Any) -> Any:
        if self.path.name == "quota.sqlite" and "FROM quota" in sql:
            with guarded(self.path):
                _full()
        return execute(self, sql, *args)

    monkeypatch.setattr(Connection, "execute", failing)
    code, run_dir = world.run(str(source))
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert "quota.sqlite: the disk is full" in line
    assert "nothing was sent" in line
    assert world.handled_tag_calls() == 0
    assert not run_dir.exists()


@pytest.mark.parametrize("table", ["ledger", "nights"])
def test_the_job_state(
    make_world: Callable[..., World],
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    table: str,
) -> None:
    """The disk fills as the night writes its ledger, or its history."""
    world = make_world(contacts=20)
    _export(world)
    job = world.write_job('inputs = ["in.csv"]\n')
    _full_on_write(monkeypatch, "state.sqlite", table)
    world.next_night()
    code = world.run_job(job)[0]
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.WORK_LEFT
    assert "/job/state.sqlite: the disk is full" in line
    assert "the run stopped after 20 calls" in line
    assert "the job's next night finishes this run" in line
    monkeypatch.undo()
    for _night in range(2):
        world.next_night()
        assert world.run_job(job)[0] == ExitCode.OK
    assert world.handled_tag_calls() == 20


def test_the_report_pages(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    world = make_world(contacts=10)
    _export(world)
    job = world.write_job('inputs = ["in.csv"]\n')
    page = world.folder / "job" / "history.html"

    def denied(*_: Any, **__: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(page))

    monkeypatch.setattr(bulktag.run.stages, "after_run", denied)
    world.next_night()
    code = world.run_job(job)[0]
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.CONFIG
    assert line.startswith(f"{page}: permission denied; make {page.parent} writable")
    monkeypatch.undo()
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK
    assert page.is_file()
    assert world.handled_tag_calls() == 10


def test_a_bug_is_one_line_exit_70_and_a_file_with_its_traceback(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Not a fault of the machine, not a mistake: a bug. Never exit 1, never the key."""
    source = _export(world)

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError(f"something unforeseen near {KEY}")

    monkeypatch.setattr(bulktag.run.stages, "summary_lines", broken)
    code, _ = world.run(str(source))
    err = capsys.readouterr().err
    line = one_error(err)
    assert code == ExitCode.SOFTWARE
    assert int(ExitCode.SOFTWARE) == 70
    assert line.startswith("a bug in bulktag (RuntimeError: something unforeseen near ***)")
    kept = Path(line.split("its traceback is in ")[1].split(":")[0])
    assert kept.parent == Path(world.environ["BULKTAG_STATE_DIR"]) / "bugs"
    text = kept.read_text()
    assert "Traceback" in text
    assert "summary_lines" in text
    assert KEY not in text
    assert KEY not in err


@pytest.mark.parametrize("when", ["before sending", "after the run"])
def test_the_nights_note_of_what_it_planned_from(
    make_world: Callable[..., World],
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    when: str,
) -> None:
    """The disk fills as the night clears what the last night planned from (before it
    sends: one line, 75, nothing sent), or notes its own (after its run: the night is
    done, 0, a warning that the next night reads its inputs again); once fixed, every
    contact is tagged, none twice."""
    world = make_world(contacts=20)
    _export(world)
    job = world.write_job('inputs = ["in.csv"]\n')
    execute = Connection.execute
    writes = {"n": 0}

    def failing(self: Connection, sql: str, *args: Any) -> Any:
        if self.path.name == "state.sqlite" and "planned_from" in sql and "DELETE" in sql:
            writes["n"] += 1
            if writes["n"] == (1 if when == "before sending" else 2):
                with guarded(self.path):
                    _full()
        return execute(self, sql, *args)

    monkeypatch.setattr(Connection, "execute", failing)
    world.next_night()
    code = world.run_job(job)[0]
    errors, warnings = said(capsys.readouterr().err)
    if when == "before sending":
        (line,) = errors
        assert code == ExitCode.WORK_LEFT
        assert "/job/state.sqlite: the disk is full" in line
        assert "nothing was sent" in line
        assert world.handled_tag_calls() == 0
    else:
        assert not errors
        assert code == ExitCode.OK
        (line,) = [w for w in warnings if "planned from" in w]
        assert "/job/state.sqlite: the disk is full" in line
        assert "the next night reads its inputs again" in line
        assert world.handled_tag_calls() == 20
    monkeypatch.undo()
    for _night in range(2):
        world.next_night()
        assert world.run_job(job)[0] == ExitCode.OK
    assert world.handled_tag_calls() == 20
    assert tagged(world, "spring") == 20
