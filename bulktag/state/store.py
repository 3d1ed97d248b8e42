"""Opening bulktag's SQLite files: one set-up for the journal, a job's state and the quota.

Every file is opened in WAL mode with ``synchronous=NORMAL`` (a commit survives the
death of the process; only a crash of the machine can lose the last transactions),
in autocommit mode (``isolation_level=None``: transactions are begun explicitly),
and is readable by its owner only.

Every file carries its schema's version in ``PRAGMA user_version``. A file written by a
newer bulktag is refused before anything is sent (:class:`NewerFileError`, exit 78); one
written by an older bulktag (version 0: before versions) is brought up to date. Faults
of the machine met on a connection (a full disk, a file held by another process, a
damaged page) name the file (:class:`Connection`, :mod:`bulktag.machine`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bulktag.errors import ConfigError, ExitCode
from bulktag.machine import DamagedFileError, MachineError, disk_fault, guarded

__all__ = [
    "Connection",
    "NewerFileError",
    "Store",
    "check_store",
    "move_aside",
    "open_reading",
    "open_sqlite",
    "open_store",
]

#: What brings an older file up to date: called on the open connection, in a transaction.
Upgrade = Callable[[sqlite3.Connection, int], None]


class NewerFileError(MachineError):
    """A file written by a newer bulktag: exit 78, refused before anything is sent."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            path,
            f"it was written by a newer bulktag (its schema is version {found}; this "
            f"bulktag reads up to {known})",
            "upgrade bulktag (pip install -U bulktag) where this file is used, or give "
            "this run another folder",
            ExitCode.CONFIG,
        )


class Connection:
    """A SQLite connection whose faults of the machine name its file: a full disk, a
    read-only folder or a file held by another process as a :class:`MachineError`, a
    damaged file as :class:`~bulktag.machine.DamagedFileError` (its owner moves it aside)."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.raw = db
        self.path = path

    def execute(
        self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()
    ) -> sqlite3.Cursor:
        with guarded(self.path):
            return self.raw.execute(sql, parameters)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        with guarded(self.path):
            return self.raw.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Commit (rollback when ``error``); a refused COMMIT leaves nothing half done."""
        try:
            with guarded(self.path):
                self.raw.__exit__(kind, error, trace)
        except MachineError:
            if self.raw.in_transaction:
                self.raw.rollback()
            raise


def open_sqlite(
    path: Path,
    schema: str,
    *,
    version: int = 1,
    upgrade: Upgrade | None = None,
    any_thread: bool = False,
) -> Connection:
    """``path`` opened (created with ``schema`` when new), at schema ``version``, and made
    private (0600). An older file is brought up to date (``schema`` is made of ``CREATE
    ... IF NOT EXISTS``; ``upgrade`` does the rest); a newer one is refused.

    ``any_thread``: the connection may be used from another thread than the one that
    opened it (one user at a time; the journal is read from worker threads).
    """
    with guarded(path):
        db = sqlite3.connect(
            path, isolation_level=None, timeout=30, check_same_thread=not any_thread
        )
    try:
        with guarded(path):
            found = _version(db, path, version)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if found < version:
                db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _statements(schema):
                        db.execute(statement)
                    if upgrade is not None:
                        upgrade(db, found)
                    db.execute(f"PRAGMA user_version = {int(version)}")
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            path.chmod(0o600)
    except BaseException:
        db.close()
        raise
    return Connection(db, path)


def _version(db: sqlite3.Connection, path: Path, known: int) -> int:
    """The file's schema version; NewerFileError if newer than ``known``."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > known:
        raise NewerFileError(path, found, known)
    return found


def _statements(schema: str) -> list[str]:
    """``schema``'s statements, one by one (``executescript`` would commit)."""
    return [part.strip() for part in schema.split(";") if part.strip()]


def open_store(
    path: Path, schema: str, fix: str, *, version: int = 1, upgrade: Upgrade | None = None
) -> Connection:
    """``path`` opened with ``schema``; a fault naming it, the reason and ``fix`` when it
    cannot be: 78 for a folder that cannot be made or written (a service account without
    a writable home, say), 75 for a full disk; :class:`~bulktag.machine.DamagedFileError` for a
    damaged file (its owner moves it aside)."""
    try:
        with guarded(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return open_sqlite(path, schema, version=version, upgrade=upgrade)
    except (DamagedFileError, NewerFileError):
        raise
    except MachineError as exc:
        if exc.exit_code is ExitCode.WORK_LEFT:  # a full disk, a busy file: not the fix
            raise
        raise MachineError(
            path, f"cannot create or open it ({exc.what})", fix, ExitCode.CONFIG
        ) from None
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{path}: cannot create or open it ({reason}); {fix}") from None


def move_aside(path: Path, now: float) -> Path:
    """``path`` (a damaged SQLite file) and its ``-wal`` and ``-shm`` renamed to
    ``NAME.damaged-STAMP``: kept for a person to look at, out of bulktag's way."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    with guarded(path):
        for suffix in ("-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.replace(aside.with_name(aside.name + suffix))
        path.replace(aside)
    return aside


def check_store(path: Path, fix: str, *, version: int) -> None:
    """What opening ``path`` as a run would tells, without creating or changing anything:
    its folder can be made or written, and the file, if there, is a sound SQLite file of
    a version this bulktag reads. ConfigError (exit 78) naming it and ``fix`` otherwise;
    a damaged file is named with what a run does with it (moves it aside)."""
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fault = disk_fault(existing, ROOM)
    if fault is not None:
        raise fault
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: cannot create or open it ({existing} is not writable); {fix}")
    if not path.exists():
        return
    if not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"{path}: cannot open it (not readable and writable); {fix}")
    try:
        db = open_reading(path)
        try:
            found = int(db.execute("PRAGMA user_version").fetchone()[0])
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except (sqlite3.Error, ConfigError) as exc:
        verdict, found = str(exc), 0
    if found > version:
        raise NewerFileError(path, found, version)
    if verdict != "ok":
        raise DamagedFileError(path, verdict)


#: Free space below which check-job says the disk is full: a night writes its plan, journal
#: and files there.
ROOM = 1 << 20


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

    def __init__(
        self,
        path: Path,
        schema: str,
        fix: str,
        *,
        read_only: bool = False,
        version: int = 1,
        upgrade: Upgrade | None = None,
    ) -> None:
        self.path = path
        self.read_only = read_only
        if read_only:
            raw = open_reading(path)
            try:
                with guarded(path):
                    _version(raw, path, version)
            except BaseException:
                raw.close()
                raise
            self._db = Connection(raw, path)
        else:
            self._db = open_store(path, schema, fix, version=version, upgrade=upgrade)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
