"""Read every file as the person meant it: each rule through the real ``bulktag run --dry-run``.

Expected values are written by hand here; the files come from Python's csv module,
XlsxWriter and byte literals (``tests/read/test_realworld.py`` covers files written by
LibreOffice, gnumeric, pandas and the CRMs' conventions).
"""

from __future__ import annotations

import string
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulktag.cli.commands import main
from bulktag.config import ReadOptions
from bulktag.plan.build import build_plan
from bulktag.read.inputs import read_input
from bulktag.read.rules import NOT_UUID, NUMERIC_ID
from bulktag.read.sniff import sniff_csv
from tests.inputs import A, B, C, cid, csv_text, dry_run, write

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _sheet(path: Path, rows: list[list[Any]]) -> Path:
    """An XLSX with ``rows``: str cells as text, int/float cells as numbers."""
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Export")
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, str):
                    sheet.write_string(r, c, value)
                elif value is not None:
                    sheet.write_number(r, c, value)
    return path


DIGITS = "50076596535937312345678901234567"  # a bare-hex UUID made only of digits
DIGITS_ID = str(uuid.UUID(DIGITS))


# -- 1. a number is never a contact --------------------------------------------------------


def test_a_number_cell_in_the_id_column_is_a_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same 32 digits: as a text cell a contact, as a number cell (a float) a reject."""
    path = _sheet(
        tmp_path / "in.xlsx",
        [["contact_id", "tags"], [DIGITS, "text"], [float(DIGITS), "number"], [A, "x"]],
    )
    run = dry_run(capsys, path, tmp_path / "out")
    assert run.code == 1
    assert run.contacts == {DIGITS_ID: ["text"], A: ["x"]}
    assert run.rejects == [(3, NUMERIC_ID)]
    assert "is a number: the spreadsheet converted it" in NUMERIC_ID
    assert "format the ID column as text" in NUMERIC_ID


@pytest.mark.parametrize(
    "cell",
    [
        "5.00765965359373E+031",  # LibreOffice
        "5.00766E+31",  # Excel
        "5,0077E+31",  # a German locale
        "5.0076596535937312346e+31",  # gnumeric's raw export
        "5007659653593731234567890123456",  # 31 digits: a leading zero lost
        "50076596535937312345678901234",  # 29
    ],
)
def test_a_number_in_a_csv_id_cell_is_a_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str
) -> None:
    """In CSV too, whatever the notation; 32 digits stay a (bare-hex) UUID."""
    path = write(tmp_path, "in.csv", csv_text([["id", "tags"], [cell, "a"], [DIGITS, "b"]]))
    run = dry_run(capsys, path, tmp_path / "out")
    assert run.rejects == [(2, NUMERIC_ID)]
    assert run.contacts == {DIGITS_ID: ["b"]}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    numbers=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(min_value=-(10**15), max_value=10**15),
            st.builds(float, st.sampled_from([DIGITS, "1" * 32, "9" * 32, "1" + "0" * 31])),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_property_a_number_cell_is_never_planned(
    tmp_path_factory: pytest.TempPathFactory, numbers: list[float]
) -> None:
    """Any ID cell of numeric type is a reject (the number reason), never a contact."""
    folder = tmp_path_factory.mktemp("numbers")
    path = _sheet(folder / "in.xlsx", [["id", "tags"], *([n, "t"] for n in numbers), [A, "t"]])
    work = folder / "work"
    work.mkdir()
    frames = [read_input(str(path), ReadOptions(), work)]
    plan = build_plan(frames, ReadOptions(), work / "plan.parquet", work / "rejects.parquet")
    assert pl.read_parquet(plan.path)["contact_id"].to_list() == [A]
    assert plan.stats.rejects_by_reason == {NUMERIC_ID: len(numbers)}


# -- 2. line endings; never zero rows in silence ---------------------------------------------

LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n", "CR": "\r"}


@pytest.mark.parametrize("ending", ["LF", "CRLF", "CR", "mixed"])
def test_every_line_ending_reads_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ending: str
) -> None:
    """CR (Excel for Mac), LF, CRLF and a mix: the same rows, the same physical lines."""
    lines = ["contact_id,tags", f"{A},a", "bad,b", "", f"{B},c"]
    if ending == "mixed":
        text = "\r\n".join(lines[:2]) + "\r\n" + "\r".join(lines[2:4]) + "\r" + lines[4] + "\n"
    else:
        text = LINE_ENDINGS[ending].join(lines) + LINE_ENDINGS[ending]
    run = dry_run(capsys, write(tmp_path, "in.csv", text), tmp_path / "out")
    assert run.contacts == {A: ["a"], B: ["c"]}
    assert run.rejects == [(3, NOT_UUID)]
    assert run.summary["plan"]["rows_read"] == 3
    assert run.summary["plan"]["blank_rows"] == 1


_CELLS = st.one_of(
    st.sampled_from([A, B, C, A.upper(), "bad", "", "5.0E+31"]),
    st.text(string.ascii_letters + " ,;|\u200b", max_size=12),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(_CELLS, _CELLS), max_size=12))
def test_property_rows_are_conserved_for_every_line_ending(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str]]
) -> None:
    """Lines below the header = read + blank, read = grouped + rejected, whatever the line
    endings; and LF, CRLF, CR and mixed files give the same plan and rejects."""
    folder = tmp_path_factory.mktemp("endings")
    body = csv_text([["contact_id", "tags"], *rows], newline="\n").splitlines()
    seen = []
    for name, ending in [*LINE_ENDINGS.items(), ("mixed", None)]:
        if ending is None:
            text = "".join(line + ("\r", "\n", "\r\n")[i % 3] for i, line in enumerate(body))
        else:
            text = ending.join(body) + ending
        path = write(folder, f"{name}.csv", text)
        work = folder / f"work-{name}"
        work.mkdir()
        frames = [read_input(str(path), ReadOptions(), work)]
        plan = build_plan(frames, ReadOptions(), work / "plan.parquet", work / "rejects.parquet")
        stats = plan.stats
        assert stats.rows_read + stats.blank_rows == len(rows), name
        assert stats.rows_read == stats.rows_grouped + stats.rows_rejected, name
        rejects = pl.read_parquet(plan.rejects_path).select("line", "reason").rows()
        seen.append((pl.read_parquet(plan.path).select("contact_id", "tags").rows(), rejects))
    assert all(s == seen[0] for s in seen)


def test_text_below_the_header_that_yields_no_row_exits_65(tmp_path: Path) -> None:
    """The guard: a reader that finds no row where the sample shows text stops the run."""
    path = write(tmp_path, "in.csv", f"contact_id,tags\n{A},a\n")
    item = read_input(str(path), ReadOptions(), tmp_path / "work")
    lost = type(item)(
        **{**{f: getattr(item, f) for f in item.__slots__}, "frame": item.frame.head(0)}
    )
    with pytest.raises(Exception, match=r"text follows the header \(line 2") as raised:
        build_plan([lost], ReadOptions(), tmp_path / "plan.parquet", tmp_path / "rejects.parquet")
    assert getattr(raised.value, "exit_code", None) == 65
    assert str(path) in str(raised.value)


def test_a_header_only_file_is_zero_rows_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quiet night's export (the header alone) is not an error: nothing to send."""
    run = dry_run(capsys, write(tmp_path, "in.csv", "contact_id,tags\r\n"), tmp_path / "out")
    assert (run.code, run.contacts, run.summary["plan"]["rows_read"]) == (0, {}, 0)


