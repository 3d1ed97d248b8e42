"""What `bulktag run --resume RUN` takes from the command line: the settings the run
started with may be given again; any other value is refused, as the run's plan and files
were made with the first ones."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bulktag.errors import UsageError
from bulktag.run.stored import StoredRun

__all__ = ["refuse_settings_on_resume"]


def refuse_settings_on_resume(args: argparse.Namespace) -> None:
    """--resume continues a run with the settings it started with: a setting given with it
    that differs would be ignored in silence, so it is refused, with what to do instead (the
    same value as the run's is no other setting). Which flags a resume takes is
    :data:`bulktag.run.stored.RESUME_TAKES`."""
    given = StoredRun.differing(vars(args), _started_with(Path(args.resume)))
    if given:
        raise UsageError(
            f"bulktag run: --resume continues {args.resume} with the settings it started with, "
            f"so {', '.join(given)} would be ignored. To send with other settings: "
            f"bulktag run {args.resume}/failures.csv with them (that file holds what is left "
            "once the run has published its files)"
        )


def _started_with(run_dir: Path) -> dict[str, Any]:
    """A run folder's ``config.json`` as stored ({} if unread: every flag then differs)."""
    try:
        stored = json.loads((run_dir / ".bulktag" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}
