"""Reject rows point a person at the cell: file, line, column, raw values, reason."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from bulktag.read.rules import MISSING_ID, NO_TAGS, NOT_UUID, RAGGED, TAG_TOO_LONG
from tests.inputs import A, B, C, plan_of, validate, write


def test_a_reject_row_carries_everything_needed_to_fix_it(tmp_path: Path) -> None:
    """contact_id and tags as written, source file, line, column name and reason."""
    path = write(tmp_path, "in.csv", f"Contact ID;Tags\n{A};vip\n  NOT-AN-ID ; a , b \n")
    result = plan_of([path], tmp_path)
    assert result.rejects.rows(named=True) == [
        {
            "contact_id": "  NOT-AN-ID ",
            "tags": " a , b ",
            "source": str(path),
            "line": 3,
            "column": "Contact ID",
            "reason": NOT_UUID,
        }
    ]


def test_header_is_line_1_and_blank_lines_keep_their_numbers(tmp_path: Path) -> None:
    """Lines are the file's line numbers: blank lines are skipped, not renumbered."""
    path = write(tmp_path, "in.csv", f"id,tags\n\n{A},vip\n\n\nbad,x\n,\n{B},\n")
    result = plan_of([path], tmp_path)
    assert result.reasons() == [(6, NOT_UUID), (8, NO_TAGS)]
    assert result.plan["line"].to_list() == [3]
    assert result.stats.blank_rows == 4


def test_crlf_lines_are_numbered_like_lf_lines(tmp_path: Path) -> None:
    """A CRLF file gives the same line numbers."""
    path = write(tmp_path, "in.csv", f"id,tags\r\n\r\n{A},vip\r\nbad,x\r\n")
    assert plan_of([path], tmp_path).reasons() == [(4, NOT_UUID)]


def test_a_quoted_line_break_does_not_shift_later_lines(tmp_path: Path) -> None:
    """After a cell holding line breaks, a bad row is reported at its physical line."""
    text = f'id,tags\n{A},"vip\nlegal"\n{B},"a\r\n\r\nb"\nbad,x\n\n{C},' + "y" * 101 + "\n"
    result = plan_of([write(tmp_path, "in.csv", text)], tmp_path)
    assert result.reasons() == [(7, NOT_UUID), (9, TAG_TOO_LONG)]
    assert result.tags() == {A: ["vip", "legal"], B: ["a", "b"]}  # a line break separates


def test_plan_lines_are_physical_lines_too(tmp_path: Path) -> None:
    """A contact's plan line is where its first row starts in the file."""
    text = f'id,tags\n{A},"vip\nlegal"\n{B},x\n{C},"1\n2\n3"\n{A},z\n'
    result = plan_of([write(tmp_path, "in.csv", text)], tmp_path)
    assert result.plan.select("contact_id", "line").rows() == [(A, 2), (B, 4), (C, 5)]


def test_quoted_line_breaks_in_a_file_without_a_final_line_break(tmp_path: Path) -> None:
    """The last line needs no line break for the mapping to hold."""
    text = f'id,tags\n{A},"vip\nlegal"\nbad,x'
    assert plan_of([write(tmp_path, "in.csv", text)], tmp_path).reasons() == [(4, NOT_UUID)]


def test_quoted_line_breaks_in_a_transcoded_file(tmp_path: Path) -> None:
    """The mapping also holds for a cp1252 file read through its UTF-8 copy."""
    text = f'id;tags\r\n{A};"Société\r\nRégion"\r\nbad;é\r\n'
    result = plan_of([write(tmp_path, "in.csv", text.encode("cp1252"))], tmp_path)
    assert result.reasons() == [(4, NOT_UUID)]
    assert result.tags() == {A: ["Société", "Région"]}


def test_line_mapping_survives_a_long_cell(tmp_path: Path) -> None:
    """A 60,000-character cell (a longer one than 64 KiB refuses the input) is rejected at
    its line."""
    text = f'id,tags\n{A},"vip\nlegal"\n{B},"' + "x" * 60_000 + '"\nbad,y\n'
    result = plan_of([write(tmp_path, "in.csv", text)], tmp_path)
    assert result.reasons() == [(4, TAG_TOO_LONG), (5, NOT_UUID)]


def test_line_mapping_is_per_file(tmp_path: Path) -> None:
    """Line breaks in one file's cells do not shift another file's lines."""
    first = write(tmp_path, "a.csv", f'id,tags\n{A},"1\n2\n3"\nbad,x\n')
    second = write(tmp_path, "b.csv", f"id,tags\n{B},x\nbad,x\n")
    result = plan_of([first, second], tmp_path)
    assert result.rejects.select("source", "line").rows() == [(str(first), 5), (str(second), 3)]


