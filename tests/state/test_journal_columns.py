"""The journal's columns come from one definition: the table, the frame schema, each
row's values and the insert (which names its columns); it holds how each contact ended,
and the plan the rest. Before, the same 16 columns were
hand-ordered in the SQL, in ``OUTCOME_SCHEMA`` and in ``_row()``, and the insert was
positional: a column moved in one list put every value after it in its neighbour's
column, without a word. Each column is read back here by its name."""

from __future__ import annotations

import sqlite3
from dataclasses import fields
from pathlib import Path

from bulktag.outcomes import ContactOutcome, FailureType, Status
from bulktag.plan.build import PLAN_COLUMNS
from bulktag.send.work import PlannedContact
from bulktag.state.journal import COLUMNS, JOURNAL_VERSION, OUTCOME_SCHEMA, Journal

#: An outcome whose every field is told apart from the others.
OUTCOME = ContactOutcome(
    seq=7,
    pending_tags=("Café",),
    status=Status.FAILED,
    error_type=FailureType.SERVER_ERROR,
    http_status=503,
    error_code="unavailable",
    message="Service Unavailable",
    attempts=4,
    request_id="req-42",
    verified=True,
    finished_at=1_795_694_400.5,
)


def test_every_column_holds_its_own_field(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    journal.record([OUTCOME])
    journal.close()
    db = sqlite3.connect(path)
    try:
        stored = {
            c.name: db.execute(f"SELECT {c.name} FROM outcomes").fetchone()[0] for c in COLUMNS
        }
        declared = [row[1] for row in db.execute("PRAGMA table_info(outcomes)")]
    finally:
        db.close()
    assert stored == {
        "seq": 7,
        "pending_tags": '["Café"]',
        "status": "failed",
        "error_type": "server_error",
        "retryable": 1,
        "http_status": 503,
        "error_code": "unavailable",
        "message": "Service Unavailable",
        "attempts": 4,
        "request_id": "req-42",
        "verified": 1,
        "finished_at": 1_795_694_400.5,
    }
    assert declared == [c.name for c in COLUMNS] == list(OUTCOME_SCHEMA)


def test_a_frame_of_outcomes_reads_back_by_name(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        journal.record([OUTCOME])
        frame = journal.between(0, 10, ["attempts", "message", "verified"])
    finally:
        journal.close()
    assert frame.row(0) == (4, "Service Unavailable", 1)


def test_the_journal_holds_how_contacts_ended_not_the_plan() -> None:
    """The contact, its tags and where it was read are the plan's (``seq`` joins them):
    the dispatcher is not given them and the journal does not store them again."""
    assert set(OUTCOME_SCHEMA) & set(PLAN_COLUMNS) == {"seq"}
    assert {f.name for f in fields(PlannedContact)} == {"seq", "contact_id", "tags"}


#: The outcomes table as bulktag 0.x's journal version 1 made it.
_VERSION_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE outcomes (
    seq INTEGER PRIMARY KEY, contact_id TEXT NOT NULL, tags TEXT NOT NULL,
    pending_tags TEXT NOT NULL, status TEXT NOT NULL, error_type TEXT, retryable INTEGER,
    http_status INTEGER, error_code TEXT, message TEXT NOT NULL, attempts INTEGER NOT NULL,
    request_id TEXT, verified INTEGER NOT NULL, finished_at REAL NOT NULL,
    source TEXT NOT NULL, line INTEGER NOT NULL
);
INSERT INTO outcomes VALUES (3, 'c', '["a"]', '[]', 'ok', NULL, NULL, 200, NULL, '', 1,
    'req-3', 0, 5.0, 'in.csv', 4);
PRAGMA user_version = 1;
"""


def test_a_version_1_journal_is_brought_up_to_date(tmp_path: Path) -> None:
    """A run an earlier bulktag left (its journal at version 1) resumes: its outcomes are
    kept, the plan's columns dropped, and new outcomes are recorded beside them."""
    path = tmp_path / "journal.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_VERSION_1)
    db.close()
    journal = Journal(path)
    try:
        journal.record([OUTCOME])
        frame = journal.between(0, 10, ["seq", "status", "request_id", "attempts"])
        assert journal.calls() == 5
    finally:
        journal.close()
    assert frame.sort("seq").rows() == [(3, "ok", "req-3", 1), (7, "failed", "req-42", 4)]
    db = sqlite3.connect(path)
    try:
        declared = [row[1] for row in db.execute("PRAGMA table_info(outcomes)")]
        version = db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()
    assert declared == list(OUTCOME_SCHEMA)
    assert version == JOURNAL_VERSION == 2
