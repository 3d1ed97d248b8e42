"""The run's journal: each contact's outcome in SQLite (WAL), committed as it finishes.

Each outcome is committed the moment its worker has it, in its own transaction,
before the worker takes its next contact: an outcome that was counted is on disk,
``kill -9`` at any moment loses no recorded outcome, and after a crash at most
``concurrency`` calls (those in flight) can have been made without being
recorded. WAL with ``synchronous=NORMAL`` survives the death of the process; only
a crash of the machine itself can lose the last transactions.

The commit runs on the event loop, synchronously. In WAL mode with
``synchronous=NORMAL`` a commit is a write to the page cache, tens of
microseconds; only a checkpoint (every ~1,000 pages of WAL) waits for the disk.
Group commit by a recorder task, in a worker thread then on the loop, cost more
than it saved: every worker waited a turn or two of the loop for the recorder to
run, its connection idle meanwhile (31 % of the workers' time at concurrency 32).
The thread cost 5-12 % of dispatch speed, the task 9 % more (``docs/performance.md``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from bulktag.outcomes import ContactOutcome

__all__ = ["OUTCOME_COLUMNS", "Journal", "Offload", "Recorder"]

#: Runs a blocking call away from the event loop (``anyio.to_thread.run_sync``).
Offload = Callable[..., Awaitable[Any]]

OUTCOME_COLUMNS = (
    "seq",
    "contact_id",
    "tags",
    "pending_tags",
    "status",
    "error_type",
    "retryable",
    "http_status",
    "error_code",
    "message",
    "attempts",
    "request_id",
    "verified",
    "finished_at",
    "source",
    "line",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    seq INTEGER PRIMARY KEY,
    contact_id TEXT NOT NULL,
    tags TEXT NOT NULL,
    pending_tags TEXT NOT NULL,
    status TEXT NOT NULL,
    error_type TEXT,
    retryable INTEGER,
    http_status INTEGER,
    error_code TEXT,
    message TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    request_id TEXT,
    verified INTEGER NOT NULL,
    finished_at REAL NOT NULL,
    source TEXT NOT NULL,
    line INTEGER NOT NULL
);
"""


def _row(outcome: ContactOutcome) -> tuple[Any, ...]:
    retryable = outcome.retryable
    return (
        outcome.seq,
        outcome.contact_id,
        json.dumps(list(outcome.tags), ensure_ascii=False),
        json.dumps(list(outcome.pending_tags), ensure_ascii=False),
        str(outcome.status),
        None if outcome.error_type is None else str(outcome.error_type),
        None if retryable is None else int(retryable),
        outcome.http_status,
        outcome.error_code,
        outcome.message,
        outcome.attempts,
        outcome.request_id,
        int(outcome.verified),
        outcome.finished_at,
        outcome.source,
        outcome.line,
    )


class Journal:
    """``journal.sqlite`` in a run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One writer at a time (the Recorder), from worker threads: no same-thread check.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        self._db.close()

    def set_meta(self, **values: Any) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def record(self, outcomes: Sequence[ContactOutcome]) -> None:
        """Commit ``outcomes`` in one transaction."""
        placeholders = ", ".join("?" * len(OUTCOME_COLUMNS))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                f"INSERT OR REPLACE INTO outcomes VALUES ({placeholders})",  # noqa: S608  (constant)
                [_row(o) for o in outcomes],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def calls(self) -> int:
        """Add-tags calls the recorded outcomes took (attempts, retries included)."""
        return int(
            self._db.execute("SELECT coalesce(sum(attempts), 0) FROM outcomes").fetchone()[0]
        )

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outcomes").fetchone()[0])

    def frame(self) -> pl.DataFrame:
        """``seq, status, pending`` of every recorded outcome (what a resumed run needs)."""
        rows = self._db.execute("SELECT seq, status, pending_tags FROM outcomes").fetchall()
        frame = pl.DataFrame(
            rows, schema={"seq": pl.Int64, "status": pl.String, "pending": pl.String}, orient="row"
        )
        return frame.with_columns(pl.col("pending").str.json_decode(pl.List(pl.String)))

    def rows(self, batch: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """All outcomes in plan order, in batches of raw rows (JSON-encoded tag lists)."""
        cursor = self._db.execute(
            f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM outcomes ORDER BY seq"  # noqa: S608
        )
        while rows := cursor.fetchmany(batch):
            yield rows


class Recorder:
    """Commits each outcome as its worker hands it over (``await recorder.record(o)``)."""

    def __init__(
        self, journal: Journal, on_commit: Callable[[Sequence[ContactOutcome]], None]
    ) -> None:
        self._journal = journal
        self._on_commit = on_commit

    async def record(self, outcome: ContactOutcome) -> None:
        """Return once ``outcome`` is committed (synchronously: see the module's docstring)."""
        self._journal.record((outcome,))
        self._on_commit((outcome,))
