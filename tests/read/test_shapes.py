"""Shapes: long, wide and several tag columns; finding the ID and tags columns by their header."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.read.columns import map_columns
from bulktag.read.rules import NO_TAGS, TAG_TOO_LONG
from tests.inputs import A, B, assert_one_error_line, csv_text, plan_of, validate, write

DEFAULT = ReadOptions()


def test_long_shape_one_row_per_contact_and_tag(tmp_path: Path) -> None:
    """Long format: each row adds one tag; a contact's rows are grouped."""
    rows = [("contact_id", "tag"), (A, "vip"), (B, "legal"), (A, "partner")]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path)
    assert result.tags() == {A: ["vip", "partner"], B: ["legal"]}
    assert result.stats.rows_grouped == 3


@pytest.mark.parametrize(
    "cell", ["vip,legal;partner", "vip | legal | partner", "vip;legal;partner"]
)
def test_wide_shape_splits_a_tags_cell(tmp_path: Path, cell: str) -> None:
    """Wide format: one tags cell, split on , ; and |."""
    path = write(tmp_path, "in.csv", csv_text([("id", "tags"), (A, cell)], "\t"))
    assert plan_of([path], tmp_path).tags() == {A: ["vip", "legal", "partner"]}


def test_several_tag_columns_in_order_of_their_number(tmp_path: Path) -> None:
    """tag1, Tag 2, tags_3, ... label 10 are all read, ordered by number, not by position."""
    rows = [
        ("tags_3", "Contact ID", "Tag 2", "name", "label 10", "tag1"),
        ("c", A, "b", "Ann", "j", "a"),
        ("", B, "", "Bob", "", "only"),
    ]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path)
    assert result.frames[0].columns.tag_names == ("tag1", "Tag 2", "tags_3", "label 10")
    assert result.tags() == {A: ["a", "b", "c", "j"], B: ["only"]}
    assert result.stats.inputs[0].tag_columns == ("tag1", "Tag 2", "tags_3", "label 10")


def test_several_tag_columns_each_split(tmp_path: Path) -> None:
    """Each tag cell is split; rejects name every tags column and join the raw cells."""
    rows = [("id", "tag1", "tag2"), (A, "a;b", "c, " + "x" * 101), (B, " ; ", ",")]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path)
    assert result.tags() == {A: ["a", "b", "c"]}
    assert result.rejects.select("tags", "line", "column", "reason").rows() == [
        ("x" * 101, 2, "tag1, tag2", TAG_TOO_LONG),
        (" ; , ,", 3, "tag1, tag2", NO_TAGS),
    ]


def test_empty_separators_keep_a_cell_as_one_tag(tmp_path: Path) -> None:
    """tag_separators="" : "Smith, Jones & Co; London" is one tag."""
    rows = [("id", "tags"), (A, "Smith, Jones & Co; London|UK")]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path, tag_separators="")
    assert result.tags() == {A: ["Smith, Jones & Co; London|UK"]}


def test_custom_separators_replace_the_default_ones(tmp_path: Path) -> None:
    """tag_separators="/" splits on "/" only; commas stay inside tags."""
    rows = [("id", "tags"), (A, "a,b/c;d")]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path, tag_separators="/")
    assert result.tags() == {A: ["a,b", "c;d"]}


@pytest.mark.parametrize(
    "header",
    [
        ["Contact ID", "Tags"],
        ["contact-id", "tag"],
        ["UUID", "Labels"],
        ["id", "Segments"],
        ["\ufeff CONTACT_ID\u200b ", " TAGS "],
        ["Kontakt-ID", "Schlagwörter"],
        ["contact.id", "Étiquettes"],
        ["name", "id", "tags_list"],
    ],
)
def test_header_names_are_normalised_and_aliased(header: list[str]) -> None:
    """Case, spaces, dashes, dots, BOM and zero-width characters do not hide a column."""
    columns = map_columns(header, "in.csv", DEFAULT)
    assert columns.id_name == header[-2]
    assert columns.tag_names == (header[-1],)