def test_the_same_file_twice_gives_its_rejects_twice_not_more(tmp_path: Path) -> None:
    """Rejects of a file given twice are its own rows, once per time it was given."""
    path = write(tmp_path, "a.csv", f'id,tags\n{A},"1\n2"\nbad,x\n')
    result = plan_of([path, path], tmp_path)
    assert result.reasons() == [(4, NOT_UUID), (4, NOT_UUID)]


def test_excel_sep_line_counts_as_a_line(tmp_path: Path) -> None:
    """With Excel's "sep=;" line, the header is line 2 and data starts at line 3."""
    path = write(tmp_path, "in.csv", f"sep=;\nid;tags\n{A};vip\nbad;x\n")
    result = plan_of([path], tmp_path)
    assert result.reasons() == [(4, NOT_UUID)]
    assert result.plan["line"].to_list() == [3]


def test_xlsx_line_is_the_sheet_row_number(tmp_path: Path) -> None:
    """XLSX rejects give the row number Excel shows, empty rows and all."""
    path = tmp_path / "in.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["Contact ID", "Tags"])
        sheet.write_row(1, 0, [A, "vip"])
        sheet.write_row(4, 0, ["bad", "x"])
        sheet.write_row(6, 0, ["", "x"])
    result = plan_of([path], tmp_path)
    assert result.reasons() == [(5, NOT_UUID), (7, MISSING_ID)]
    assert result.stats.blank_rows == 3


def test_xlsx_table_below_empty_rows_keeps_sheet_row_numbers(tmp_path: Path) -> None:
    """A header on row 3 of the sheet: its first data row is line 4."""
    path = tmp_path / "in.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        sheet.write_row(2, 1, ["Contact ID", "Tags"])
        sheet.write_row(3, 1, [A, "vip"])
        sheet.write_row(5, 1, ["bad", "x"])
    result = plan_of([path], tmp_path)
    assert result.plan["line"].to_list() == [4]
    assert result.reasons() == [(6, NOT_UUID)]


def test_a_ragged_row_is_rejected(tmp_path: Path) -> None:
    """A row with a non-empty field beyond the header's columns: the ragged reason, no column."""
    path = write(tmp_path, "in.csv", f"id;tags\n{A};vip;legal\n{B};x\n")
    result = plan_of([path], tmp_path)
    assert result.rejects.select("contact_id", "tags", "line", "column", "reason").rows() == [
        (A, "vip", 2, None, RAGGED)
    ]
    assert result.tags() == {B: ["x"]}


def test_a_ragged_row_without_id_or_tags_is_still_rejected(tmp_path: Path) -> None:
    """Text only beyond the header's columns is a ragged row, not a blank one."""
    path = write(tmp_path, "in.csv", f"id,tags\n,,stray\n{A},x\n")
    result = plan_of([path], tmp_path)
    assert result.reasons() == [(2, RAGGED)]
    assert result.stats.blank_rows == 0


@pytest.mark.parametrize("tail", [";", ";;", "; ", ";;;"])
def test_trailing_empty_fields_are_not_ragged(tmp_path: Path, tail: str) -> None:
    """Empty fields after the last column (`a;b;`, as spreadsheets export) are fine."""
    path = write(tmp_path, "in.csv", f"id;tags\n{A};vip{tail}\n{B};x\n")
    result = plan_of([path], tmp_path)
    assert result.rejects.height == 0
    assert result.tags() == {A: ["vip"], B: ["x"]}


def test_a_short_row_is_a_row_without_tags(tmp_path: Path) -> None:
    """A row with fewer fields than the header has no tags: a "no tags" reject."""
    path = write(tmp_path, "in.csv", f"id,name,tags\n{A}\n{B},Bob,x\n")
    assert plan_of([path], tmp_path).reasons() == [(2, NO_TAGS)]


def test_validate_writes_the_rejects_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`validate --rejects FILE` writes the reject rows as CSV and exits 1."""
    path = write(tmp_path, "in.csv", f'id,tags\n{A},"a\nb"\nbad,vip\n{B},\n')
    out_file = tmp_path / "rejects.csv"
    code, out, err = validate(capsys, path, "--rejects", out_file)
    assert (code, err) == (1, "")
    assert "2 rejected" in out
    rejects = pl.read_csv(out_file, infer_schema=False)
    assert rejects.select("contact_id", "source", "line", "column", "reason").rows() == [
        ("bad", str(path), "4", "id", NOT_UUID),
        (B, str(path), "5", "tags", NO_TAGS),
    ]
