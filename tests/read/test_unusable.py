"""Input that cannot be used at all: one clear line naming the file (and line), exit 65."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import xlsxwriter

from bulktag.errors import InputError
from tests.inputs import A, B, assert_one_error_line, plan_of, validate, write


def _empty_sheet(folder: Path) -> Path:
    path = folder / "empty.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Blank")
    return path


def _sheet_of_blank_cells(folder: Path) -> Path:
    path = folder / "blank.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Blank").write_string(3, 2, "   ")
    return path


Maker = Callable[[Path], Path]
UNUSABLE: list[tuple[str, Maker, list[str], str]] = [
    ("empty", lambda d: write(d, "in.csv", b""), [], "the file is empty"),
    ("white space", lambda d: write(d, "in.csv", " \n\t\r\n  \n"), [], "the file is empty"),
    (
        "unclosed quote",
        lambda d: write(d, "in.csv", f'id,tags\n{A},vip\n{B},"oops\n{A},x\n{B},y\n'),
        [],
        ':3: cannot split this row into fields: a quoted cell is not closed: its quote (")',
    ),
    (
        "unclosed quote in a cp1252 file",  # two é tell too little: the encoding is given
        lambda d: write(d, "in.csv", f'id;tags\n{A};é\n{A};é\n"{B};oops\n'.encode("cp1252")),
        ["--encoding", "cp1252"],
        ":4: cannot split this row into fields: a quoted cell is not closed",
    ),
    (
        "stray quote",
        lambda d: write(d, "in.csv", f'id,tags\n{A},vip\n{B},5" floppy\n{A},x\n'),
        [],
        ':3: cannot split this row into fields: a quote (") inside a cell that does not start',
    ),
    (
        "text after a closing quote",
        lambda d: write(d, "in.csv", f'id,tags\n{A},"vip"x\n{B},y\n'),
        [],
        ":2: cannot split this row into fields: text after the closing quote",
    ),
    (
        "wrong explicit encoding",
        lambda d: write(d, "in.csv", f"id,tags\n{A},Société\n".encode("cp1252")),
        ["--encoding", "utf-8"],
        ": invalid utf-8 sequence (pass --encoding, e.g. --encoding cp1252)",
    ),
    (
        "unknown encoding",
        lambda d: write(d, "in.csv", f"id,tags\n{A},x\n"),
        ["--encoding", "klingon"],
        ": unknown encoding 'klingon'",
    ),
    (
        "two-character delimiter",
        lambda d: write(d, "in.csv", f"id,tags\n{A},x\n"),
        ["--delimiter", ";;"],
        ": delimiter ';;' must be one character",
    ),
    (
        "binary named .parquet",
        lambda d: write(d, "in.parquet", b"\x00\x01not parquet at all\xff" * 50),
        [],
        ": this file is binary data, not a table",
    ),
    (
        "a ZIP cut short",
        lambda d: write(d, "in.xlsx", b"PK\x03\x04 but no zip after all" * 20),
        [],
        ": the file is cut short or damaged",
    ),
    ("empty sheet", _empty_sheet, [], ": the sheet is empty"),
    ("sheet of blank cells", _sheet_of_blank_cells, [], ": the sheet is empty"),
    (
        "missing file",
        lambda d: write(d, "in.csv", "").with_name("missing.xlsx"),
        [],
        ": no such file",
    ),
    (
        "broken ndjson",
        lambda d: write(d, "in.ndjson", '{"id": "x", "tags": '),
        [],
        ": cannot read this ndjson file: ",
    ),
]


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [case[1:] for case in UNUSABLE],
    ids=[case[0] for case in UNUSABLE],
)
def test_validate_exits_65_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Maker,
    args: list[str],
    message: str,
) -> None:
    """`bulktag validate` on an unusable input: exit 65, nothing on stdout, one error line."""
    path = make(tmp_path)
    code, out, err = validate(capsys, path, *args)
    assert code == 65
    assert out == ""
    assert_one_error_line(err, f"bulktag: error: {path}", message)


@pytest.mark.parametrize("sheet", ["0", "Nope", "7"])
def test_a_sheet_that_does_not_exist_exits_65(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sheet: str
) -> None:
    """--sheet naming no sheet (by name, by number, or number 0): exit 65, one line."""
    path = tmp_path / "in.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Only").write_row(0, 0, ["id", "tags"])
    code, _, err = validate(capsys, path, "--sheet", sheet)
    assert code == 65
    assert_one_error_line(err, f"bulktag: error: {path}: ", sheet)


def test_the_broken_file_is_named_among_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With good files around it, the message names the one that cannot be read."""
    good = write(tmp_path, "good.csv", f"id,tags\n{A},vip\n")
    bad = write(tmp_path, "bad.csv", f'id,tags\n{A},vip\n\n{B},"no end\n')
    code, _, err = validate(capsys, good, bad, good)
    assert code == 65
    assert_one_error_line(err, f"bulktag: error: {bad}:4: ")


def test_unusable_input_is_an_input_error(tmp_path: Path) -> None:
    """build_plan raises InputError (exit code 65) naming the file and the line."""
    path = write(tmp_path, "in.csv", f'id,tags\n{A},"vip\n')
    with pytest.raises(InputError) as raised:
        plan_of([path], tmp_path)
    assert (raised.value.source, raised.value.line, raised.value.exit_code) == (str(path), 2, 65)


@pytest.mark.parametrize(
    "text", ["id,tags\n", "id,tags", "\ufeffContact ID;Tags\r\n", "id,tags\n\n\n"]
)
def test_a_header_only_file_is_an_empty_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """A header and no data is not an error: 0 rows, 0 contacts, exit 0."""
    path = write(tmp_path, "in.csv", text)
    code, out, err = validate(capsys, path, "--json")
    assert (code, err) == (0, "")
    stats = json.loads(out)
    assert (stats["rows_read"], stats["contacts"], stats["requests"]) == (0, 0, 0)


def test_a_header_only_sheet_is_an_empty_plan(tmp_path: Path) -> None:
    """An XLSX sheet holding only its header row: 0 rows, no error."""
    path = tmp_path / "in.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet().write_row(0, 0, ["Contact ID", "Tags"])
    result = plan_of([path], tmp_path)
    assert (result.stats.rows_read, result.plan.height, result.rejects.height) == (0, 0, 0)


def test_a_bad_static_tag_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--add-tag with a tag LeadLex would refuse: exit 2 before anything is read."""
    path = write(tmp_path, "in.csv", f"id,tags\n{A},vip\n")
    code, out, err = validate(capsys, path, "--add-tag", "x" * 101)
    assert (code, out) == (2, "")
    assert_one_error_line(err, "--add-tag", "longer than 100")
