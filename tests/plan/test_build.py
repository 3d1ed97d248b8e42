"""The plan: one row per contact in order of first appearance, and the requests it needs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from bulktag.config import ReadOptions
from bulktag.leadlex import chunks
from bulktag.plan.build import build_plan
from bulktag.read.inputs import read_input
from bulktag.scan import slices
from tests.inputs import (
    A,
    B,
    C,
    assert_conserved,
    cid,
    csv_text,
    plan_of,
    validate,
    write,
)


def test_chunks_split_tags_into_requests_of_100() -> None:
    """chunks() cuts a tag list into requests of at most 100, in order."""
    tags = [f"t{i}" for i in range(250)]
    parts = chunks(tags)
    assert [len(part) for part in parts] == [100, 100, 50]
    assert [tag for part in parts for tag in part] == tags
    assert chunks(tags[:100]) == [tags[:100]]
    assert chunks(tags[:7], size=3) == [tags[:3], tags[3:6], tags[6:7]]
    assert chunks([]) == [[]]


@pytest.mark.parametrize(("count", "requests"), [(1, 1), (100, 1), (101, 2), (250, 3)])
def test_many_tags_are_one_plan_row_and_several_requests(
    tmp_path: Path, count: int, requests: int
) -> None:
    """A contact with n tags is one plan row; it needs ceil(n / 100) requests."""
    tags = [f"tag-{i:03d}" for i in range(count)]
    rows = [("id", "tag")] + [(A, tag) for tag in tags]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path)
    assert result.plan.height == 1
    assert result.tags() == {A: tags}
    assert result.stats.requests == requests == len(chunks(tags))


def test_requests_add_up_over_contacts(tmp_path: Path) -> None:
    """stats.requests is the sum over contacts, static tags included."""
    rows = [("id", "tags"), (A, ",".join(f"a{i}" for i in range(150))), (B, "x"), (C, "y")]
    path = write(tmp_path, "in.csv", csv_text(rows))
    assert plan_of([path], tmp_path).stats.requests == 2 + 1 + 1
    static = tuple(f"s{i}" for i in range(100))
    assert plan_of([path], tmp_path / "static", static_tags=static).stats.requests == 3 + 2 + 2


def test_contacts_are_ordered_by_first_appearance(tmp_path: Path) -> None:
    """Plan rows follow each contact's first row: seq 0, 1, 2... across files."""
    ids = [cid(n) for n in (9, 4, 7, 1)]
    first = write(tmp_path, "a.csv", csv_text([("id", "tag"), (ids[0], "x"), (ids[1], "x")]))
    second = write(
        tmp_path, "b.csv", csv_text([("id", "tag"), (ids[1], "y"), (ids[2], "y"), (ids[3], "y")])
    )
    result = plan_of([first, second, first], tmp_path)
    assert result.plan["contact_id"].to_list() == ids
    assert result.plan["seq"].to_list() == [0, 1, 2, 3]
    assert result.plan["source"].to_list() == [str(first), str(first), str(second), str(second)]


def test_duplicate_pairs_are_counted(tmp_path: Path) -> None:
    """Repeated (contact, tag) pairs are merged and counted in duplicate_pairs."""
    rows = [("id", "tags"), (A, "x, x, y"), (B, "x"), (A.upper(), "y, z"), (B, "x")]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path)
    stats = result.stats
    assert (stats.pairs, stats.duplicate_pairs, stats.pairs - stats.duplicate_pairs) == (7, 3, 4)
    assert result.plan["input_tags"].to_list() == [3, 1]


def test_plan_parquet_columns_and_types(tmp_path: Path) -> None:
    """The plan and rejects files have the columns and types the dispatcher reads."""
    path = write(tmp_path, "in.csv", csv_text([("id", "tags"), (A, "x"), ("bad", "y")]))
    read = ReadOptions()
    frame = read_input(str(path), read, tmp_path)
    plan = build_plan([frame], read, tmp_path / "plan.parquet", tmp_path / "rejects.parquet")
    assert_conserved(plan.stats)
    assert dict(pl.read_parquet_schema(plan.path)) == {
        "seq": pl.Int64,
        "contact_id": pl.String,
        "tags": pl.List(pl.String),
        "source": pl.String,
        "line": pl.Int64,
        "input_tags": pl.UInt32,
    }
    assert dict(pl.read_parquet_schema(plan.rejects_path)) == {
        "contact_id": pl.String,
        "tags": pl.String,
        "source": pl.String,
        "line": pl.Int64,
        "column": pl.String,
        "reason": pl.String,
    }


def test_slices_give_the_plan_in_order(tmp_path: Path) -> None:
    """slices() reads the plan back a slice at a time, in order, the last one short."""
    ids = [cid(n) for n in range(25)]
    path = write(tmp_path, "in.csv", csv_text([("id", "tag"), *((i, "x") for i in ids)]))
    read = ReadOptions()
    frame = read_input(str(path), read, tmp_path)
    plan = build_plan([frame], read, tmp_path / "plan.parquet", tmp_path / "rejects.parquet")
    assert_conserved(plan.stats)
    batches = list(slices(pl.scan_parquet(plan.path), 10))
    assert [b.height for b in batches] == [10, 10, 5]
    assert [c for batch in batches for c in batch["contact_id"]] == ids
    assert [b.height for b in slices(pl.scan_parquet(plan.path), 25)] == [25]
    assert list(slices(pl.scan_parquet(plan.path).head(0), 10)) == []


def test_validate_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`validate` prints rows, rejects by reason, contacts and requests; exit 0 when clean."""
    rows = [("id", "tags"), (A, ",".join(f"t{i}" for i in range(120))), (B, "x, x")]
    code, out, err = validate(capsys, write(tmp_path, "in.csv", csv_text(rows)))
    assert (code, err) == (0, "")
    assert "rows: 2 read, 2 grouped, 0 rejected" in out
    assert "contacts: 2 (121 tags to add, 1 repeated pairs merged); requests: 3" in out


def test_validate_json_is_plan_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`validate --json` prints PlanStats.as_json() of the plan."""
    rows = [("id", "tags"), (A, "x"), ("12345", "y"), (B, "")]
    path = write(tmp_path, "in.csv", csv_text(rows))
    code, out, _ = validate(capsys, path, "--json", "--add-tag", "Import 11", "--tag-case", "lower")
    assert code == 1
    expected = plan_of([path], tmp_path, static_tags=("import 11",), tag_case="lower").stats
    assert json.loads(out) == expected.as_json()


def test_a_row_whose_tags_are_all_rejected_is_counted_without_a_deprecated_call(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Rows whose every tag is a reject are counted by place (``is_in`` a list of places).
    polars 2 warns, from its own threads (so no Python warning filter sees it), that
    ``is_in`` with a Series of the column's own type is ambiguous and will change meaning:
    the places are given as one list (``implode``). Before, every run with such a row
    printed the warning twice."""
    source = write(
        tmp_path,
        "in.csv",
        csv_text([["contact_id", "tags"], [cid(1), "ok,#REF!"], [cid(2), "#REF!"]]),
    )
    planned = plan_of([source], tmp_path)
    assert planned.stats.rows_rejected == 1  # cid(2): its only tag is no tag
    assert planned.plan.height == 1
    assert "DeprecationWarning" not in capfd.readouterr().err
