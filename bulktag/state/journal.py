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

import contextlib
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bulktag.outcomes import ADD_TAGS, ContactOutcome, FailureType, Status
from bulktag.scan import slices
from bulktag.state.store import open_sqlite

__all__ = ["COLUMNS", "OUTCOME_COLUMNS", "OUTCOME_SCHEMA", "Column", "Journal", "sink_joined"]


def _tags(tags: tuple[str, ...]) -> str:
    return json.dumps(list(tags), ensure_ascii=False)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the ``outcomes`` table: its SQL declaration, its polars type, and how
    an outcome's value is stored in it. The table, the frame schema and each row's values
    all come from :data:`COLUMNS`, in its order, and the insert names its columns: no
    two lists to keep in step."""

    name: str
    sql: str
    dtype: pl.DataType
    value: Callable[[ContactOutcome], Any]


#: An outcome as stored: tag lists JSON-encoded, booleans as integers.
COLUMNS: tuple[Column, ...] = (
    Column("seq", "INTEGER PRIMARY KEY", pl.Int64(), lambda o: o.seq),
    Column("pending_tags", "TEXT NOT NULL", pl.String(), lambda o: _tags(o.pending_tags)),
    Column("status", "TEXT NOT NULL", pl.String(), lambda o: str(o.status)),
    Column("error_type", "TEXT", pl.String(), lambda o: _text_or_none(o.error_type)),
    Column(
        "retryable",
        "INTEGER",
        pl.Int64(),
        lambda o: None if o.retryable is None else int(o.retryable),
    ),
    Column("http_status", "INTEGER", pl.Int64(), lambda o: o.http_status),
    Column("error_code", "TEXT", pl.String(), lambda o: o.error_code),
    Column("message", "TEXT NOT NULL", pl.String(), lambda o: o.message),
    Column("attempts", "INTEGER NOT NULL", pl.Int64(), lambda o: o.attempts),
    Column("request_id", "TEXT", pl.String(), lambda o: o.request_id),
    Column("verified", "INTEGER NOT NULL", pl.Int64(), lambda o: int(o.verified)),
    Column("finished_at", "REAL NOT NULL", pl.Float64(), lambda o: o.finished_at),
)
OUTCOME_SCHEMA: dict[str, pl.DataType] = {c.name: c.dtype for c in COLUMNS}
OUTCOME_COLUMNS = tuple(OUTCOME_SCHEMA)

#: Plan rows per slice when the plan is joined with the journal (``sink_joined``).
SLICE_ROWS = 25_000

#: The journal's schema (``PRAGMA user_version``): a run folder of a newer bulktag is
#: refused, an older one's brought up to date (:func:`_upgrade`). Version 2 keeps what is
#: read back; version 1 also held each outcome's contact, tags, file and line, which the
#: plan holds (``seq`` joins them).
JOURNAL_VERSION = 2

_OUTCOMES = (
    "CREATE TABLE IF NOT EXISTS outcomes (\n    "
    + ",\n    ".join(f"{c.name} {c.sql}" for c in COLUMNS)
    + "\n)"
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    + _OUTCOMES
    + ";\n"
)
_INSERT = (
    f"INSERT OR REPLACE INTO outcomes ({', '.join(OUTCOME_COLUMNS)}) "  # noqa: S608  (constant)
    f"VALUES ({', '.join('?' * len(COLUMNS))})"
)


def _upgrade(db: sqlite3.Connection, found: int) -> None:
    """A version-1 journal (a run an earlier bulktag left) without the plan's columns."""
    if found != 1:
        return
    kept = ", ".join(OUTCOME_COLUMNS)
    db.execute("ALTER TABLE outcomes RENAME TO outcomes_v1")
    db.execute(_OUTCOMES)
    db.execute(f"INSERT INTO outcomes ({kept}) SELECT {kept} FROM outcomes_v1")  # noqa: S608  (constant)
    db.execute("DROP TABLE outcomes_v1")


def _row(outcome: ContactOutcome) -> tuple[Any, ...]:
    return tuple(column.value(outcome) for column in COLUMNS)


