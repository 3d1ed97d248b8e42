"""The ``bulktag`` command: parses arguments, runs one sub-command, maps errors to exit codes.

``main`` never lets a traceback reach the user: every
:class:`~bulktag.errors.BulkTagError` becomes one line on stderr and its exit code; a
fault of the machine that no phase named (:mod:`bulktag.machine`) too; anything else is
a bug: one line naming the file that holds its traceback, and exit 70.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bulktag import __version__
from bulktag.cli.emulator import add_emulator
from bulktag.cli.logs import escape, setup_logging
from bulktag.cli.options import add_options, resolve
from bulktag.cli.pagecmds import PAGE_COMMANDS, add_page_commands
from bulktag.cli.resume import refuse_settings_on_resume
from bulktag.cli.usage import (
    Parser,
    dash_files,
    hint_unknown,
    misplaced_option,
    refuse_secrets,
    secrets,
)
from bulktag.errors import BulkTagError, ExitCode, UsageError, redact
from bulktag.jobfile import load_job
from bulktag.machine import bug_report, translated
from bulktag.runtime import Runtime, environment
from bulktag.spec import BY_DEST

__all__ = ["build_parser", "main"]

EXIT_CODES_HELP = "exit codes (when several apply, the first of 77, 78, 75, 1, 0):\n" + "\n".join(
    f"  {code.value:>3}  {code.meaning}" for code in ExitCode
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bulktag",
        description=(
            "Add tags to LeadLex CRM contacts in bulk, from CSV, XLSX, XLS, ODS, Parquet or "
            "NDJSON files."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bulktag {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    _add_run(commands)
    _add_validate(commands)
    _add_check_job(commands)
    add_emulator(commands)
    _add_demo(commands)
    add_page_commands(commands, refuse_secrets)
    return parser


def _add_run(commands: argparse._SubParsersAction[Parser]) -> None:
    p = commands.add_parser(
        "run",
        help="add the tags of INPUT files to LeadLex contacts",
        description=(
            "Read INPUT files, group tags per contact, add them through LeadLex's API within "
            "the plan's limits, and write results, failures (re-runnable), rejects and "
            "summary.json into the run folder. With --job, the inputs and settings come from "
            "a job file (flags override it), and the run resumes what an earlier run left. "
            "The API key comes from LEADLEX_API_KEY or --api-key-file, never from the "
            "command line."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p, "run", inputs="*")
    refuse_secrets(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace, runtime: Runtime | None) -> int:
    from bulktag.run.runner import run

    log_format = args.log_format or BY_DEST["log_format"].default
    setup_logging(
        -1 if args.quiet else args.verbose,
        json_lines=None if log_format == "auto" else log_format == "json",
    )
    environ = environment(runtime)
    job = load_job(args.job) if args.job else None
    if not args.inputs and not args.job and not args.resume:
        raise UsageError("bulktag run: give INPUT files, --job FILE or --resume RUN_DIR")
    if args.resume:
        refuse_settings_on_resume(args)
    dry_run = bool(args.dry_run or (job is not None and job.get("", "dry_run")))
    if args.job and args.out and not dry_run:
        raise UsageError(
            f"bulktag run: --out with --job: a job's runs go in its own folder (out = in "
            f"{args.job}); give no --out (a --dry-run of the job may have one)"
        )
    config = resolve(args, environ, job)
    return int(run(config, runtime).exit_code)


def _add_check_job(commands: argparse._SubParsersAction[Parser]) -> None:
    p = commands.add_parser(
        "check-job",
        help="check a job file as a night would; exit 0 when it is usable, else the code "
        "the night would end with",
        description="Check a job file (jobs/*.toml) and print what a run of it would use.",
    )
    p.add_argument("job", type=Path, metavar="FILE")
    refuse_secrets(p)
    p.set_defaults(handler=_check_job)


def _check_job(args: argparse.Namespace, runtime: Runtime | None) -> int:
    """Every check a run of the job makes before its first call, and what it would use."""
    from bulktag.read.paths import expand_inputs
    from bulktag.run.checks import key_source, preflight
    from bulktag.run.owner import claim
    from bulktag.state.job import STATE_FILE, STATE_VERSION, JobState, state_fix
    from bulktag.state.quota import QUOTA_FILE, QUOTA_FIX, QUOTA_VERSION, default_state_dir
    from bulktag.state.store import check_store

    setup_logging(0, json_lines=False)  # check-job is for people at a terminal
    job = load_job(args.job)
    environ = environment(runtime)
    blank = argparse.Namespace(inputs=[])
    config = resolve(blank, environ, job)
    assert config.job is not None
    preflight(config, environ)  # the URL, the metrics file's folder, the key, TLS
    check_store(config.job.folder / STATE_FILE, state_fix(config.job.folder), version=STATE_VERSION)
    check_store(default_state_dir(environ) / QUOTA_FILE, QUOTA_FIX, version=QUOTA_VERSION)
    if (config.job.folder / STATE_FILE).is_file():
        with JobState(config.job.folder, read_only=True) as state:
            claim(config.job, state, write=False)  # its folder is no other job's
    matched = []
    for pattern in config.inputs:
        try:
            matched.extend(expand_inputs([pattern]))
        except BulkTagError as exc:
            matched.append(f"(none yet: {exc})")
    lines = [
        f"job {config.job.name}: {args.job}",
        f"  folder: {config.job.folder}",
        f"  inputs: {', '.join(config.inputs)}",
        f"  matching now: {', '.join(matched) if matched else 'nothing'}",
        f"  API: {config.api_url} ({config.api_url_from})",
        f"  key: {key_source(config)}" + (" (not needed: a dry run)" if config.dry_run else ""),
        f"  plan {config.plan_name}: "
        f"{config.dispatch.rate_per_minute or 'unlimited'} calls a minute, "
        f"{config.dispatch.per_day or 'unlimited'} a day, reserve {config.dispatch.quota_reserve}",
        f"  ledger: {'on' if config.job.ledger else 'off'}"
        + (f", {config.job.ledger_days:g} days" if config.job.ledger_days else ""),
        "usable: every check a run makes before its first call passed",
    ]
    print("\n".join(lines))
    return ExitCode.OK


def _add_validate(commands: argparse._SubParsersAction[Parser]) -> None:
    p = commands.add_parser(
        "validate",
        help="read and plan INPUT files, print the plan; no request is made",
        description=(
            "Read INPUT files and print the plan: rows, rejects by reason, contacts, requests, "
            "and the time and daily quota they need. Exit 0 when every row is usable, 1 when "
            "some are rejected, 65 when an input cannot be used."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p, "validate")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument(
        "--rejects", type=Path, metavar="FILE", help="also write the reject rows to FILE (CSV)"
    )
    refuse_secrets(p)
    p.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace, runtime: Runtime | None) -> int:
    import json
    import shutil
    import tempfile

    from bulktag.outputs.console import describe_plan, describe_precheck
    from bulktag.plan.build import survey

    setup_logging(0, json_lines=False)  # validate is for people at a terminal
    config = resolve(args, environment(runtime))
    work = Path(tempfile.mkdtemp(prefix="bulktag-validate-"))
    try:
        from bulktag.read.paths import expand_inputs
        from bulktag.run.matching import EmailStage

        # matching by email: no call is made, each address stands for a contact
        email = EmailStage(
            read=None, kept=None, now=time.time, dry_run=True, book=lambda _: None, stand_in=True
        )
        files = expand_inputs(config.inputs)
        plan = survey(files, config.read, work, work / "validate-rejects.parquet", match=email)
        plan = replace(plan, stats=replace(plan.stats, by_email=email.as_json(stand_in=True)))
        if args.rejects is not None:
            import polars as pl

            from bulktag.outputs.publish import reject_rows, write_output

            write_output(pl.scan_parquet(plan.rejects_path), args.rejects, "csv", reject_rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(plan.stats.as_json(), indent=2, ensure_ascii=False))
    else:
        lines = describe_plan(plan.stats, config.dispatch, config.plan_name)
        print("\n".join([*lines, *describe_precheck(plan.demand, plan.stats, config.dispatch)]))
    return ExitCode.FAILURES if plan.stats.rejects else ExitCode.OK


def _add_demo(commands: argparse._SubParsersAction[Parser]) -> None:
    p = commands.add_parser(
        "demo",
        help="start the emulator and show bulktag working end to end on sample_data/",
        description="Start an emulator and show bulktag working end to end on sample_data/.",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="sample data folder (default: ./sample_data, else the samples the package carries)",
    )
    p.add_argument("--out", type=Path, help="folder for the runs (default runs/demo-<time>/)")
    refuse_secrets(p)
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, runtime: Runtime | None) -> int:
    from bulktag.cli.demo import run_demo

    return run_demo(args.data, args.out)


COMMANDS = ("run", "validate", "check-job", "emulator", "demo", *PAGE_COMMANDS)


def _subparser(
    parser: argparse.ArgumentParser, arguments: Sequence[str]
) -> argparse.ArgumentParser:
    """The sub-command's parser named in ``arguments`` (else ``parser``)."""
    command = next((a for a in arguments if a in COMMANDS), None)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            chosen: argparse.ArgumentParser = action.choices[command]
            return chosen
    return parser


