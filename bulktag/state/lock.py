"""One run per job at a time: an exclusive ``flock`` on the job's folder.

The kernel releases the lock when its process dies, even by ``kill -9``, so a
stale lock is simply taken over; the lock file only records who holds it (for the
message a second instance prints), or that it was released cleanly.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from bulktag.errors import WorkLeftError
from bulktag.machine import alive, guarded, translated

__all__ = ["FolderLock", "holder"]

log = logging.getLogger("bulktag")


def holder(folder: Path) -> str | None:
    """Who holds ``folder``'s lock now (``"4242 pid since ..."``), or None when no process
    does: a look that never takes it."""
    path = folder / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(fd, 200).decode(errors="replace").strip() or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class FolderLock:
    """``with FolderLock(folder):`` holds ``folder/.lock`` or raises WorkLeftError (exit 75)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        with guarded(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = not self.path.exists()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise translated(exc, self.path) or exc from None
        try:
            self._take(fd)
        except BaseException as exc:
            os.close(fd)
            if created:  # a failed start leaves no lock file behind
                with contextlib.suppress(OSError):
                    self.path.unlink()
            if isinstance(exc, OSError):
                raise translated(exc, self.path) or exc from None
            raise
        self._fd = fd
        return self

    def _take(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            raise WorkLeftError(
                f"{self.path.parent} is in use by another bulktag run ({holder}); nothing was sent"
            ) from None
        previous = os.read(fd, 200).decode(errors="replace").split()
        stale = previous and previous[0].isdigit() and int(previous[0]) != os.getpid()
        if stale and not alive(int(previous[0])):
            log.info(
                "the last run (pid %s) ended without releasing its lock (killed?); its lock "
                "is taken over, and what it left is resumed",
                previous[0],
            )
        os.ftruncate(fd, 0)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"{os.getpid()} pid since {stamp}\n".encode(), 0)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._fd is None:
            return
        try:
            # a clean release says so: the next run does not take it for a crash (on a
            # full disk it may not be said: the lock is released all the same)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                os.pwrite(self._fd, f"free since {stamp} (pid {os.getpid()} ended)\n".encode(), 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