class Journal:
    """``journal.sqlite`` in a run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Written on the event loop, read from worker threads (one user at a time).
        self._db = open_sqlite(
            path, _SCHEMA, version=JOURNAL_VERSION, upgrade=_upgrade, any_thread=True
        )

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
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(_INSERT, [_row(o) for o in outcomes])
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # a COMMIT refused (a full disk) leaves it open
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def add_calls(self, other: Mapping[str, int]) -> dict[str, int]:
        """The run's calls by endpoint, every session's: add-tags calls from the recorded
        outcomes (attempts, retries included: they survive a crash), the other calls
        (export, list_contacts, get_contact) as each session counted them, ``other``
        being this session's, now added."""
        counted = Counter(self.meta().get("other_calls", {}))
        counted.update(other)
        self.set_meta(other_calls=dict(counted))
        return {ADD_TAGS: self.calls(), **dict(sorted(counted.items()))}

    def calls(self) -> int:
        """Add-tags calls the recorded outcomes took (attempts, retries included)."""
        return int(
            self._db.execute("SELECT coalesce(sum(attempts), 0) FROM outcomes").fetchone()[0]
        )

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outcomes").fetchone()[0])

    def answered(self) -> bool:
        """Whether LeadLex's handler answered a call of this run (an added tag, a
        validation error): its URL serves LeadLex's routes, and a resumed session's first
        404 is a contact LeadLex does not know, with no route check to spend."""
        found = self._db.execute(
            "SELECT 1 FROM outcomes WHERE status = ? OR error_type = ? LIMIT 1",
            (str(Status.OK), str(FailureType.VALIDATION_ERROR)),
        ).fetchone()
        return found is not None

    def between(self, first: int, last: int, columns: Sequence[str]) -> pl.DataFrame:
        """``columns`` of the outcomes recorded for ``first <= seq <= last``, as stored."""
        rows = self._db.execute(
            f"SELECT {', '.join(columns)} FROM outcomes WHERE seq BETWEEN ? AND ?",  # noqa: S608  (column names are ours)
            (first, last),
        ).fetchall()
        return pl.DataFrame(rows, schema={c: OUTCOME_SCHEMA[c] for c in columns}, orient="row")


def sink_joined(
    plan: pl.LazyFrame,
    journal: Journal,
    columns: Sequence[str],
    shape: Callable[[pl.LazyFrame], pl.LazyFrame],
    folder: Path,
    *,
    rows: int | None = None,
) -> pl.LazyFrame:
    """``plan`` left-joined on ``seq`` with its outcomes' ``columns``, ``shape``-d, on disk.

    ``plan`` is a Parquet scan (see :func:`bulktag.scan.slices`). Slice by slice:
    ``rows`` (``SLICE_ROWS``) of the plan and their outcomes at a time, each slice
    written to its own Parquet file in ``folder`` (emptied first), in plan order.
    One join of the whole plan with every outcome held them all at once (hundreds
    of MiB at 10M rows); a slice costs its outcomes as Python rows out of SQLite,
    so ``SLICE_ROWS`` is small (``docs/performance.md``, Memory).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    keyed = ("seq", *(c for c in columns if c != "seq"))
    parts: list[Path] = []
    for batch in slices(plan, rows or SLICE_ROWS):
        seq = batch.get_column("seq")
        recorded = journal.between(int(seq.min()), int(seq.max()), keyed)  # type: ignore[arg-type]  # polars types min and max loosely
        part = folder / f"{len(parts):06d}.parquet"
        joined = batch.lazy().join(recorded.lazy(), on="seq", how="left", maintain_order="left")
        shape(joined).sink_parquet(part)
        parts.append(part)
    if not parts:  # an empty plan: one empty part, for the schema
        empty = pl.LazyFrame(schema={c: OUTCOME_SCHEMA[c] for c in keyed})
        part = folder / "000000.parquet"
        shape(plan.head(0).join(empty, on="seq", how="left")).sink_parquet(part)
        parts.append(part)
    return pl.scan_parquet(parts)
