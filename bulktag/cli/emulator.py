"""`bulktag emulator`: its options, and serving the emulator on loopback until SIGINT or
SIGTERM (its contacts saved first, when asked)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bulktag.cli.usage import (
    Parser,
    refuse_secrets,
)
from bulktag.errors import ExitCode, UsageError
from bulktag.leadlex import PLANS
from bulktag.runtime import Runtime

__all__ = ["add_emulator"]


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


def add_emulator(commands: argparse._SubParsersAction[Parser]) -> None:
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
    refuse_secrets(p, but=("--key",))  # the emulator's own --key names the keys it accepts
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
    from bulktag.emulator.calls import CONTROL_PREFIX, GATEWAY_PREFIX

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
