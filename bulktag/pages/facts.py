"""What a run's report shows, read from the run folder's files alone.

The report depends on no runner object: ``summary.json`` gives the counts, the plan,
the calls, the quota and the calls-per-minute timeline; ``.bulktag/config.json`` the
settings; the failures and rejects files (in whatever format the run wrote them) the
details, aggregated with polars lazily so a million-row file is scanned once and only
small frames are collected:

- failures: per type, the most frequent messages (``group_by(type, message).len()``,
  sorted, ``head`` per type) and the first few contacts (``group_by(type).head``);
- rejects: per reason, the first few rows with their file and line.

Both queries go through one ``collect_all`` so their scans are shared. A run folder
without ``summary.json`` is not one :func:`read_run` can report on: InputError (65)
naming the folder and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bulktag.errors import InputError

__all__ = ["FailureGroup", "RejectGroup", "RunFacts", "read_run"]

#: Messages shown per failure type, example contacts per type, example rows per reason.
MESSAGES, EXAMPLES = 5, 3
_NEUTRALISED = ("=", "+", "-", "@", "\t", "\r", "'")


@dataclass(frozen=True, slots=True)
class FailureGroup:
    error_type: str
    count: int
    messages: tuple[tuple[str, int], ...]  #: the most frequent, with how many contacts
    examples: tuple[tuple[str, str], ...]  #: (contact_id, tags still to apply)


@dataclass(frozen=True, slots=True)
class RejectGroup:
    reason: str
    count: int
    examples: tuple[tuple[str, str, str, str, str], ...]  #: (source, line, column, id, tags)


@dataclass(frozen=True, slots=True)
class RunFacts:
    run_dir: Path
    summary: Mapping[str, Any]
    config: Mapping[str, Any]
    failures: tuple[FailureGroup, ...]
    rejects: tuple[RejectGroup, ...]
    files: tuple[tuple[str, str], ...]  #: (what, file name beside the report) that exist
    #: contacts by status, then failure type (from the failures file): {"failed": {...}}
    types_by_status: Mapping[str, Mapping[str, int]]


def _load_summary(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise InputError(
            "no such folder: give a run folder (runs/<UTC time>/, or a job's OUT/runs/<UTC time>/)",
            source=str(run_dir),
        )
    path = run_dir / "summary.json"
    if not path.is_file():
        if (run_dir / ".bulktag" / "config.json").is_file():
            raise InputError(
                f"the run has not finished (no summary.json): bulktag run --resume {run_dir} "
                "finishes it and writes its report",
                source=str(run_dir),
            )
        raise InputError(
            "not a bulktag run folder (no summary.json): give the folder a run wrote "
            "(runs/<UTC time>/, or a job's OUT/runs/<UTC time>/)",
            source=str(run_dir),
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"cannot read it ({exc}); the run folder is damaged", source=str(path)
        ) from None
    if not isinstance(summary, dict) or "run_id" not in summary:
        raise InputError("not a bulktag summary (no run_id)", source=str(path))
    return summary


def _scan(path: Path) -> pl.LazyFrame | None:
    """A results-shaped file in any output format, every column as text; None if absent."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    suffix = path.suffix
    if suffix == ".csv":
        frame = pl.scan_csv(path, infer_schema=False)
    elif suffix == ".parquet":
        frame = pl.scan_parquet(path)
    elif suffix == ".ndjson":
        frame = pl.scan_ndjson(path, infer_schema_length=None)
    elif suffix == ".xlsx":  # no lazy reader: a sheet holds at most 1,048,576 rows anyway
        frame = pl.read_excel(path, engine="calamine", infer_schema_length=0).lazy()
    else:
        return None
    return frame.with_columns(
        pl.col(name).list.join(",") if isinstance(dtype, pl.List) else pl.col(name).cast(pl.String)
        for name, dtype in frame.collect_schema().items()
    )


def _text(cell: object, csv: bool) -> str:
    """A cell as it was meant: the apostrophe a CSV output put before a formula dropped."""
    text = "" if cell is None else str(cell)
    if csv and len(text) > 1 and text[0] == "'" and text[1] in _NEUTRALISED:
        return text[1:]
    return text


def _failure_groups(
    path: Path, counts: Mapping[str, int]
) -> tuple[tuple[FailureGroup, ...], dict[str, dict[str, int]]]:
    scan = _scan(path)
    if scan is None or not counts:
        return (), {}
    csv = path.suffix == ".csv"
    frame = scan.select("status", "error_type", "message", "contact_id", "tags").filter(
        pl.col("error_type").is_not_null()
    )
    by_status = frame.group_by("status", "error_type").len()
    messages = (
        frame.group_by("error_type", "message")
        .len()
        .sort(["len", "message"], descending=[True, False], nulls_last=True)
        .group_by("error_type", maintain_order=True)
        .head(MESSAGES)
    )
    examples = (
        frame.select("error_type", "contact_id", "tags")
        .group_by("error_type", maintain_order=True)
        .head(EXAMPLES)
    )
    top, first, statuses = pl.collect_all([messages, examples, by_status])
    types_by_status: dict[str, dict[str, int]] = {}
    for status, kind, n in statuses.iter_rows():
        types_by_status.setdefault(str(status), {})[str(kind)] = int(n)
    said: dict[str, list[tuple[str, int]]] = {}
    for kind, message, n in top.iter_rows():
        said.setdefault(kind, []).append((_text(message, csv), int(n)))
    shown: dict[str, list[tuple[str, str]]] = {}
    for kind, contact, tags in first.iter_rows():
        shown.setdefault(kind, []).append((_text(contact, csv), _text(tags, csv)))
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    groups = tuple(
        FailureGroup(kind, int(n), tuple(said.get(kind, ())), tuple(shown.get(kind, ())))
        for kind, n in ordered
    )
    return groups, types_by_status


def _reject_groups(path: Path, counts: Mapping[str, int]) -> tuple[RejectGroup, ...]:
    scan = _scan(path)
    if scan is None or not counts:
        return ()
    csv = path.suffix == ".csv"
    first = (
        scan.select("reason", "source", "line", "column", "contact_id", "tags")
        .group_by("reason", maintain_order=True)
        .head(EXAMPLES)
        .collect()
    )
    shown: dict[str, list[tuple[str, str, str, str, str]]] = {}
    for reason, source, line, column, contact, tags in first.iter_rows():
        shown.setdefault(_text(reason, csv), []).append(
            (
                _text(source, csv),
                _text(line, csv),
                _text(column, csv),
                _text(contact, csv),
                _text(tags, csv),
            )
        )
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(RejectGroup(reason, int(n), tuple(shown.get(reason, ()))) for reason, n in ordered)


def read_run(run_dir: Path) -> RunFacts:
    """Everything the report shows about the run in ``run_dir``."""
    summary = _load_summary(run_dir)
    try:
        config = json.loads((run_dir / ".bulktag" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    named = {what: Path(str(where)).name for what, where in (summary.get("files") or {}).items()}
    files = tuple(
        (what, name)
        for what, name in named.items()
        if what != "summary" and (run_dir / name).is_file()
    ) + ((("summary", "summary.json"),) if (run_dir / "summary.json").is_file() else ())
    failures, types_by_status = _failure_groups(
        run_dir / named.get("failures", ""), summary.get("failures_by_type") or {}
    )
    rejects = _reject_groups(
        run_dir / named.get("rejects", ""), (summary.get("rejects") or {}).get("by_reason") or {}
    )
    return RunFacts(run_dir, summary, config, failures, rejects, files, types_by_status)
