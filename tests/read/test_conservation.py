"""Every input row is counted once: grouped or rejected; blank rows are neither."""

from __future__ import annotations

import math
import re
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from bulktag.read.rules import MISSING_ID, NO_TAGS, TAG_CONTROL, TAG_TOO_LONG
from tests.inputs import A, B, C, csv_text, plan_of, write


def test_blank_lines_are_counted_apart(tmp_path: Path) -> None:
    """Blank lines and rows of empty cells are blank_rows: not read, not rejected."""
    text = f"id;tags\n\n{A};x\n;\n  ;  \n ; ,; \n\n{B};y\n\n"
    result = plan_of([write(tmp_path, "in.csv", text)], tmp_path)
    stats = result.stats
    assert (stats.rows_read, stats.blank_rows, stats.rows_rejected, stats.rejects) == (2, 6, 0, 0)


def test_empty_sheet_rows_are_counted_apart(tmp_path: Path) -> None:
    """Empty spreadsheet rows between data rows are blank_rows, never rejects."""
    path = tmp_path / "in.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["Contact ID", "Tags"])
        sheet.write_row(1, 0, [A, "x"])
        sheet.write_row(3, 0, ["", " "])
        sheet.write_row(5, 0, [B, "y"])
    stats = plan_of([path], tmp_path).stats
    assert (stats.rows_read, stats.blank_rows, stats.rejects) == (2, 3, 0)


def test_null_parquet_records_are_blank(tmp_path: Path) -> None:
    """A Parquet record with neither ID nor tags is blank; an ID without tags is a reject."""
    path = tmp_path / "in.parquet"
    pl.DataFrame({"id": [A, None, B], "tags": [["x"], None, []]}).write_parquet(path)
    result = plan_of([path], tmp_path)
    assert (result.stats.rows_read, result.stats.blank_rows) == (2, 1)
    assert result.reasons() == [(3, NO_TAGS)]


def test_a_row_whose_every_tag_is_invalid_is_rejected(tmp_path: Path) -> None:
    """A valid ID with only bad tags: the row counts as rejected, one reject per bad tag."""
    rows = [("id", "tags"), (A, "x" * 101 + ", bell\x07"), (B, "ok")]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path)
    stats = result.stats
    assert (stats.rows_read, stats.rows_grouped, stats.rows_rejected) == (2, 1, 1)
    assert result.reasons() == [(2, TAG_TOO_LONG), (2, TAG_CONTROL)]
    assert result.tags() == {B: ["ok"]}


def test_a_row_with_some_valid_tags_is_grouped_and_still_rejects_the_rest(tmp_path: Path) -> None:
    """Valid and invalid tags in one row: the row is grouped, the bad tag still a reject."""
    rows = [("id", "tags"), (A, "ok, " + "x" * 101)]
    result = plan_of([write(tmp_path, "in.csv", csv_text(rows))], tmp_path)
    stats = result.stats
    assert (stats.rows_read, stats.rows_grouped, stats.rows_rejected, stats.rejects) == (1, 1, 0, 1)
    assert result.tags() == {A: ["ok"]}


def test_counts_add_up_over_several_inputs(tmp_path: Path) -> None:
    """Per-input row counts add up to rows_read; each input's rows are its own."""
    first = write(tmp_path, "a.csv", f"id,tags\n{A},x\n,y\n\n")
    second = tmp_path / "b.parquet"
    pl.DataFrame({"id": [B, C, None], "tags": ["y", "", None]}).write_parquet(second)
    result = plan_of([first, second], tmp_path)
    assert [item.rows for item in result.stats.inputs] == [2, 2]
    assert result.stats.blank_rows == 2
    assert result.rejects.select("source", "reason").rows() == [
        (str(first), MISSING_ID),
        (str(second), NO_TAGS),
    ]


# A reference implementation of the reading rules, for plain text cells, in plain Python.

