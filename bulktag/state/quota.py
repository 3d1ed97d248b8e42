"""The user's quota store: what every run on this machine spent of a key's day.

``quota.sqlite`` lives in ``$BULKTAG_STATE_DIR`` (else ``$XDG_STATE_HOME/bulktag``,
else ``~/.local/state/bulktag``) and holds two tables:

- ``quota``: calls used per API key fingerprint (a hash of the URL and the key,
  never the key) and UTC day, with LeadLex's last word on what is left, so a
  manual run in the afternoon and the nightly run share one budget;
- ``reruns``: which runs sent which failures file (by content), so sending one
  twice is warned about.

:class:`QuotaBook` is what a run uses: read what is left before it, spend after it.
A job's own state (ledger, runs) is :mod:`bulktag.state.job`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bulktag.clock import utc_day
from bulktag.config import ApiKey
from bulktag.machine import DamagedFileError, alive, fault_of
from bulktag.outcomes import Quota
from bulktag.state.store import Store, move_aside

log = logging.getLogger("bulktag")
_T = TypeVar("_T")

__all__ = [
    "QUOTA_FILE",
    "QUOTA_FIX",
    "QUOTA_VERSION",
    "Bookings",
    "QuotaBook",
    "QuotaRecord",
    "QuotaStore",
    "default_state_dir",
    "using_quota_store",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota (
    fingerprint TEXT NOT NULL,
    day TEXT NOT NULL,
    calls INTEGER NOT NULL,
    remaining INTEGER,
    quota_limit INTEGER,
    reset INTEGER,
    updated_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, day)
);
CREATE TABLE IF NOT EXISTS flights (
    fingerprint TEXT NOT NULL,
    pid INTEGER NOT NULL,
    in_flight INTEGER NOT NULL,
    remaining INTEGER,
    reset INTEGER,
    updated_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, pid)
);
CREATE TABLE IF NOT EXISTS reruns (
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    at REAL NOT NULL
);
"""

#: The quota store's schema (``PRAGMA user_version``): a newer one is refused.
QUOTA_VERSION = 2  # 2: flights
#: How far the local clock may be from LeadLex's near its daily reset: a record whose reset
#: is this close is not trusted (the day may have turned at LeadLex), so the run asks.
CLOCK_SKEW = 300.0
#: The quota store's file, in the state folder.
QUOTA_FILE = "quota.sqlite"
QUOTA_FIX = (
    "the quota store lives in $BULKTAG_STATE_DIR (else $XDG_STATE_HOME/bulktag, else "
    "~/.local/state/bulktag): set BULKTAG_STATE_DIR to a folder this user can write"
)


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """Where the quota store lives."""
    if environ.get("BULKTAG_STATE_DIR"):
        return Path(environ["BULKTAG_STATE_DIR"])
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "~")) / ".local" / "state")
    return Path(base).expanduser() / "bulktag"


@dataclass(frozen=True, slots=True)
class QuotaRecord:
    """What LeadLex last said about a key's daily quota, and what we spent, on one day."""

    day: str
    calls: int
    remaining: int | None
    limit: int | None
    reset: int | None


