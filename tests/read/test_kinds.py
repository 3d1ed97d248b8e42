"""What a file is, the sheet people mean, and what is not a tag, through the real command.

The real-world corpus (``test_realworld.py``) holds files of each kind made by the programs
that write them; these tests pin the edges: what is refused and what the refusal says, and
how to send a tag that looks like a marker.
"""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
TABLE = f"contact_id,tags\n{A},vip\n{B},news\n".encode()


def _run(
    path: Path | str, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    code = main(["run", str(path), "--dry-run", "--out", str(out), "--format", "csv", *extra])
    return code, capsys.readouterr().err


def _tags(out: Path) -> dict[str, str]:
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        return {row["contact_id"]: row["tags"] for row in csv.DictReader(handle)}


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("contacts.db", None, "a SQLite database"),
        ("contacts.arrows", b"\xff\xff\xff\xff" + b"\x00" * 64, "an Arrow IPC stream"),
        ("contacts.feather", b"FEA1" + b"\x00" * 64, "a Feather v1 file"),
        ("contacts.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        ("padded.csv", TABLE + b"\x00" * 512, "ends with 512 NUL bytes"),
    ],
)
def test_a_file_bulktag_does_not_read_is_named_with_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes | None, said: str
) -> None:
    """Each kind is refused (65) in one line saying what the file is and what to do."""
    path = tmp_path / name
    if data is None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE contacts (contact_id TEXT, tags TEXT)")
    else:
        path.write_bytes(data)
    code, err = _run(path, tmp_path / "out", capsys)
    assert code == ExitCode.INPUT_UNUSABLE
    assert said in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_an_arrow_ipc_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Feather v2 (Arrow IPC): read as Parquet is, list tags as lists."""
    path = tmp_path / "contacts.feather"
    pl.DataFrame({"contact_id": [A, B], "tags": [["vip", "gold"], ["news"]]}).write_ipc(path)
    code, _ = _run(path, tmp_path / "out", capsys)
    assert code == ExitCode.OK
    assert _tags(tmp_path / "out") == {A: "vip,gold", B: "news"}


def test_gzip_is_inflated_and_a_bomb_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export.csv.gz reads as the CSV inside; one that inflates 200 times over is refused."""
    path = tmp_path / "export.csv.gz"
    path.write_bytes(gzip.compress(TABLE))
    code, _ = _run(path, tmp_path / "out", capsys)
    assert code == ExitCode.OK
    assert _tags(tmp_path / "out") == {A: "vip", B: "news"}
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(TABLE + b"\n" * 5_000_000))
    code, err = _run(bomb, tmp_path / "out-bomb", capsys)
    assert code == ExitCode.INPUT_UNUSABLE
    assert "inflates more than 200 times its size" in err


def test_excels_lock_file_is_skipped_in_a_glob_and_named_when_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """~$segment.csv beside segment.csv (the workbook open in Excel): a glob skips it with a
    warning; given by name, it is refused naming the file to give."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "segment.csv").write_bytes(TABLE)
    (folder / "~$segment.csv").write_bytes(b"\x05ann   " + b"\x00" * 40)
    code, err = _run(f"{folder}/*.csv", tmp_path / "out", capsys)
    assert code == ExitCode.OK
    assert "skipped, Excel's lock file of segment.csv" in err
    code, err = _run(folder / "~$segment.csv", tmp_path / "out2", capsys)
    assert code == ExitCode.INPUT_UNUSABLE
    assert f"give {folder / 'segment.csv'}" in err


def test_a_marker_in_double_quotes_is_a_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NULL alone is an empty cell; "NULL" in double quotes is the tag NULL (the README's
    way to send a tag that reads like a marker). The results file writes it quoted, so it
    reads back as the tag it was."""
    path = tmp_path / "in.csv"
    path.write_text(f'contact_id,tags\n{A},"""NULL"""\n{B},NULL\n', encoding="utf-8")
    code, _ = _run(path, tmp_path / "out", capsys)
    assert code == ExitCode.FAILURES
    assert _tags(tmp_path / "out") == {A: '"NULL"'}
    planned = pl.read_parquet(tmp_path / "out" / ".bulktag" / "plan.parquet")
    assert planned["send"].to_list() == [["NULL"]]


def test_ndjson_mixing_lists_and_text_reads_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One record's tags a list, another's text, a third's an empty list."""
    path = tmp_path / "in.ndjson"
    records = [{"contact_id": A, "tags": ["Café", "a, b"]}, {"contact_id": B, "tags": "x;y"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    code, _ = _run(path, tmp_path / "out", capsys)
    assert code == ExitCode.OK
    assert _tags(tmp_path / "out") == {A: 'Café,"a, b"', B: "x,y"}


def _book(path: Path, sheets: list[tuple[str, list[list[str]], bool]]) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    for name, rows, hidden in sheets:
        sheet = book.add_worksheet(name)
        for n, row in enumerate(rows):
            sheet.write_row(n, 0, row)
        if hidden:
            sheet.hide()
    book.close()


GUIDE = [["Read me"], ["Fill in the sheets below"]]


def test_several_sheets_that_could_be_meant_stop_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A guide first, then two sheets of contacts: exit 65 naming each and --sheet."""
    path = tmp_path / "book.xlsx"
    _book(
        path,
        [
            ("Guide", GUIDE, False),
            ("March", [["contact_id", "tags"], [A, "march"]], False),
            ("April", [["contact_id", "tags"], [B, "april"]], False),
        ],
    )
    code, err = _run(path, tmp_path / "out", capsys)
    assert code == ExitCode.INPUT_UNUSABLE
    assert "several sheets do" in err
    assert "'March': ID column 'contact_id', 1 rows" in err
    assert "'Guide': no table of contacts" in err
    assert "--sheet" in err
    code, _ = _run(path, tmp_path / "out2", capsys, "--sheet", "April")
    assert code == ExitCode.OK
    assert _tags(tmp_path / "out2") == {B: "april"}


def test_a_hidden_sheet_is_never_read_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a hidden sheet holds contacts: it is read, with a warning and the plan saying so."""
    path = tmp_path / "book.xlsx"
    _book(path, [("Guide", GUIDE, False), ("Data", [["contact_id", "tags"], [A, "x"]], True)])
    code, err = _run(path, tmp_path / "out", capsys, "-v", "--log-format", "text")
    assert code == ExitCode.OK
    assert "reading the hidden sheet 'Data'" in err
    assert "the HIDDEN sheet 'Data'" in err


def test_no_sheet_with_contacts_names_the_sheets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing usable anywhere: exit 65 listing the sheets."""
    path = tmp_path / "book.xlsx"
    _book(path, [("Guide", GUIDE, False), ("Notes", [["a", "b"], ["1", "2"]], False)])
    code, err = _run(path, tmp_path / "out", capsys)
    assert code == ExitCode.INPUT_UNUSABLE
    assert "no sheet holds a table of contacts" in err
    assert "'Notes': no table of contacts" in err
