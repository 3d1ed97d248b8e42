"""A job's state: what outlives its runs, in the job folder's ``state.sqlite`` (WAL).

- the *ledger* of (contact, tag) pairs bulktag applied and when, so a nightly run
  never spends a call on a pair it already applied;
- the pairs that *failed for good* (``not_found``, ``validation_error``), so a nightly
  run does not spend a call a night on them; ``--retry-permanent`` sends them again,
  and ``permanent-failures.csv`` in the job's folder lists them for a person;
- the *pre-check history*: how many contacts carried each tag when the CRM was last
  asked (``--skip-existing`` skips asking about tags nobody carries);
- the list of the job's *runs*, so an interrupted one is completed first;
- one row per finished run, its *night* (contacts by outcome, calls, the quota, the
  backlog left), which ``bulktag history`` and ``history.html`` show and which
  outlives ``keep_runs``;
- what the last night's plan was *made from* (its inputs' bytes, the settings that shape
  a plan, the carry-over it left): while they are the same, the next night's plan is the
  carry-over alone (:mod:`bulktag.run.unchanged`).

The user's quota store, shared by every run on the machine, is :mod:`bulktag.state.quota`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

import polars as pl

from bulktag.state.ledger import (
    LEDGER_TABLES,
    compact_rows,
    contact_bytes,
    grouped_frame,
    layout,
    pairs_frame,
)
from bulktag.state.ledger import upgrade as upgrade_ledger
from bulktag.state.store import Store

__all__ = ["STATE_FILE", "STATE_VERSION", "JobState", "Night", "state_fix"]

#: A job's state file, in the job's folder.
STATE_FILE = "state.sqlite"
#: Contacts looked up in the ledger a query (SQLite takes up to 32,766 parameters).
_LOOKUP = 5_000

_SCHEMA = (
    LEDGER_TABLES
    + """
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
CREATE TABLE IF NOT EXISTS planned_from (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    fingerprint TEXT NOT NULL,
    at REAL NOT NULL
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
)


@dataclass(frozen=True, slots=True)
class Night:
    """One finished run of a job, as its history shows it (``bulktag.state.history`` builds it)."""

    run_id: str
    run_dir: str
    started_at: float
    finished_at: float
    exit_code: int
    dry_run: bool
    planned: int  #: contacts in the run's plan
    ok: int
    failed: int
    deferred: int
    not_attempted: int
    skipped: int
    rejects: int  #: input rows rejected
    calls: int  #: calls made to LeadLex, every endpoint
    quota_limit: int | None  #: the day's quota, as LeadLex reported it
    quota_remaining: int | None  #: what was left of it after the run
    per_night: int | None  #: calls a night may spend (the day's quota less the reserve)
    backlog: int  #: contacts left for the next runs (deferred, not attempted, retryable)
    #: why the night failed before it could send (its exit 65, 78...); "" for a run
    message: str = ""

    @property
    def failed_to_start(self) -> bool:
        """A night that stopped on a mistake before sending: no counts, an exit and why."""
        return bool(self.message)


def state_fix(folder: Path) -> str:
    """What to do when a job's state cannot be opened."""
    return f"the job keeps its state in its out folder ({folder}): make it writable"


_NIGHT_COLUMNS = ", ".join(f.name for f in fields(Night))

#: The state file's schema (``PRAGMA user_version``): a newer one is refused.
STATE_VERSION = 3  # 2: exports, owner; 3: the ledger compact (bulktag.state.ledger)


def _upgrade(db: sqlite3.Connection, found: int) -> None:
    """What a file of an earlier bulktag (``found``: its version) lacks, added."""
    del found  # tables are made by the schema (IF NOT EXISTS); columns are added here
    columns = {row[1] for row in db.execute("PRAGMA table_info(nights)")}
    if "message" not in columns:
        db.execute("ALTER TABLE nights ADD COLUMN message TEXT NOT NULL DEFAULT ''")
    upgrade_ledger(db)


