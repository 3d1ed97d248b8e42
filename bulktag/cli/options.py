"""The options of ``run`` and ``validate``, and how they layer into a RunConfig.

Precedence: a command-line flag, then the environment (``LEADLEX_API_URL``, the
key's variable), then the job file (``--job``), then the default. So every option
here defaults to ``None`` on the command line, and ``resolve`` fills in the rest; the
environment overriding a job file's setting is said in a warning, and the plan says
where the URL and the key came from.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bulktag.config import (
    API_KEY_ENV,
    API_URL_ENV,
    OUTPUT_FORMATS,
    DispatchSettings,
    JobSettings,
    ReadOptions,
    RunConfig,
)
from bulktag.errors import ConfigError, UsageError
from bulktag.jobfile import JobFile
from bulktag.leadlex import DEFAULT_API_URL, PLANS
from bulktag.read.rules import normalise_tag_text, tag_problem_text

__all__ = ["add_input_options", "add_run_options", "resolve"]

log = logging.getLogger("bulktag")

#: Requests in flight at most (DispatchSettings checks it too).
MAX_CONCURRENCY = 256


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number from 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number from 0")
    return value


def _above_zero(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def _concurrency(text: str) -> int:
    value = _positive(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_CONCURRENCY}")
    return value


def add_input_options(p: argparse.ArgumentParser, *, inputs: str = "+") -> None:
    """INPUT..., reading, tag and limit options (run and validate)."""
    p.add_argument(
        "inputs",
        nargs=inputs,
        metavar="INPUT",
        help="CSV/TSV, XLSX, XLS, ODS, Parquet or NDJSON files (told apart by their content), "
        "globs ('exports/*.csv'), - for stdin",
    )
    read = p.add_argument_group("reading")
    read.add_argument("--delimiter", help="CSV delimiter (default: sniffed among , ; tab |)")
    read.add_argument("--encoding", help="CSV encoding (default: detected; e.g. cp1252, utf-16)")
    read.add_argument(
        "--sheet", help="workbook sheet (XLSX, XLS, ODS) name or number (default: the first)"
    )
    read.add_argument(
        "--header-row",
        type=_positive,
        metavar="N",
        help="the header's line (CSV) or row (sheet), from 1 (default: the first of the first "
        "20 rows that names an ID column)",
    )
    read.add_argument(
        "--id-column", metavar="NAME", help="the contact ID column (default: by alias)"
    )
    read.add_argument(
        "--tags-column",
        action="append",
        metavar="NAME",
        help="a tags column (repeatable; default: tags, tag, labels or tag1, tag2, ...)",
    )
    read.add_argument(
        "--tag-separators",
        metavar="CHARS",
        help="characters that split a tags cell besides line breaks, which always do "
        "(default ',;|'; '' splits on line breaks only)",
    )
    read.add_argument(
        "--retry-permanent",
        action="store_true",
        default=None,
        help="in a bulktag failures file, send again the rows whose failure was permanent "
        "(not_found, validation_error; skipped by default)",
    )
    read.add_argument("--tag-case", choices=["preserve", "lower"], help="default preserve")
    read.add_argument("--tag-prefix", metavar="TEXT", help="prepended to every input tag")
    read.add_argument(
        "--add-tag",
        action="append",
        metavar="TAG",
        help="a tag added to every contact, e.g. import-2026-11 (repeatable)",
    )
    limits = p.add_argument_group("limits")
    limits.add_argument(
        "--plan",
        choices=list(PLANS),
        help="the workspace's LeadLex plan: sets the rate and the daily quota (default pro)",
    )
    limits.add_argument(
        "--rate-per-minute",
        type=_above_zero,
        metavar="N",
        help="calls a minute (default: the plan's)",
    )
    limits.add_argument(
        "--quota-reserve",
        type=_count,
        metavar="N",
        help="calls of the daily quota to leave unused (default 0)",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    """What only ``run`` has: jobs, output, API, sending, logging."""
    job = p.add_argument_group("jobs and resuming")
    job.add_argument("--job", type=Path, metavar="FILE", help="run the job file FILE (jobs/*.toml)")
    job.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    job.add_argument(
        "--force", action="store_true", help="send pairs the job's ledger says were applied"
    )
    saving = p.add_argument_group("saving quota")
    saving.add_argument(
        "--skip-existing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="first ask the CRM (exports) which contacts already carry their tags, and skip "
        "those; used only when it costs fewer calls than it can save (default off; job files: "
        "skip_existing)",
    )
    saving.add_argument(
        "--verify-ambiguous",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after a timeout or a lost connection, read the contact before sending again "
        "(default off; on in job files)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--out", type=Path, metavar="DIR", help="run folder (default runs/<UTC time>/)"
    )
    out.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        help="results and failures format (default: the input's)",
    )
    out.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="read and plan, write the files, send nothing",
    )
    out.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write report.html into the run folder, and a job's history.html (default on; "
        "job files: report)",
    )
    out.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH",
        help="node_exporter textfile metrics of the run",
    )
    api = p.add_argument_group("API")
    api.add_argument(
        "--api-url",
        metavar="URL",
        help=f"LeadLex base URL (default: ${API_URL_ENV} or {DEFAULT_API_URL})",
    )
    api.add_argument(
        "--ca-bundle",
        type=Path,
        metavar="FILE",
        help="PEM bundle of CAs to trust besides the system's, e.g. a company proxy's "
        "(or set SSL_CERT_FILE); TLS verification cannot be turned off",
    )
    api.add_argument(
        "--api-key-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the API key (else ${API_KEY_ENV})",
    )
    send = p.add_argument_group("sending")
    send.add_argument(
        "--concurrency", type=_concurrency, help="requests in flight, 1 to 256 (default 8)"
    )
    send.add_argument("--timeout", type=_above_zero, metavar="S", help="per request (default 30)")
    send.add_argument(
        "--max-attempts", type=_positive, metavar="N", help="per request (default 10)"
    )
    send.add_argument(
        "--retry-time",
        type=_above_zero,
        metavar="S",
        help="retrying a request stops after S seconds (default 600)",
    )
    send.add_argument(
        "--max-wait",
        type=_seconds,
        metavar="S",
        help=(
            "a Retry-After, or an outage (LeadLex not answering), longer than S stops "
            "sending: exit 75, the rest deferred (default 900)"
        ),
    )
    send.add_argument(
        "--grace",
        type=_seconds,
        metavar="S",
        help="after SIGINT/SIGTERM, time for requests in flight (default 10)",
    )
    send.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal)",
    )


def _pick(
    args: argparse.Namespace, flag: str, job: JobFile | None, where: tuple[str, str], default: Any
) -> Any:
    value = getattr(args, flag, None)
    if value is not None:
        return value
    if job is not None and where in job.values:
        return job.values[where]
    return default


def _read_options(args: argparse.Namespace, job: JobFile | None) -> ReadOptions:
    case = _pick(args, "tag_case", job, ("tags", "case"), "preserve")
    static = []
    for tag in _pick(args, "add_tag", job, ("tags", "add"), []):
        cleaned = normalise_tag_text(tag, lower=case == "lower")
        problem = tag_problem_text(cleaned)
        if problem:
            raise UsageError(f"--add-tag (or the job's [tags] add) {tag!r}: {problem}")
        static.append(cleaned)
    delimiter = _pick(args, "delimiter", job, ("read", "delimiter"), None)
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    return ReadOptions(
        delimiter=delimiter,
        encoding=_pick(args, "encoding", job, ("read", "encoding"), None),
        sheet=_pick(args, "sheet", job, ("read", "sheet"), None),
        header_row=_pick(args, "header_row", job, ("read", "header_row"), None),
        id_column=_pick(args, "id_column", job, ("read", "id_column"), None),
        tags_columns=tuple(_pick(args, "tags_column", job, ("read", "tags_columns"), ())),
        tag_separators=_pick(args, "tag_separators", job, ("read", "tag_separators"), ",;|"),
        tag_case=case,
        tag_prefix=_pick(args, "tag_prefix", job, ("tags", "prefix"), ""),
        static_tags=tuple(static),
        retry_permanent=bool(getattr(args, "retry_permanent", None)),
        settle_seconds=float(_pick(args, "settle_seconds", job, ("read", "settle_seconds"), 0)),
    )


def _check_reserve(args: argparse.Namespace, job: JobFile | None, plan: str) -> None:
    """A reserve of the whole daily quota would never let a call through."""
    reserve = _pick(args, "quota_reserve", job, ("limits", "quota_reserve"), 0)
    per_day = PLANS[plan].per_day
    if per_day is None or reserve < per_day:
        return
    where = "--quota-reserve" if getattr(args, "quota_reserve", None) is not None else None
    message = (
        f"quota reserve {reserve:,} is not below the {plan} plan's daily quota ({per_day:,}): "
        "nothing could ever be sent; give a smaller reserve (or the workspace's real --plan)"
    )
    if where is not None:
        raise UsageError(f"{where} {reserve}: {message}")
    assert job is not None
    raise ConfigError(f"{job.path}: [limits] quota_reserve: {message}")


def _dispatch(args: argparse.Namespace, job: JobFile | None, plan: str) -> DispatchSettings:
    names = (
        "rate_per_minute",
        "quota_reserve",
        "concurrency",
        "timeout",
        "max_attempts",
        "retry_time",
        "max_wait",
        "grace",
    )
    values = {n: _pick(args, n, job, ("limits", n), None) for n in names}
    values["verify_ambiguous"] = _pick(
        args, "verify_ambiguous", job, ("", "verify_ambiguous"), job is not None
    )
    _check_reserve(args, job, plan)
    return DispatchSettings.for_plan(plan, **values)


def _api_url(
    args: argparse.Namespace, environ: Mapping[str, str], job: JobFile | None
) -> tuple[str, str]:
    """The API URL and where it came from: the flag, the environment, the job file, the
    default, in this order."""
    flag = getattr(args, "api_url", None)
    if flag:
        return flag, "from --api-url"
    in_job = job.get("api", "url") if job else None
    if environ.get(API_URL_ENV):
        url = environ[API_URL_ENV]
        if in_job and in_job.rstrip("/") != url.strip().rstrip("/"):
            assert job is not None
            log.warning(
                "$%s (%s) is used, not the job file's [api] url (%s): the environment "
                "comes before the job file",
                API_URL_ENV,
                url,
                in_job,
            )
        return url, f"from ${API_URL_ENV}"
    if in_job:
        assert job is not None
        return in_job, f"from [api] url in {job.path}"
    return DEFAULT_API_URL, "LeadLex's, the default"


def _key_file(
    args: argparse.Namespace, environ: Mapping[str, str], job: JobFile | None, variable: str
) -> Path | None:
    """The key file, when the key comes from one: ``--api-key-file``, else the job file's
    ``key_file`` unless the key's variable is set (the environment comes first)."""
    flag: Path | None = getattr(args, "api_key_file", None)
    if flag is not None or job is None:
        return flag
    in_job = job.path_value("api", "key_file")
    if in_job is not None and environ.get(variable, "").strip():
        log.warning(
            "the key in $%s is used, not the job file's [api] key_file (%s): the environment "
            "comes before the job file",
            variable,
            in_job,
        )
        return None
    return in_job


