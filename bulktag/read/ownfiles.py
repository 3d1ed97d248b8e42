"""bulktag's own files: the mark each carries, how one is told, and how it is read.

A run's ``results``, ``failures`` and ``rejects`` files and a job's
``carry-over.parquet`` end with a column ``bulktag_file`` whose every value names the
file and its version (``failures/1``). When one of them comes back as an input, its
tags are final: they were prefixed, cased and completed with the added tags when the
run that wrote it read its own inputs, so none of that is done again, and the
``[read]`` settings meant for a person's export (ID and tags columns, header row,
delimiter, encoding, separators) never apply to it. Each kind reads as follows:

========== ===========================================================================
failures   ``contact_id, tags``: sent again, less its rows whose failure was permanent
           (``retryable`` false; ``--retry-permanent`` sends them)
results    its rows not ``ok`` or ``skipped``, with their ``pending_tags``; the rows
           done are counted, not sent
carry-over ``contact_id, tags``: what a job's last run left, first in its next run
rejects    refused: its rows are what could not be used, as their source wrote them
========== ===========================================================================

Files written before the mark existed are told by their columns (a failures file by
``status, retryable, error_type``; a carry-over by its name and its two columns).
A run's ``summary.json`` is refused where it is detected (:mod:`bulktag.read.sniff`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.read.columns import normalise_header

__all__ = [
    "DONE_BEFORE",
    "DRY_RUNS",
    "MARK",
    "VERSION",
    "OwnKind",
    "check_marks",
    "mark",
    "own_options",
    "reading",
    "recognise",
]

#: The column every file of bulktag's ends with.
MARK = "bulktag_file"
#: The version of the files' columns; a newer one is refused (written by a newer bulktag).
VERSION = 1
#: ``earlier`` of a results file's row that is done (ok or skipped): counted, not sent.
DONE_BEFORE = "done"
#: The file name of a job's carry-over (written before it carried the mark).
CARRY_OVER = "carry-over.parquet"
#: The folder of a job's dry runs, in the job's folder (never counted as nights).
DRY_RUNS = "dry-runs"


class OwnKind(StrEnum):
    RESULTS = "results"
    FAILURES = "failures"
    REJECTS = "rejects"
    CARRY_OVER = "carry-over"

    @property
    def tags_column(self) -> str:
        """Where the tags still to send are."""
        return "pending_tags" if self is OwnKind.RESULTS else "tags"


def mark(kind: OwnKind) -> str:
    """The value of the :data:`MARK` column in a file of ``kind``."""
    return f"{kind}/{VERSION}"


_ANSWERED = {"contact_id", "tags", "status", "error_type", "retryable"}
_REJECTED = {"contact_id", "tags", "source", "line", "column", "reason", "error_type"}


def recognise(header: Sequence[str], name: str = "") -> OwnKind | None:
    """Which of bulktag's files a header (and a file name) is, or None."""
    names = {normalise_header(h) for h in header}
    if names >= _ANSWERED:
        return OwnKind.RESULTS if "pending_tags" in names else OwnKind.FAILURES
    if names >= _REJECTED and "status" not in names:
        return OwnKind.REJECTS
    if MARK in names and {"contact_id", "tags"} <= names:
        return OwnKind.CARRY_OVER
    if name == CARRY_OVER and names == {"contact_id", "tags"}:
        return OwnKind.CARRY_OVER
    return None


def reading(
    header: Sequence[str], name: str, options: ReadOptions
) -> tuple[OwnKind | None, ReadOptions]:
    """Which of bulktag's files ``header`` (and the file's ``name``) is, None for a person's,
    and the options to read it with: its own, or ``options``."""
    own = recognise(header, name)
    return own, options if own is None else own_options(options, own)


def own_options(given: ReadOptions, kind: OwnKind) -> ReadOptions:
    """How a file of ``kind`` is read: its own columns, its tags as they are. Only
    ``--retry-permanent`` carries over from the options ``given``."""
    return ReadOptions(
        id_column="contact_id",
        tags_columns=(kind.tags_column,),
        retry_permanent=given.retry_permanent,
    )


def check_marks(kind: OwnKind, values: Iterable[str | None], source: str) -> None:
    """Refuse a file a newer bulktag wrote (its mark's version above :data:`VERSION`), and
    a rejects file, which is not a list of contacts to send."""
    if kind is OwnKind.REJECTS:
        raise InputError(
            "this is bulktag's rejects file: the rows it lists could not be used, as their "
            "source wrote them. Fix them in that file (the source and line columns say where) "
            "and run it again",
            source=source,
        )
    for value in values:
        text = (value or "").strip()
        written, _, version = text.partition("/")
        if version.isdigit() and int(version) > VERSION:
            raise InputError(
                f"this {written or kind} file was written by a newer bulktag (its "
                f"{MARK} says {text!r}; this one reads version {VERSION}): "
                "upgrade bulktag to read it",
                source=source,
            )