class JobState(Store):
    """A job's ``state.sqlite`` (see the module docstring); one run of the job at a time."""

    def __init__(self, folder: Path, *, read_only: bool = False) -> None:
        """Open (create) ``folder/state.sqlite``; ConfigError (exit 78) when it cannot be.
        ``read_only``: open an existing one to read it, and never write (a dry run)."""
        super().__init__(
            folder / STATE_FILE,
            _SCHEMA,
            state_fix(folder),
            read_only=read_only,
            version=STATE_VERSION,
            upgrade=_upgrade,
        )
        #: the file was damaged and this one begun anew: its ledger is lost (see runner)
        self.begun_anew = False
        #: an older file read as it is (a dry run's) may have the ledger of text IDs
        self._ledger = layout(self._db.raw)

    def _has(self, table: str) -> bool:
        """Whether the file has ``table`` (one an older bulktag made may not, read only)."""
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return found is not None

    # -- ledger ---------------------------------------------------------------

    def record_applied(
        self,
        pairs: Iterable[tuple[str, str]],
        at: float,
        run_id: str,
        *,
        days: float | None = None,
    ) -> int:
        """Add (contact, tag) pairs applied at ``at``; returns how many rows were written.
        ``days`` (``[ledger] days``): pairs applied longer ago are pruned (a night checks
        them with the CRM again, and a pair found there is added back).

        ``pairs`` is consumed as it is written (one transaction), never held whole.
        """
        failed = self.failed_count() > 0  # a pair applied at last no longer failed
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR IGNORE INTO ledger_runs (run_id) VALUES (?)", (run_id,))
            number = self._db.execute("SELECT run FROM ledger_runs WHERE run_id = ?", (run_id,))
            run = int(number.fetchone()[0])
            cursor = self._db.executemany(
                "INSERT OR REPLACE INTO ledger (contact, tag, applied_at, run) VALUES (?, ?, ?, ?)",
                compact_rows(pairs, at, run),
            )
            written = cursor.rowcount
            if failed:  # few: each looked up by the ledger's key
                found = self._db.execute("SELECT contact_id, tag FROM failed").fetchall()
                gone = [
                    (contact, tag)
                    for contact, tag in found
                    if self._db.execute(
                        "SELECT 1 FROM ledger WHERE contact = ? AND tag = ? AND run = ?",
                        (contact_bytes(contact), tag, run),
                    ).fetchone()
                ]
                self._db.executemany("DELETE FROM failed WHERE contact_id = ? AND tag = ?", gone)
            if days:
                self._db.execute("DELETE FROM ledger WHERE applied_at < ?", (at - days * 86_400,))
        return written

    def _pairs(self, where: str, parameters: Sequence[Any], *, grouped: bool = False) -> list[Any]:
        """The ledger's rows ``where`` (its ``{key}``: the 16 bytes of ``contact``, or an
        older file's ``contact_id``): ``hex(contact), tag, applied_at``; ``grouped``: one row
        a contact, ``hex(contact), json_group_array(tag)`` (a quarter of the rows to fetch)."""
        key = "contact_id" if self._ledger == "text" else "contact"
        contact = "upper(replace(contact_id, '-', ''))" if key == "contact_id" else "hex(contact)"
        columns = "json_group_array(tag)" if grouped else "tag, applied_at"
        sql = f"SELECT {contact}, {columns} FROM ledger WHERE {where.format(key=key)}"  # noqa: S608  (our columns, placeholders)
        rows: list[Any] = self._db.execute(
            sql + (f" GROUP BY {key}" if grouped else ""), parameters
        ).fetchall()
        return rows

    def applied(self, since: float | None = None) -> pl.DataFrame:
        """Pairs applied at or after ``since``: ``contact_id, tag, applied_at``."""
        rows = self._pairs("applied_at >= ?", (since if since is not None else float("-inf"),))
        return pairs_frame(rows)

    def applied_to(self, contacts: pl.Series, since: float | None = None) -> pl.DataFrame:
        """The ledger's pairs of ``contacts`` applied at or after ``since`` (``contact_id,
        tag``): looked up by the ledger's key, a few thousand contacts a query, so a night
        reads what its plan may skip, never the whole ledger."""
        found: list[tuple[str, str]] = []
        wanted = contacts.unique().to_list()
        after = since if since is not None else float("-inf")
        for start in range(0, len(wanted), _LOOKUP):
            chunk = wanted[start : start + _LOOKUP]
            keys = chunk if self._ledger == "text" else [contact_bytes(c) for c in chunk]
            marks = ", ".join("?" * len(chunk))
            where = f"{{key}} IN ({marks}) AND applied_at >= ?"
            found += self._pairs(where, (*keys, after), grouped=True)
        return grouped_frame(found)

    def ledger_size(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM ledger").fetchone()[0])

    # -- permanent failures ---------------------------------------------------------

    def record_failed(
        self, rows: Iterable[tuple[str, str, str, str]], at: float, run_id: str
    ) -> None:
        """Pairs that failed for good (``contact_id, tag, error_type, message``)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO failed "
                "(contact_id, tag, error_type, message, failed_at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ((c, t, e, m, at, run_id) for c, t, e, m in rows),
            )

    def failed_count(self) -> int:
        if not self._has("failed"):
            return 0
        return int(self._db.execute("SELECT count(*) FROM failed").fetchone()[0])

    def failed(self, batch: int = 200_000) -> Iterator[pl.DataFrame]:
        """The pairs that failed for good: frames of ``contact_id, tag, error_type, message,
        failed_at, run_id``, by contact."""
        if not self._has("failed"):
            return
        cursor = self._db.execute(
            "SELECT contact_id, tag, error_type, message, failed_at, run_id FROM failed "
            "ORDER BY contact_id, failed_at"
        )
        schema = {
            "contact_id": pl.String,
            "tag": pl.String,
            "error_type": pl.String,
            "message": pl.String,
            "failed_at": pl.Float64,
            "run_id": pl.String,
        }
        while rows := cursor.fetchmany(batch):
            yield pl.DataFrame(rows, schema=schema, orient="row")

    # -- pre-check history -------------------------------------------------------

    def record_precheck(self, found: Mapping[str, int], at: float) -> None:
        """How many contacts carried each tag when the CRM was last asked."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO precheck (tag, checked_at, found) VALUES (?, ?, ?)",
                [(tag, at, n) for tag, n in found.items()],
            )

    def precheck_history(self) -> dict[str, tuple[float, int]]:
        rows = self._db.execute("SELECT tag, checked_at, found FROM precheck").fetchall()
        return {tag: (at, found) for tag, at, found in rows}

    # -- runs -------------------------------------------------------------------

    def start_run(self, run_id: str, run_dir: Path, at: float) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO runs (run_id, run_dir, started_at) VALUES (?, ?, ?)",
                (run_id, str(run_dir), at),
            )

    def finish_run(self, run_id: str, at: float, exit_code: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE runs SET finished_at = ?, exit_code = ? WHERE run_id = ?",
                (at, exit_code, run_id),
            )

    def unfinished_runs(self) -> list[Path]:
        rows = self._db.execute(
            "SELECT run_dir FROM runs WHERE finished_at IS NULL ORDER BY started_at"
        ).fetchall()
        return [Path(r[0]) for r in rows]

    def run_dirs(self) -> list[Path]:
        """Every run of the job, oldest first."""
        rows = self._db.execute("SELECT run_dir FROM runs ORDER BY started_at").fetchall()
        return [Path(r[0]) for r in rows]

    def record_night(self, night: Night) -> None:
        """A finished run's row (a resumed run replaces its earlier one)."""
        marks = ", ".join("?" * len(fields(Night)))
        with self._db:
            self._db.execute(
                f"INSERT OR REPLACE INTO nights ({_NIGHT_COLUMNS}) VALUES ({marks})",  # noqa: S608  (column names are ours)
                astuple(night),
            )

    def nights(self) -> list[Night]:
        """Every finished run of the job, oldest first."""
        rows = self._db.execute(
            f"SELECT {_NIGHT_COLUMNS} FROM nights ORDER BY started_at, finished_at"  # noqa: S608  (column names are ours)
        ).fetchall()
        names = [f.name for f in fields(Night)]
        return [
            Night(**{**dict(zip(names, row, strict=True)), "dry_run": bool(row[5])}) for row in rows
        ]

    def last_quota_limit(self) -> int | None:
        """The day's quota LeadLex last reported to a night of this job (None: never)."""
        row = self._db.execute(
            "SELECT quota_limit FROM nights WHERE quota_limit IS NOT NULL "
            "ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        return None if row is None else int(row[0])

    # -- the job file that owns the folder ------------------------------------

    def owner(self) -> tuple[str, Path] | None:
        """The job (name, file) whose folder this is; None before its first night."""
        if not self._has("owner"):
            return None
        row = self._db.execute("SELECT name, file FROM owner").fetchone()
        return None if row is None else (row[0], Path(row[1]))

    def own(self, name: str, file: Path) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO owner (one, name, file) VALUES (1, ?, ?)",
                (name, str(file)),
            )

    # -- exports ------------------------------------------------------------

    def note_export(self, pattern: str, path: str, mtime_ns: int, *, line_end: bool) -> None:
        """An input file of ``pattern`` as a night found it: whether its last line ended
        (the newest 100 files per pattern are kept)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO exports (pattern, path, mtime_ns, line_end) "
                "VALUES (?, ?, ?, ?)",
                (pattern, path, mtime_ns, int(line_end)),
            )
            self._db.execute(
                "DELETE FROM exports WHERE pattern = ? AND mtime_ns NOT IN (SELECT mtime_ns "
                "FROM exports WHERE pattern = ? ORDER BY mtime_ns DESC LIMIT 100)",
                (pattern, pattern),
            )

    def exports_end_lines(self, pattern: str, before: int) -> bool:
        """Whether the files of ``pattern`` met before ``before`` (mtime, ns) mostly ended
        their last line (False when none was met: nothing is known)."""
        if not self._has("exports"):
            return False
        ended, unended = self._db.execute(
            "SELECT coalesce(sum(line_end), 0), coalesce(sum(1 - line_end), 0) FROM exports "
            "WHERE pattern = ? AND mtime_ns < ?",
            (pattern, before),
        ).fetchone()
        return bool(ended > unended)

    # -- what the last night's plan was made from -----------------------------------

    def planned_from(self) -> tuple[str, float] | None:
        """The fingerprint of the inputs, settings and carry-over the last night left
        (:mod:`bulktag.run.unchanged`), and when; None: unknown, or not to be relied on."""
        if not self._has("planned_from"):
            return None
        row = self._db.execute("SELECT fingerprint, at FROM planned_from").fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def note_planned_from(self, fingerprint: str | None, at: float) -> None:
        """What the night that just ended left (None: nothing to rely on next night)."""
        with self._db:
            self._db.execute("DELETE FROM planned_from")
            if fingerprint is not None:
                self._db.execute(
                    "INSERT INTO planned_from (one, fingerprint, at) VALUES (1, ?, ?)",
                    (fingerprint, at),
                )

    def forget_run(self, run_dir: Path) -> None:
        with self._db:
            self._db.execute("DELETE FROM runs WHERE run_dir = ?", (str(run_dir),))
