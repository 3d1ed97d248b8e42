"""Validation and normalisation: which IDs and tags are sent, in which form, and why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulktag.read.rules import MISSING_ID, NO_TAGS, NOT_UUID, NUMERIC_ID, TAG_CONTROL, TAG_TOO_LONG
from tests.inputs import A, B, C, Planned, csv_text, plan_of, write


def plan_rows(folder: Path, rows: list[tuple[str, str]], **options: object) -> Planned:
    """A plan of one wide CSV (header ``contact_id,tags``) holding ``rows``."""
    text = csv_text([("contact_id", "tags"), *rows])
    return plan_of([write(folder, "in.csv", text)], folder, **options)


@pytest.mark.parametrize(
    "written",
    [
        A.upper(),
        "{" + A + "}",
        "{" + A.upper() + "}",
        "urn:uuid:" + A,
        "URN:UUID:" + A.upper(),
        A.replace("-", ""),
        A.replace("-", "").upper(),
        f"  {A}\t",
        "'" + A,
    ],
)
def test_ids_are_canonicalised(tmp_path: Path, written: str) -> None:
    """Upper case, braces, urn:uuid:, 32 bare hex digits, spaces, Excel's ': 8-4-4-4-12."""
    result = plan_rows(tmp_path, [(written, "vip")])
    assert result.tags() == {A: ["vip"]}
    assert result.rejects.height == 0


def test_every_spelling_of_one_id_is_one_contact(tmp_path: Path) -> None:
    """Rows naming a contact in different spellings merge into one plan row."""
    result = plan_rows(
        tmp_path, [(A, "a"), (A.upper(), "b"), ("{" + A + "}", "c"), (A.replace("-", ""), "d")]
    )
    assert result.tags() == {A: ["a", "b", "c", "d"]}
    assert result.stats.contacts == 1


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("1.23E+15", NUMERIC_ID),
        ("1,23457E+15", NUMERIC_ID),
        ("1.2345678901234e15", NUMERIC_ID),
        ("12345", NUMERIC_ID),
        ("1234567890123400", NUMERIC_ID),
        ("-12.5", NUMERIC_ID),
        ("'12345", NUMERIC_ID),
        ("", MISSING_ID),
        ("   ", MISSING_ID),
        ("not-a-uuid", NOT_UUID),
        (A[:-1] + "g", NOT_UUID),
        (A[:-1], NOT_UUID),
        ("{" + A, NOT_UUID),
        (A + "0", NOT_UUID),
    ],
)
def test_bad_ids_are_rejected_with_their_reason(tmp_path: Path, written: str, reason: str) -> None:
    """A spreadsheet's damage (scientific notation, a number) is told apart from other junk."""
    result = plan_rows(tmp_path, [(written, "vip"), (B, "ok")])
    assert result.tags() == {B: ["ok"]}
    assert result.rejects.select("line", "column", "reason").rows() == [(2, "contact_id", reason)]
    assert (result.stats.rows_grouped, result.stats.rows_rejected) == (1, 1)


@pytest.mark.parametrize(
    ("cell", "tags"),
    [
        ("  vip  ", ["vip"]),
        ("key   account", ["key account"]),
        ("key\taccount", ["key account"]),
        ("key\u00a0\u00a0account", ["key account"]),
        ("par\u200btner\u200d, \ufeffvip\u2060", ["partner", "vip"]),
        ("soft\u00adhyphen", ["softhyphen"]),
        ("a, ,;;| b |", ["a", "b"]),
        ("'vip", ["vip"]),
        ("'vip, 'legal", ["vip", "'legal"]),
    ],
)
def test_tags_are_trimmed_and_collapsed(tmp_path: Path, cell: str, tags: list[str]) -> None:
    """White space trimmed and collapsed (tabs, NBSP), zero-width removed, empty pieces dropped."""
    assert plan_rows(tmp_path, [(A, cell)]).tags() == {A: tags}


@pytest.mark.parametrize("cell", ["", "   ", " , ; | ", "\u200b", "'"])
def test_a_row_without_tags_is_rejected(tmp_path: Path, cell: str) -> None:
    """A row whose tags cell holds no tag is one "no tags" reject, naming the tags column."""
    result = plan_rows(tmp_path, [(A, cell), (B, "ok")])
    assert result.rejects.select("contact_id", "line", "column", "reason").rows() == [
        (A, 2, "tags", NO_TAGS)
    ]
    assert result.tags() == {B: ["ok"]}


def test_tag_length_limit_is_100_characters(tmp_path: Path) -> None:
    """100 characters (not bytes) is fine; 101 is a reject of that tag only."""
    result = plan_rows(
        tmp_path, [(A, "x" * 100), (B, "é" * 100), (C, "y" * 101 + ", ok"), (C, " " + "z" * 101)]
    )
    assert result.tags() == {A: ["x" * 100], B: ["é" * 100], C: ["ok"]}
    assert result.rejects.select("contact_id", "tags", "line", "reason").rows() == [
        (C, "y" * 101, 4, TAG_TOO_LONG),
        (C, "z" * 101, 5, TAG_TOO_LONG),
    ]


