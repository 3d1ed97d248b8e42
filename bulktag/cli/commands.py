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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from bulktag import __version__
from bulktag.cli.logs import escape, setup_logging
from bulktag.cli.options import add_input_options, add_run_options, resolve
from bulktag.cli.pagecmds import PAGE_COMMANDS, add_page_commands
from bulktag.cli.usage import (
    SECRET_OPTIONS,
    RefuseSecret,
    dash_files,
    hint_unknown,
    misplaced_option,
    secrets,
)
from bulktag.errors import BulkTagError, ExitCode, UsageError, redact
from bulktag.jobfile import load_job
from bulktag.leadlex import PLANS
from bulktag.machine import bug_report, translated
from bulktag.runtime import Runtime, environment

__all__ = ["build_parser", "main"]

EXIT_CODES_HELP = "exit codes (when several apply, the first of 77, 78, 75, 1, 0):\n" + "\n".join(
    f"  {code.value:>3}  {code.meaning}" for code in ExitCode
)


class _Parser(argparse.ArgumentParser):
    """Never matches an option by a prefix of it; errors are UsageError, with hints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False  # --api-key must never be taken for --api-key-file
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _refuse_secrets(p: argparse.ArgumentParser, *, but: Sequence[str] = ()) -> None:
    """Options a key might be typed into: each refused, its value never repeated."""
    for option in SECRET_OPTIONS:
        if option not in but:
            p.add_argument(option, action=RefuseSecret, dest=f"_secret{option}")


def _float_pair(text: str) -> tuple[float, float]:
    low, sep, high = text.partition(":")
    try:
        return (float(low), float(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN:MAX") from None


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _iso_time(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z for UTC)")
    return parsed.timestamp()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bulktag",
        description=(
            "Add tags to LeadLex CRM contacts in bulk, from CSV, XLSX, XLS, ODS, Parquet or "
            "NDJSON files."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bulktag {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _add_run(commands)
    _add_validate(commands)
    _add_check_job(commands)
    _add_emulator(commands)
    _add_demo(commands)
    add_page_commands(commands, _refuse_secrets)
    return parser


def _add_run(commands: argparse._SubParsersAction[_Parser]) -> None:
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
    add_input_options(p, inputs="*")
    add_run_options(p)
    _add_verbosity(p)
    _refuse_secrets(p)
    p.set_defaults(handler=_run)


def _add_verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="more output (-vv for debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="errors only")
    p.add_argument(
        "--log-format",
        choices=["auto", "text", "json"],
        default="auto",
        help="stderr lines: text on a terminal, JSON objects otherwise (default auto)",
    )


def _run(args: argparse.Namespace, runtime: Runtime | None) -> int:
    from bulktag.run.runner import run

    setup_logging(
        -1 if args.quiet else args.verbose,
        json_lines=None if args.log_format == "auto" else args.log_format == "json",
    )
    environ = environment(runtime)
    job = load_job(args.job) if args.job else None
    if sum(bool(x) for x in (args.job, args.resume)) > 1:
        raise UsageError("bulktag run: --job and --resume cannot be combined")
    if not args.inputs and not args.job and not args.resume:
        raise UsageError("bulktag run: give INPUT files, --job FILE or --resume RUN_DIR")
    if args.resume and args.inputs:
        raise UsageError("bulktag run: --resume continues a run's own inputs; give no INPUT")
    if args.resume and args.out:
        raise UsageError("bulktag run: --resume continues RUN_DIR in place; give no --out")
    if args.resume:
        _refuse_settings_on_resume(args)
    dry_run = bool(args.dry_run or (job is not None and job.get("", "dry_run")))
    if args.job and args.out and not dry_run:
        raise UsageError(
            f"bulktag run: --out with --job: a job's runs go in its own folder (out = in "
            f"{args.job}); give no --out (a --dry-run of the job may have one)"
        )
    config = resolve(args, environ, job)
    return int(run(config, runtime).exit_code)


#: What --resume takes from the command line; every other run setting comes from the run.
_RESUME_TAKES = frozenset(
    {"resume", "inputs", "verbose", "quiet", "log_format", "progress", "metrics_file", "report"}
    | {"api_key_file", "ca_bundle", "handler", "command"}
)


def _refuse_settings_on_resume(args: argparse.Namespace) -> None:
    """--resume continues a run with the settings it started with: a setting given with it
    that differs would be ignored in silence, so it is refused, with what to do instead (the
    same value as the run's is no other setting)."""
    started = _started_with(Path(args.resume))
    given = sorted(
        "--" + dest.replace("_", "-")
        for dest, value in vars(args).items()
        if dest not in _RESUME_TAKES
        and not dest.startswith("_")
        and value not in (None, False)
        and not _same(value, started.get(_STORED_AS.get(dest, dest), _UNKNOWN))
    )
    if given:
        raise UsageError(
            f"bulktag run: --resume continues {args.resume} with the settings it started with, "
            f"so {', '.join(given)} would be ignored. To send with other settings: "
            f"bulktag run {args.resume}/failures.csv with them (that file holds what is left "
            "once the run has published its files)"
        )


#: Flags whose run setting ``config.json`` stores under another name.
_STORED_AS = {
    "plan": "plan_name",
    "format": "output_format",
    "tags_column": "tags_columns",
    "add_tag": "static_tags",
}
_UNKNOWN = object()


def _started_with(run_dir: Path) -> dict[str, Any]:
    """The settings a run folder started with, flat (its ``config.json``; {} if unread)."""
    try:
        stored = json.loads((run_dir / ".bulktag" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict):
        return {}
    flat = {k: v for k, v in stored.items() if not isinstance(v, dict)}
    for section in ("read", "dispatch"):
        if isinstance(stored.get(section), dict):
            flat.update(stored[section])
    return flat


def _same(given: Any, stored: Any) -> bool:
    """Whether a flag's value is the run's own (URLs alike but for a trailing slash)."""
    if stored is _UNKNOWN:
        return False
    if isinstance(given, str) and isinstance(stored, str):
        return given.rstrip("/") == stored.rstrip("/")
    if isinstance(given, list | tuple) and isinstance(stored, list | tuple):
        return list(given) == list(stored)
    return bool(given == stored)


def _add_check_job(commands: argparse._SubParsersAction[_Parser]) -> None:
    p = commands.add_parser(
        "check-job",
        help="check a job file as a night would; exit 0 when it is usable, else the code "
        "the night would end with",
        description="Check a job file (jobs/*.toml) and print what a run of it would use.",
    )
    p.add_argument("job", type=Path, metavar="FILE")
    _refuse_secrets(p)
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


def _add_validate(commands: argparse._SubParsersAction[_Parser]) -> None:
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
    add_input_options(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument(
        "--rejects", type=Path, metavar="FILE", help="also write the reject rows to FILE (CSV)"
    )
    _refuse_secrets(p)
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
        plan = survey(config.inputs, config.read, work)
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


def _add_emulator(commands: argparse._SubParsersAction[_Parser]) -> None:
    p = commands.add_parser(
        "emulator",
        help="serve an emulator of the LeadLex API on loopback",
        description=(
            "Serve an emulator of the LeadLex API on a loopback address. Prints one JSON line "
            '{"url": ..., "control": ..., "keys": {...}, "plan": ...} once it accepts '
            "connections, then serves until SIGINT or SIGTERM. The API is served below "
            "/functions/v1/api-gateway, as LeadLex serves it (the url field is that base URL); "
            "the control API is /_emulator/ at the root (the control field; docs/emulator.md)."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address (default %(default)s)")
    p.add_argument(
        "--port", type=int, default=8765, help="port; 0 picks a free one (default %(default)s)"
    )
    p.add_argument("--plan", choices=list(PLANS), default="pro")
    p.add_argument("--per-minute", type=int, help="override the plan's calls per minute")
    p.add_argument("--per-day", type=int, help="override the plan's calls per day")
    p.add_argument(
        "--export-per-hour", type=int, default=10, help="export calls per hour (default 10)"
    )
    p.add_argument(
        "--contacts", type=Path, metavar="FILE", help="CSV with id, full_name, email, tags"
    )
    p.add_argument("--generate", type=int, default=0, metavar="N", help="generate N contacts")
    p.add_argument(
        "--save-contacts",
        type=Path,
        metavar="FILE",
        help="write the contacts it holds (id, full_name, email, tags: the --contacts format) "
        "to FILE before serving: their IDs to put in an input",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for generated contacts and faults")
    p.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY:PERMS",
        help="accepted key and its permissions, e.g. wbk_abc:read,write (repeatable; "
        "append @WORKSPACE for another workspace). Default: one demo key with read,write",
    )
    p.add_argument(
        "--auto-create", action="store_true", help="treat unknown UUIDs as existing contacts"
    )
    p.add_argument("--start-time", type=_iso_time, metavar="ISO", help="the emulated clock's start")
    faults = p.add_argument_group("fault injection (off by default, reproducible with --seed)")
    faults.add_argument(
        "--fault-rate", type=_share, default=0.0, metavar="F", help="share answered 500/502/503"
    )
    faults.add_argument("--latency-ms", type=_float_pair, default=(0.0, 0.0), metavar="MIN:MAX")
    faults.add_argument(
        "--drop-rate", type=_share, default=0.0, metavar="F", help="share of dropped connections"
    )
    faults.add_argument(
        "--malformed-rate", type=_share, default=0.0, metavar="F", help="share of cut 200 bodies"
    )
    faults.add_argument(
        "--slow-rate", type=_share, default=0.0, metavar="F", help="share of slow bodies"
    )
    faults.add_argument(
        "--slow-ms", type=float, default=2000.0, metavar="MS", help="delay of a slow body"
    )
    faults.add_argument(
        "--storm-rate",
        type=_share,
        default=0.0,
        metavar="F",
        help="chance a request starts a 429 storm",
    )
    faults.add_argument(
        "--storm-seconds", type=float, default=30.0, metavar="S", help="length of a 429 storm"
    )
    faults.add_argument(
        "--captive-portal",
        action="store_true",
        help="answer every request 200 with an HTML sign-in page (a captive portal or proxy)",
    )
    faults.add_argument(
        "--gateway-per-minute",
        type=int,
        default=0,
        metavar="N",
        help="a gateway in front allowing N calls a minute, the excess 429 without Retry-After",
    )
    tls = p.add_argument_group("TLS (https://, as a company's own CA would sign it)")
    tls.add_argument("--tls-cert", type=Path, metavar="FILE", help="certificate chain (PEM)")
    tls.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    _refuse_secrets(p, but=("--key",))  # the emulator's own --key names the keys it accepts
    p.set_defaults(handler=_emulator)


def _save_contacts(path: Path, contacts: Sequence[Any]) -> None:
    import csv

    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "full_name", "email", "tags"])
            for contact in contacts:
                writer.writerow(
                    [contact.id, contact.full_name, contact.email, ",".join(contact.tags)]
                )
    except OSError as exc:
        raise UsageError(f"--save-contacts {path}: cannot write it ({exc.strerror})") from None


def _emulator(args: argparse.Namespace, runtime: Runtime | None) -> int:
    from bulktag.config import is_loopback
    from bulktag.emulator import (
        Emulator,
        EmulatorClock,
        Faults,
        generate_contacts,
        load_contacts,
        parse_key_spec,
        serve,
    )
    from bulktag.emulator.app import CONTROL_PREFIX, GATEWAY_PREFIX

    if not is_loopback(args.host):
        raise UsageError(f"--host {args.host}: the emulator only listens on loopback addresses")
    try:
        keys = [parse_key_spec(spec) for spec in args.key]
        faults = Faults(
            fault_rate=args.fault_rate,
            latency_ms=args.latency_ms,
            drop_rate=args.drop_rate,
            malformed_rate=args.malformed_rate,
            slow_rate=args.slow_rate,
            slow_ms=args.slow_ms,
            storm_rate=args.storm_rate,
            storm_seconds=args.storm_seconds,
            captive_portal=args.captive_portal,
            gateway_per_minute=args.gateway_per_minute,
        )
        contacts = list(load_contacts(args.contacts)) if args.contacts else []
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    contacts.extend(generate_contacts(args.generate, args.seed))
    if args.save_contacts is not None:
        _save_contacts(args.save_contacts, contacts)
    emulator = Emulator(
        plan=args.plan,
        per_minute=args.per_minute,
        per_day=args.per_day,
        export_per_hour=args.export_per_hour,
        keys=keys,
        contacts=contacts,
        clock=EmulatorClock(start=args.start_time),
        faults=faults,
        seed=args.seed,
        auto_create=args.auto_create,
    )
    announced = {secret: sorted(key.permissions) for secret, key in emulator.keys.items()}

    def announce(root: str) -> dict[str, Any]:
        return {"control": root + CONTROL_PREFIX, "keys": announced, "plan": emulator.plan}

    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None
    if tls is not None:
        import ssl

        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*tls)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--tls-cert/--tls-key: cannot load them ({exc})") from None
    try:
        serve(
            emulator,
            args.host,
            args.port,
            base_path=GATEWAY_PREFIX,
            announce=announce,
            tls=tls,
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return ExitCode.OK


def _add_demo(commands: argparse._SubParsersAction[_Parser]) -> None:
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
    _refuse_secrets(p)
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
