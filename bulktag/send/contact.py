"""One contact's requests (chunks of 100 tags), and how the contact ended from how each ended."""

from __future__ import annotations

from dataclasses import dataclass

from bulktag.outcomes import UNSENT, Attempt, ContactOutcome, FailureType, Halt, Status
from bulktag.send.work import PlannedContact

__all__ = ["Chunk", "outcome_of", "stops_contact"]


@dataclass(slots=True)
class Chunk:
    """How one request of a contact ended."""

    tags: list[str]
    attempt: Attempt | None = None
    attempts: int = 0
    halt: Halt | None = None  #: set when the chunk stopped because of a halt
    verified: bool = False  #: ok because a read showed the tags after an ambiguous failure


def outcome_of(
    contact: PlannedContact, done: list[Chunk], halt_message: str, finished_at: float
) -> ContactOutcome:
    """How ``contact`` ended, from how each of its requests (``done``) ended."""
    pending = tuple(t for c in done if c.attempt is None or not c.attempt.ok for t in c.tags)
    failed = next((c for c in done if c.halt is None and c.attempt and not c.attempt.ok), None)
    halted = next((c for c in done if c.halt is not None), None)
    last = next((c.attempt for c in reversed(done) if c.attempt is not None), None)
    status, error_type = Status.OK, None
    message = ""
    if failed is not None:
        assert failed.attempt is not None
        status, error_type, last = Status.FAILED, failed.attempt.failure, failed.attempt
        message = last.message
    elif halted is not None:
        assert halted.halt is not None
        status, error_type = UNSENT[halted.halt]
        message = halt_message
        tried = halted.attempt
        if tried is not None and tried.failure is not None:
            # tried before the run stopped: the contact keeps its history (failed, or
            # still deferred), with its last error
            if status is Status.NOT_ATTEMPTED:
                status = Status.FAILED
            error_type, last = tried.failure, tried
            message = f"{tried.message} (then the run stopped: {halt_message})"
    return ContactOutcome(
        seq=contact.seq,
        pending_tags=pending,
        status=status,
        error_type=error_type,
        http_status=last.http_status if last else None,
        error_code=last.error_code if last else None,
        message=message,
        attempts=sum(c.attempts for c in done),
        request_id=last.request_id if last else None,
        verified=any(c.verified for c in done),
        finished_at=finished_at,
    )


def stops_contact(chunk: Chunk) -> bool:
    """After a 404 the contact's other chunks would fail the same way."""
    return chunk.attempt is not None and chunk.attempt.failure is FailureType.NOT_FOUND
