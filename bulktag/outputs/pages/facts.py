"""What a run's report shows, read from the run folder's files alone.

The report depends on no runner object: ``summary.json`` gives the counts, the plan,
the calls, the quota and the calls-per-minute timeline; ``.bulktag/config.json`` the
settings; the failures and rejects files (in whatever format the run wrote them) the
details, aggregated with polars lazily so a million-row file is scanned once and only
small frames are collected:

- failures: one pass over three columns, ``group_by(type, status, message).len()``,
  whose result is small (a row per distinct message): the most frequent messages per
  type, and the types per status, come from it;
- examples (the first few contacts of each failure type, the first few rows of each
  reject reason with file and line) come from the first 100,000 rows, where the scan
  stops; only a type or reason not found there costs a scan of the rest.

At 1M contacts all in the failures file the page costs about 0.3 s
(``python -m bench --only report``). A run folder
without ``summary.json`` is not one :func:`read_run` can report on: InputError (65)
naming the folder and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bulktag.errors import InputError, WorkLeftError
from bulktag.state.lock import holder
from bulktag.state.rundir import SUMMARY, RunPaths, stored_config

__all__ = ["FailureGroup", "RejectGroup", "RunFacts", "read_run"]

#: Messages shown per failure type, example contacts per type, example rows per reason.
MESSAGES, EXAMPLES = 5, 3
#: Examples are looked for in the first SAMPLE rows first (most types and reasons are there).
SAMPLE = 100_000
_NEUTRALISED = ("=", "+", "-", "@", "\t", "\r", "'")


#: What a message's shape folds, in this order: a URL (with whatever IDs it holds), a
#: contact ID, a number. "No route for POST /v1/v1/contacts/<id>/tags" is one message
#: for 40 contacts, not 40 messages.
SHAPES = (
    (r"https?://[^\s'\"<>]+", "<url>"),
    (r"(?i)\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", "<id>"),
    (r"\b\d+(?:[.,]\d+)*\b", "<n>"),
)


def shape(message: pl.Expr) -> pl.Expr:
    """A message with its URLs, IDs and numbers folded (:data:`SHAPES`)."""
    for pattern, placeholder in SHAPES:
        message = message.str.replace_all(pattern, placeholder)
    return message


@dataclass(frozen=True, slots=True)
class FailureGroup:
    error_type: str
    count: int
    #: the most frequent message shapes: (shape, contacts, one message of that shape)
    messages: tuple[tuple[str, int, str], ...]
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


def _running(run_dir: Path) -> str | None:
    """Who runs ``run_dir`` now: the process holding its lock, or its job's; None."""
    found = holder(RunPaths(run_dir).internal)
    if found is not None:
        return found
    config = stored_config(run_dir) or {}
    job = config.get("job_settings")
    return holder(Path(job["folder"])) if isinstance(job, dict) and job.get("folder") else None


def _load_summary(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise InputError(
            "no such folder: give a run folder (runs/<UTC time>/, or a job's OUT/runs/<UTC time>/)",
            source=str(run_dir),
        )
    paths = RunPaths(run_dir)
    path = paths.summary
    if not path.is_file():
        running = _running(run_dir)
        if running is not None:
            raise WorkLeftError(
                f"{run_dir}: the run is still going ({running}): its report.html is written "
                "when it ends; look again then"
            )
        if paths.is_run_folder():
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


def _scan(path: Path, columns: list[str]) -> pl.LazyFrame | None:
    """``columns`` of a file in any output format, as text (a list joined with commas);
    None if absent. Selected first, so a slice and the projection reach the reader."""
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
    schema = frame.collect_schema()
    return frame.select(
        pl.col(name).list.join(",")
        if isinstance(schema[name], pl.List)
        else pl.col(name).cast(pl.String)
        for name in columns
    )


def _text(cell: object, csv: bool) -> str:
    """A cell as it was meant: the apostrophe a CSV output put before a formula dropped."""
    text = "" if cell is None else str(cell)
    if csv and len(text) > 1 and text[0] == "'" and text[1] in _NEUTRALISED:
        return text[1:]
    return text


def _first_rows(
    frame: pl.LazyFrame, key: str, keys: Iterable[str], columns: list[str]
) -> pl.DataFrame:
    """The first EXAMPLES rows of each ``key`` value among ``keys``: looked for in the
    first SAMPLE rows (the scan stops there), then, for values not found, in the rest."""

    def first(rows: pl.LazyFrame) -> pl.DataFrame:
        return (
            rows.filter(pl.col(key).is_not_null())
            .group_by(key, maintain_order=True)
            .head(EXAMPLES)
            .select(key, *columns)
            .collect()
        )

    found = first(frame.head(SAMPLE))
    missing = sorted(set(keys) - set(found[key].to_list()))
    if not missing:
        return found
    return pl.concat([found, first(frame.slice(SAMPLE).filter(pl.col(key).is_in(missing)))])


def _failure_groups(
    path: Path, counts: Mapping[str, int]
) -> tuple[tuple[FailureGroup, ...], dict[str, dict[str, int]]]:
    scan = _scan(path, ["error_type", "status", "message", "contact_id", "tags"])
    if scan is None or not counts:
        return (), {}
    csv = path.suffix == ".csv"
    # one pass over three columns; what is left is small (one row per distinct message)
    counted = (
        scan.filter(pl.col("error_type").is_not_null())
        .with_columns(shape=shape(pl.col("message").fill_null("")))
        .group_by("error_type", "status", "shape", maintain_order=True)
        .agg(pl.len(), pl.col("message").first())
        .collect()
    )
    top = (
        counted.group_by("error_type", "shape", maintain_order=True)
        .agg(pl.col("len").sum(), pl.col("message").first())
        .sort(["len", "shape"], descending=[True, False], nulls_last=True)
        .group_by("error_type", maintain_order=True)
        .head(MESSAGES)
    )
    statuses = counted.group_by("status", "error_type").agg(pl.col("len").sum())
    first = _first_rows(scan, "error_type", counts, ["contact_id", "tags"])
    types_by_status: dict[str, dict[str, int]] = {}
    for status, kind, n in statuses.iter_rows():
        types_by_status.setdefault(str(status), {})[str(kind)] = int(n)
    said: dict[str, list[tuple[str, int, str]]] = {}
    for kind, folded, n, message in top.select("error_type", "shape", "len", "message").iter_rows():
        said.setdefault(kind, []).append((_text(folded, csv), int(n), _text(message, csv)))
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
    columns = ["source", "line", "column", "contact_id", "tags"]
    scan = _scan(path, ["reason", *columns])
    if scan is None or not counts:
        return ()
    csv = path.suffix == ".csv"
    first = _first_rows(scan, "reason", counts, columns)
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
    config = stored_config(run_dir) or {}
    named = {what: Path(str(where)).name for what, where in (summary.get("files") or {}).items()}
    files = tuple(
        (what, name)
        for what, name in named.items()
        if what != "summary" and (run_dir / name).is_file()
    ) + ((("summary", SUMMARY),) if RunPaths(run_dir).is_finished() else ())
    failures, types_by_status = _failure_groups(
        run_dir / named.get("failures", ""), summary.get("failures_by_type") or {}
    )
    rejects = _reject_groups(
        run_dir / named.get("rejects", ""), (summary.get("rejects") or {}).get("by_reason") or {}
    )
    return RunFacts(run_dir, summary, config, failures, rejects, files, types_by_status)
