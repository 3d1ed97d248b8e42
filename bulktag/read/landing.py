"""Inputs that may still be landing: a file being written is never read as finished.

An export lands in a folder while cron may already be running. Three guards, the first two
for every run, the third for a job (it needs the job's memory of earlier exports):

- **settled**: a job's ``[read] settle_seconds``: an input changed less than that long ago
  is not read yet (exit 75: the next night reads it);
- **unchanged**: each input's size, modification time and inode are noted before it is
  read and checked after; a file that changed while it was read is refused (exit 75), and
  nothing is sent from it;
- **ended**: a text input whose last line has no end, while the job's earlier exports of
  that input (its pattern) ended theirs, is suspect: its last row becomes a reject ("the
  last line has no end: cut?"), and never tags (``ReadOptions.cut_suspects``).

The exporter's side of the contract is in ``docs/reliability.md``: write to a temporary
name, then rename into the folder; a rename is atomic, so bulktag sees all of a file or
none of it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bulktag.errors import WorkLeftError
from bulktag.state.job import JobState

__all__ = ["Marks", "check_settled", "check_unchanged", "cut_suspects", "line_end", "marks"]

#: A file as noted before it is read: size, modification time (ns), inode.
Marks = dict[str, tuple[int, int, int] | None]

#: Text inputs whose last line is checked (a workbook or Parquet file is whole or unreadable).
_TEXT = (".csv", ".tsv", ".txt", ".tab")


def marks(files: Sequence[str]) -> Marks:
    """Each input file's size, modification time and inode, now (``files``: expanded)."""
    found: Marks = {}
    for name in (f for f in files if f != "-"):
        try:
            info = Path(name).stat()
        except OSError:
            found[name] = None
        else:
            found[name] = (info.st_size, info.st_mtime_ns, info.st_ino)
    return found


def check_settled(files: Sequence[str], seconds: float) -> None:
    """WorkLeftError (75) for an input file changed less than ``seconds`` ago."""
    if seconds <= 0:
        return
    now = time.time()  # the files' clock: the machine's, whatever the run's clock says
    for name in (f for f in files if f != "-"):
        try:
            age = now - Path(name).stat().st_mtime
        except OSError:
            continue
        if age < seconds:
            raise WorkLeftError(
                f"{name}: the file changed {max(age, 0):.0f} s ago, less than [read] "
                f"settle_seconds = {seconds:g}: is the export still being written? nothing "
                "was sent; the next run reads it once it has settled"
            )


def check_unchanged(before: Marks) -> None:
    """WorkLeftError (75) when an input is not as it was before it was read."""
    after = marks(list(before))
    for name, was in before.items():
        if after.get(name) != was:
            raise WorkLeftError(
                f"{name}: the file changed while it was read: is the export still being "
                "written? nothing was sent; run again once it is whole (exporters: write "
                "to a temporary name, then rename it into the folder)"
            )


def line_end(path: Path) -> bool | None:
    """Whether a text file's last line ends (LF, CR or CRLF, in UTF-8 or UTF-16); None for
    a file that is not text, empty or unreadable."""
    if path.suffix.lower() not in _TEXT:
        return None
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return None
            handle.seek(max(size - 2, 0))
            tail = handle.read()
    except OSError:
        return None
    return tail[-1:] in (b"\n", b"\r") or tail in (b"\n\x00", b"\r\x00", b"\x00\n", b"\x00\r")


def cut_suspects(
    expanded: Mapping[str, Sequence[str]], state: JobState | None, *, note: bool
) -> tuple[str, ...]:
    """The files of a job's input patterns (``expanded``: each pattern's files, as the
    night expanded it, once) whose last line has no end while the earlier exports of their
    pattern ended theirs. ``note``: each file is remembered in the job's state (a night
    that may send; never a dry run)."""
    if state is None:
        return ()
    suspects = []
    for pattern, names in expanded.items():
        for name in (n for n in names if n != "-"):
            path = Path(name)
            ended = line_end(path)
            if ended is None:
                continue
            mtime = path.stat().st_mtime_ns
            if not ended and state.exports_end_lines(pattern, before=mtime):
                suspects.append(name)
            if note:
                state.note_export(pattern, name, mtime, line_end=ended)
    return tuple(suspects)
