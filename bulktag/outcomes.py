"""The outcome vocabulary: how a call, a contact and a run end.

:class:`FailureType` (the ``error_type`` column), :class:`Status` (``status``),
:class:`Halt` (why a run stopped sending) and what a halt leaves unsent, the
:class:`Attempt` of one call, the :class:`RunFault` a call may reveal, and the
:class:`ContactOutcome` of one contact. :mod:`bulktag.send.answers` is where HTTP answers
and httpx2 errors become these; nothing here imports httpx2.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "ADD_TAGS",
    "UNSENT",
    "Attempt",
    "ContactOutcome",
    "FailureType",
    "Halt",
    "Quota",
    "RunFault",
    "Status",
]


#: The endpoint a run's calls are counted under when they add tags (``summary.json``'s
#: ``calls``; the others by the name the dispatcher gives them: export, list_contacts...).
ADD_TAGS = "add_tags"


class FailureType(StrEnum):
    """Stable strings of the ``error_type`` column."""

    INVALID_INPUT = "invalid_input"
    UNKNOWN_EMAIL = "unknown_email"  #: a reject: no contact has the address
    AMBIGUOUS_EMAIL = "ambiguous_email"  #: a reject: several contacts share the address
    VALIDATION_ERROR = "validation_error"
    NOT_FOUND = "not_found"
    INVALID_KEY = "invalid_key"
    INSUFFICIENT_PERMISSIONS = "insufficient_permissions"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"
    UNEXPECTED_RESPONSE = "unexpected_response"
    NOT_ATTEMPTED = "not_attempted"

    @property
    def retryable(self) -> bool:
        """Whether re-running the same contact with the same tags can succeed."""
        return self not in _PERMANENT

    @property
    def stops_run(self) -> bool:
        """401 and 403: every further call would fail the same way."""
        return self in (FailureType.INVALID_KEY, FailureType.INSUFFICIENT_PERMISSIONS)


_PERMANENT = frozenset(
    {
        FailureType.INVALID_INPUT,
        FailureType.UNKNOWN_EMAIL,
        FailureType.AMBIGUOUS_EMAIL,
        FailureType.VALIDATION_ERROR,
        FailureType.NOT_FOUND,
    }
)


class Status(StrEnum):
    """How a contact ended (the ``status`` column)."""

    OK = "ok"  #: every tag applied
    FAILED = "failed"  #: sent, and did not end ok
    DEFERRED = "deferred"  #: not sent: the quota or the rate limit ran out; carried over
    NOT_ATTEMPTED = "not_attempted"  #: not sent: the run stopped first
    SKIPPED = "skipped"  #: not sent: already done


class Halt(StrEnum):
    """Why a run stopped sending before the end of its plan."""

    KEY_REJECTED = "key_rejected"
    QUOTA = "quota_exhausted"
    RATE = "rate_limited"
    SIGNAL = "interrupted"
    CONFIG = "config_fault"  #: a run fault configuration fixes (TLS, wrong URL, proxy)
    UNREACHABLE = "unreachable"  #: LeadLex never answered (DNS, refused, timeouts)
    OUTAGE = "outage"  #: LeadLex stopped answering for longer than --max-wait


#: Status and failure type of contacts a halt left unsent.
UNSENT: dict[Halt, tuple[Status, FailureType]] = {
    Halt.KEY_REJECTED: (Status.NOT_ATTEMPTED, FailureType.NOT_ATTEMPTED),
    Halt.SIGNAL: (Status.NOT_ATTEMPTED, FailureType.NOT_ATTEMPTED),
    Halt.CONFIG: (Status.NOT_ATTEMPTED, FailureType.NOT_ATTEMPTED),
    Halt.UNREACHABLE: (Status.NOT_ATTEMPTED, FailureType.NOT_ATTEMPTED),
    Halt.QUOTA: (Status.DEFERRED, FailureType.QUOTA_EXHAUSTED),
    Halt.RATE: (Status.DEFERRED, FailureType.RATE_LIMITED),
    Halt.OUTAGE: (Status.DEFERRED, FailureType.NETWORK_ERROR),
}


@dataclass(frozen=True, slots=True)
class Quota:
    """What ``X-RateLimit-*`` said about the daily quota (each part may be missing)."""

    limit: int | None
    remaining: int | None
    reset: int | None  # Unix seconds


@dataclass(frozen=True, slots=True)
class RunFault:
    """A fault of the run, not of the contact: what it is, and what fixes it."""

    fixed_by: Literal["config", "time"]  #: 78: configuration fixes it; 75: time may
    cause: str  #: e.g. "TLS certificate of localhost not trusted"
    fix: str  #: e.g. "set SSL_CERT_FILE to your company's CA bundle"

    @property
    def message(self) -> str:
        return f"{self.cause}: {self.fix}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one HTTP attempt."""

    failure: FailureType | None  #: ``None``: the tags were applied
    http_status: int | None = None
    error_code: str | None = None
    message: str = ""
    request_id: str | None = None
    retry_after: float | None = None  #: seconds
    quota: Quota | None = None
    ambiguous: bool = False  #: the call may have been applied although it failed
    replayed: bool = False  #: the server replayed an earlier answer (Idempotency-Key)
    reached: bool = False  #: LeadLex itself answered (a success, or its error envelope)
    run_fault: RunFault | None = None  #: the failure is the run's, not the contact's

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True, slots=True)
class ContactOutcome:
    """How one planned contact ended: with the plan's row ``seq`` (its contact, tags and
    where it was read), one row of the results file."""

    seq: int  #: position in the plan
    pending_tags: tuple[str, ...]  #: tags not known to be applied (the failures file's tags)
    status: Status
    error_type: FailureType | None = None
    http_status: int | None = None
    error_code: str | None = None
    message: str = ""
    attempts: int = 0
    request_id: str | None = None
    verified: bool = False
    finished_at: float = 0.0  #: Unix seconds

    @property
    def retryable(self) -> bool | None:
        return None if self.error_type is None else self.error_type.retryable