def test_length_is_measured_after_normalisation(tmp_path: Path) -> None:
    """Spaces around and inside a tag do not count against its 100 characters."""
    padded = "   " + "a" * 49 + "     " + "b" * 50 + "   "
    assert plan_rows(tmp_path, [(A, padded)]).tags() == {A: ["a" * 49 + " " + "b" * 50]}


@pytest.mark.parametrize("control", ["\x07", "\x00", "\x1b", "\x7f", "\x9f"])
def test_control_characters_are_rejected(tmp_path: Path, control: str) -> None:
    """A tag holding a control character is a reject; the row's other tags still go."""
    result = plan_rows(tmp_path, [(A, f"bell{control}ring, ok")])
    assert result.tags() == {A: ["ok"]}
    assert result.rejects.select("tags", "reason").rows() == [(f"bell{control}ring", TAG_CONTROL)]


def test_tag_case_lower(tmp_path: Path) -> None:
    """tag_case="lower" lower-cases tags, so VIP and vip become one; IDs are not affected."""
    result = plan_rows(tmp_path, [(A, "VIP, Vip, Région")], tag_case="lower")
    assert result.tags() == {A: ["vip", "région"]}
    assert result.stats.duplicate_pairs == 1


def test_tag_case_is_preserved_by_default(tmp_path: Path) -> None:
    """Without tag_case, "VIP" and "vip" are two tags, as LeadLex compares them exactly."""
    assert plan_rows(tmp_path, [(A, "VIP, vip")]).tags() == {A: ["VIP", "vip"]}


def test_tag_prefix_goes_before_every_input_tag(tmp_path: Path) -> None:
    """tag_prefix is added to each non-empty tag, after normalisation; empty pieces stay out."""
    result = plan_rows(tmp_path, [(A, " vip , , legal")], tag_prefix="import:")
    assert result.tags() == {A: ["import:vip", "import:legal"]}


def test_tag_prefix_counts_toward_the_length_limit(tmp_path: Path) -> None:
    """A 95-character tag with a 6-character prefix is over the limit."""
    result = plan_rows(tmp_path, [(A, "x" * 95 + ", ok")], tag_prefix="batch:")
    assert result.tags() == {A: ["batch:ok"]}
    assert result.rejects["reason"].to_list() == [TAG_TOO_LONG]


def test_static_tags_follow_the_input_tags_without_duplicates(tmp_path: Path) -> None:
    """static_tags are appended to every contact's tags, never twice."""
    result = plan_rows(
        tmp_path, [(A, "vip, import-11"), (B, "legal")], static_tags=("import-11", "crm")
    )
    assert result.tags() == {A: ["vip", "import-11", "crm"], B: ["legal", "import-11", "crm"]}
    assert result.plan["input_tags"].to_list() == [2, 1]


def test_static_tags_give_no_contact_to_a_rejected_row(tmp_path: Path) -> None:
    """A row without valid tags stays rejected: static tags alone never make a plan row."""
    result = plan_rows(tmp_path, [(A, ""), (B, "x" * 101)], static_tags=("crm",))
    assert result.plan.height == 0
    assert result.stats.rows_rejected == 2


def test_duplicates_are_removed_in_first_seen_order(tmp_path: Path) -> None:
    """Repeated tags of a contact, in one cell or across rows, keep their first place."""
    result = plan_rows(tmp_path, [(A, "b, a, b"), (B, "x"), (A.upper(), "c, a"), (A, "b, d")])
    assert result.tags() == {A: ["b", "a", "c", "d"], B: ["x"]}
    assert (result.stats.pairs, result.stats.duplicate_pairs) == (8, 3)


def test_duplicates_are_removed_across_files(tmp_path: Path) -> None:
    """A contact in two files gets one plan row, at its first file and line."""
    first = write(tmp_path, "a.csv", csv_text([("id", "tag"), (B, "x"), (A, "vip")]))
    second = write(tmp_path, "b.csv", csv_text([("id", "tags"), (A, "legal; vip")], ";"))
    result = plan_of([first, second], tmp_path)
    assert result.plan.select("contact_id", "tags", "source", "line").rows() == [
        (B, ["x"], str(first), 2),
        (A, ["vip", "legal"], str(first), 3),
    ]
    assert result.stats.duplicate_pairs == 1


def test_excel_apostrophe_is_dropped_once(tmp_path: Path) -> None:
    """One leading apostrophe (Excel's text marker) is dropped from ID and tag cells."""
    result = plan_rows(tmp_path, [("'" + A.upper(), "'=SUM(1), ''quoted")])
    assert result.tags() == {A: ["=SUM(1)", "''quoted"]}
