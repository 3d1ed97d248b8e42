"""Hostile sizes: bounded before they are inflated or split, one line and exit 65.

The bombs at full size, each under a 1 GiB memory cgroup, are ``bench/bombs.py``'s
(``docs/benchmarks.md``); these are the same shapes, just past each bound.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import fastexcel
import polars as pl
import pytest

from bench.bombs import ID, csv_cell, many_tags, xlsx_bomb
from bulktag.errors import ExitCode
from bulktag.read.csvlines import MAX_LINE_BYTES
from bulktag.read.rules import MAX_CELL_BYTES, MAX_TAGS_PER_CONTACT
from bulktag.read.sheets import MAX_PART_BYTES
from tests.machine.support import one_error
from tests.world import World, read_results


def _refused(world: World, path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, run_dir = world.run(str(path))
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.INPUT_UNUSABLE, line
    assert not run_dir.exists()
    assert world.handled_tag_calls() == 0
    return line


def test_a_workbook_that_inflates_past_the_bound(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a 4 MiB XLSX inflating to 4 GiB was OOM-killed in 5 s (exit 137, no word)."""
    path = xlsx_bomb(world.folder / "bomb.xlsx", MAX_PART_BYTES + (1 << 20))
    assert path.stat().st_size < 2 << 20
    line = _refused(world, path, capsys)
    assert line.startswith(f"{path}: the workbook's xl/worksheets/sheet1.xml inflates to more")
    assert "save the sheet as CSV" in line


def test_a_workbook_that_lies_about_its_size(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """It declares 1 MiB; its deflate stream is counted, not its word."""
    path = xlsx_bomb(world.folder / "liar.xlsx", MAX_PART_BYTES + (1 << 20), declared=1 << 20)
    assert "inflates to more than" in _refused(world, path, capsys)


def test_a_cell_too_large_to_be_tags_refuses_the_input(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a 200 MB cell of 22M tags was OOM-killed; uncapped, 9.6 GB and 10,004 calls
    planned for one contact. Now: never split, 65 naming the line and column."""
    path = csv_cell(world.folder / "cell.csv", MAX_CELL_BYTES + 1, one_tag=False)
    line = _refused(world, path, capsys)
    assert line.startswith(f"{path}:2 (column 'tags'): a cell of 65,537 bytes, more than the")


def test_a_line_too_long_to_be_a_row_is_refused_before_it_is_parsed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line of 17 MiB (a 200 MB one held 1 GiB in polars; now 51 MiB in all)."""
    path = csv_cell(world.folder / "line.csv", MAX_LINE_BYTES + (1 << 20), one_tag=True)
    line = _refused(world, path, capsys)
    assert line.startswith(f"{path}:2: a line of more than 16,777,216 bytes: no row of")


def test_a_list_cell_too_large_in_parquet_refuses_the_input(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Columnar inputs too: a list of 40,000 tags (80,000 bytes at least)."""
    path = world.folder / "in.parquet"
    pl.DataFrame(
        {"contact_id": [world.contact_ids[0]], "tags": [[f"t{i}" for i in range(40_000)]]}
    ).write_parquet(path)
    assert "(column 'tags'): a cell of" in _refused(world, path, capsys)


def test_a_cell_at_the_bound_is_read(world: World) -> None:
    rows = [(c, f"t{i}") for i, c in enumerate(world.contact_ids)]
    path = world.write_csv("in.csv", rows)
    text = path.read_text().replace(",t0\n", ',"' + "a," * 300 + 'b"\n', 1)
    path.write_text(text)
    assert world.run(str(path), "--dry-run")[0] == ExitCode.OK


def test_a_contact_given_too_many_tags_refuses_the_input(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    path = many_tags(world.folder / "many.csv", MAX_TAGS_PER_CONTACT + 1)
    line = _refused(world, path, capsys)
    assert f"the contact {ID} gets 1,001 tags, more than the 1,000" in line


def test_a_contact_given_the_most_tags_is_sent_in_ten_calls(world: World) -> None:
    contact = world.contact_ids[0]
    path = world.write_csv("in.csv", [(contact, f"tag-{i}") for i in range(MAX_TAGS_PER_CONTACT)])
    code, _ = world.run(str(path))
    assert code == ExitCode.OK
    assert world.handled_tag_calls() == 10
    assert len(world.tags_of(contact)) == MAX_TAGS_PER_CONTACT


def test_a_rejects_raw_value_is_kept_short_with_its_length_and_hash(world: World) -> None:
    """Before: a 200 MB cell gave a 200 MB rejects.csv."""
    long_id = "x" * 5_000  # not a contact ID, and far longer than a person's cell
    path = world.write_csv("in.csv", [(world.contact_ids[0], "ok"), (long_id, "a")])
    code, run_dir = world.run(str(path))
    assert code == ExitCode.FAILURES
    rejects = read_results(run_dir / "rejects.csv")
    kept = rejects["contact_id"][0]
    digest = hashlib.sha256(long_id.encode()).hexdigest()
    assert kept == f"{'x' * 100}... (5,000 bytes in all, sha256 {digest})"
    assert (run_dir / "rejects.csv").stat().st_size < 2_000


def test_xlsx_results_a_sheet_cannot_hold_are_refused_before_sending(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows past 1,048,576 would be lost after the calls were made: refused first (2)."""
    path = world.folder / "big.csv"
    with path.open("w") as handle:
        handle.write("contact_id,tags\n")
        handle.writelines(f"{uuid.UUID(int=i, version=4)},a\n" for i in range(1_048_576))
    code, run_dir = world.run(str(path), "--format", "xlsx", "--dry-run")
    line = one_error(capsys.readouterr().err)
    assert code == ExitCode.USAGE
    assert "the results would hold 1,048,576 rows, more than an XLSX sheet" in line
    assert not run_dir.exists()


def test_xlsx_results_are_written_slice_by_slice_in_order(world: World) -> None:
    """The constant-memory writer: many slices, the rows in plan order, values as written."""
    world.slice_rows = 7
    rows = [(c, f"tag-{i}") for i, c in enumerate(world.contact_ids)]
    path = world.write_csv("in.csv", rows)
    code, run_dir = world.run(str(path), "--format", "xlsx")
    assert code == ExitCode.OK
    sheet = fastexcel.read_excel(run_dir / "results.xlsx").load_sheet(0, dtypes="string")
    frame = sheet.to_polars()
    assert frame["contact_id"].to_list() == [c for c, _ in rows]
    assert frame["tags"].to_list() == [t for _, t in rows]
    assert set(frame["status"].to_list()) == {"ok"}
    assert frame.columns[-1] == "bulktag_file"
