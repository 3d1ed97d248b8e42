"""The options of ``run`` and ``validate``, and how they layer into a RunConfig.

The options themselves, their job-file keys, ranges, defaults and help are the option
spec's (:mod:`bulktag.spec`); :func:`add_options` builds argparse from it.

Precedence: a command-line flag, then the environment (``LEADLEX_API_URL``, the
key's variable), then the job file (``--job``), then the spec's default. So every option
here defaults to ``None`` on the command line, and ``resolve`` fills in the rest; the
environment overriding a job file's setting is said in a warning, and the plan says
where the URL and the key came from.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from bulktag.config import (
    API_URL_ENV,
    DispatchSettings,
    JobSettings,
    ReadOptions,
    RunConfig,
)
from bulktag.errors import ConfigError, UsageError
from bulktag.jobfile import JobFile
from bulktag.leadlex import DEFAULT_API_URL, PLANS
from bulktag.read.rules import normalise_tag_text, tag_problem_text
from bulktag.spec import BY_DEST, OPTIONS, Option

__all__ = ["add_options", "resolve"]

log = logging.getLogger("bulktag")


def _number(option: Option) -> Callable[[str], int | float]:
    """argparse's ``type`` for a numeric option: the spec's own parse and range."""

    def parse(text: str) -> int | float:
        try:
            return option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = option.dest
    return parse


def _arguments(option: Option) -> dict[str, Any]:
    """argparse's keywords for ``option``: every one defaults to None (not given), so that
    the job file and then the spec's default can fill it in (:func:`resolve`)."""
    kind = option.kind
    given: dict[str, Any] = {"dest": option.dest, "help": option.help_text()}
    if option.metavar:
        given["metavar"] = option.metavar
    if kind == "path":
        given["type"] = Path
    elif kind in ("whole", "number"):
        given["type"] = _number(option)
    elif kind == "choice":
        given["choices"] = list(option.choices)
    elif kind == "flag":
        given.update(action="store_true", default=None)
    elif kind == "switch":
        given.update(action=argparse.BooleanOptionalAction, default=None)
    elif kind == "list":
        given["action"] = "append"
    elif kind == "count":
        given.update(action="count", default=option.default)
    return given


def add_options(p: argparse.ArgumentParser, command: str, *, inputs: str = "+") -> None:
    """The options of ``command`` (run, validate), from the option spec, in its order and
    help sections; INPUT... first (``inputs`` is its ``nargs``)."""
    p.add_argument("inputs", nargs=inputs, metavar="INPUT", help=BY_DEST["inputs"].help_text())
    groups: dict[str, Any] = {"": p}
    for option in OPTIONS:
        if option.flag is None or command not in option.commands:
            continue
        if option.group not in groups:
            groups[option.group] = p.add_argument_group(option.group)
        flags = [option.flag] if option.short is None else [option.short, option.flag]
        groups[option.group].add_argument(*flags, **_arguments(option))


_SPEC_DEFAULT = object()
#: The options that are DispatchSettings' fields (None: the plan's figure or the default).
_DISPATCHED = tuple(
    f.name for f in fields(DispatchSettings) if f.name in BY_DEST and f.name != "verify_ambiguous"
)


#: The job-file keys of the settings picked by hand below (the environment comes first).
_JOB_KEY = {
    dest: key
    for dest in ("api_url", "api_key_file", "metrics_file", "ca_bundle")
    if (key := BY_DEST[dest].job) is not None
}


def _pick(
    args: argparse.Namespace, dest: str, job: JobFile | None, default: Any = _SPEC_DEFAULT
) -> Any:
    """The flag's value, else the job file's, else ``default`` (the spec's, unless given)."""
    value = getattr(args, dest, None)
    if value is not None:
        return value
    option = BY_DEST[dest]
    if job is not None and option.job is not None and option.job in job.values:
        return job.values[option.job]
    return option.default_for(job is not None) if default is _SPEC_DEFAULT else default


