"""What `bulktag run --resume RUN` takes from the command line: the settings the run
started with may be given again; any other value is refused, as the run's plan and files
were made with the first ones."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bulktag.errors import UsageError

__all__ = ["refuse_settings_on_resume"]


#: What --resume takes from the command line; every other run setting comes from the run.
_RESUME_TAKES = frozenset(
    {"resume", "inputs", "verbose", "quiet", "log_format", "progress", "metrics_file", "report"}
    | {"api_key_file", "ca_bundle", "handler", "command"}
)


def refuse_settings_on_resume(args: argparse.Namespace) -> None:
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
