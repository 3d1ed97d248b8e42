"""A job's state: what outlives its runs, in the job folder's ``state.sqlite`` (WAL).

- the *ledger* of (contact, tag) pairs bulktag applied and when, so a nightly run
  never spends a call on a pair it already applied;
- the *pre-check history*: how many contacts carried each tag when the CRM was last
  asked (``--skip-existing`` skips asking about tags nobody carries);
- the list of the job's *runs*, so an interrupted one is completed first;
- one row per finished run, its *night* (contacts by outcome, calls, the quota, the
  backlog left), which ``bulktag history`` and ``history.html`` show and which
  outlives ``keep_runs``.

The user's quota store, shared by every run on the machine, is :mod:`bulktag.quota`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import polars as pl

from bulktag.store import Store

__all__ = ["STATE_FILE", "JobState", "Night"]

#: A job's state file, in the job's folder.
STATE_FILE = "state.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    contact_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    applied_at REAL NOT NULL,
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
    backlog INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Night:
    """One finished run of a job, as its history shows it (``bulktag.history`` builds it)."""

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


_NIGHT_COLUMNS = ", ".join(f.name for f in fields(Night))


class JobState(Store):
    """A job's ``state.sqlite`` (see the module docstring); one run of the job at a time."""

    def __init__(self, folder: Path) -> None:
        """Open (create) ``folder/state.sqlite``; ConfigError (exit 78) when it cannot be."""
        fix = f"the job keeps its state in its out folder ({folder}): make it writable"
        super().__init__(folder / STATE_FILE, _SCHEMA, fix)

    # -- ledger ---------------------------------------------------------------

    def record_applied(self, pairs: Iterable[tuple[str, str]], at: float, run_id: str) -> int:
        """Add (contact, tag) pairs applied at ``at``; returns how many rows were written.

        ``pairs`` is consumed as it is written (one transaction), never held whole.
        """
        with self._db:
            self._db.execute("BEGIN")
            cursor = self._db.executemany(
                "INSERT OR REPLACE INTO ledger (contact_id, tag, applied_at, run_id) "
                "VALUES (?, ?, ?, ?)",
                ((c, t, at, run_id) for c, t in pairs),
            )
        return cursor.rowcount

    def applied(self, since: float | None = None, batch: int = 200_000) -> Iterator[pl.DataFrame]:
        """Pairs applied at or after ``since``: frames of ``contact_id, tag, applied_at``."""
        cursor = self._db.execute(
            "SELECT contact_id, tag, applied_at FROM ledger WHERE applied_at >= ?",
            (since if since is not None else float("-inf"),),
        )
        schema = {"contact_id": pl.String, "tag": pl.String, "applied_at": pl.Float64}
        while rows := cursor.fetchmany(batch):
            yield pl.DataFrame(rows, schema=schema, orient="row")

    def ledger_size(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM ledger").fetchone()[0])

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

    def forget_run(self, run_dir: Path) -> None:
        with self._db:
            self._db.execute("DELETE FROM runs WHERE run_dir = ?", (str(run_dir),))