# -- 3. encodings --------------------------------------------------------------------------


def test_mac_roman_is_told_from_cp1252(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Excel for Mac's "CSV (Macintosh)": Mac Roman, CR; two detectors disagree (chardetng
    knows no Mac encoding), the reading whose letters read as words wins, and the plan says
    how the encoding was found."""
    text = f"contact_id;tags\r{A};München,Größe\r{B};Café\r"
    path = write(tmp_path, "in.csv", text.encode("mac-roman"))
    run = dry_run(capsys, path, tmp_path / "out", "-v", "--log-format", "text")
    assert run.contacts == {A: ["München", "Größe"], B: ["Café"]}
    summary = run.summary["plan"]["inputs"][0]
    assert summary["encoding"] == "mac-roman"
    assert summary["encoding_note"].startswith("detected: its letters read as words")
    assert "mac-roman (detected: its letters read as words, not as" in run.err


def test_cp1252_is_still_cp1252(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Windows' ANSI with the same words stays cp1252 (é ü ß are letters there)."""
    text = f"contact_id;tags\r\n{A};München,Größe\r\n{B};Café\r\n"
    run = dry_run(capsys, write(tmp_path, "in.csv", text.encode("cp1252")), tmp_path / "out")
    assert run.contacts == {A: ["München", "Größe"], B: ["Café"]}
    assert run.summary["plan"]["inputs"][0]["encoding"] == "cp1252"


