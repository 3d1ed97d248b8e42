"""Reading: every format, delimiter and encoding RevOps teams receive, and naming inputs."""

from __future__ import annotations

import codecs
import io
import json
import sys
import uuid
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from bulktag.errors import InputError
from bulktag.read.paths import expand_inputs
from bulktag.read.rules import MISSING_ID, NOT_UUID, NUMERIC_ID
from bulktag.read.sniff import sniff_csv
from tests.inputs import A, B, C, csv_text, plan_of, validate, write

ACCENTED = [("Contact ID", "Tags"), (A, "Société, Région Île-de-France"), (B, "Über;Façade")]
ACCENTED_TAGS = {A: ["Société", "Région Île-de-France"], B: ["Über", "Façade"]}


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    """Comma, semicolon, tab and pipe files are read without being told which."""
    rows = [("contact_id", "name", "tags"), (A, "Ann", "vip"), (B, "Bob", "legal")]
    path = write(tmp_path, "in.csv", csv_text(rows, delimiter))
    result = plan_of([path], tmp_path)
    assert result.delimiter() == delimiter
    assert result.tags() == {A: ["vip"], B: ["legal"]}


def test_a_huge_cell_does_not_stop_the_sniffer(tmp_path: Path) -> None:
    """A 60,000-character cell (just below the 64 KiB a cell may hold) among the first
    lines: the delimiter is still found."""
    path = write(tmp_path, "in.csv", f"id;tags\n{A};{'x' * 60_000}\n{B};ok\n")
    result = plan_of([path], tmp_path)
    assert result.delimiter() == ";"
    assert result.tags() == {B: ["ok"]}


def test_delimiter_option_overrides_the_sniffer(tmp_path: Path) -> None:
    """--delimiter wins where the sniffer guesses wrong (both splits look consistent)."""
    path = write(tmp_path, "in.csv", f"a;b,c\n{A};x,y\n")
    assert sniff_csv(path, str(path), tmp_path / "work").delimiter == ","
    result = plan_of([path], tmp_path, delimiter=";", id_column="a", tags_columns=("b,c",))
    assert result.tags() == {A: ["x", "y"]}