def _read_options(args: argparse.Namespace, job: JobFile | None) -> ReadOptions:
    case = _pick(args, "tag_case", job)
    static = []
    for tag in _pick(args, "add_tag", job) or ():
        cleaned = normalise_tag_text(tag, lower=case == "lower")
        problem = tag_problem_text(cleaned)
        if problem:
            where = BY_DEST["add_tag"].where
            raise UsageError(f"--add-tag (or the job's {where}) {tag!r}: {problem}")
        static.append(cleaned)
    match, id_column = _pick(args, "match", job), _pick(args, "id_column", job)
    if match == "email" and id_column:
        raise UsageError(
            f"--match email with --id-column (or the job's {BY_DEST['id_column'].where}): name "
            "the email column with --email-column instead"
        )
    if match == "id" and _pick(args, "email_column", job):
        raise UsageError("--match id with --email-column: give one of them")
    delimiter = _pick(args, "delimiter", job)
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    return ReadOptions(
        delimiter=delimiter,
        encoding=_pick(args, "encoding", job),
        sheet=_pick(args, "sheet", job),
        header_row=_pick(args, "header_row", job),
        id_column=id_column,
        match=match,
        email_column=_pick(args, "email_column", job),
        tags_columns=tuple(_pick(args, "tags_column", job) or ()),
        tag_separators=_pick(args, "tag_separators", job),
        tag_case=case,
        tag_prefix=_pick(args, "tag_prefix", job),
        static_tags=tuple(static),
        retry_permanent=bool(getattr(args, "retry_permanent", None)),
        settle_seconds=float(_pick(args, "settle_seconds", job)),
    )


def _check_reserve(args: argparse.Namespace, job: JobFile | None, plan: str) -> None:
    """A reserve of the whole daily quota would never let a call through."""
    reserve = _pick(args, "quota_reserve", job)
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
    values = {n: _pick(args, n, job, None) for n in _DISPATCHED}
    values["verify_ambiguous"] = _pick(args, "verify_ambiguous", job)
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
    in_job = job.get(*_JOB_KEY["api_url"]) if job else None
    if environ.get(API_URL_ENV):
        url = environ[API_URL_ENV]
        if in_job and in_job.rstrip("/") != url.strip().rstrip("/"):
            assert job is not None
            log.warning(
                "$%s (%s) is used, not the job file's %s (%s): the environment "
                "comes before the job file",
                API_URL_ENV,
                url,
                BY_DEST["api_url"].where,
                in_job,
            )
        return url, f"from ${API_URL_ENV}"
    if in_job:
        assert job is not None
        return in_job, f"from {BY_DEST['api_url'].where} in {job.path}"
    return DEFAULT_API_URL, "LeadLex's, the default"


def _key_file(
    args: argparse.Namespace, environ: Mapping[str, str], job: JobFile | None, variable: str
) -> Path | None:
    """The key file, when the key comes from one: ``--api-key-file``, else the job file's
    ``key_file`` unless the key's variable is set (the environment comes first)."""
    flag: Path | None = getattr(args, "api_key_file", None)
    if flag is not None or job is None:
        return flag
    in_job = job.path_value(*_JOB_KEY["api_key_file"])
    if in_job is not None and environ.get(variable, "").strip():
        log.warning(
            "the key in $%s is used, not the job file's %s (%s): the environment "
            "comes before the job file",
            variable,
            BY_DEST["api_key_file"].where,
            in_job,
        )
        return None
    return in_job


def resolve(
    args: argparse.Namespace, environ: Mapping[str, str], job: JobFile | None = None
) -> RunConfig:
    """Flags over the environment over the job file over defaults."""
    plan = _pick(args, "plan", job)
    key_env = _pick(args, "key_env", job)
    key_file = _key_file(args, environ, job, key_env)
    api_url, api_url_from = _api_url(args, environ, job)
    inputs = tuple(args.inputs) or (job.inputs if job else ())
    settings = None
    if job is not None:
        settings = JobSettings(
            name=job.name,
            folder=job.out,
            keep_runs=_pick(args, "keep_runs", job),
            ledger=_pick(args, "ledger", job),
            ledger_days=float(_pick(args, "ledger_days", job)),
            directory_days=float(_pick(args, "directory_days", job)),
            file=job.path,
        )
    metrics = getattr(args, "metrics_file", None) or (
        job.path_value(*_JOB_KEY["metrics_file"]) if job else None
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
        output_format=_pick(args, "format", job),
        dry_run=bool(_pick(args, "dry_run", job)),
        progress=getattr(args, "progress", None),
        job=settings,
        resume=getattr(args, "resume", None),
        force=bool(getattr(args, "force", False)),
        # with [ledger] days, a pair applied longer ago is checked with the CRM, not sent
        skip_existing=bool(
            _pick(args, "skip_existing", job, bool(settings and settings.ledger_days))
        ),
        metrics_file=metrics,
        ca_bundle=getattr(args, "ca_bundle", None)
        or (job.path_value(*_JOB_KEY["ca_bundle"]) if job else None),
        report=bool(_pick(args, "report", job)),
    )