class QuotaStore(Store):
    """``quota.sqlite`` (see the module docstring)."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir / QUOTA_FILE, _SCHEMA, QUOTA_FIX, version=QUOTA_VERSION)

    def quota(self, fingerprint: str, now: float) -> QuotaRecord | None:
        """The key's record of LeadLex's current day, or None: nothing known, or its day
        has reset, or may have (within :data:`CLOCK_SKEW` of LeadLex's reset, the local
        clock is not trusted to tell: the run's first answer does)."""
        row = self._db.execute(
            "SELECT day, calls, remaining, quota_limit, reset FROM quota "
            "WHERE fingerprint = ? ORDER BY day DESC LIMIT 1",
            (fingerprint,),
        ).fetchone()
        if row is None:
            return None
        record = QuotaRecord(*row)
        if record.reset is None:
            return record if record.day == utc_day(now) else None
        return record if now < record.reset - CLOCK_SKEW else None

    def spend(
        self,
        fingerprint: str,
        now: float,
        *,
        calls: int,
        remaining: int | None,
        limit: int | None,
        reset: int | None,
    ) -> None:
        """Add ``calls`` to the day's count and keep LeadLex's last word on what is left. The
        day is LeadLex's, the one its ``reset`` ends, once it has answered; else the local
        clock's."""
        day = utc_day(now) if reset is None else utc_day(reset - 1)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            current = self._db.execute(
                "SELECT calls FROM quota WHERE fingerprint = ? AND day = ?", (fingerprint, day)
            ).fetchone()
            self._db.execute(
                "INSERT OR REPLACE INTO quota "
                "(fingerprint, day, calls, remaining, quota_limit, reset, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    fingerprint,
                    day,
                    (current[0] if current else 0) + calls,
                    remaining,
                    limit,
                    reset,
                    now,
                ),
            )

    def last_limit(self, fingerprint: str) -> int | None:
        """The daily quota LeadLex last reported for a key, on any day (None: never)."""
        row = self._db.execute(
            "SELECT quota_limit FROM quota WHERE fingerprint = ? AND quota_limit IS NOT NULL "
            "ORDER BY day DESC LIMIT 1",
            (fingerprint,),
        ).fetchone()
        return None if row is None else int(row[0])

    def reruns_of(self, digest: str) -> list[tuple[Path, float]]:
        """Run folders that already sent the file with this content, oldest first."""
        rows = self._db.execute(
            "SELECT run_dir, at FROM reruns WHERE digest = ? ORDER BY at", (digest,)
        ).fetchall()
        return [(Path(run_dir), at) for run_dir, at in rows]

    def record_rerun(self, digest: str, source: str, run_dir: Path, at: float) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO reruns (digest, source, run_dir, at) VALUES (?, ?, ?, ?)",
                (digest, source, str(run_dir), at),
            )


class QuotaBook:
    """A key's daily quota in the user's store: read before a run, spent after it."""

    def __init__(self, state_dir: Path, key: ApiKey, api_url: str) -> None:
        self._state_dir = state_dir
        self.path = state_dir / QUOTA_FILE
        self._fingerprint = fingerprint(key, api_url)

    def remaining(self, now: float) -> int | None:
        """Today's calls left as LeadLex last said; on a day not yet spent, the daily quota
        LeadLex last reported (the day starts whole); None when nothing is known."""

        def read(store: QuotaStore) -> int | None:
            known = store.quota(self._fingerprint, now)
            return known.remaining if known else store.last_limit(self._fingerprint)

        return using_quota_store(self._state_dir, now, read)

    def spend(
        self, now: float, *, calls: int, remaining: int | None, limit: int | None, reset: int | None
    ) -> None:
        def write(store: QuotaStore) -> None:
            store.spend(
                self._fingerprint, now, calls=calls, remaining=remaining, limit=limit, reset=reset
            )

        using_quota_store(self._state_dir, now, write)

    def spend_or_warn(
        self, now: float, *, calls: int, remaining: int | None, limit: int | None, reset: int | None
    ) -> None:
        """:meth:`spend`; a store that cannot be written (a full disk) is warned about, as
        the run's own outcome matters more and LeadLex's next answer says what is left."""
        try:
            self.spend(now, calls=calls, remaining=remaining, limit=limit, reset=reset)
        except Exception as exc:
            fault = fault_of(exc, self.path)
            if fault is None:
                raise
            log.warning(
                "%s: the quota store could not book this run's %d calls (%s); the next "
                "run's first answer from LeadLex says what is left",
                fault.path,
                calls,
                fault.what,
            )

    def bookings(self, now: Callable[[], float]) -> Bookings:
        """The key's calls in flight, every process's, for a session (close it after)."""
        return Bookings(open_quota_store(self._state_dir, now()), self._fingerprint, now)


#: What is left, as a process last said it: the lowest word of the same day, else the new.
_LOWEST_OF_THE_DAY = (
    ", remaining = CASE WHEN excluded.remaining IS NOT NULL AND flights.remaining IS NOT NULL "
    "AND excluded.reset IS flights.reset THEN min(flights.remaining, excluded.remaining) "
    "ELSE excluded.remaining END, reset = excluded.reset"
)


