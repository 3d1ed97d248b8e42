"""The options of ``run`` alone: jobs, saving quota, output, the API, sending, and how
bulktag speaks (the option spec, :mod:`bulktag.spec`)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from bulktag.config import (
    API_KEY_ENV,
    API_URL_ENV,
    KEEP_RUNS,
    MAX_CONCURRENCY,
    OUTPUT_FORMATS,
    DispatchSettings,
    JobSettings,
)
from bulktag.leadlex import DEFAULT_API_URL
from bulktag.option import Option

__all__ = ["RUNNING"]

_SEND = DispatchSettings()
_JOB = JobSettings("", Path())
_sending = partial(Option, group="sending")

RUNNING: tuple[Option, ...] = (
    # -- jobs and resuming --
    Option(
        "job",
        "run the job file FILE (jobs/*.toml)",
        "--job",
        kind="path",
        metavar="FILE",
        group="jobs and resuming",
        resume="never",
        never_why="finishes a run with the settings it started with (a job's next night "
        "finishes the job's own)",
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
        required="the job's folder (state, runs)",
    ),
    Option(
        "keep_runs",
        "run folders kept, the oldest removed first (default {default}: a month of nights; "
        "each night's row in the history is kept whatever this is)",
        job=("", "keep_runs"),
        kind="whole",
        default=KEEP_RUNS,
        low=1,
    ),
    Option(
        "directory_days",
        "a job's kept directory of contacts by email is read again when older than this many "
        "days, or when an address is not in it (default {default:g})",
        job=("read", "directory_days"),
        kind="number",
        default=_JOB.directory_days,
        low=0,
        above=True,
    ),
    Option(
        "ledger",
        "skip the pairs the job applied before (default {default})",
        job=("ledger", "enabled"),
        kind="switch",
        default=True,
    ),
    Option(
        "ledger_days",
        "check a pair applied more than N days ago with the CRM again, and send it only if "
        "the CRM lacks it (default {default:g}: never)",
        job=("ledger", "days"),
        kind="number",
        default=_JOB.ledger_days,
        low=0,
    ),
    # -- saving quota --
    Option(
        "skip_existing",
        "first ask the CRM (exports) which contacts already carry their tags, and skip "
        "those; used only when it costs fewer calls than it can save (default {default}; job "
        "files: skip_existing)",
        "--skip-existing",
        ("", "skip_existing"),
        kind="switch",
        default=False,
        group="saving quota",
    ),
    Option(
        "verify_ambiguous",
        "after a timeout or a lost connection, read the contact before sending again "
        "(default {default}; {in_jobs} in job files)",
        "--verify-ambiguous",
        ("", "verify_ambiguous"),
        kind="switch",
        default=_SEND.verify_ambiguous,
        in_jobs=True,
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
        never_why="continues RUN_DIR in place",
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
        "write report.html into the run folder, and a job's history.html (default "
        "{default}; job files: report)",
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
