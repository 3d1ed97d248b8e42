"""The journal's columns come from one definition: the table, the frame schema, each
row's values and the insert (which names its columns). Before, the same 16 columns were
hand-ordered in the SQL, in ``OUTCOME_SCHEMA`` and in ``_row()``, and the insert was
positional: a column moved in one list put every value after it in its neighbour's
column, without a word. Each column is read back here by its name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bulktag.outcomes import ContactOutcome, FailureType, Status
from bulktag.state.journal import COLUMNS, OUTCOME_SCHEMA, Journal

#: An outcome whose every field is told apart from the others.
OUTCOME = ContactOutcome(
    seq=7,
    contact_id="123e4567-e89b-42d3-a456-426614174000",
    tags=("vip", "Café"),
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
    source="in.csv",
    line=9,
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
        "contact_id": "123e4567-e89b-42d3-a456-426614174000",
        "tags": '["vip", "Café"]',
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
        "source": "in.csv",
        "line": 9,
    }
    assert declared == [c.name for c in COLUMNS] == list(OUTCOME_SCHEMA)


def test_a_frame_of_outcomes_reads_back_by_name(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        journal.record([OUTCOME])
        frame = journal.between(0, 10, ["attempts", "message", "line"])
    finally:
        journal.close()
    assert frame.row(0) == (4, "Service Unavailable", 9)
