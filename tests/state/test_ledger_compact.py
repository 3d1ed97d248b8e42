"""The ledger keyed by the 16 bytes of each contact's UUID (state version 3), and a
version-2 state (an earlier bulktag's: text IDs) read as it is by a dry run, brought up
to date by a night, its pairs all kept.

The version-2 file is made here with that bulktag's own schema, not by bulktag."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl

from bulktag.errors import ExitCode
from bulktag.state.job import JobState
from tests.world import World

V2_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    contact_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    applied_at REAL NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failed (
    contact_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    error_type TEXT NOT NULL,
    message TEXT NOT NULL,
    failed_at REAL NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS precheck (
    tag TEXT PRIMARY KEY,
    checked_at REAL NOT NULL,
    found INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    run_dir TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    exit_code INTEGER
);
CREATE TABLE IF NOT EXISTS owner (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    name TEXT NOT NULL,
    file TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exports (
    pattern TEXT NOT NULL,
    path TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    PRIMARY KEY (pattern, path, mtime_ns)
);
CREATE TABLE IF NOT EXISTS nights (
    run_id TEXT PRIMARY KEY,
    run_dir TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    exit_code INTEGER NOT NULL,
    dry_run INTEGER NOT NULL,
    planned INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    deferred INTEGER NOT NULL,
    not_attempted INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    rejects INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    quota_limit INTEGER,
    quota_remaining INTEGER,
    per_night INTEGER,
    backlog INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT ''
);
"""


def _version_2_state(folder: Path, pairs: list[tuple[str, str]], at: float) -> Path:
    """A job's state as bulktag wrote it before version 3: ``pairs`` applied at ``at``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "state.sqlite"
    db = sqlite3.connect(path)
    db.executescript(V2_SCHEMA)
    db.executemany(
        "INSERT INTO ledger (contact_id, tag, applied_at, run_id) VALUES (?, ?, ?, ?)",
        [(c, t, at, "0b5e0a52-3f1c-4a3e-9d51-6a8cbd0e6c11") for c, t in pairs],
    )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    return path


def _ledger(path: Path) -> list[tuple[str, str, int]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT typeof(contact), tag, length(contact) FROM ledger").fetchall()
    finally:
        db.close()


def test_the_ledger_keeps_16_bytes_a_contact(tmp_path: Path) -> None:
    ids = ["7a1c2a3e-0000-4000-8000-00000000000" + str(i) for i in range(3)]
    with JobState(tmp_path) as state:
        assert state.record_applied([(c, "vip") for c in ids], 1_000.0, "run-1") == 3
        found = state.applied_to(pl.Series(ids[:2]))
    assert sorted(found.rows()) == [(c, "vip") for c in ids[:2]]
    assert _ledger(tmp_path / "state.sqlite") == [("blob", "vip", 16)] * 3


def test_a_version_2_state_is_read_by_a_dry_run_and_upgraded_by_a_night(
    world: World,
) -> None:
    """20 contacts, 10 of whose pairs an earlier bulktag's ledger holds: a dry run skips
    those 10 and leaves the file as it was; the night skips them too (10 calls), and the
    file is then at version 3, every pair of the old ledger kept, each key 16 bytes."""
    ids = world.contact_ids[:20]
    world.write_csv("in.csv", [(c, "seg") for c in ids])
    job = world.write_job('inputs = ["in.csv"]\n')
    at = world.runtime().clock.wall() - 86_400
    path = _version_2_state(world.folder / "job", [(c, "seg") for c in ids[:10]], at)
    before = path.read_bytes()
    code, dry = world.run_job(job, "--dry-run")
    assert code == ExitCode.OK
    assert dry is not None
    summary = json.loads((dry / "summary.json").read_text())
    assert summary["skipped_by_reason"] == {"already_applied": 10}
    assert summary["would_send"]["contacts"] == 10
    assert path.read_bytes() == before  # read, never written
    code, _ = world.run_job(job)
    assert code == ExitCode.OK
    assert world.handled_tag_calls() == 10
    assert all(world.tags_of(c) == ["seg"] for c in ids[10:])
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    db.close()
    assert sorted(_ledger(path)) == [("blob", "seg", 16)] * 20
    with JobState(world.folder / "job", read_only=True) as state:
        assert sorted(state.applied()["contact_id"].to_list()) == sorted(ids)
        assert set(state.applied().filter(pl.col("contact_id").is_in(ids[:10]))["applied_at"]) == {
            at
        }


def test_any_tag_comes_back_as_it_was_written(tmp_path: Path) -> None:
    """A contact's tags are read grouped (one JSON list a contact): quotes, separators,
    backslashes and characters beyond ASCII come back as they went in."""
    contact = "7a1c2a3e-0000-4000-8000-0000000000ab"
    tags = ['say "hi"', "größe, ja", "a\\b", "🎉 launch", "[not, a list]"]
    with JobState(tmp_path) as state:
        state.record_applied([(contact, t) for t in tags], 1_000.0, "run-1")
        found = state.applied_to(pl.Series([contact, "7a1c2a3e-0000-4000-8000-0000000000ac"]))
    assert sorted(found.rows()) == sorted((contact, t) for t in tags)