def test_delimiter_tab_can_be_spelled_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--delimiter tab` (and `\\t`) on the command line mean the tab character."""
    path = write(tmp_path, "in.tsv", f"id\ttags\n{A}\tvip\n")
    for spelling in ("tab", "\\t"):
        code, out, _ = validate(capsys, path, "--delimiter", spelling, "--json")
        assert code == 0
        assert json.loads(out)["contacts"] == 1


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (csv_text(ACCENTED, ";").encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + csv_text(ACCENTED, ";").encode("utf-8"), "utf-8-sig"),
        (csv_text(ACCENTED, ";", "\r\n").encode("utf-8-sig"), "utf-8-sig"),
        (csv_text(ACCENTED, ";", "\r\n").encode("cp1252"), "cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf8-bom-crlf", "cp1252-crlf"],
)
def test_text_encodings_are_detected(tmp_path: Path, encoded: bytes, encoding: str) -> None:
    """UTF-8 with or without BOM, CRLF, and Excel's ANSI cp1252: accents come out right."""
    result = plan_of([write(tmp_path, "in.csv", encoded)], tmp_path)
    assert result.tags() == ACCENTED_TAGS
    assert result.frames[0].columns.id_name == "Contact ID"
    summary = result.stats.inputs[0]
    assert (summary.encoding, summary.encoding_detected) == (encoding, True)


@pytest.mark.parametrize(
    ("prefix", "codec", "encoding"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
        (b"", "utf-16-le", "utf-16-le"),
        (b"", "utf-16-be", "utf-16-be"),
    ],
    ids=["le-bom", "le", "be"],
)
def test_utf16_unicode_text_is_read(
    tmp_path: Path, prefix: bytes, codec: str, encoding: str
) -> None:
    """Excel's "Unicode text" (UTF-16, tab separated) with or without BOM."""
    data = prefix + csv_text(ACCENTED, "\t", "\r\n").encode(codec)
    result = plan_of([write(tmp_path, "export.txt", data)], tmp_path)
    assert result.tags() == ACCENTED_TAGS
    assert result.delimiter() == "\t"
    assert (result.stats.inputs[0].encoding, result.stats.inputs[0].encoding_detected) == (
        encoding,
        True,
    )


def test_encoding_option_overrides_detection(tmp_path: Path) -> None:
    """--encoding wins over detection: cp1252 bytes that happen to be valid UTF-8."""
    path = write(tmp_path, "in.csv", f"id,tags\n{A},CafÃ©\n".encode("cp1252"))
    detected = plan_of([path], tmp_path / "detected")
    assert detected.tags() == {A: ["Café"]}
    assert detected.stats.inputs[0].encoding == "utf-8"
    forced = plan_of([path], tmp_path / "forced", encoding="cp1252")
    assert forced.tags() == {A: ["CafÃ©"]}
    summary = forced.stats.inputs[0]
    assert (summary.encoding, summary.encoding_detected) == ("cp1252", False)


def test_encoding_option_accepts_any_codec_name(tmp_path: Path) -> None:
    """An alias such as latin-1 is looked up and recorded under its codec name."""
    path = write(tmp_path, "in.csv", f"id,tags\n{A},Café\n".encode("latin-1"))
    result = plan_of([path], tmp_path, encoding="latin-1")
    assert result.tags() == {A: ["Café"]}
    assert result.stats.inputs[0].encoding == "iso8859-1"


def test_excel_sep_line_sets_the_delimiter(tmp_path: Path) -> None:
    """Excel's "sep=;" first line names the delimiter and is not taken for the header."""
    path = write(tmp_path, "in.csv", f"sep=;\r\nContact ID;Tags\r\n{A};vip,legal\r\n")
    result = plan_of([path], tmp_path)
    assert result.delimiter() == ";"
    assert result.frames[0].columns.id_name == "Contact ID"
    assert result.tags() == {A: ["vip", "legal"]}


def test_parquet_with_string_ids_and_string_tags(tmp_path: Path) -> None:
    """Parquet text columns: IDs canonicalised, tag cells split like CSV cells."""
    path = tmp_path / "in.parquet"
    pl.DataFrame({"contact_id": [A.upper(), B], "tags": ["vip; legal", "x|y"]}).write_parquet(path)
    result = plan_of([path], tmp_path)
    assert result.tags() == {A: ["vip", "legal"], B: ["x", "y"]}
    assert result.stats.inputs[0].format == "parquet"
    assert result.plan["line"].to_list() == [1, 2]


def test_parquet_integer_ids_are_rejected_as_numbers(tmp_path: Path) -> None:
    """An integer ID column gives one "a number" reject a row, the number as text."""
    path = tmp_path / "in.parquet"
    pl.DataFrame({"id": [12345, None], "tags": ["vip", "x"]}).write_parquet(path)
    result = plan_of([path], tmp_path)
    assert result.plan.height == 0
    assert result.rejects.select("contact_id", "line", "reason").rows() == [
        ("12345", 1, NUMERIC_ID),
        (None, 2, MISSING_ID),
    ]


def test_parquet_binary_uuids_and_list_tags(tmp_path: Path) -> None:
    """16-byte binary UUIDs become text UUIDs; a list[str] tags column is used as is."""
    path = tmp_path / "in.parquet"
    pl.DataFrame(
        {
            "uuid": [uuid.UUID(A).bytes, uuid.UUID(B).bytes],
            "labels": [["vip", None, "a,b"], ["x"]],
        },
        schema={"uuid": pl.Binary, "labels": pl.List(pl.String)},
    ).write_parquet(path)
    result = plan_of([path], tmp_path)
    assert result.tags() == {A: ["vip", "a,b"], B: ["x"]}


def _workbook(path: Path) -> Path:
    with xlsxwriter.Workbook(path) as book:
        first = book.add_worksheet("Attendees")
        first.write_row(0, 0, ["Contact ID", "Name", "Tags"])
        first.write_row(1, 0, [A, "Ann", "webinar, attended"])
        first.write_number(2, 0, 12345)
        first.write_row(2, 1, ["Lost", "webinar"])
        second = book.add_worksheet("No-shows")
        second.write_row(0, 0, ["id", "tag"])
        second.write_row(1, 0, [B, "no-show"])
    return path


def test_xlsx_first_sheet_and_a_numeric_id_cell(tmp_path: Path) -> None:
    """The first sheet by default; a number in the ID column is a "number" reject."""
    result = plan_of([_workbook(tmp_path / "in.xlsx")], tmp_path)
    assert result.tags() == {A: ["webinar", "attended"]}
    assert result.rejects.select("contact_id", "line", "column", "reason").rows() == [
        ("12345", 3, "Contact ID", NUMERIC_ID)
    ]
    assert result.stats.inputs[0].format == "xlsx"


@pytest.mark.parametrize("sheet", ["No-shows", "2"])
def test_xlsx_sheet_by_name_or_number(tmp_path: Path, sheet: str) -> None:
    """--sheet picks a sheet by its name or its 1-based number."""
    result = plan_of([_workbook(tmp_path / "in.xlsx")], tmp_path, sheet=sheet)
    assert result.tags() == {B: ["no-show"]}


def test_ndjson_with_string_tags_and_with_array_tags(tmp_path: Path) -> None:
    """NDJSON records: a tags string is split, a tags array is taken item by item."""
    text = write(tmp_path, "a.ndjson", f'{{"id": "{A}", "tags": "vip; legal"}}\n')
    arrays = write(tmp_path, "b.jsonl", f'{{"id": "{B}", "tags": ["x", "y,z"]}}\n')
    result = plan_of([text, arrays], tmp_path)
    assert result.tags() == {A: ["vip", "legal"], B: ["x", "y,z"]}
    assert [item.format for item in result.stats.inputs] == ["ndjson", "ndjson"]


def test_format_is_sniffed_when_the_extension_says_nothing(tmp_path: Path) -> None:
    """No known extension: a Parquet, an XLSX and an NDJSON file are told by their bytes."""
    parquet = tmp_path / "scores.bin"
    pl.DataFrame({"id": [A], "tags": ["vip"]}).write_parquet(parquet)
    workbook = _workbook(tmp_path / "book.xlsx").rename(tmp_path / "book.dat")
    ndjson = write(tmp_path, "records.log", f'{{"id": "{C}", "tags": "x"}}\n')
    result = plan_of([parquet, workbook, ndjson], tmp_path)
    assert [item.format for item in result.stats.inputs] == ["parquet", "xlsx", "ndjson"]
    assert result.tags() == {A: ["vip", "webinar", "attended"], C: ["x"]}


class _Stdin:
    """A pipe on stdin (not a terminal)."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)

    def isatty(self) -> bool:
        return False


def test_stdin_is_read_as_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ "-" reads a CSV from standard input, in any encoding; its source is "<stdin>"."""
    monkeypatch.setattr(sys, "stdin", _Stdin(csv_text(ACCENTED, "\t").encode("utf-16")))
    result = plan_of(["-"], tmp_path)
    assert result.tags() == ACCENTED_TAGS
    assert result.plan["source"].unique().to_list() == ["<stdin>"]


def test_several_files_and_globs_make_one_plan(tmp_path: Path) -> None:
    """Files and globs expand in order; each plan row and reject names its own file."""
    first = write(tmp_path, "exports/a.csv", f"id,tags\n{A},vip\nbad,x\n")
    second = write(tmp_path, "exports/b.csv", f"id;tags\n{B};legal\n{A};vip,new\n")
    third = write(tmp_path, "extra.csv", f"id,tags\n{C},late\n")
    names = expand_inputs([str(tmp_path / "exports" / "*.csv"), str(third)])
    assert names == [str(first), str(second), str(third)]
    result = plan_of(names, tmp_path)
    assert result.plan.select("contact_id", "tags", "source", "line").rows() == [
        (A, ["vip", "new"], str(first), 2),
        (B, ["legal"], str(second), 2),
        (C, ["late"], str(third), 2),
    ]
    assert result.rejects.select("source", "line", "reason").rows() == [(str(first), 3, NOT_UUID)]


def test_relative_globs_expand_from_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative glob matches under the current folder, files only, sorted."""
    for name in ("in/b.csv", "in/a.csv", "in/c.tsv", "in/sub/d.csv"):
        write(tmp_path, name, "x")
    monkeypatch.chdir(tmp_path)
    assert expand_inputs(["in/*.csv", "in/*.tsv"]) == ["in/a.csv", "in/b.csv", "in/c.tsv"]
    assert expand_inputs(["in/**/*.csv"]) == ["in/a.csv", "in/b.csv", "in/sub/d.csv"]


def test_dash_stays_stdin_in_the_input_list(tmp_path: Path) -> None:
    """ "-" passes through expand_inputs untouched, in its place."""
    path = write(tmp_path, "a.csv", "x")
    assert expand_inputs([str(path), "-"]) == [str(path), "-"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("nothing-*.csv", "no file matches"),
        ("missing.csv", "no such file"),
        ("folder", "is a folder"),
    ],
)
def test_inputs_that_name_no_file_are_input_errors(
    tmp_path: Path, pattern: str, message: str
) -> None:
    """A glob matching nothing, a missing file and a folder are refused, naming the input."""
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match=message) as raised:
        expand_inputs([str(tmp_path / pattern)])
    assert pattern in str(raised.value)
    assert raised.value.exit_code == 65


@pytest.mark.parametrize("kind", ["csv", "parquet", "ndjson", "xlsx"])
def test_a_file_name_with_glob_characters_is_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A file named "export [2] *?.csv" is that file, not a pattern, for every reader."""
    path = tmp_path / f"export [2] *?.{kind}"
    frame = pl.DataFrame({"contact_id": [A, B], "tags": ["vip", "x"]})
    if kind == "csv":
        frame.write_csv(path)
    elif kind == "parquet":
        frame.write_parquet(path)
    elif kind == "ndjson":
        frame.write_ndjson(path)
    else:
        with xlsxwriter.Workbook(path) as book:
            sheet = book.add_worksheet()
            for r, row in enumerate([frame.columns, *frame.rows()]):
                sheet.write_row(r, 0, row)
    code, out, err = validate(capsys, path, "--json")
    assert (code, err) == (0, "")
    assert (json.loads(out)["contacts"], json.loads(out)["pairs"]) == (2, 2)