# -- 4-6. what a tags cell means -----------------------------------------------------------


def test_line_breaks_in_a_cell_separate_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alt+Enter in an XLSX cell, a quoted multi-line CSV cell: one tag per line."""
    sheet = _sheet(tmp_path / "in.xlsx", [["id", "tags"], [A, "vip\nnewsletter\r\nq4"]])
    assert dry_run(capsys, sheet, tmp_path / "x").contacts == {A: ["vip", "newsletter", "q4"]}
    text = f'id,tags\r\n{A},"vip\nnewsletter"\r\nbad,x\r\n'
    run = dry_run(capsys, write(tmp_path, "in.csv", text), tmp_path / "c")
    assert run.contacts == {A: ["vip", "newsletter"]}
    assert run.rejects == [(4, NOT_UUID)]  # the physical line, after the two-line cell


def test_quoted_tags_lose_their_quotes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mailchimp's TAGS: "Customers","VIP"; a quoted tag keeps its comma; inner quotes stay."""
    rows = [
        ["Email", "contact_id", "TAGS"],
        ["a@x", A, '"Customers","VIP", "A, B"'],
        [
            "b@x",
            B,
            '12" monitor',
        ],
    ]
    run = dry_run(capsys, write(tmp_path, "in.csv", csv_text(rows)), tmp_path / "out")
    assert run.contacts == {A: ["Customers", "VIP", "A, B"], B: ['12" monitor']}


def test_joiners_stay_invisible_artefacts_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """👩‍💻 and a Persian word keep U+200D / U+200C; U+200B, U+2060 and U+FEFF go."""
    technologist = "\U0001f469\u200d\U0001f4bb"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with a ZWNJ
    rows = [["id", "tags"], [A, f"{technologist}, {persian}, v\u200bi\u2060p\ufeff, \u200dx"]]
    run = dry_run(capsys, write(tmp_path, "in.csv", csv_text(rows)), tmp_path / "out")
    assert run.contacts == {A: [technologist, persian, "vip", "x"]}


# -- 7. the header below title lines --------------------------------------------------------


def test_the_header_is_found_below_title_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Title, date and blank lines above the header; reject lines stay physical."""
    text = f"Segment export\nNovember 2026\n\nContact ID,Tags\n{A},vip\nbad,x\n"
    run = dry_run(capsys, write(tmp_path, "in.csv", text), tmp_path / "out")
    assert run.contacts == {A: ["vip"]}
    assert run.rejects == [(6, NOT_UUID)]
    assert run.summary["plan"]["inputs"][0]["header_line"] == 4


def test_the_header_is_found_below_title_rows_of_a_sheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sheet with a title and an empty row: the header row, then sheet row numbers."""
    rows: list[list[Any]] = [["Q4 list"], [], ["uuid", "labels"], [A, "a"], ["bad", "b"]]
    run = dry_run(capsys, _sheet(tmp_path / "in.xlsx", rows), tmp_path / "out")
    assert run.contacts == {A: ["a"]}
    assert run.rejects == [(5, NOT_UUID)]


def test_header_row_forces_the_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--header-row N takes line N as the header, even when an earlier line looks like one."""
    text = f"id,tags\n{A},skipped\nref,labels\n{B},b\n"
    run = dry_run(
        capsys,
        write(tmp_path, "in.csv", text),
        tmp_path / "out",
        "--header-row",
        "3",
        "--id-column",
        "ref",
    )
    assert run.contacts == {B: ["b"]}


def test_header_row_in_a_job_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``[read] header_row`` in a job file does what --header-row does."""
    write(tmp_path, "in.csv", f"Report\nid,tags\n{A},a\n")
    job = write(tmp_path, "job.toml", 'inputs = ["in.csv"]\nout = "job"\n[read]\nheader_row = 2\n')
    code = main(["run", "--job", str(job), "--dry-run"])
    assert code == 0, capsys.readouterr().err


# -- 8. the ID column by content ------------------------------------------------------------


