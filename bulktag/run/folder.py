"""A run folder: where it is made, what it keeps for a resumed run, what it refuses.

Its files are named in :mod:`bulktag.state.rundir` (:class:`RunPaths`, which the pages
and the history read too); :class:`RunFolder` is what a run does with them: the plan's
moves between its scratch files, ``config.json`` opened or written, the guards. ``kill -9``
at any point leaves a folder that ``--resume`` (or the job's next run) completes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bulktag.clock import Clock
from bulktag.config import (
    JobSettings,
    OutputFormat,
    RunConfig,
)
from bulktag.errors import ConfigError, UsageError
from bulktag.machine import DamagedFileError, guarded, translated
from bulktag.outputs.publish import OutputPaths, write_json
from bulktag.plan.build import InputSummary, Plan, PlanStats
from bulktag.state.rundir import INTERNAL, OUTPUT_STEMS, RunPaths, read_config
from bulktag.state.stored import StoredRun

__all__ = ["RunFolder", "is_finished", "is_run_folder", "make_run_dir", "new_run_dir"]

T = TypeVar("T")


def is_run_folder(folder: Path) -> bool:
    return RunPaths(folder).is_run_folder()


def new_run_dir(base: Path, clock: Clock) -> Path:
    """A new folder under ``base`` named by the time (``20261129T020000Z``, ``-2`` ...)."""
    stamp = datetime.fromtimestamp(clock.wall(), UTC).strftime("%Y%m%dT%H%M%SZ")
    folder, suffix = base / stamp, 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    return make_run_dir(folder)


def is_finished(folder: Path) -> bool:
    """A run folder whose run ended: its ``summary.json`` is written."""
    return RunPaths(folder).is_finished()


def make_run_dir(folder: Path) -> Path:
    """A new run folder: ``folder`` absent, empty, or left by a start that failed before
    sending (only ``.bulktag/`` without a config); never a folder of someone's files."""
    if is_run_folder(folder) and is_finished(folder):
        raise UsageError(
            f"--out {folder}: it holds a finished run (its summary.json); give a new or "
            "empty folder"
        )
    if is_run_folder(folder):
        raise ConfigError(f"{folder} already holds a run: --resume {folder} continues it")
    if folder.is_dir():
        others = sorted(p.name for p in folder.iterdir() if p.name != INTERNAL)
        if others:
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            raise UsageError(
                f"--out {folder}: the folder holds other files ({', '.join(others[:5])}{more}) "
                "that the run's files could replace; give a new or empty folder"
            )
    elif folder.exists():
        raise UsageError(f"--out {folder}: it is a file, not a folder; give a new or empty folder")
    try:
        (folder / INTERNAL).mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        fault = translated(exc, folder)
        raise fault or ConfigError(
            f"{folder}: cannot create the run folder ({exc.strerror})"
        ) from None
    return folder


@dataclass(frozen=True, slots=True)
class Identity:
    """Which run a folder holds: read from its ``config.json``, or new."""

    run_id: str
    started: float  #: Unix seconds
    resumed: bool


