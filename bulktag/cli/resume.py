"""What `bulktag run --resume RUN` takes from the command line: the settings the run
started with may be given again; any other value is refused, as the run's plan and files
were made with the first ones. Both lists are the option spec's (each option's ``resume``:
:data:`bulktag.spec.RESUME_TAKES`, :data:`bulktag.spec.NEVER_ON_RESUME`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bulktag.errors import UsageError
from bulktag.spec import NEVER_ON_RESUME
from bulktag.state.rundir import stored_config
from bulktag.state.stored import StoredRun

__all__ = ["refuse_settings_on_resume"]


def refuse_settings_on_resume(args: argparse.Namespace) -> None:
    """--resume continues a run with the settings it started with: what it never takes
    (inputs, ``--out``, ``--job``) is refused, and a setting given with it that differs
    would be ignored in silence, so it is refused too, with what to do instead (the same
    value as the run's is no other setting)."""
    for option in NEVER_ON_RESUME:
        if getattr(args, option.dest, None):
            flag = option.flag or "INPUT"
            raise UsageError(f"bulktag run: --resume {option.never_why}; give no {flag}")
    stored = stored_config(Path(args.resume)) or {}  # unread: every flag then differs
    given = StoredRun.differing(vars(args), stored)
    if given:
        raise UsageError(
            f"bulktag run: --resume continues {args.resume} with the settings it started with, "
            f"so {', '.join(given)} would be ignored. To send with other settings: "
            f"bulktag run {args.resume}/failures.csv with them (that file holds what is left "
            "once the run has published its files)"
        )
