"""What outlives a run: the ledger of applied tags, the quota by key and day, the run list.

Two SQLite files (WAL) use this schema:

- a job's ``state.sqlite`` (``--job``): the *ledger* of (contact, tag) pairs
  bulktag applied and when, so a nightly run never spends a call on a pair it
  already applied; the list of the job's runs; and one row per finished run (its
  *night*: contacts by outcome, calls, the quota, the backlog left), which
  ``bulktag history`` and ``history.html`` show and which outlives ``keep_runs``;
- the user's ``quota.sqlite`` (``$BULKTAG_STATE_DIR``, else
  ``$XDG_STATE_HOME/bulktag``, else ``~/.local/state/bulktag``): calls used per
  API key fingerprint (a hash, never the key) and UTC day, as LeadLex last
  reported them, so a manual run in the afternoon and the nightly run share one
  budget; and which runs sent which failures file (by content), so sending one
  twice is warned about.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from bulktag.errors import ConfigError

__all__ = ["Night", "QuotaRecord", "StateStore", "default_state_dir", "utc_day"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    contact_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    applied_at REAL NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quota (
    fingerprint TEXT NOT NULL,
    day TEXT NOT NULL,
    calls INTEGER NOT NULL,
    remaining INTEGER,
    quota_limit INTEGER,
    reset INTEGER,
    updated_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, day)
);
CREATE TABLE IF NOT EXISTS precheck (
    tag TEXT PRIMARY KEY,
    checked_at REAL NOT NULL,
    found INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reruns (
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    at REAL NOT NULL
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


QUOTA_STORE_FIX = (
    "the quota store lives in $BULKTAG_STATE_DIR (else $XDG_STATE_HOME/bulktag, else "
    "~/.local/state/bulktag): set BULKTAG_STATE_DIR to a folder this user can write"
)


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """Where the quota store lives."""
    if environ.get("BULKTAG_STATE_DIR"):
        return Path(environ["BULKTAG_STATE_DIR"])
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "~")) / ".local" / "state")
    return Path(base).expanduser() / "bulktag"


def utc_day(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).date().isoformat()


@dataclass(frozen=True, slots=True)
class QuotaRecord:
    """What LeadLex last said about a key's daily quota, and what we spent, on one day."""

    day: str
    calls: int
    remaining: int | None
    limit: int | None
    reset: int | None


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


class StateStore:
    """A state file (see the module docstring); safe for one writer at a time."""

    def __init__(self, path: Path, *, fix: str = QUOTA_STORE_FIX) -> None:
        """Open (create) ``path``; ConfigError (exit 78) naming it, the reason and ``fix``
        when it cannot be (a service account without a writable home, say)."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            path.chmod(0o600)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"{path}: cannot create or open it ({reason}); {fix}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

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

    # -- quota ------------------------------------------------------------------

    def quota(self, fingerprint: str, now: float) -> QuotaRecord | None:
        """Today's record for a key, or None (nothing known, or the day has reset)."""
        row = self._db.execute(
            "SELECT day, calls, remaining, quota_limit, reset FROM quota "
            "WHERE fingerprint = ? AND day = ?",
            (fingerprint, utc_day(now)),
        ).fetchone()
        if row is None:
            return None
        record = QuotaRecord(*row)
        if record.reset is not None and now >= record.reset:
            return None
        return record

    def spend(
        self,
        fingerprint: str,
        now: float,
        *,
        calls: int,
        remaining: int | None,
        limit: int | None,
        reset: int | None,
    ) -> None:
        """Add ``calls`` to today's count and keep LeadLex's last word on what is left."""
        day = utc_day(now)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            current = self._db.execute(
                "SELECT calls FROM quota WHERE fingerprint = ? AND day = ?", (fingerprint, day)
            ).fetchone()
            self._db.execute(
                "INSERT OR REPLACE INTO quota "
                "(fingerprint, day, calls, remaining, quota_limit, reset, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    fingerprint,
                    day,
                    (current[0] if current else 0) + calls,
                    remaining,
                    limit,
                    reset,
                    now,
                ),
            )

    # -- failures files re-run ---------------------------------------------------

    def reruns_of(self, digest: str) -> list[tuple[Path, float]]:
        """Run folders that already sent the file with this content, oldest first."""
        rows = self._db.execute(
            "SELECT run_dir, at FROM reruns WHERE digest = ? ORDER BY at", (digest,)
        ).fetchall()
        return [(Path(run_dir), at) for run_dir, at in rows]

    def record_rerun(self, digest: str, source: str, run_dir: Path, at: float) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO reruns (digest, source, run_dir, at) VALUES (?, ?, ?, ?)",
                (digest, source, str(run_dir), at),
            )

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


def state_dir_from(environ: Mapping[str, str] | None) -> Path:
    return default_state_dir(os.environ if environ is None else environ)