@dataclass(frozen=True, slots=True)
class RunFolder(RunPaths):
    """One run folder's paths (:class:`RunPaths`) and every move between its files: the
    plan's scratch files go raw -> draft (less what a job's ledger says is done) -> plan
    (less what the pre-check finds); todo/ is what is still to send; applied and permanent
    are the pairs a job's ledger learns. Each rewrite goes through :meth:`rewrite`."""

    def rewrite(self, path: Path, write: Callable[[Path, Path], T]) -> T:
        """``path`` rewritten in place: ``write(path, into)`` makes the new file beside it,
        which then takes its place (a rename: the old file stands until then)."""
        into = path.with_name(f"{path.stem}.next{path.suffix}")
        done = write(path, into)
        into.replace(path)
        return done

    def adopt_draft(self, stats: PlanStats) -> Plan:
        """The draft becomes the run's plan, the rejects read beside it."""
        plan = self.plan(stats)
        self.draft_plan.replace(plan.path)
        self.raw_rejects.replace(plan.rejects_path)
        return plan

    def outputs(self, fmt: OutputFormat) -> OutputPaths:
        """The files a run publishes here, in ``fmt``."""
        results, failures, rejects = (self.output(stem, fmt) for stem in OUTPUT_STEMS)
        return OutputPaths(results, failures, rejects)

    # -- config.json ------------------------------------------------------------------

    def open(self, config: RunConfig, run_id: str, now: float) -> tuple[RunConfig, Identity]:
        """The run this folder holds (its stored config wins over ``config``'s run
        settings), or a new one, its ``config.json`` written first."""
        path = self.config
        if path.exists():
            run = StoredRun.from_dict(self._stored(), config)
            return run.config, Identity(run.run_id, run.started_at, resumed=True)
        with guarded(path):
            write_json(path, StoredRun(run_id, now, config).to_dict())
        return config, Identity(run_id, now, resumed=False)

    def _stored(self) -> dict[str, Any]:
        """``config.json``: NewerFileError (78) when a newer bulktag wrote it,
        DamagedFileError when it is not what bulktag writes or holds a setting out of its
        range (a hand-edited file)."""
        stored = read_config(self.path)
        problems = StoredRun.problems(stored)
        if problems:
            raise DamagedFileError(self.config, f"settings out of range: {'; '.join(problems)}")
        return stored

    def stored_identity(self) -> Identity:
        stored = self._stored()
        return Identity(stored["run_id"], float(stored["started_at"]), resumed=True)

    def stored_job(self) -> JobSettings | None:
        """The job this run belongs to, as ``config.json`` says (None: a run by hand).
        An earlier bulktag named only the job in a job's run: UsageError then."""
        stored = self._stored()
        job = StoredRun.job_of(stored)
        if job is not None:
            return job
        if stored.get("job"):
            raise UsageError(
                f"{self.path} is a run of the job {stored['job']!r}: the job's next night "
                "finishes it (bulktag run --job FILE)"
            )
        return None

    def stored_dry_run(self) -> bool:
        return bool(self._stored().get("dry_run"))

    # -- the plan ---------------------------------------------------------------------

    def stored_plan(self) -> tuple[Plan, OutputFormat] | None:
        """The plan an earlier session of this run made, if it made one."""
        path = self.plan_json
        if not path.exists():
            return None
        stored = json.loads(path.read_text(encoding="utf-8"))
        fmt: OutputFormat = stored.pop("output_format")
        return self.plan(_stats_from_json(stored)), fmt

    def plan(self, stats: PlanStats) -> Plan:
        return Plan(self.plan_parquet, self.rejects_parquet, stats)

    def store_plan(self, stats: PlanStats, fmt: OutputFormat) -> None:
        """Written last, once ``plan.parquet`` and ``rejects.parquet`` are in place."""
        write_json(self.plan_json, {**asdict(stats), "output_format": fmt})

    # -- the pre-check ----------------------------------------------------------------

    def stored_precheck(self) -> dict[str, Any] | None:
        if not self.precheck.exists():
            return None
        stored: dict[str, Any] = json.loads(self.precheck.read_text(encoding="utf-8"))
        return stored

    # -- guards and clean-up --------------------------------------------------------

    def refuse_symlinked_outputs(self, metrics: Path | None) -> None:
        """Outputs are never written through a symbolic link (checked before any call)."""
        for path in [
            *self.every_output(),
            self.summary,
            *([metrics] if metrics else []),
        ]:
            if path.is_symlink():
                raise ConfigError(
                    f"{path} is a symbolic link: bulktag does not write through links"
                )

    def refuse_overwriting_inputs(self, files: Sequence[str]) -> None:
        """Refused before the inputs are read: an input among the files the run writes."""
        ours = {path.resolve() for path in self.every_output()}
        for name in files:
            if name != "-" and Path(name).resolve() in ours:
                raise ConfigError(
                    f"{name}: the output would overwrite this input; choose another --out"
                )

    def discard(self, *, keep_folder: bool) -> None:
        """Remove what this run wrote (it sent nothing): its folder, or only the folder's
        contents when the user named an existing empty folder."""
        shutil.rmtree(self.internal, ignore_errors=True)
        if not keep_folder:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only if empty: never anyone else's files

    def clear_work(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _stats_from_json(data: dict[str, Any]) -> PlanStats:
    inputs = tuple(
        InputSummary(
            **{
                **i,
                "tag_columns": tuple(i["tag_columns"]),
                "notes": tuple(i.get("notes", ())),
                "header": tuple(i.get("header", ())),
            }
        )
        for i in data.pop("inputs")
    )
    return PlanStats(**data, inputs=inputs)
