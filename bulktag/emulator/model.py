"""The emulated service's state: its clock, plans, workspaces, keys and contacts.

Nothing here knows about HTTP; :mod:`bulktag.emulator.app` turns requests into
calls on these objects and their answers into LeadLex responses.
"""

from __future__ import annotations

import csv
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bulktag.clock import next_utc_midnight, utc_day
from bulktag.leadlex import PLANS, PlanLimits

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_WORKSPACE",
    "PERMISSIONS",
    "PLANS",
    "Contact",
    "EmulatorClock",
    "Key",
    "PlanLimits",
    "Refusal",
    "Workspace",
    "generate_contacts",
    "iso_time",
    "load_contacts",
    "parse_key_spec",
]

DEFAULT_WORKSPACE = "default"
DEFAULT_KEY = "wbk_demo_emulator_key"
PERMISSIONS = frozenset({"read", "write", "lexi"})
EXPORT_FIELDS = (
    "id",
    "full_name",
    "email",
    "phone",
    "job_title",
    "company_name",
    "linkedin_url",
    "tags",
    "created_at",
)
MINUTE = 60.0
HOUR = 3600.0


#: What ``X-RateLimit-Limit`` says on an unmetered workspace.
UNMETERED_DAILY = 1_000_000_000


class EmulatorClock:
    """Wall time of the emulated service, in Unix seconds.

    It starts at ``start`` (default: the real time), moves with ``source``
    (default: ``time.monotonic``; tests pass the event loop's virtual clock), and
    can be moved forward or frozen by the control API, so a test crosses a UTC
    midnight in milliseconds.
    """

    def __init__(
        self, start: float | None = None, source: Callable[[], float] = time.monotonic
    ) -> None:
        self._start = time.time() if start is None else start
        self._source = source
        self._origin: float | None = None
        self._advanced = 0.0
        self._frozen_at: float | None = None

    def now(self) -> float:
        if self._frozen_at is not None:
            return self._frozen_at
        tick = self._source()
        if self._origin is None:
            self._origin = tick
        return self._start + (tick - self._origin) + self._advanced

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        if self._frozen_at is not None:
            self._frozen_at += seconds
        else:
            self._advanced += seconds

    def freeze(self, frozen: bool) -> None:
        if frozen and self._frozen_at is None:
            self._frozen_at = self.now()
        elif not frozen and self._frozen_at is not None:
            thawed_at = self._frozen_at
            self._frozen_at = None
            self._advanced += thawed_at - self.now()

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a workspace turned a call away: which limit, and when to come back."""

    limit: str  # "minute", "day" or "export_hour"
    retry_after: int | None


@dataclass(slots=True)
class StoredResponse:
    """An answer kept for ``Idempotency-Key`` replay."""

    fingerprint: tuple[str, str, bytes]
    expires: float
    status: int
    body: bytes


@dataclass(slots=True)
class Workspace:
    """One tenant: its plan's limits and what it has used of them."""

    name: str
    per_minute: int | None
    per_day: int | None
    export_per_hour: int | None = 10
    day: str = ""
    used_today: int = 0
    window: deque[float] = field(default_factory=deque)
    export_window: deque[float] = field(default_factory=deque)
    idempotency: dict[str, StoredResponse] = field(default_factory=dict)

    def _roll(self, now: float) -> None:
        today = utc_day(now)
        if today != self.day:
            self.day = today
            self.used_today = 0
        cutoff = now - MINUTE
        while self.window and self.window[0] <= cutoff:
            self.window.popleft()

    def refusal(self, now: float, *, export: bool = False) -> Refusal | None:
        """The limit this call would break, or ``None`` when it may proceed."""
        self._roll(now)
        if self.per_day is not None and self.used_today >= self.per_day:
            return Refusal("day", None)
        if self.per_minute is not None and len(self.window) >= self.per_minute:
            return Refusal("minute", max(1, math.ceil(self.window[0] + MINUTE - now)))
        if export and self.export_per_hour is not None:
            cutoff = now - HOUR
            while self.export_window and self.export_window[0] <= cutoff:
                self.export_window.popleft()
            if len(self.export_window) >= self.export_per_hour:
                return Refusal("export_hour", max(1, math.ceil(self.export_window[0] + HOUR - now)))
        return None

    def spend(self, now: float, *, export: bool = False) -> None:
        """Count one call that reached the handler."""
        self._roll(now)
        self.used_today += 1
        if self.per_minute is not None:
            self.window.append(now)
        if export:
            self.export_window.append(now)

    def rate_headers(self, now: float) -> list[tuple[bytes, bytes]]:
        self._roll(now)
        limit = UNMETERED_DAILY if self.per_day is None else self.per_day
        remaining = max(0, limit - self.used_today)
        return [
            (b"x-ratelimit-limit", str(limit).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
            (b"x-ratelimit-reset", str(next_utc_midnight(now)).encode()),
        ]

    def forget_expired_replays(self, now: float) -> None:
        """Drop stored answers past their 24 h; the oldest first, so each check is O(expired).

        Answers are stored in the order they expire (dicts keep insertion order, and
        every answer lives the same 24 h), so the scan stops at the first one alive.
        """
        while self.idempotency:
            key, stored = next(iter(self.idempotency.items()))
            if stored.expires > now:
                return
            del self.idempotency[key]


@dataclass(slots=True)
class Key:
    """An API key of one workspace. Its repr never shows the secret."""

    secret: str = field(repr=False)
    workspace: str
    permissions: frozenset[str]
    expires_at: float | None = None
    revoked: bool = False

    def valid_at(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


def parse_key_spec(spec: str) -> Key:
    """``KEY:read,write[@workspace]`` -> :class:`Key` (permissions may be empty)."""
    secret, sep, rest = spec.partition(":")
    if not sep or not secret:
        raise ValueError(f"key spec {spec!r} is not KEY:PERMISSIONS[@WORKSPACE]")
    perms_text, _, workspace = rest.partition("@")
    perms = frozenset(p.strip().lower() for p in perms_text.split(",") if p.strip())
    unknown = perms - PERMISSIONS
    if unknown:
        raise ValueError(f"unknown permission(s) {sorted(unknown)}; use {sorted(PERMISSIONS)}")
    return Key(secret=secret, workspace=workspace or DEFAULT_WORKSPACE, permissions=perms)


@dataclass(slots=True)
class Contact:
    """A contact as the emulator stores it; each endpoint shows it in its own shape.

    ``GET /v1/contacts/{id}`` says ``company``, ``created_date`` and ``updated_date``; the
    list and the export say ``company_name`` and ``created_at`` (Part A). The three name
    fields are always filled: a contact stored without a name gets one from its id.
    """

    id: str
    workspace: str
    full_name: str
    email: str
    phone: str
    job_title: str
    company_name: str
    linkedin_url: str
    tags: list[str]
    created_at: float
    updated_at: float | None = None  #: None: never changed since created
    priority: int = 0
    custom_fields: dict[str, object] = field(default_factory=dict)
    related_company_id: str | None = None

    def names(self) -> tuple[str, str, str]:
        """``(first_name, last_name, full_name)``, all non-empty."""
        full = " ".join(self.full_name.split()) or f"Contact {self.id[:8]}"
        first, _, last = full.partition(" ")
        return first, last or first, full

    def touch(self, now: float) -> None:
        self.updated_at = now

    def as_json(self) -> dict[str, object]:
        """The contact as ``GET /v1/contacts/{id}`` returns it."""
        first, last, full = self.names()
        return {
            "id": self.id,
            "first_name": first,
            "last_name": last,
            "full_name": full,
            "email": self.email or None,
            "phone": self.phone or None,
            "job_title": self.job_title or None,
            "company": self.company_name or None,
            "related_company_id": self.related_company_id,
            "linkedin_url": self.linkedin_url or None,
            "priority": self.priority,
            "custom_fields": dict(self.custom_fields),
            "tags": list(self.tags),
            "created_date": iso_time(self.created_at),
            "updated_date": iso_time(self.updated),
        }

    @property
    def updated(self) -> float:
        return self.created_at if self.updated_at is None else self.updated_at

    def list_item(self) -> dict[str, object]:
        """The contact as an item of ``GET /v1/contacts``: no tags, ``company_name``."""
        return {
            "id": self.id,
            "full_name": self.names()[2],
            "email": self.email or None,
            "phone": self.phone or None,
            "job_title": self.job_title or None,
            "company_name": self.company_name or None,
            "linkedin_url": self.linkedin_url or None,
            "created_at": iso_time(self.created_at),
            "updated_date": iso_time(self.updated),
        }

    def export_row(self, fields: Iterable[str]) -> list[str]:
        """The contact's cells in an export with ``fields`` (of :data:`EXPORT_FIELDS`)."""
        values: dict[str, object] = self.list_item() | {"tags": ",".join(self.tags)}
        return ["" if values[name] is None else str(values[name]) for name in fields]


def iso_time(unix: float) -> str:
    """``2026-11-26T12:00:00Z``: how LeadLex writes times."""
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Guido")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Perlman")
_TITLES = ("Partner", "Associate", "Paralegal", "General Counsel", "Office Manager", "")
_COMPANIES = ("Lex & Co", "Brief LLP", "Dicta Legal", "Motion Partners", "Tort Group")
#: Tags some generated contacts already carry, so merges are visible.
EXISTING_TAGS = ("customer", "newsletter", "vip", "partner", "churn-risk", "lead")
_GENERATED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
#: Generated contacts whose index is this modulo 50 share the address before theirs.
SHARED_EMAIL = 49
#: Generated contacts whose index is this modulo 20 have an address in mixed case.
MIXED_CASE_EMAIL = 10


def generate_contacts(
    count: int, seed: int, workspace: str = DEFAULT_WORKSPACE
) -> Iterator[Contact]:
    """``count`` deterministic contacts: same seed, same UUIDs, names and tags.

    Their addresses are what a CRM holds: mostly one per person, in lower case; every
    20th (index 10, 30, ...) as a person typed it, in mixed case; every 50th (index 49,
    99, ...) the address of the contact before it (a shared inbox: matching by email
    must not guess which)."""
    rng = random.Random(seed)
    email = ""
    for index in range(count):
        contact_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        tags = rng.sample(EXISTING_TAGS, rng.choice((0, 0, 0, 1, 1, 2)))
        if index % 50 != SHARED_EMAIL or not email:
            email = f"{first.lower()}.{last.lower()}{index}@example.com"
            if index % 20 == MIXED_CASE_EMAIL:
                email = f"{first}.{last}{index}@Example.COM"
        yield Contact(
            id=contact_id,
            workspace=workspace,
            full_name=f"{first} {last}",
            email=email,
            phone=f"+1555{index % 10_000_000:07d}",
            job_title=rng.choice(_TITLES),
            company_name=rng.choice(_COMPANIES),
            linkedin_url="",
            tags=tags,
            created_at=_GENERATED_EPOCH + index * 37,
            priority=index % 4,  # not drawn: the same seed keeps giving the same contacts
            custom_fields={"generated": True, "index": index},
        )


def load_contacts(path: Path, workspace: str = DEFAULT_WORKSPACE) -> Iterator[Contact]:
    """Contacts from a CSV with at least ``id, full_name, email, tags``.

    ``tags`` is one comma-joined cell, as the export writes it; optional columns
    are the export's other fields and ``workspace``.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "full_name", "email", "tags"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: contacts file lacks column(s) {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                contact_id = str(uuid.UUID(row["id"].strip()))
            except ValueError:
                raise ValueError(f"{path}:{line}: id {row['id']!r} is not a UUID") from None
            created = row.get("created_at") or ""
            created_at = (
                datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
                if created
                else _GENERATED_EPOCH + (line - 2) * 37
            )
            yield Contact(
                id=contact_id,
                workspace=(row.get("workspace") or "").strip() or workspace,
                full_name=row["full_name"],
                email=row["email"],
                phone=row.get("phone") or "",
                job_title=row.get("job_title") or "",
                company_name=row.get("company_name") or "",
                linkedin_url=row.get("linkedin_url") or "",
                tags=_dedupe(t.strip() for t in row["tags"].split(",") if t.strip()),
                created_at=created_at,
            )


def _dedupe(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tags))
