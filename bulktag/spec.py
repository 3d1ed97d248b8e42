"""The option spec: every setting of ``run`` and ``validate``, said once.

One :class:`Option` names a setting's flag, its key in a job file, its kind and range,
its default, its help, and what ``--resume`` does with it. Everything else is derived:

- the command line (:func:`bulktag.cli.options.add_options` builds argparse from it);
- job files' keys, their types and ranges (:mod:`bulktag.jobfile`);
- the defaults the help shows, those of the dataclasses a run uses (``ReadOptions``,
  ``DispatchSettings``);
- which flags a resume takes from the command line, and the name each stored setting
  has in a run folder's ``config.json`` (:mod:`bulktag.run.stored`).

A flag and a job key check their values with the same :meth:`Option.problem`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from bulktag.config import (
    API_KEY_ENV,
    API_URL_ENV,
    MAX_CONCURRENCY,
    OUTPUT_FORMATS,
    DispatchSettings,
    ReadOptions,
)
from bulktag.leadlex import DEFAULT_API_URL, PLANS
from bulktag.option import BOTH, Option

__all__ = ["BY_DEST", "JOB_TABLES", "OPTIONS", "RESUME_TAKES", "STORED_AS", "Option"]

_READ = ReadOptions()
_SEND = DispatchSettings()

#: Options of a help section (and of both commands, for reading and limits).
_reading = partial(Option, group="reading", commands=BOTH)
_limits = partial(Option, group="limits", commands=BOTH)
_sending = partial(Option, group="sending")

OPTIONS: tuple[Option, ...] = (
    # -- reading (run and validate) --
    Option(
        "inputs",
        "CSV/TSV, XLSX, XLS, ODS, Parquet or NDJSON files (told apart by their content), "
        "globs ('exports/*.csv'), - for stdin",
        job=("", "inputs"),
        kind="list",
        commands=BOTH,
        resume="takes",
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
        choices=("preserve", "lower"),
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
        default="pro",
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
    # -- jobs and resuming --
    Option(
        "job",
        "run the job file FILE (jobs/*.toml)",
        "--job",
        kind="path",
        metavar="FILE",
        group="jobs and resuming",
        resume="never",
    ),
    Option(
        "resume",
        "continue an interrupted run",
        "--resume",
        kind="path",
        metavar="RUN_DIR",
        group="jobs and resuming",
        resume="takes",
    ),
    Option(
        "force",
        "send pairs the job's ledger says were applied",
        "--force",
        kind="flag",
        group="jobs and resuming",
    ),
    Option("name", "the job's name (default: the file's name)", job=("", "name")),
    Option(
        "folder",
        "the job's folder: its state, lock, carry-over and runs",
        job=("", "out"),
        kind="path",
    ),
    Option(
        "keep_runs",
        "run folders kept, the oldest removed first (default: every one)",
        job=("", "keep_runs"),
        kind="whole",
        low=1,
    ),
    Option(
        "ledger",
        "skip the pairs the job applied before (default on)",
        job=("ledger", "enabled"),
        kind="switch",
        default=True,
    ),
    Option(
        "ledger_days",
        "send a pair again after N days (default 0: never)",
        job=("ledger", "days"),
        kind="number",
        default=0,
        low=0,
    ),
    # -- saving quota --
    Option(
        "skip_existing",
        "first ask the CRM (exports) which contacts already carry their tags, and skip "
        "those; used only when it costs fewer calls than it can save (default off; job files: "
        "skip_existing)",
        "--skip-existing",
        ("", "skip_existing"),
        kind="switch",
        default=False,
        group="saving quota",
    ),
    Option(
        "verify_ambiguous",
        "after a timeout or a lost connection, read the contact before sending again "
        "(default off; on in job files)",
        "--verify-ambiguous",
        ("", "verify_ambiguous"),
        kind="switch",
        group="saving quota",
    ),
    # -- output --
    Option(
        "out",
        "run folder (default runs/<UTC time>/)",
        "--out",
        kind="path",
        metavar="DIR",
        group="output",
        resume="never",
    ),
    Option(
        "format",
        "results and failures format (default: the input's)",
        "--format",
        ("", "format"),
        kind="choice",
        choices=OUTPUT_FORMATS,
        group="output",
        stored_as="output_format",
    ),
    Option(
        "dry_run",
        "read and plan, write the files, send nothing",
        "--dry-run",
        ("", "dry_run"),
        kind="flag",
        default=False,
        group="output",
    ),
    Option(
        "report",
        "write report.html into the run folder, and a job's history.html (default on; "
        "job files: report)",
        "--report",
        ("", "report"),
        kind="switch",
        default=True,
        group="output",
        resume="takes",
    ),
    Option(
        "metrics_file",
        "node_exporter textfile metrics of the run",
        "--metrics-file",
        ("", "metrics_file"),
        kind="path",
        metavar="PATH",
        group="output",
        resume="takes",
    ),
    # -- API --
    Option(
        "api_url",
        f"LeadLex base URL (default: ${API_URL_ENV} or {DEFAULT_API_URL})",
        "--api-url",
        ("api", "url"),
        metavar="URL",
        group="API",
    ),
    Option(
        "ca_bundle",
        "PEM bundle of CAs to trust besides the system's, e.g. a company proxy's "
        "(or set SSL_CERT_FILE); TLS verification cannot be turned off",
        "--ca-bundle",
        ("api", "ca_bundle"),
        kind="path",
        metavar="FILE",
        group="API",
        resume="takes",
    ),
    Option(
        "api_key_file",
        f"file holding the API key (else ${API_KEY_ENV})",
        "--api-key-file",
        ("api", "key_file"),
        kind="path",
        metavar="FILE",
        group="API",
        resume="takes",
    ),
    Option(
        "key_env",
        "the environment variable holding the key (default {default})",
        job=("api", "key_env"),
        default=API_KEY_ENV,
    ),
    # -- sending --
    _sending(
        "concurrency",
        "requests in flight, {low:g} to {high:g} (default {default})",
        "--concurrency",
        ("limits", "concurrency"),
        kind="whole",
        default=_SEND.concurrency,
        low=1,
        high=MAX_CONCURRENCY,
    ),
    _sending(
        "timeout",
        "per request (default {default:g})",
        "--timeout",
        ("limits", "timeout"),
        kind="number",
        default=_SEND.timeout,
        low=0,
        above=True,
        metavar="S",
    ),
    _sending(
        "max_attempts",
        "per request (default {default})",
        "--max-attempts",
        ("limits", "max_attempts"),
        kind="whole",
        default=_SEND.max_attempts,
        low=1,
        metavar="N",
    ),
    _sending(
        "retry_time",
        "retrying a request stops after S seconds (default {default:g})",
        "--retry-time",
        ("limits", "retry_time"),
        kind="number",
        default=_SEND.retry_time,
        low=0,
        above=True,
        metavar="S",
    ),
    _sending(
        "max_wait",
        "a Retry-After, or an outage (LeadLex not answering), longer than S stops sending: "
        "exit 75, the rest deferred (default {default:g})",
        "--max-wait",
        ("limits", "max_wait"),
        kind="number",
        default=_SEND.max_wait,
        low=0,
        metavar="S",
    ),
    _sending(
        "grace",
        "after SIGINT/SIGTERM, time for requests in flight (default {default:g})",
        "--grace",
        ("limits", "grace"),
        kind="number",
        default=_SEND.grace,
        low=0,
        metavar="S",
    ),
    _sending(
        "progress",
        "progress bar (default: on a terminal)",
        "--progress",
        kind="switch",
        resume="takes",
    ),
    # -- how bulktag speaks (the command's own) --
    Option(
        "verbose",
        "more output (-vv for debug)",
        "--verbose",
        kind="count",
        default=0,
        resume="takes",
        short="-v",
    ),
    Option("quiet", "errors only", "--quiet", kind="flag", resume="takes", short="-q"),
    Option(
        "log_format",
        "stderr lines: text on a terminal, JSON objects otherwise (default {default})",
        "--log-format",
        kind="choice",
        default="auto",
        choices=("auto", "text", "json"),
        resume="takes",
    ),
)

BY_DEST: Mapping[str, Option] = {o.dest: o for o in OPTIONS}

#: A job file's tables and their keys: ``{"limits": {"concurrency": Option, ...}, ...}``.
JOB_TABLES: Mapping[str, Mapping[str, Option]] = {
    table: {o.job[1]: o for o in OPTIONS if o.job is not None and o.job[0] == table}
    for table in dict.fromkeys(o.job[0] for o in OPTIONS if o.job is not None)
}

#: The flags ``--resume`` takes from the command line (and argparse's own destinations).
RESUME_TAKES = frozenset(o.dest for o in OPTIONS if o.resume == "takes") | {"handler", "command"}

#: Flags whose run setting ``config.json`` stores under another name.
STORED_AS: Mapping[str, str] = {o.dest: o.stored_as for o in OPTIONS if o.stored_as}
