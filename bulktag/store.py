"""Opening bulktag's SQLite files: one set-up for the journal, a job's state and the quota.

Every file is opened in WAL mode with ``synchronous=NORMAL`` (a commit survives the
death of the process; only a crash of the machine can lose the last transactions),
in autocommit mode (``isolation_level=None``: transactions are begun explicitly),
and is readable by its owner only.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Self

from bulktag.errors import ConfigError

__all__ = ["Store", "check_store", "open_reading", "open_sqlite", "open_store"]


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


def check_store(path: Path, fix: str) -> None:
    """What opening ``path`` as a run would tells, without creating or changing anything:
    its folder can be made or written, and the file, if there, is a sound SQLite file.
    ConfigError (exit 78) naming it and ``fix`` otherwise."""
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: cannot create or open it ({existing} is not writable); {fix}")
    if not path.exists():
        return
    if not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"{path}: cannot open it (not readable and writable); {fix}")
    try:
        db = open_reading(path)
        try:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except (sqlite3.Error, ConfigError) as exc:
        verdict = str(exc)
    if verdict != "ok":
        raise ConfigError(f"{path}: it is damaged ({verdict}); {fix}")


def open_reading(path: Path) -> sqlite3.Connection:
    """``path`` opened for reading only (a dry run's look at a job's state): nothing is
    created, nothing written."""
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise ConfigError(f"{path}: cannot open it to read ({exc})") from None


class Store:
    """A state file that outlives a run (the quota store, a job's state): opened with its
    schema, closed by ``with``; safe for one writer at a time. ``read_only``: opened to
    read, never written (the file must exist)."""

    def __init__(self, path: Path, schema: str, fix: str, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._db = open_reading(path) if read_only else open_store(path, schema, fix)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
