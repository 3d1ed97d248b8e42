"""Opening bulktag's SQLite files: one set-up for the journal, a job's state and the quota.

Every file is opened in WAL mode with ``synchronous=NORMAL`` (a commit survives the
death of the process; only a crash of the machine can lose the last transactions),
in autocommit mode (``isolation_level=None``: transactions are begun explicitly),
and is readable by its owner only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Self

from bulktag.errors import ConfigError

__all__ = ["Store", "open_sqlite", "open_store"]


def open_sqlite(path: Path, schema: str, *, any_thread: bool = False) -> sqlite3.Connection:
    """``path`` opened (created with ``schema`` when new) and made private (0600).

    ``any_thread``: the connection may be used from another thread than the one that
    opened it (one user at a time; the journal is read from worker threads).
    """
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=not any_thread)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    path.chmod(0o600)
    return db


def open_store(path: Path, schema: str, fix: str) -> sqlite3.Connection:
    """``path`` opened with ``schema``; ConfigError (exit 78) naming it, the reason and
    ``fix`` when it cannot be (a service account without a writable home, say)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return open_sqlite(path, schema)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{path}: cannot create or open it ({reason}); {fix}") from None


class Store:
    """A state file that outlives a run (the quota store, a job's state): opened with its
    schema, closed by ``with``; safe for one writer at a time."""

    def __init__(self, path: Path, schema: str, fix: str) -> None:
        self.path = path
        self._db = open_store(path, schema, fix)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
