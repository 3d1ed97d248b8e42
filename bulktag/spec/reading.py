"""The options ``run`` and ``validate`` share: how inputs are read, their tags, and the
workspace's limits (the option spec, :mod:`bulktag.spec`)."""

from __future__ import annotations

from functools import partial
from typing import get_args

from bulktag.config import DEFAULT_PLAN, DispatchSettings, Match, ReadOptions, TagCase
from bulktag.leadlex import PLANS
from bulktag.option import BOTH, Option

__all__ = ["READING"]

_READ = ReadOptions()
_SEND = DispatchSettings()
_reading = partial(Option, group="reading", commands=BOTH)
_limits = partial(Option, group="limits", commands=BOTH)

READING: tuple[Option, ...] = (
    # -- reading (run and validate) --
    Option(
        "inputs",
        "CSV/TSV, XLSX, XLS, ODS, Parquet or NDJSON files (told apart by their content), "
        "globs ('exports/*.csv'), - for stdin",
        job=("", "inputs"),
        kind="list",
        commands=BOTH,
        resume="never",
        never_why="continues a run's own inputs",
        required="a list of files or globs",
    ),
    _reading(
        "delimiter",
        "CSV delimiter (default: sniffed among , ; tab |)",
        "--delimiter",
        ("read", "delimiter"),
    ),
    _reading(
        "encoding",
        "CSV encoding (default: detected; e.g. cp1252, utf-16)",
        "--encoding",
        ("read", "encoding"),
    ),
    _reading(
        "sheet",
        "workbook sheet (XLSX, XLS, ODS) name or number (default: the first)",
        "--sheet",
        ("read", "sheet"),
        low=1,
        toml=(str, int),
    ),
    _reading(
        "header_row",
        "the header's line (CSV) or row (sheet), from {low:g} (default: the first of the first "
        "20 rows that names an ID column)",
        "--header-row",
        ("read", "header_row"),
        kind="whole",
        low=1,
        metavar="N",
    ),
    _reading(
        "id_column",
        "the contact ID column (default: by alias)",
        "--id-column",
        ("read", "id_column"),
        metavar="NAME",
    ),
    _reading(
        "match",
        "match rows to contacts by ID or by email address (default {default}: by ID when a "
        "column holds IDs, else by an email column, through the workspace's export)",
        "--match",
        ("read", "match"),
        kind="choice",
        default=_READ.match,
        choices=get_args(Match),
    ),
    _reading(
        "email_column",
        "the email column (default: by alias: email, e-mail, Email Address, ...; else by content)",
        "--email-column",
        ("read", "email_column"),
        metavar="NAME",
    ),
    _reading(
        "tags_column",
        "a tags column (repeatable; default: tags, tag, labels or tag1, tag2, ...)",
        "--tags-column",
        ("read", "tags_columns"),
        kind="list",
        metavar="NAME",
        stored_as="tags_columns",
    ),
    _reading(
        "tag_separators",
        "characters that split a tags cell besides line breaks, which always do "
        "(default '{default}'; '' splits on line breaks only)",
        "--tag-separators",
        ("read", "tag_separators"),
        default=_READ.tag_separators,
        metavar="CHARS",
    ),
    Option(
        "settle_seconds",
        "an input changed less than this many seconds ago is left for the next run "
        "(default {default:g}; at most {high:g}, a day)",
        job=("read", "settle_seconds"),
        kind="number",
        default=_READ.settle_seconds,
        low=0,
        high=86_400,
        commands=BOTH,
    ),
    _reading(
        "retry_permanent",
        "in a bulktag failures file, send again the rows whose failure was permanent "
        "(not_found, validation_error; skipped by default)",
        "--retry-permanent",
        kind="flag",
    ),
    _reading(
        "tag_case",
        "default {default}",
        "--tag-case",
        ("tags", "case"),
        kind="choice",
        default=_READ.tag_case,
        choices=get_args(TagCase),
    ),
    _reading(
        "tag_prefix",
        "prepended to every input tag",
        "--tag-prefix",
        ("tags", "prefix"),
        default=_READ.tag_prefix,
        metavar="TEXT",
    ),
    _reading(
        "add_tag",
        "a tag added to every contact, e.g. import-2026-11 (repeatable)",
        "--add-tag",
        ("tags", "add"),
        kind="list",
        metavar="TAG",
        stored_as="static_tags",
    ),
    # -- limits (run and validate) --
    _limits(
        "plan",
        "the workspace's LeadLex plan: sets the rate and the daily quota (default {default})",
        "--plan",
        ("limits", "plan"),
        kind="choice",
        default=DEFAULT_PLAN,
        choices=tuple(PLANS),
        stored_as="plan_name",
    ),
    _limits(
        "rate_per_minute",
        "calls a minute (default: the plan's)",
        "--rate-per-minute",
        ("limits", "rate_per_minute"),
        kind="number",
        low=0,
        above=True,
        metavar="N",
    ),
    _limits(
        "quota_reserve",
        "calls of the daily quota to leave unused (default {default})",
        "--quota-reserve",
        ("limits", "quota_reserve"),
        kind="whole",
        default=_SEND.quota_reserve,
        low=0,
        metavar="N",
    ),
)