class Bookings:
    """The calls in flight on a key, every process's, in the quota store's ``flights``: a
    call is booked before it is sent (in one transaction with the check of what every
    process has in flight), and landed when answered, so that two jobs on one key keep
    its reserve between them (:class:`~bulktag.send.limiter.SharedQuota`). A process that died
    with calls booked is no longer counted (its pid is gone)."""

    def __init__(self, store: QuotaStore, fingerprint: str, now: Callable[[], float]) -> None:
        self._store = store
        self._db = store._db
        self._fingerprint = fingerprint
        self._pid = os.getpid()
        self._now = now
        self._write(0, None, None)

    def book(self, in_flight: int, reserve: int, remaining: int | None, reset: int | None) -> bool:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            others = 0
            latest, lowest = reset, remaining
            for pid, flying, said, their_reset in self._db.execute(
                "SELECT pid, in_flight, remaining, reset FROM flights "
                "WHERE fingerprint = ? AND pid != ?",
                (self._fingerprint, self._pid),
            ).fetchall():
                if not alive(pid):
                    self._db.execute(
                        "DELETE FROM flights WHERE fingerprint = ? AND pid = ?",
                        (self._fingerprint, pid),
                    )
                    continue
                others += flying
                if said is None:
                    continue
                if latest is None or (their_reset is not None and their_reset > latest):
                    latest, lowest = their_reset, said  # a newer day: its word wins
                elif their_reset == latest or their_reset is None:
                    lowest = said if lowest is None else min(lowest, said)
            allowed = lowest is None or lowest - others - in_flight - reserve > 0
            if allowed:
                self._upsert(in_flight + 1, remaining, reset)
            return allowed

    def land(self, in_flight: int, quota: Quota | None) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            said = None if quota is None else quota.remaining
            self._upsert(in_flight, said, None if quota is None else quota.reset, keep=said is None)

    def close(self) -> None:
        """This process's calls are all answered: its row goes, and the store is closed."""
        try:
            with self._db:
                self._db.execute(
                    "DELETE FROM flights WHERE fingerprint = ? AND pid = ?",
                    (self._fingerprint, self._pid),
                )
        finally:
            self._store.close()

    def _write(self, in_flight: int, remaining: int | None, reset: int | None) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._upsert(in_flight, remaining, reset)

    def _upsert(
        self, in_flight: int, remaining: int | None, reset: int | None, *, keep: bool = False
    ) -> None:
        """This process's row; ``keep``: its last word on what is left stays. Within one
        day (one ``reset``) what is left only goes down: answers landing out of order (a
        call answered later, counted earlier) never raise it, or two processes would
        keep less than their reserve between them."""
        self._db.execute(
            "INSERT INTO flights (fingerprint, pid, in_flight, remaining, reset, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint, pid) DO UPDATE SET "
            "in_flight = excluded.in_flight, updated_at = excluded.updated_at"
            + ("" if keep else _LOWEST_OF_THE_DAY),
            (self._fingerprint, self._pid, in_flight, remaining, reset, self._now()),
        )


def using_quota_store(state_dir: Path, now: float, use: Callable[[QuotaStore], _T]) -> _T:
    """``use(store)`` on the user's quota store. A damaged one (found as it is opened or
    used) is moved aside and a new one begun (:func:`open_quota_store`)."""
    try:
        with QuotaStore(state_dir) as store:
            return use(store)
    except DamagedFileError as exc:
        _set_aside(state_dir, exc, now)
    with QuotaStore(state_dir) as store:
        return use(store)


def open_quota_store(state_dir: Path, now: float) -> QuotaStore:
    """The user's quota store, open (close it after). A damaged one is moved aside and a new
    one begun: what it knew of today's calls is lost, and LeadLex's first answer says what
    is left."""
    try:
        return QuotaStore(state_dir)
    except DamagedFileError as exc:
        _set_aside(state_dir, exc, now)
    return QuotaStore(state_dir)


def _set_aside(state_dir: Path, fault: DamagedFileError, now: float) -> None:
    path = state_dir / QUOTA_FILE
    aside = move_aside(path, now)
    log.warning(
        "%s: %s; moved aside to %s and a new one begun: what it knew of today's calls is "
        "lost (LeadLex's first answer says what is left), and of failures files sent before",
        path,
        fault.what,
        aside.name,
    )


def fingerprint(key: ApiKey, api_url: str) -> str:
    """Names a workspace's quota in the store: a hash of the key and the URL."""
    return hashlib.sha256(f"{api_url}\x1f{key.reveal()}".encode()).hexdigest()[:24]
