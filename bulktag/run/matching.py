"""Contacts by email in a run: the workspace's directory, kept by a job or read now, and
the inputs' addresses matched against it (the rules: :mod:`bulktag.plan.emails`; the
session that reads the directory: :mod:`bulktag.run.byemail`).

A job keeps the directory in its folder (``directory.parquet``, its age and whose
workspace it is in ``directory.json``) and reads it again when it is older than
``[read] directory_days`` (default 1), or once in a run when an address is not in it (a
contact added since). A run by hand reads it each time: one export call per 50,000
contacts. The export calls are booked like every other call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from bulktag.errors import ConfigError, WorkLeftError
from bulktag.machine import guarded
from bulktag.outputs.publish import atomic_write
from bulktag.plan.emails import (
    AMBIGUOUS_EMAIL,
    UNKNOWN_EMAIL,
    keyed_directory,
    resolve_emails,
    stand_in_directory,
    unknown_reasons,
)
from bulktag.read.frame import InputFrame
from bulktag.send.directory import SCHEMA

if TYPE_CHECKING:  # types only: ``validate`` matches with no HTTP client or event loop
    from bulktag.send.directory import DirectoryRead
    from bulktag.send.work import DispatchStatistics

__all__ = [
    "DIRECTORY",
    "EmailMatch",
    "EmailStage",
    "KeptDirectory",
    "match_emails",
    "with_emails",
]

log = logging.getLogger("bulktag")

DIRECTORY = "directory.parquet"
_ABOUT = "directory.json"
#: ``directory.json``'s schema.
DIRECTORY_VERSION = 1
_EMAILS = {"contact_id": pl.String, "email": pl.String}
#: A directory whose reading the hourly export limit cut goes on for this many days.
PARTIAL_DAYS = 7

#: Reads the directory now (a session of its own), from a ``created_after`` (None: from
#: the start): what it found, and its calls.
Reader = Callable[[str | None], "tuple[DirectoryRead, DispatchStatistics]"]


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


@dataclass(frozen=True, slots=True)
class EmailMatch:
    """What matching by email did, for the plan, the summary and the quota book."""

    addresses: int  #: distinct addresses in the inputs (as they compare)
    contacts: int  #: contacts in the directory
    export_calls: int  #: this run's, for the directory
    kept_since: float | None  #: the kept directory's time, when one was used
    unknown: int  #: distinct addresses no contact has
    ambiguous: int  #: distinct addresses several contacts share
    statistics: tuple[DispatchStatistics, ...] = ()  #: the directory sessions'
    #: each matched contact's address as the inputs first gave it (``contact_id, email``)
    emails: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_EMAILS))


def _by_email(frames: Sequence[InputFrame]) -> list[int]:
    return [i for i, item in enumerate(frames) if item.columns.match == "email"]


def _resolved(frames: Sequence[InputFrame], keyed: pl.LazyFrame) -> list[InputFrame]:
    out = list(frames)
    for i in _by_email(frames):
        item = frames[i]
        out[i] = replace(item, frame=resolve_emails(item.frame, keyed, apostrophe=item.quoted))
    return out


def _addresses(frames: Sequence[InputFrame]) -> pl.DataFrame:
    """The email inputs' distinct addresses, as they compare (``key``), in one pass over
    them: the spelling first given (``email``), the contact matched (``contact``, none
    when unmatched) and whether no contact (``unknown``) or several (``ambiguous``) have
    it. The counts and each contact's address for the results come from this frame, not
    from more passes over the inputs."""
    parts = [
        frames[i].frame.select(
            key=pl.col("email").str.to_lowercase(), email="email", id="id", held="held"
        )
        for i in _by_email(frames)
    ]
    held = pl.col("held")
    return (
        pl.concat(parts)
        .filter(pl.col("key").fill_null("") != "")
        .group_by("key", maintain_order=True)
        .agg(
            pl.col("email").first(),
            contact=pl.col("id").filter(held.is_null()).first(),
            unknown=(held == UNKNOWN_EMAIL).any(),
            ambiguous=held.str.starts_with(AMBIGUOUS_EMAIL).any(),
        )
        .collect()
    )


def _read(
    read: Reader | None,
    *,
    dry_run: bool,
    start: Kept | None,
    kept: KeptDirectory | None,
    now: float,
) -> tuple[Kept, DispatchStatistics]:
    """The directory read now, from where ``start`` (a job's paging the hourly limit
    stopped) left it. Stopped by the limit again: a job keeps what was read, for its next
    run (nothing is sent until the directory is whole)."""
    if read is None:
        raise ConfigError("matching by email needs the key, to read the workspace's directory")
    found, statistics = read(None if start is None else start.after)
    so_far = [] if start is None else [start.frame]
    if found.frame is not None:
        whole = pl.concat([*so_far, found.frame]).unique("id", keep="first", maintain_order=True)
        return Kept(keyed_directory(whole.lazy()).collect(), now, complete=True), statistics
    why = found.warning or "the directory could not be read"
    if found.paging.limited:
        read_so_far = pl.concat(
            [*so_far, found.partial if found.partial is not None else pl.DataFrame(schema=SCHEMA)]
        )
        if kept is not None and not dry_run:
            kept.save(Kept(read_so_far, now, complete=False, after=found.paging.after))
            go_on = "the job's next run goes on from there"
        else:
            go_on = (
                "run it again in an hour, with a --max-wait of an hour, or as a job, which "
                "keeps what it read"
            )
        raise WorkLeftError(
            f"the workspace's directory is longer than LeadLex's export limit (10 calls an "
            f"hour) lets bulktag read within --max-wait: {read_so_far.height:,} contacts "
            f"read so far ({why}); nothing was sent: {go_on}"
        )
    if "Read permission" in why:
        raise ConfigError(f"matching by email reads the workspace's export, and {why}")
    raise WorkLeftError(f"the workspace's directory could not be read ({why}); nothing was sent")


def match_emails(
    frames: list[InputFrame],
    *,
    read: Reader | None,
    kept: KeptDirectory | None,
    now: float,
    dry_run: bool,
    stand_in: bool = False,
) -> tuple[list[InputFrame], EmailMatch | None]:
    """``frames`` with their email inputs matched to contacts (the others as they are),
    and what it took; None when no input is matched by email. ``stand_in``: no directory
    is read, each address stands for a contact (``validate``)."""
    if not _by_email(frames):
        return frames, None
    found = None if kept is None else kept.load(now)
    if stand_in:
        own = stand_in_directory([frames[i].frame for i in _by_email(frames)])
        found = Kept(keyed_directory(own).collect(), now, complete=True)
    sessions: list[DispatchStatistics] = []
    fresh = found is None or not found.complete
    if found is None or not found.complete:
        found, statistics = _read(read, dry_run=dry_run, start=found, kept=kept, now=now)
        sessions.append(statistics)
    resolved = _resolved(frames, found.frame.lazy())
    seen = _addresses(resolved)
    if seen["unknown"].any() and not fresh and read is not None:
        log.info(
            "%d addresses are not in the kept directory: reading it again (once a run)",
            seen["unknown"].sum(),
        )
        try:
            found, statistics = _read(read, dry_run=dry_run, start=None, kept=None, now=now)
        except WorkLeftError as exc:  # the kept one stands: its unknown addresses are rejects
            log.warning("%s; the kept directory is used", exc)
        else:
            sessions.append(statistics)
            fresh = True
            resolved = _resolved(frames, found.frame.lazy())
            seen = _addresses(resolved)
    if fresh and kept is not None and not dry_run:
        kept.save(found)
    bad = unknown_reasons(seen.filter("unknown")["key"].to_list())
    resolved = _not_addresses(resolved, bad)
    addresses = seen.filter(~pl.col("key").is_in(list(bad)))  # no address is counted as one
    return resolved, EmailMatch(
        addresses=addresses.height,
        contacts=int(found.frame["n"].sum() or 0),
        export_calls=sum(s.other_calls.get("export", 0) for s in sessions),
        kept_since=None if fresh else found.started,
        unknown=int(addresses["unknown"].sum()),
        ambiguous=int(addresses["ambiguous"].sum()),
        statistics=tuple(sessions),
        emails=addresses.filter(pl.col("contact").is_not_null())
        .select(contact_id=pl.col("contact").str.to_lowercase(), email="email")
        .unique("contact_id", keep="first", maintain_order=True),
    )


def _not_addresses(frames: list[InputFrame], bad: dict[str, str]) -> list[InputFrame]:
    """Unknown addresses that are no address at all (``bad``: their reasons) say so, not
    ``unknown_email``."""
    if not bad:
        return frames
    reasons = pl.col("email").str.to_lowercase().replace_strict(bad, default=None)
    out = list(frames)
    for i in _by_email(frames):
        held = pl.when(pl.col("held") == UNKNOWN_EMAIL).then(reasons).otherwise(pl.col("held"))
        out[i] = replace(
            frames[i], frame=frames[i].frame.with_columns(held=pl.coalesce(held, "held"))
        )
    return out


def with_emails(plan: Path, into: Path, emails: pl.DataFrame) -> None:
    """The plan ``plan`` with each contact's address as given (``email``, after its ID),
    written to ``into`` (the results and failures carry it)."""
    frame = pl.scan_parquet(plan).join(
        emails.lazy(), on="contact_id", how="left", maintain_order="left"
    )
    names = frame.collect_schema().names()
    order = [
        "seq",
        "contact_id",
        "email",
        *(n for n in names if n not in ("seq", "contact_id", "email")),
    ]
    frame.select(order).sink_parquet(into, compression="lz4", statistics=False)


class EmailStage:
    """A run's matching by email: the :data:`~bulktag.plan.build.Matcher` its plan stage
    calls, and then what it did (``found``) and each contact's address (``emails``)."""

    def __init__(
        self,
        *,
        read: Reader | None,
        kept: KeptDirectory | None,
        now: Callable[[], float],
        dry_run: bool,
        book: Callable[[DispatchStatistics], None],
        stand_in: bool = False,
    ) -> None:
        self._stand_in = stand_in
        self._read = read
        self._kept = kept
        self._now = now
        self._dry_run = dry_run
        self._book = book
        self.found: EmailMatch | None = None

    def __call__(self, frames: list[InputFrame]) -> list[InputFrame]:
        matched, self.found = match_emails(
            frames,
            read=self._read,
            kept=self._kept,
            now=self._now(),
            dry_run=self._dry_run,
            stand_in=self._stand_in,
        )
        for statistics in () if self.found is None else self.found.statistics:
            self._book(statistics)
        return matched

    def calls(self) -> dict[str, int]:
        """The directory's calls by endpoint (for the journal's count of the run's calls)."""
        counted: dict[str, int] = {}
        for statistics in () if self.found is None else self.found.statistics:
            for endpoint, n in statistics.other_calls.items():
                counted[endpoint] = counted.get(endpoint, 0) + n
        return counted

    def as_json(self, *, stand_in: bool = False) -> dict[str, object] | None:
        found = self.found
        if found is None:
            return None
        return {
            "addresses": found.addresses,
            "directory_contacts": None if stand_in else found.contacts,
            "export_calls": found.export_calls,
            "kept_since": found.kept_since,
            "unknown": found.unknown,
            "ambiguous": found.ambiguous,
        }
