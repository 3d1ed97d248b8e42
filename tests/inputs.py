"""Helpers for the READ + PLAN tests: write inputs, build a plan, run ``bulktag validate``."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bulktag.cli.commands import main
from bulktag.config import ReadOptions
from bulktag.plan.build import PlanStats, build_plan
from bulktag.read.frame import InputFrame
from bulktag.read.inputs import read_input

#: The contact of LeadLex's documentation example.
SEED = "123e4567-e89b-12d3-a456-426614174000"


def cid(n: int) -> str:
    """A fixed, well-formed contact ID (lowercase 8-4-4-4-12)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://leadlex.test/contacts/{n}"))


A, B, C = cid(1), cid(2), cid(3)


def write(folder: Path, name: str, data: str | bytes) -> Path:
    """``data`` as the file ``folder/name`` (text as UTF-8, written byte for byte)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def csv_text(rows: Sequence[Sequence[str]], delimiter: str = ",", newline: str = "\n") -> str:
    """Rows as CSV text, quoted as Python's csv module quotes."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return buffer.getvalue()


@dataclass(frozen=True)
class Planned:
    """A plan read back: one row per contact, the reject rows, the counts, the inputs."""

    plan: pl.DataFrame
    rejects: pl.DataFrame
    stats: PlanStats
    frames: list[InputFrame]

    def tags(self) -> dict[str, list[str]]:
        """contact -> tags, in plan order."""
        return dict(zip(self.plan["contact_id"], self.plan["tags"].to_list(), strict=True))

    def delimiter(self, index: int = 0) -> str:
        """The delimiter CSV input ``index`` was read with."""
        sniffed = self.frames[index].csv
        assert sniffed is not None, "not a CSV input"
        return sniffed.delimiter

    def reasons(self) -> list[tuple[int, str]]:
        """(line, reason) of every reject, in order."""
        return list(zip(self.rejects["line"], self.rejects["reason"], strict=True))


def assert_conserved(stats: PlanStats) -> None:
    """Every data row is counted once, as grouped or rejected; rejects add up by reason."""
    assert stats.rows_read == stats.rows_grouped + stats.rows_rejected
    assert stats.rows_read == sum(item.rows for item in stats.inputs)
    assert sum(stats.rejects_by_reason.values()) == stats.rejects
    assert stats.rows_rejected <= stats.rejects
    assert stats.pairs - stats.duplicate_pairs >= stats.contacts


def plan_of(files: Sequence[Path | str], folder: Path, **options: Any) -> Planned:
    """Read ``files`` with ``ReadOptions(**options)`` and build their plan in ``folder``.

    Every plan built here is checked for conservation of rows.
    """
    read = ReadOptions(**options)
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    frames = [read_input(str(name), read, work) for name in files]
    built = build_plan(frames, read, work / "plan.parquet", work / "rejects.parquet")
    planned = Planned(
        pl.read_parquet(built.path), pl.read_parquet(built.rejects_path), built.stats, frames
    )
    assert planned.rejects.height == built.stats.rejects
    assert planned.plan.height == built.stats.contacts
    assert_conserved(built.stats)
    return planned


def validate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``bulktag validate ARGS`` in-process: (exit code, stdout, stderr)."""
    code = main(["validate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *fragments: str) -> None:
    """stderr is exactly one ``bulktag: error:`` line holding every fragment, no traceback."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bulktag: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@dataclass
class DryRun:
    """What ``bulktag run --dry-run --format ndjson`` wrote, read back."""

    code: int
    err: str
    contacts: dict[str, list[str]]
    rejects: list[tuple[int, str]]
    summary: dict[str, Any]


def dry_run(capsys: pytest.CaptureFixture[str], path: Path, out: Path, *args: str) -> DryRun:
    """``bulktag run PATH --dry-run --out OUT --format ndjson ARGS``."""
    code = main(["run", str(path), "--dry-run", "--out", str(out), "--format", "ndjson", *args])
    _, err = capsys.readouterr()
    if code not in (0, 1):
        return DryRun(code, err, {}, [], {})

    def rows(name: str) -> list[dict[str, Any]]:
        text = (out / name).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.split("\n") if line]  # not at U+0085

    return DryRun(
        code,
        err,
        {r["contact_id"]: r["tags"] for r in rows("results.ndjson")},
        [(r["line"], r["reason"]) for r in rows("rejects.ndjson")],
        json.loads((out / "summary.json").read_text(encoding="utf-8")),
    )