def test_the_id_column_is_found_by_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Salesforce's ID holds its own 18-character ids, CONTACT__C the UUIDs: CONTACT__C it is,
    and the plan says why; its TAGS__C is found without prefix and suffix."""
    rows = [
        ["ID", "CONTACT__C", "TAGS__C"],
        ["0035g00000XyZabAAF", A, "Customer;Event"],
        ["0035g00000XyZacAAF", B, "Prospect"],
    ]
    path = write(tmp_path, "in.csv", csv_text(rows))
    run = dry_run(capsys, path, tmp_path / "out", "-v", "--log-format", "text")
    assert run.contacts == {A: ["Customer", "Event"], B: ["Prospect"]}
    summary = run.summary["plan"]["inputs"][0]
    assert (summary["id_column"], summary["tag_columns"]) == ("CONTACT__C", ["TAGS__C"])
    assert "found by content: 'CONTACT__C' holds UUIDs, 'ID' does not" in run.err


def test_several_uuid_columns_without_a_name_exit_65(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two columns of UUIDs and no name to tell them apart: exit 65 naming both."""
    rows = [["ref_a", "ref_b", "tags"], [A, B, "x"], [B, C, "y"]]
    run = dry_run(capsys, write(tmp_path, "in.csv", csv_text(rows)), tmp_path / "out")
    assert run.code == 65
    assert "'ref_a', 'ref_b'" in run.err
    assert "--id-column" in run.err


def test_an_id_column_typo_gets_the_closest_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--id-column contact_di: exit 65, and the message suggests 'contact_id'."""
    path = write(tmp_path, "in.csv", f"contact_id,tags\n{A},x\n")
    run = dry_run(capsys, path, tmp_path / "out", "--id-column", "contact_di")
    assert run.code == 65
    assert "did you mean 'contact_id'?" in run.err


# -- 9-10. the content decides the format ----------------------------------------------------


def test_a_csv_named_xlsx_and_an_xlsx_named_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each is read as what it is; the plan says what its name claimed."""
    csv_named = write(tmp_path, "list.xlsx", f"id,tags\n{A},a\n")
    run = dry_run(capsys, csv_named, tmp_path / "a", "-v", "--log-format", "text")
    assert run.contacts == {A: ["a"]}
    assert "named .xlsx but is a text (CSV) file" in run.err
    xlsx_named = _sheet(tmp_path / "list.csv", [["id", "tags"], [B, "b"]])
    run = dry_run(capsys, xlsx_named, tmp_path / "b")
    assert run.contacts == {B: ["b"]}
    assert run.summary["plan"]["inputs"][0]["format"] == "xlsx"


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        (
            "report.xls",
            b"\xef\xbb\xbf\r\n<html><body><table><tr><td>id</td></tr></table></body></html>",
            "HTML page",
        ),
        (
            "report.xls",
            b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">',
            "Excel 2003 XML",
        ),
        ("locked.xlsx", _OLE2 + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le"), "password"),
        ("scan.csv", b"%PDF-1.7\n...", "PDF"),
        ("cut.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "cut short"),
    ],
)
def test_what_bulktag_cannot_read_says_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, words: str
) -> None:
    """Exit 65 naming the file, what it really is and how to save it instead."""
    path = write(tmp_path, name, content)
    run = dry_run(capsys, path, tmp_path / "out")
    assert run.code == 65
    assert str(path) in run.err
    assert words in run.err
    assert "Traceback" not in run.err


def test_a_workbook_calamine_cannot_parse_exits_65_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged sheet: exit 65, the file named, and "save it as XLSX or CSV" said."""
    good = _sheet(tmp_path / "good.xlsx", [["id", "tags"], [A, "a"]])
    import zipfile

    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                data = data[: len(data) // 2]
            target.writestr(info, data)
    run = dry_run(capsys, broken, tmp_path / "out")
    assert run.code == 65
    assert str(broken) in run.err
    assert "save it as XLSX or CSV" in run.err


def test_sniffing_reads_only_a_sample_of_a_big_utf8_file(tmp_path: Path) -> None:
    """A plain UTF-8 file with LF endings is scanned in place: no rewritten copy."""
    path = write(tmp_path, "in.csv", f"id,tags\n{A},a\n" + f"{cid(9)},b\n" * 1000)
    sniffed = sniff_csv(path, str(path), tmp_path / "work")
    assert sniffed.path == path
    assert (sniffed.encoding, sniffed.line_endings) == ("utf-8", "LF")
