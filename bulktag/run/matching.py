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

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from bulktag.errors import ConfigError, WorkLeftError
from bulktag.outcomes import FailureType
from bulktag.plan.emails import (
    AMBIGUOUS_EMAIL,
    given_address,
    keyed_directory,
    not_addresses,
    refused_directory,
    resolve_emails,
    stand_in_directory,
    waiting_directory,
)
from bulktag.read.frame import InputFrame
from bulktag.run.kept import Kept, KeptDirectory
from bulktag.send.directory import SCHEMA

if TYPE_CHECKING:  # types only: ``validate`` matches with no HTTP client or event loop
    from bulktag.send.directory import DirectoryRead
    from bulktag.send.work import DispatchStatistics

__all__ = [
    "DirectoryWaitsError",
    "EmailMatch",
    "EmailStage",
    "match_emails",
    "with_emails",
]

log = logging.getLogger("bulktag")

_EMAILS = {"contact_id": pl.String, "email": pl.String}
#: Reads the directory now (a session of its own), from a ``created_after`` (None: from
#: the start): what it found, and its calls.
Reader = Callable[[str | None], "tuple[DirectoryRead, DispatchStatistics]"]


class DirectoryWaitsError(WorkLeftError):
    """The hourly export limit cut the directory's reading short tonight: the rows
    matched by email wait for it (rejects ``rate_limited``), the others go on."""

    def __init__(self, why: str, go_on: str, read: int) -> None:
        super().__init__(f"{why}: {go_on}")
        self.why, self.go_on, self.read = why, go_on, read


@dataclass(frozen=True, slots=True)
class EmailMatch:
    """What matching by email did, for the plan, the summary and the quota book."""

    addresses: int  #: distinct addresses in the inputs (as they compare)
    contacts: int  #: contacts in the directory
    export_calls: int  #: this run's for the directory that LeadLex answered (its pages)
    kept_since: float | None  #: the kept directory's time, when one was used
    unknown: int  #: distinct addresses no contact has
    ambiguous: int  #: distinct addresses several contacts share
    statistics: tuple[DispatchStatistics, ...] = ()  #: the directory sessions'
    export_refused: int = 0  #: export calls the hourly limit refused (429: not counted)
    matched: int = 0  #: contacts matched (one an address)
    why: str = ""  #: why the directory was read now, or kept
    waiting: int = 0  #: distinct addresses whose rows wait for a directory not read whole
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


def _distinct(frames: Sequence[InputFrame]) -> pl.DataFrame:
    """The email inputs' distinct addresses, as they compare (``key``), in one pass over
    them and no join: the spelling first given (``email``) and whether a row the reading
    did not hold has it (``usable``). The counts and each contact's address for the
    results come from this frame (:func:`_against`), not from more passes over the inputs."""
    parts = []
    for i in _by_email(frames):
        given = given_address(apostrophe=frames[i].quoted)
        parts.append(
            frames[i].frame.select(
                key=given.str.to_lowercase(), email=given, usable=pl.col("held").is_null()
            )
        )
    return (
        pl.concat(parts)
        .filter(pl.col("key").fill_null("") != "")
        .group_by("key")  # rows keep their order within a group: ``first`` is the first
        .agg(pl.col("email").first(), pl.col("usable").any())
        .collect()
    )


def _against(distinct: pl.DataFrame, keyed: pl.DataFrame) -> pl.DataFrame:
    """The distinct addresses (:func:`_distinct`) looked up in the keyed directory: the
    contact matched (``contact``, none when unmatched) and whether no contact
    (``unknown``) or several (``ambiguous``) have it, for the addresses of usable rows (a
    row the reading held is told by its own reason, as :func:`resolve_emails` keeps it)."""
    usable = pl.col("usable")
    return distinct.join(
        keyed.select("key", "contact", "shared"), on="key", how="left", maintain_order="left"
    ).select(
        "key",
        "email",
        contact=pl.when(usable).then(pl.col("contact")),
        unknown=usable & pl.col("contact").is_null() & pl.col("shared").is_null(),
        ambiguous=usable & pl.col("shared").str.starts_with(AMBIGUOUS_EMAIL).fill_null(False),
    )