def resolve(
    args: argparse.Namespace, environ: Mapping[str, str], job: JobFile | None = None
) -> RunConfig:
    """Flags over the environment over the job file over defaults."""
    plan = _pick(args, "plan", job, ("limits", "plan"), "pro")
    key_env = job.get("api", "key_env", API_KEY_ENV) if job else API_KEY_ENV
    key_file = _key_file(args, environ, job, key_env)
    api_url, api_url_from = _api_url(args, environ, job)
    inputs = tuple(args.inputs) or (job.inputs if job else ())
    settings = None
    if job is not None:
        days = job.get("ledger", "days")
        settings = JobSettings(
            name=job.name,
            folder=job.out,
            keep_runs=job.get("", "keep_runs"),
            ledger=job.get("ledger", "enabled", True),
            ledger_days=days or None,
            file=job.path,
        )
    metrics = getattr(args, "metrics_file", None) or (
        job.path_value("", "metrics_file") if job else None
    )
    return RunConfig(
        inputs=inputs,
        out_dir=getattr(args, "out", None),
        api_url=api_url,
        api_url_from=api_url_from,
        key_file=key_file,
        key_env=key_env,
        plan_name=plan,
        read=_read_options(args, job),
        dispatch=_dispatch(args, job, plan),
        output_format=_pick(args, "format", job, ("", "format"), None),
        dry_run=bool(_pick(args, "dry_run", job, ("", "dry_run"), False)),
        progress=getattr(args, "progress", None),
        job=settings,
        resume=getattr(args, "resume", None),
        force=bool(getattr(args, "force", False)),
        skip_existing=bool(_pick(args, "skip_existing", job, ("", "skip_existing"), False)),
        metrics_file=metrics,
        ca_bundle=getattr(args, "ca_bundle", None)
        or (job.path_value("api", "ca_bundle") if job else None),
        report=bool(_pick(args, "report", job, ("", "report"), True)),
    )
