"""What a request may ask, checked as LeadLex checks it: the add-tags body, query
parameters (integers, dates, ``include``, ``sort``, ``list_id``) and ``Accept``.

Each check records what is wrong under the parameter's name in ``problems``, so one
400 ``validation_error`` names every bad field at once (LeadLex's ``details.fields``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bulktag.emulator.model import Contact
from bulktag.leadlex import MAX_TAG_LENGTH
from bulktag.leadlex import MAX_TAGS_PER_REQUEST as MAX_TAGS

__all__ = [
    "INCLUDES",
    "accepts_csv",
    "includes",
    "int_param",
    "list_order",
    "no_such_list",
    "tags_problem",
    "time_param",
]

#: ``include=`` names and the arrays they embed.
INCLUDES = {"notes": "recent_notes", "tasks": "open_tasks", "deals": "open_deals"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def accepts_csv(accept: str | None) -> bool:
    """Whether an ``Accept`` header allows text/csv (absent: anything goes)."""
    if accept is None:
        return True
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(kinds & {"text/csv", "text/*", "*/*"})


def includes(raw: str | None, problems: dict[str, str]) -> list[str]:
    """``include=notes,tasks,deals`` or ``*``: the embedded arrays' names."""
    if raw is None:
        return []
    asked = [part.strip() for part in raw.split(",")]
    if asked == ["*"]:
        return list(INCLUDES.values())
    unknown = [part for part in asked if part not in INCLUDES]
    if unknown:
        problems["include"] = f"unknown value(s) {', '.join(map(repr, unknown))}: use notes, "
        problems["include"] += "tasks, deals or *"
        return []
    return [INCLUDES[part] for part in dict.fromkeys(asked)]


def list_order(field: str) -> Callable[[Contact], tuple[Any, str]]:
    """The sort key of ``GET /v1/contacts?sort=FIELD`` (ties broken by id)."""
    values: dict[str, Callable[[Contact], Any]] = {
        "created_at": lambda c: c.created_at,
        "updated_date": lambda c: c.updated,
        "full_name": lambda c: c.names()[2].casefold(),
    }
    value = values[field]
    return lambda c: (value(c), c.id)


def no_such_list(list_id: str | None, problems: dict[str, str]) -> None:
    """The emulator keeps no contact lists: any ``list_id`` names a list that does not exist."""
    if list_id is not None:
        problems["list_id"] = "no such list"


def tags_problem(payload: object) -> str | None:
    if not isinstance(payload, dict) or "tags" not in payload:
        return "is required"
    tags = payload["tags"]
    if not isinstance(tags, list) or not tags:
        return "must be a non-empty array of strings"
    if len(tags) > MAX_TAGS:
        return f"at most {MAX_TAGS} tags per request"
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            return "every tag must be a non-empty string"
        if len(tag) > MAX_TAG_LENGTH:
            return f"every tag must be at most {MAX_TAG_LENGTH} characters"
        if _CONTROL.search(tag):
            return "tags cannot contain control characters"
        if not _is_text(tag):
            return "tags must be valid Unicode text (a lone surrogate is not)"
    return None


def _is_text(tag: str) -> bool:
    try:
        tag.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def int_param(
    raw: str | None,
    default: int,
    *,
    low: int,
    high: int | None,
    name: str,
    problems: dict[str, str],
) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems[name] = "must be an integer"
        return default
    if value < low or (high is not None and value > high):
        problems[name] = f"must be between {low} and {high}" if high else f"must be at least {low}"
        return default
    return value


def time_param(raw: str | None, name: str, problems: dict[str, str]) -> float | None:
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        problems[name] = "must be an ISO 8601 date or timestamp"
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