POOL = [A, B, C]
SPELLINGS = [str, str.upper, lambda u: "{" + u + "}", lambda u: "urn:uuid:" + u]
BAD_IDS = ["not-a-uuid", "12345", "1.23E+15", "", "  ", A[:-1]]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def reference_id(raw: str) -> str | None:
    text = raw.strip().lower().removeprefix("urn:uuid:")
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if re.fullmatch(r"[0-9a-f]{32}", text):
        text = "-".join((text[:8], text[8:12], text[12:16], text[16:20], text[20:]))
    return text if _UUID.fullmatch(text) else None


def reference_tags(cell: str) -> list[str]:
    pieces = (" ".join(piece.split()) for piece in re.split(r"[,;|]", cell))
    return [piece for piece in pieces if piece]


pieces = st.one_of(
    st.just(""),
    st.text(alphabet="ab -", min_size=1, max_size=5),
    st.sampled_from(["x" * 101, "y" * 100, "  vip  "]),
)
ids = st.one_of(
    st.builds(lambda u, spell: spell(u), st.sampled_from(POOL), st.sampled_from(SPELLINGS)),
    st.sampled_from(BAD_IDS),
)


@st.composite
def cells(draw: st.DrawFn, wide: bool) -> str:
    if not wide:
        return draw(pieces)
    parts = draw(st.lists(pieces, max_size=4))
    separators = draw(st.lists(st.sampled_from([",", ";", "|", " , "]), min_size=len(parts)))
    return "".join(p + s for p, s in zip(parts, separators, strict=False)).rstrip(",;| ")


@st.composite
def inputs(draw: st.DrawFn) -> tuple[bool, str, list[tuple[str, str] | None]]:
    wide = draw(st.booleans())
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    rows = draw(st.lists(st.one_of(st.none(), st.tuples(ids, cells(wide))), max_size=12))
    return wide, delimiter, rows


@settings(max_examples=50, deadline=None)
@given(case=inputs())
def test_plan_matches_a_reference_implementation(
    tmp_path_factory: pytest.TempPathFactory,
    case: tuple[bool, str, list[tuple[str, str] | None]],
) -> None:
    """Random long/wide CSVs: counts conserved, every rejected line reported, same pairs."""
    wide, delimiter, rows = case
    lines = ["contact_id" + delimiter + ("tags" if wide else "tag")]
    lines += ["" if row is None else csv_text([row], delimiter).rstrip("\n") for row in rows]
    folder = tmp_path_factory.mktemp("case")
    result = plan_of([write(folder, "in.csv", "\n".join(lines) + "\n")], folder)

    expected: dict[str, list[str]] = {}
    read = grouped = blank = pairs = 0
    rejected_lines: set[int] = set()
    for line, row in enumerate(rows, start=2):
        if row is None:
            blank += 1
            continue
        contact, tags = reference_id(row[0]), reference_tags(row[1])
        if not row[0].strip() and not tags:
            blank += 1
            continue
        read += 1
        valid = [tag for tag in tags if len(tag) <= 100]
        if contact is None or not valid:
            rejected_lines.add(line)
            continue
        grouped += 1
        pairs += len(valid)
        known = expected.setdefault(contact, [])
        known.extend(tag for tag in dict.fromkeys(valid) if tag not in known)

    stats = result.stats
    assert (stats.rows_read, stats.rows_grouped, stats.blank_rows) == (read, grouped, blank)
    assert stats.rows_read == stats.rows_grouped + stats.rows_rejected
    assert stats.rows_rejected == len(rejected_lines)
    assert rejected_lines <= set(result.rejects["line"])
    assert result.tags() == expected  # same contacts, same order, tags in first-seen order
    assert {(c, t) for c, tags in result.tags().items() for t in tags} == {
        (c, t) for c, tags in expected.items() for t in tags
    }
    assert (stats.pairs, stats.contacts) == (pairs, len(expected))
    assert stats.requests == sum(math.ceil(len(tags) / 100) for tags in expected.values())