def test_a_preferred_alias_wins_over_a_later_one() -> None:
    """contact_id is the ID even when an "id" column comes first; "tags" beats "label"."""
    columns = map_columns(["id", "label", "contact_id", "tags"], "in.csv", DEFAULT)
    assert (columns.id_index, columns.tag_indexes) == (2, (3,))


def test_id_and_tags_columns_can_be_named(tmp_path: Path) -> None:
    """--id-column and --tags-column pick columns no alias matches, in the order given."""
    rows = [("Person", "Ref", "Q", "P"), ("Ann", A, "q1", "p1")]
    path = write(tmp_path, "in.csv", csv_text(rows))
    result = plan_of([path], tmp_path, id_column="ref", tags_columns=("p", "Q"))
    assert result.tags() == {A: ["p1", "q1"]}
    assert (result.stats.inputs[0].id_column, result.stats.inputs[0].tag_columns) == (
        "Ref",
        ("P", "Q"),
    )


def test_naming_a_column_overrides_an_alias() -> None:
    """--id-column "uuid" beats a contact_id column; the ID column is never a tags column."""
    options = ReadOptions(id_column="uuid", tags_columns=("tags", "UUID"))
    columns = map_columns(["contact_id", "uuid", "tags"], "in.csv", options)
    assert (columns.id_index, columns.tag_indexes) == (1, (2,))


@pytest.mark.parametrize(
    ("header", "options", "columns"),
    [
        (["ID", "id", "tags"], DEFAULT, "columns 1 and 2"),
        (["contact_id", "Tags", "name", "TAGS"], DEFAULT, "columns 2 and 4"),
        (["a", "Ref", "tags", "ref"], ReadOptions(id_column="REF"), "columns 2 and 4"),
    ],
)
def test_a_duplicated_chosen_column_is_an_input_error(
    header: list[str], options: ReadOptions, columns: str
) -> None:
    """Two columns with the same (normalised) name for a role: refused, naming both numbers."""
    with pytest.raises(InputError, match=columns) as raised:
        map_columns(header, "in.csv", options)
    assert str(raised.value).startswith("in.csv:1: ")


def test_a_duplicated_column_that_is_not_used_is_fine() -> None:
    """Two "name" columns do not matter when neither is the ID or the tags."""
    columns = map_columns(["name", "contact_id", "Name", "tags"], "in.csv", DEFAULT)
    assert (columns.id_index, columns.tag_indexes) == (1, (3,))


@pytest.mark.parametrize(
    ("header", "options", "wanted"),
    [
        (["name", "tags"], DEFAULT, "no contact ID column"),
        (["contact_id", "email"], DEFAULT, "no tags column"),
        (["contact_id", "tags"], ReadOptions(id_column="ref"), "no column 'ref'"),
        (["contact_id", "tags"], ReadOptions(tags_columns=("tags", "more")), "no column 'more'"),
    ],
)
def test_a_missing_column_lists_the_columns_found(
    header: list[str], options: ReadOptions, wanted: str
) -> None:
    """No ID or tags column: an InputError that says which and lists the header."""
    with pytest.raises(InputError, match=wanted) as raised:
        map_columns(header, "in.csv", options)
    assert f"columns found: {header[0]!r}, {header[1]!r}" in str(raised.value)


@pytest.mark.parametrize(
    ("header", "message"),
    [("name;tags", "no contact ID column"), ("contact_id;email", "no tags column")],
)
def test_validate_exits_65_on_a_missing_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str, message: str
) -> None:
    """Through `bulktag validate`: exit 65, one line naming the file, line 1 and the columns."""
    path = write(tmp_path, "in.csv", f"{header}\nAnn Lee;vip\n")
    code, out, err = validate(capsys, path)
    assert code == 65
    assert out == ""
    assert_one_error_line(err, f"{path}:1:", message, "columns found: ")


def test_validate_json_reports_the_columns_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`validate --json` names the ID and tag columns each input was read with."""
    path = write(tmp_path, "in.csv", csv_text([("UUID", "Tag 1", "Tag 2"), (A, "a", "b")]))
    code, out, _ = validate(capsys, path, "--json")
    assert code == 0
    (summary,) = json.loads(out)["inputs"]
    assert (summary["id_column"], summary["tag_columns"]) == ("UUID", ["Tag 1", "Tag 2"])
