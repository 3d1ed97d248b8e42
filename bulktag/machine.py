"""Faults of the machine, told apart from the input's and the network's: one line each.

A full disk, a read-only or forbidden folder, an I/O error, a SQLite file that is full,
held by another process, damaged or written by a newer bulktag: every phase of a run
(the lock, the plan, the journal, publishing, the quota store, a job's state, the report)
meets them as ``OSError`` (polars' I/O errors are ``OSError`` too, their errno only in
their text: ``(os error 28)``) or ``sqlite3.Error``. :func:`translated` turns one into a
:class:`MachineError`: the file, what is wrong, the fix, and the exit code:

- 75 when a run after the fix recovers by itself: a full disk (free space), an I/O error,
  a file another process holds;
- 78 when configuration must change: a read-only file system, a folder this user may not
  write, a file written by a newer bulktag.

Never 1, which means permanent failures or rejected rows. A damaged SQLite file is told
apart (:func:`damaged`): its owner moves it aside and goes on from what can be trusted.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from bulktag import __version__
from bulktag.errors import BulkTagError, ExitCode, redact

__all__ = [
    "DamagedFileError",
    "MachineError",
    "alive",
    "bug_report",
    "damaged",
    "digest",
    "disk_fault",
    "fault_of",
    "first",
    "guarded",
    "translated",
]


class MachineError(BulkTagError):
    """A fault of the machine (see the module docstring); ``path``: the file or folder."""

    def __init__(
        self, path: Path | str, what: str, fix: str, code: ExitCode, *, after: str = ""
    ) -> None:
        told = f"{what}; {fix}" + (f"; {after}" if after else "")
        super().__init__(f"{path}: {told}" if str(path) else told)
        self.path = str(path)
        self.what = what
        self.fix = fix
        self.after = after  #: what to do once it is fixed
        self.exit_code = code

    def then(self, after: str) -> Self:
        """The same fault, ``after`` told as what was done and what to do once fixed (in
        place of "then run the same command again")."""
        return self._told(self.fix, after)

    def fixed(self, fix: str) -> Self:
        """The same fault, ``fix`` told in place of its own (what bulktag did about it)."""
        return self._told(fix, self.after)

    def _told(self, fix: str, after: str) -> Self:
        told = type(self).__new__(type(self))
        told.__dict__.update(self.__dict__)
        told.fix, told.after = fix, after
        said = f"{self.what}; {fix}" + (f"; {after}" if after else "")
        told.args = (f"{self.path}: {said}" if self.path else said,)
        return told


class DamagedFileError(MachineError):
    """A SQLite file that is damaged or not a database at all (exit 75): its owner moves
    it aside and goes on from what can be trusted (a job's state, the quota store, the
    journal of a job's interrupted run); elsewhere the message says so."""

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(
            path,
            f"it is damaged ({detail})",
            "the next run moves it aside (NAME.damaged-TIME) and goes on from what can be trusted",
            ExitCode.WORK_LEFT,
        )
        self.detail = detail


def _a_writers_error(exc: BaseException) -> bool:
    """An error of a writer that may hide a full or read-only disk behind its own words
    (polars is looked up, not imported: ``--help`` starts without it)."""
    polars = sys.modules.get("polars")
    return isinstance(exc, OSError | sqlite3.Error) or (
        polars is not None and isinstance(exc, polars.exceptions.PolarsError)
    )


_OS_ERROR = re.compile(r"\(os error (\d+)\)")
#: errno -> (what is wrong, the fix, exit code); {folder} is the file's folder.
_ERRNO: dict[int, tuple[str, str, ExitCode]] = {
    errno.ENOSPC: (
        "the disk is full",
        "free space on it (df -h {folder})",
        ExitCode.WORK_LEFT,
    ),
    errno.EDQUOT: (
        "the disk quota of this user is spent",
        "free space or raise the quota",
        ExitCode.WORK_LEFT,
    ),
    errno.EFBIG: (
        "the file would be larger than the file system allows",
        "write to another file system, then run again",
        ExitCode.CONFIG,
    ),
    errno.EROFS: (
        "the file system is read-only",
        "give bulktag a writable folder (remount it, or choose another)",
        ExitCode.CONFIG,
    ),
    errno.EACCES: (
        "permission denied",
        "make {folder} writable by this user, or choose another folder",
        ExitCode.CONFIG,
    ),
    errno.EPERM: (
        "operation not permitted",
        "make {folder} writable by this user, or choose another folder",
        ExitCode.CONFIG,
    ),
    errno.EIO: (
        "an input/output error (a failing disk or a lost network file system?)",
        "check the disk (dmesg)",
        ExitCode.WORK_LEFT,
    ),
}
_SQLITE: dict[str, tuple[str, str, ExitCode]] = {
    "SQLITE_FULL": _ERRNO[errno.ENOSPC],
    "SQLITE_READONLY": (
        "the database is read-only",
        "make it and {folder} writable by this user",
        ExitCode.CONFIG,
    ),
    "SQLITE_BUSY": (
        "another process holds this database",
        "let it finish (or stop it)",
        ExitCode.WORK_LEFT,
    ),
    "SQLITE_LOCKED": (
        "another process holds this database",
        "let it finish (or stop it)",
        ExitCode.WORK_LEFT,
    ),
    "SQLITE_IOERR": _ERRNO[errno.EIO],
    "SQLITE_CANTOPEN": (
        "the database cannot be opened",
        "make {folder} exist and be writable by this user",
        ExitCode.CONFIG,
    ),
    "SQLITE_PERM": _ERRNO[errno.EACCES],
}
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def _errno(exc: BaseException) -> int | None:
    if isinstance(exc, OSError):
        if exc.errno is not None:
            return exc.errno
        found = _OS_ERROR.search(str(exc))  # polars: "No space left on device (os error 28)"
        return int(found.group(1)) if found else None
    return None


def _sqlite_name(exc: BaseException) -> str | None:
    if not isinstance(exc, sqlite3.Error):
        return None
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str) and name.startswith("SQLITE_"):
        return "_".join(name.split("_")[:2])  # SQLITE_IOERR_WRITE: SQLITE_IOERR
    text = str(exc)
    if "disk is full" in text:
        return "SQLITE_FULL"
    if "readonly" in text or "read-only" in text:
        return "SQLITE_READONLY"
    if "locked" in text:
        return "SQLITE_BUSY"
    if "not a database" in text:
        return "SQLITE_NOTADB"
    if "malformed" in text:
        return "SQLITE_CORRUPT"
    if "unable to open" in text:
        return "SQLITE_CANTOPEN"
    if "disk I/O error" in text:
        return "SQLITE_IOERR"
    return None