def _json_errors(arguments: Sequence[str]) -> bool:
    """Whether an error before logging is set up is a JSON line: ``--log-format json``, or
    ``run`` (the command cron runs) in its default mode with stderr not a terminal."""
    formats = [
        a.partition("=")[2] or (arguments[i + 1] if i + 1 < len(arguments) else "")
        for i, a in enumerate(arguments)
        if a.partition("=")[0] == "--log-format"
    ]
    chosen = formats[-1] if formats else "auto"
    if chosen == "auto":
        return bool(arguments) and arguments[0] == "run" and not sys.stderr.isatty()
    return chosen == "json"


def _commands(parser: argparse.ArgumentParser) -> str:
    """The commands, one line each, and where to learn more: what a bare ``bulktag`` says."""
    lines = ["usage: bulktag COMMAND [options]", "", "commands:"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                lines.append(f"  {choice.dest:<10} {choice.help}")
    lines += [
        "",
        "bulktag run export.csv --dry-run shows what a run would send; bulktag COMMAND "
        "--help shows a command's options, bulktag --help the exit codes.",
    ]
    return "\n".join(lines)


def _any_locale() -> None:
    """Under a locale that cannot write every character (``LANG=C`` without UTF-8 mode,
    ``en_US.ASCII``), what bulktag prints escapes what it cannot write (``\\xfc``), never
    stops with a UnicodeEncodeError: a tag or a file name may be any text."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and "utf" not in (stream.encoding or "").lower():
            stream.reconfigure(errors="backslashreplace")


def _said(text: str, code: ExitCode, arguments: Sequence[str]) -> int:
    """``text`` said as one line, in the command's log format; returns ``code``."""
    logger = logging.getLogger("bulktag")
    if logger.handlers:  # the command set up its logging: one record in its format
        logger.error("%s", text, extra={"exit_code": int(code)})
    elif _json_errors(arguments):
        when = datetime.now(UTC).isoformat(timespec="milliseconds")
        record = {"time": when, "level": "error", "message": text, "exit_code": int(code)}
        print(json.dumps(record, ensure_ascii=False), file=sys.stderr)
    else:  # one plain line; input text in it cannot break it
        print(f"bulktag: error: {escape(text)}", file=sys.stderr)
    return int(code)


def main(argv: Sequence[str] | None = None, *, runtime: Runtime | None = None) -> int:
    """Run the ``bulktag`` command; returns the exit code.

    ``runtime`` injects the transport, clock and event loop (tests only).
    """
    _any_locale()
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    environ = environment(runtime)
    hidden = secrets(arguments, environ)
    for handler in list(logging.getLogger("bulktag").handlers):  # each call sets its own up
        logging.getLogger("bulktag").removeHandler(handler)
    if not arguments:  # bare `bulktag`: what it does, as git shows
        print(_commands(parser), file=sys.stderr)
        return int(ExitCode.USAGE)
    try:
        misplaced = misplaced_option(arguments, COMMANDS)
        if misplaced is not None:
            raise UsageError(misplaced)  # noqa: TRY301  (said as every usage error is)
        arguments = dash_files(arguments, _subparser(parser, arguments))
        try:
            args = parser.parse_args(arguments)
        except UsageError as exc:  # hints from the sub-command's own options
            chosen = _subparser(parser, arguments)
            raise UsageError(hint_unknown(chosen, str(exc))) from None
        return int(args.handler(args, runtime))
    except BulkTagError as exc:
        return _said(redact(str(exc), hidden), exc.exit_code, arguments)
    except Exception as exc:  # noqa: BLE001  (the net: a fault of the machine, or a bug)
        fault = translated(exc, "")
        if fault is not None:
            return _said(redact(str(fault), hidden), fault.exit_code, arguments)
        from bulktag.state.quota import default_state_dir

        text = bug_report(exc, hidden, default_state_dir(environ) / "bugs")
        return _said(redact(text, hidden), ExitCode.SOFTWARE, arguments)
    except KeyboardInterrupt:
        print("bulktag: interrupted", file=sys.stderr)
        return int(ExitCode.WORK_LEFT)
