"""LeadLex's four endpoints as the emulator serves them (``docs/emulator.md``): adding tags
(idempotent merges, replays by Idempotency-Key), reading a contact, listing contacts
(pages, sorts, filters) and the export (its own hourly limit, tag filters). Each takes the
emulator and a call past the gateway (key, permission, limits already checked)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from starlette.responses import Response

from bulktag.emulator.calls import Call, shown_path
from bulktag.emulator.model import (
    EXPORT_FIELDS,
)
from bulktag.emulator.params import (
    accepts_csv,
    includes,
    int_param,
    list_order,
    no_such_list,
    tags_problem,
    time_param,
)
from bulktag.emulator.responses import (
    error,
    json_response,
    parse_json,
)
from bulktag.leadlex import EXPORT_MAX_LIMIT

if TYPE_CHECKING:
    from bulktag.emulator.app import Emulator

__all__ = ["add_tags", "export", "get_contact", "list_contacts", "unrouted"]

#: Rows an export returns when no limit is given.
EXPORT_DEFAULT_LIMIT = 10_000
#: Contacts a page of the list holds, by default and at most; the sorts it takes.
LIST_DEFAULT_PER_PAGE = 50
LIST_MAX_PER_PAGE = 100
LIST_SORTS = ("created_at", "updated_date", "full_name")


async def add_tags(emulator: Emulator, call: Call) -> Response:
    request = call.request
    contact = emulator.lookup(request.path_params["contact_id"], call.workspace, call.now)
    if contact is None:
        return error(404, "not_found", "Contact not found")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        return error(400, "validation_error", "Content-Type must be application/json")
    try:
        payload = parse_json(call.body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return error(400, "validation_error", "Request body is not valid JSON")
    problem = tags_problem(payload)
    if problem is not None:
        return error(400, "validation_error", "Missing or invalid tags array", {"tags": problem})
    assert isinstance(payload, dict)
    known = set(contact.tags)
    for tag in payload["tags"]:
        if tag not in known:
            known.add(tag)
            contact.tags.append(tag)
            contact.touch(call.now)
    emulator.tag_calls[contact.id] += 1
    return json_response(200, {"data": {"contact_id": contact.id, "tags": list(contact.tags)}})


async def get_contact(emulator: Emulator, call: Call) -> Response:
    params = call.request.query_params
    problems: dict[str, str] = {}
    embeds = includes(params.get("include"), problems)
    if problems:
        return error(400, "validation_error", "Invalid query parameters", problems)
    contact = emulator.lookup(call.request.path_params["contact_id"], call.workspace, call.now)
    if contact is None:
        return error(404, "not_found", "Contact not found")
    # The emulator keeps no notes, tasks or deals: what is asked for comes empty.
    return json_response(200, {"data": contact.as_json() | {name: [] for name in embeds}})


async def list_contacts(emulator: Emulator, call: Call) -> Response:
    params = call.request.query_params
    problems: dict[str, str] = {}
    page = int_param(params.get("page"), 1, low=1, high=None, name="page", problems=problems)
    per_page = int_param(
        params.get("per_page"),
        LIST_DEFAULT_PER_PAGE,
        low=1,
        high=LIST_MAX_PER_PAGE,
        name="per_page",
        problems=problems,
    )
    sort = params.get("sort", "created_at")
    if sort.removeprefix("-") not in LIST_SORTS:
        problems["sort"] = f"must be one of {', '.join(LIST_SORTS)}, with - to descend"
    after = time_param(params.get("created_after"), "created_after", problems)
    no_such_list(params.get("list_id"), problems)
    if problems:
        return error(400, "validation_error", "Invalid query parameters", problems)
    search = (params.get("search") or "").casefold()
    mine = [
        c
        for c in emulator.ordered
        if c.workspace == call.workspace.name
        and (after is None or c.created_at > after)
        and (not search or search in f"{c.names()[2]} {c.email}".casefold())
    ]
    mine.sort(key=list_order(sort.removeprefix("-")), reverse=sort.startswith("-"))
    start = (page - 1) * per_page
    return json_response(
        200,
        {
            "data": {"contacts": [c.list_item() for c in mine[start : start + per_page]]},
            "meta": {"page": page, "per_page": per_page, "total": len(mine)},
        },
    )


async def export(emulator: Emulator, call: Call) -> Response:
    params = call.request.query_params
    if not accepts_csv(call.request.headers.get("accept")):
        return error(406, "not_acceptable", "The export is text/csv: send Accept: text/csv")
    problems: dict[str, str] = {}
    limit = int_param(
        params.get("limit"),
        EXPORT_DEFAULT_LIMIT,
        low=1,
        high=EXPORT_MAX_LIMIT,
        name="limit",
        problems=problems,
    )
    wanted = [f.strip() for f in params.get("fields", "").split(",") if f.strip()] or list(
        EXPORT_FIELDS
    )
    unknown = [f for f in wanted if f not in EXPORT_FIELDS]
    if unknown:
        problems["fields"] = f"unknown field(s): {', '.join(unknown)}"
    after = time_param(params.get("created_after"), "created_after", problems)
    before = time_param(params.get("created_before"), "created_before", problems)
    no_such_list(params.get("list_id"), problems)
    required = set(params.getlist("tag"))
    if "" in required:
        problems["tag"] = "must not be empty"
    if problems:
        return error(400, "validation_error", "Invalid query parameters", problems)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(wanted)
    written = 0
    for contact in emulator.ordered:
        if written >= limit:
            break
        if (
            contact.workspace != call.workspace.name
            or (after is not None and contact.created_at <= after)
            or (before is not None and contact.created_at >= before)
            or not required.issubset(contact.tags)
        ):
            continue
        writer.writerow(contact.export_row(wanted))
        written += 1
    response = Response(out.getvalue().encode(), media_type="text/csv; charset=utf-8")
    response.headers["content-disposition"] = 'attachment; filename="contacts-export.csv"'
    return response


async def unrouted(emulator: Emulator, call: Call) -> Response:
    """A path or method LeadLex does not serve, past the key check: 404 in its envelope."""
    return error(404, "not_found", f"No route for {call.request.method} {shown_path(call)}")
