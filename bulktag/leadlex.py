"""What LeadLex documents, in one place: the client and the emulator both read it here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_API_URL",
    "EXPORT_MAX_LIMIT",
    "EXPORT_PER_HOUR",
    "MAX_TAGS_PER_REQUEST",
    "MAX_TAG_LENGTH",
    "PLANS",
    "PlanLimits",
    "chunks",
]

#: The documented base URL; every path comes after it and starts with /v1/.
DEFAULT_API_URL = "https://data.leadlex.com/functions/v1/api-gateway"
#: At most this many tags in one add-tags request (emulator's choice, Part B).
MAX_TAGS_PER_REQUEST = 100
#: At most this many characters in one tag (emulator's choice, Part B).
MAX_TAG_LENGTH = 100
#: Rows one export call returns at most.
EXPORT_MAX_LIMIT = 50_000
#: Export calls per hour and workspace.
EXPORT_PER_HOUR = 10


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """Call limits of a workspace plan; ``None`` means unlimited."""

    per_minute: int | None
    per_day: int | None


PLANS: dict[str, PlanLimits] = {
    "starter": PlanLimits(per_minute=10, per_day=100),
    "pro": PlanLimits(per_minute=50, per_day=1_000),
    "org": PlanLimits(per_minute=200, per_day=10_000),
    "unmetered": PlanLimits(per_minute=None, per_day=None),
}


def chunks(tags: Sequence[str], size: int = MAX_TAGS_PER_REQUEST) -> list[list[str]]:
    """Tags split into add-tags requests of at most ``size`` (LeadLex takes 100 a call)."""
    return [list(tags[i : i + size]) for i in range(0, len(tags), size)] or [[]]