def damaged(exc: BaseException) -> bool:
    """Whether ``exc`` says a SQLite file is damaged or not a database at all."""
    return _sqlite_name(exc) in _DAMAGED


def first(exc: BaseException) -> BaseException:
    """The first fault of the machine inside an exception group (a task group's), else
    ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first(inner)
            if isinstance(found, MachineError) or translated(found, "") or damaged(found):
                return found
    return exc


def fault_of(exc: BaseException, path: Path | str) -> MachineError | None:
    """The fault of the machine ``exc`` is or holds (in an exception group), as a
    :class:`MachineError` about ``path`` when it names no file of its own; None if none."""
    found = first(exc)
    if isinstance(found, MachineError):
        return found
    if damaged(found):
        return DamagedFileError(path, str(found))
    return translated(found, path)


def translated(exc: BaseException, path: Path | str) -> MachineError | None:
    """``exc`` as a :class:`MachineError` about ``path`` (the exception's own file name
    when it has one), or None when it is not a fault of the machine."""
    exc = first(exc)
    number = _errno(exc)
    known = _ERRNO.get(number or -1) or _SQLITE.get(_sqlite_name(exc) or "")
    own = getattr(exc, "filename", None)
    where = own if isinstance(own, str) and own else str(path)
    if known is None and where and _a_writers_error(exc):
        # polars says what it could not finish, not why ("Invalid thrift: transport
        # error" of a Parquet file cut by a full disk): the file system tells
        known = _disk_state(Path(where))
    if known is None:
        return None
    if known in _VAGUE and where:
        known = _disk_state(Path(where)) or known  # SQLite says "I/O error" of a full disk
    what, fix, code = known
    folder = str(Path(where).parent) if where else "its folder"
    rerun = "then run the same command again" if code is ExitCode.WORK_LEFT else ""
    return MachineError(where, what, fix.format(folder=folder), code, after=rerun)


#: What SQLite says of a full or read-only file system (the file system tells which).
_VAGUE = (_ERRNO[errno.EIO], _SQLITE["SQLITE_CANTOPEN"], _SQLITE["SQLITE_READONLY"])


def disk_fault(path: Path, room: int = 0) -> MachineError | None:
    """The fault of the file system ``path`` is on (or would be made on): read-only, or
    with less than ``room`` bytes free (full: a SQLite page or two); None when neither."""
    known = _disk_state(path, room)
    if known is None:
        return None
    what, fix, code = known
    return MachineError(path, what, fix.format(folder=path), code)


def _disk_state(path: Path, room: int = 0) -> tuple[str, str, ExitCode] | None:
    """What the file system of ``path`` says of itself: full or read-only (SQLite reports
    both as an I/O error, or a file it cannot open); None when neither."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        probe = os.statvfs(folder)
    except OSError:
        return None
    if probe.f_flag & os.ST_RDONLY:
        return _ERRNO[errno.EROFS]
    if probe.f_bavail * probe.f_frsize < max(room, FULL_BELOW):
        return _ERRNO[errno.ENOSPC]
    return None


#: Free bytes below which a file system counts as full (a SQLite page or two).
FULL_BELOW = 64 * 1024


def alive(pid: int) -> bool:
    """Whether a process ``pid`` lives on this machine (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def bug_report(exc: BaseException, hidden: Sequence[str], folder: Path) -> str:
    """What to say of a bug: one line naming the file in ``folder`` (else the temporary
    folder) that holds its traceback, ``hidden`` values (secrets) blanked out in it."""
    text = redact("".join(traceback.format_exception(exc)), hidden)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"bug-{stamp}-{os.getpid()}.txt"
    for where in (folder, Path(tempfile.gettempdir())):
        try:
            where.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = where / name
            path.write_text(f"bulktag {__version__}\n{text}", encoding="utf-8")
            path.chmod(0o600)
        except OSError:
            continue
        kept = f"its traceback is in {path}"
        break
    else:
        kept = "its traceback could not be written anywhere"
    return (
        f"a bug in bulktag ({type(exc).__name__}: {str(exc)[:200]}); {kept}: please report "
        "it; what the run did so far is kept (--resume continues it)"
    )


@contextmanager
def guarded(path: Path | str) -> Iterator[None]:
    """Faults of the machine met inside become a :class:`MachineError` about ``path``."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if damaged(exc):
            raise DamagedFileError(path, str(exc)) from None
        fault = translated(exc, path)
        if fault is None:
            raise
        raise fault from None


def digest(path: Path) -> str:
    """``path``'s SHA-256, read in blocks (a file of any size), a fault naming the file."""
    with guarded(path), path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
