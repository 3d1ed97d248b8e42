"""A job's kept directory of contacts by email (``directory.parquet`` and its
``directory.json`` in the job's folder): the workspace's ``id, email`` pairs keyed by
address once read whole, or the pages a paging the hourly export limit stopped read so
far, and where it goes on. :mod:`bulktag.run.matching` decides when it is read again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bulktag.machine import guarded
from bulktag.outputs.publish import atomic_write

__all__ = ["DIRECTORY", "PARTIAL_DAYS", "Kept", "KeptDirectory"]

DIRECTORY = "directory.parquet"
_ABOUT = "directory.json"
#: ``directory.json``'s schema.
DIRECTORY_VERSION = 1
#: A directory whose reading the hourly export limit cut goes on for this many days.
PARTIAL_DAYS = 7


@dataclass(frozen=True, slots=True)
class Kept:
    """A job's directory as kept: ``complete`` (keyed by address once, when read:
    :func:`~bulktag.plan.emails.keyed_directory`), or the pages a paging stopped by the
    hourly limit read (as exported), and where it goes on (``after``)."""

    frame: pl.DataFrame
    started: float  #: when it was read whole (or its partial reading last went on)
    complete: bool
    after: str | None = None


@dataclass(frozen=True, slots=True)
class KeptDirectory:
    """A job's kept directory: its folder, and whose workspace (the API URL and the key's
    fingerprint: another workspace's directory is never used)."""

    folder: Path
    workspace: str
    max_age: float  #: seconds

    def load(self, now: float) -> Kept | None:
        """The kept directory, unless missing, another workspace's, unreadable, or older
        than ``max_age`` (then it is read again); a partial one goes on for PARTIAL_DAYS
        (a directory longer than a night's exports is read over several nights)."""
        try:
            about = json.loads((self.folder / _ABOUT).read_text(encoding="utf-8"))
            if about.get("version") != DIRECTORY_VERSION or about["workspace"] != self.workspace:
                return None
            started = float(about["fetched_at"])
            complete = bool(about.get("complete", True))
            if now - started > (self.max_age if complete else PARTIAL_DAYS * 86_400):
                return None
            frame = pl.read_parquet(self.folder / DIRECTORY)
            return Kept(frame, started, complete, about.get("after"))
        except (OSError, ValueError, KeyError, pl.exceptions.PolarsError):
            return None

    def save(self, kept: Kept) -> None:
        about = {
            "version": DIRECTORY_VERSION,
            "workspace": self.workspace,
            "fetched_at": kept.started,
            "complete": kept.complete,
            "after": kept.after,
        }
        with guarded(self.folder / DIRECTORY):
            atomic_write(self.folder / DIRECTORY, kept.frame.write_parquet)
            atomic_write(
                self.folder / _ABOUT,
                lambda path: path.write_text(json.dumps(about), encoding="utf-8"),
            )
