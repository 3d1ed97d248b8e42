"""The names of a run folder's files, said once: every module that opens one asks here.

A run folder holds the published files (``results``, ``failures``, ``rejects`` in the
run's format, ``summary.json``, ``report.html``) and, under ``.bulktag/``, what a resumed
run needs: ``config.json`` (written first), ``plan.parquet``, ``rejects.parquet`` and
``plan.json`` (written once the inputs are read), ``precheck.json`` (once the CRM was
asked), ``journal.sqlite`` (each outcome, committed as it finishes) and ``work/`` (the
plan's scratch files, removed when the run ends).

:class:`RunPaths` is the folder as paths, nothing else; :class:`bulktag.run.folder.RunFolder`
adds what a run does with them (the plan's moves, the guards). It lives here, low in the
house, so that the pages, the history and the readers name the files as the run does.
:func:`read_config` reads ``config.json`` with its schema checked (:mod:`bulktag.state.stored`
is the file as a value).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulktag.config import OUTPUT_FORMATS
from bulktag.machine import DamagedFileError, MachineError, guarded
from bulktag.state.store import NewerFileError

__all__ = [
    "CONFIG",
    "CONFIG_SCHEMA",
    "HISTORY",
    "INTERNAL",
    "OUTPUT_STEMS",
    "REPORT",
    "SUMMARY",
    "RunPaths",
    "read_config",
    "stored_config",
]

INTERNAL = ".bulktag"
CONFIG = "config.json"
SUMMARY = "summary.json"
REPORT = "report.html"
#: A job's page of its nights, in the job's folder (not a run's).
HISTORY = "history.html"
#: The published files, each ``{stem}.{format}``.
OUTPUT_STEMS = ("results", "failures", "rejects")
#: ``config.json``'s schema: a run folder of a newer bulktag is refused (78).
CONFIG_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class RunPaths:
    """The paths of one run folder."""

    path: Path

    @property
    def internal(self) -> Path:
        return self.path / INTERNAL

    @property
    def config(self) -> Path:
        return self.internal / CONFIG

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def journal(self) -> Path:
        return self.internal / "journal.sqlite"

    @property
    def precheck(self) -> Path:
        return self.internal / "precheck.json"

    @property
    def plan_json(self) -> Path:
        """The plan's figures and the output format, written once the plan is in place."""
        return self.internal / "plan.json"

    @property
    def plan_parquet(self) -> Path:
        return self.internal / "plan.parquet"

    @property
    def rejects_parquet(self) -> Path:
        return self.internal / "rejects.parquet"

    # -- the plan's scratch files (what RunFolder moves between) -------------------------

    @property
    def work(self) -> Path:
        """Scratch files of the run in progress (removed when it ends)."""
        return self.internal / "work"

    @property
    def raw_plan(self) -> Path:
        """The plan as read, before anything is taken out of it."""
        return self.work / "plan-raw.parquet"

    @property
    def raw_rejects(self) -> Path:
        """The rejects as read, beside the raw plan until the plan is adopted."""
        return self.work / "rejects.parquet"

    @property
    def draft_plan(self) -> Path:
        """The plan being made: the raw one, less what a job's ledger says is done."""
        return self.work / "plan-draft.parquet"

    @property
    def todo(self) -> Path:
        """What is still to send, joined from the plan and the journal (a folder of parts)."""
        return self.work / "todo"

    @property
    def applied_pairs(self) -> Path:
        return self.work / "applied.parquet"

    @property
    def permanent_pairs(self) -> Path:
        return self.work / "permanent.parquet"

    # -- the published files -------------------------------------------------------------

    def output(self, stem: str, fmt: str) -> Path:
        """A published file: ``results``, ``failures`` or ``rejects`` in ``fmt``."""
        assert stem in OUTPUT_STEMS, stem
        return self.path / f"{stem}.{fmt}"

    def every_output(self, stems: tuple[str, ...] = OUTPUT_STEMS) -> Iterator[Path]:
        """Every published file of ``stems`` the run could write, in any format."""
        for stem in stems:
            for fmt in OUTPUT_FORMATS:
                yield self.output(stem, fmt)

    def written(self, stem: str) -> Path | None:
        """The ``stem`` file the run published, in the format it wrote (None: not written)."""
        return next((p for p in self.every_output((stem,)) if p.is_file()), None)

    def failures_or_default(self) -> Path:
        """The failures file the run wrote, else where a CSV one would be (for messages)."""
        return self.written("failures") or self.output("failures", "csv")

    # -- what the folder is --------------------------------------------------------------

    def is_run_folder(self) -> bool:
        return self.config.exists()

    def is_finished(self) -> bool:
        """A run folder whose run ended: its ``summary.json`` is written."""
        return self.summary.is_file()


def read_config(run_dir: Path) -> dict[str, Any]:
    """``run_dir``'s ``config.json`` as stored: NewerFileError (78) when a newer bulktag
    wrote it, DamagedFileError when it is not what bulktag writes, a machine fault naming
    the file when it cannot be read."""
    path = RunPaths(run_dir).config
    with guarded(path):
        text = path.read_text(encoding="utf-8")
    try:
        stored = json.loads(text)
        found = int(stored.get("schema", 0))
        stored["run_id"], stored["started_at"]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DamagedFileError(path, f"not the JSON bulktag writes: {exc}") from None
    if found > CONFIG_SCHEMA:
        raise NewerFileError(path, found, CONFIG_SCHEMA)
    return dict(stored)


def stored_config(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir``'s ``config.json``, or None when it is absent, unreadable, damaged or a
    newer bulktag's: for readers that show what they can (a report, a job's history)."""
    try:
        return read_config(run_dir)
    except (OSError, MachineError):  # damaged and newer files among them
        return None