def _read(
    read: Reader | None,
    *,
    dry_run: bool,
    start: Kept | None,
    kept: KeptDirectory | None,
    now: float,
    sessions: list[tuple[DirectoryRead, DispatchStatistics]],
) -> Kept:
    """The directory read now, from where ``start`` (a job's paging the hourly limit
        stopped) left it; the session goes into ``sessions`` (its calls are booked by the
        reader as it ends, whatever stopped it). Stopped by the limit again: a job keeps what
        was read, for its next run (no address is matched until the directory is whole:
    :class:`DirectoryWaitsError`, whose rows wait)."""
    if read is None:
        raise ConfigError("matching by email needs the key, to read the workspace's directory")
    found, statistics = read(None if start is None else start.after)
    sessions.append((found, statistics))
    so_far = [] if start is None else [start.frame]
    if found.frame is not None:
        whole = pl.concat([*so_far, found.frame]).unique("id", keep="first", maintain_order=True)
        return Kept(keyed_directory(whole.lazy()).collect(), now, complete=True)
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
        raise DirectoryWaitsError(
            f"the workspace's directory is longer than LeadLex's hourly export limit lets "
            f"bulktag read within --max-wait: {read_so_far.height:,} contacts read so far "
            f"({why})",
            go_on,
            read_so_far.height,
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
    is read, each address stands for a contact (``validate``).

    Every distinct address is checked (:func:`~bulktag.plan.emails.not_addresses`) whether
    or not the directory holds it: what is no address is a reject, never a contact, and
    never a reason to read a kept directory again."""
    if not _by_email(frames):
        return frames, None
    found = None if kept is None else kept.load(now)
    why = "read now: a run by hand keeps none" if kept is None else _why_read(kept, found)
    if stand_in:
        own = stand_in_directory([frames[i].frame for i in _by_email(frames)])
        found, why = Kept(keyed_directory(own).collect(), now, complete=True), ""
    sessions: list[tuple[DirectoryRead, DispatchStatistics]] = []
    fresh = found is None or not found.complete
    if found is None or not found.complete:
        try:
            found = _read(read, dry_run=dry_run, start=found, kept=kept, now=now, sessions=sessions)
        except DirectoryWaitsError as waits:
            return _waiting(frames, waits, sessions)
    distinct = _distinct(frames)
    seen = _against(distinct, found.frame)
    bad = not_addresses(seen["key"])
    seen = _judged(seen, bad)
    if seen["unknown"].any() and not fresh and read is not None:
        unknown = int(seen["unknown"].sum())
        log.info(
            "%s not in the kept directory: reading it again (once a run)",
            _addresses_text(unknown, "is", "are"),
        )
        try:
            found = _read(read, dry_run=dry_run, start=None, kept=None, now=now, sessions=sessions)
        except WorkLeftError as exc:  # the kept one stands: its unknown addresses are rejects
            log.warning("%s; the kept directory is used", exc)
        else:
            fresh = True
            why = f"read again: {_addresses_text(unknown, 'was', 'were')} not in the kept one"
            seen = _judged(_against(distinct, found.frame), bad)
    if fresh and kept is not None and not dry_run:
        kept.save(found)
    resolved = _resolved(frames, refused_directory(found.frame.lazy(), bad))
    addresses = seen.filter(~pl.col("invalid"))  # no address is counted as one
    emails = (
        addresses.filter(pl.col("contact").is_not_null())
        .select(contact_id=pl.col("contact").str.to_lowercase(), email="email")
        .unique("contact_id", keep="first", maintain_order=True)
    )
    return resolved, EmailMatch(
        addresses=addresses.height,
        contacts=int(found.frame["n"].sum() or 0),
        export_calls=sum(done.paging.counted for done, _ in sessions),
        kept_since=None if fresh else found.started,
        unknown=int(addresses["unknown"].sum()),
        ambiguous=int(addresses["ambiguous"].sum()),
        statistics=tuple(statistics for _, statistics in sessions),
        export_refused=sum(done.paging.refused for done, _ in sessions),
        matched=emails.height,
        why=why if fresh else f"kept by the job, read {_age(now - found.started)} ago",
        emails=emails,
    )


def _waiting(
    frames: list[InputFrame],
    waits: DirectoryWaitsError,
    sessions: list[tuple[DirectoryRead, DispatchStatistics]],
) -> tuple[list[InputFrame], EmailMatch]:
    """``frames`` with every row matched by email waiting for the directory (a reject
    ``rate_limited`` saying why and when it goes on; a cell that is no address is told so),
    as the quota defers contacts: the inputs by ID go on tonight."""
    log.warning(
        "%s: the rows matched by email wait for it (rejects: rate_limited), the others are "
        "sent; %s",
        waits.why,
        waits.go_on,
    )
    distinct = _distinct(frames)
    bad = not_addresses(distinct["key"])
    reason = f"{FailureType.RATE_LIMITED}: {waits.why}; this row waits for it: {waits.go_on}"
    directory = refused_directory(waiting_directory(distinct["key"], reason), bad)
    addresses = distinct.filter(~pl.col("key").is_in(bad["key"].implode()))
    return _resolved(frames, directory), EmailMatch(
        addresses=addresses.height,
        contacts=waits.read,
        export_calls=sum(done.paging.counted for done, _ in sessions),
        kept_since=None,
        unknown=0,
        ambiguous=0,
        statistics=tuple(statistics for _, statistics in sessions),
        export_refused=sum(done.paging.refused for done, _ in sessions),
        why="not read whole tonight: its rows wait",
        waiting=addresses.height,
    )


def _why_read(kept: KeptDirectory, found: Kept | None) -> str:
    if found is None:
        days = f"{kept.max_age / 86_400:g} day{'' if kept.max_age == 86_400 else 's'}"
        return f"read now: the job keeps none younger than [read] directory_days ({days})"
    return f"read now, going on from the {found.frame.height:,} contacts an earlier run read"


def _addresses_text(n: int, one: str, several: str) -> str:
    return f"1 address {one}" if n == 1 else f"{n:,} addresses {several}"


def _age(seconds: float) -> str:
    hours = max(0.0, seconds) / 3600
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def _judged(seen: pl.DataFrame, bad: pl.DataFrame) -> pl.DataFrame:
    """``seen`` (:func:`_addresses`) with what is no address (``bad``) marked ``invalid``:
    neither unknown nor ambiguous, and no contact's, whatever the directory holds."""
    invalid = pl.col("key").is_in(bad["key"].implode())
    return seen.with_columns(
        invalid=invalid,
        contact=pl.when(invalid).then(None).otherwise(pl.col("contact")),
        unknown=pl.col("unknown") & ~invalid,
        ambiguous=pl.col("ambiguous") & ~invalid,
    )


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
        self._read = None if read is None else _booking(read, book)
        self._kept = kept
        self._now = now
        self._dry_run = dry_run
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
            "export_refused": found.export_refused,
            "matched": found.matched,
            "why": found.why,
            "waiting": found.waiting,
        }


def _booking(read: Reader, book: Callable[[DispatchStatistics], None]) -> Reader:
    """``read``, each of its sessions booked as it ends, whatever stopped it (the hourly
    limit, a 403, an error, a signal): the export calls LeadLex counted (its answers but
    the limit's refusals, which LeadLex does not count: docs of the API, Part B)."""

    def booked(after: str | None) -> tuple[DirectoryRead, DispatchStatistics]:
        found, statistics = read(after)
        calls = dict(statistics.other_calls)
        calls["export"] = found.paging.counted
        book(replace(statistics, other_calls=calls))
        return found, statistics

    return booked
