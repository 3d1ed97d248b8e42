"""The committed files in sample_data/ give the outcomes make_samples.py built them for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulktag.emulator.model import generate_contacts
from bulktag.read.rules import MISSING_ID, NO_TAGS, NOT_UUID, NUMERIC_ID, TAG_TOO_LONG
from tests.inputs import SEED, plan_of, validate

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
#: The CRM contacts make_samples.py draws its inputs from, in the same order.
IDS = [contact.id for contact in generate_contacts(119, seed=2026)]


def test_contacts_long_csv(tmp_path: Path) -> None:
    """Long UTF-8 CSV: 58 rows, 3 rejects, 27 contacts, one repeated pair merged."""
    result = plan_of([SAMPLES / "contacts_long.csv"], tmp_path)
    stats = result.stats
    assert (stats.rows_read, stats.rows_grouped, stats.rows_rejected) == (58, 55, 3)
    assert stats.rejects_by_reason == {NOT_UUID: 1, NO_TAGS: 1, TAG_TOO_LONG: 1}
    assert result.reasons() == [(55, NOT_UUID), (56, NO_TAGS), (57, TAG_TOO_LONG)]
    assert (stats.contacts, stats.pairs, stats.duplicate_pairs, stats.requests) == (27, 55, 1, 27)
    summary = stats.inputs[0]
    assert (summary.format, summary.encoding, summary.encoding_detected) == ("csv", "utf-8", True)
    tags = result.tags()
    assert list(tags)[:2] == [SEED, IDS[0]]
    assert tags[SEED] == ["vip", "legal"]
    assert tags[IDS[3]] == ["webinar-2026-11", "newsletter", "Enterprise"]  # upper-case row


def test_segment_excel_utf8_csv(tmp_path: Path) -> None:
    """Excel "CSV UTF-8" (BOM, ';', CRLF): 25 rows, a damaged and a missing ID, 23 contacts."""
    result = plan_of([SAMPLES / "segment_excel_utf8.csv"], tmp_path)
    stats = result.stats
    assert (stats.rows_read, stats.rows_grouped, stats.rows_rejected) == (25, 23, 2)
    assert stats.rejects_by_reason == {NUMERIC_ID: 1, MISSING_ID: 1}
    assert result.rejects.select("contact_id", "line", "column").rows() == [
        ("1,23457E+15", 23, "Contact ID"),
        (None, 24, "Contact ID"),
    ]
    assert (stats.contacts, stats.pairs) == (23, 44)
    summary = stats.inputs[0]
    assert (summary.encoding, summary.encoding_detected) == ("utf-8-sig", True)
    assert result.delimiter() == ";"
    tags = result.tags()
    assert tags[IDS[20]] == ["Q4-campaign", "decision-maker"]
    assert tags[IDS[40]] == ["Q4-campaign"]  # written "{UPPER-CASE}"
    assert tags[IDS[41]] == ["Q4-campaign", "partner"]  # spaces, zero-width, empty piece


def test_segment_excel_ansi_csv(tmp_path: Path) -> None:
    """Excel "CSV" in cp1252: accents intact, a number for an ID, 17 contacts."""
    result = plan_of([SAMPLES / "segment_excel_ansi.csv"], tmp_path)
    stats = result.stats
    assert (stats.rows_read, stats.rows_grouped, stats.rows_rejected) == (18, 17, 1)
    assert stats.rejects_by_reason == {NUMERIC_ID: 1}
    assert result.rejects.select("contact_id", "tags", "line", "column").rows() == [
        ("12345", "Société", 18, "Kontakt-ID")
    ]
    assert (stats.contacts, stats.pairs) == (17, 32)
    summary = stats.inputs[0]
    assert (summary.encoding, summary.encoding_detected) == ("cp1252", True)
    assert (summary.id_column, summary.tag_columns) == ("Kontakt-ID", ("Schlagwörter",))
    tags = result.tags()
    assert tags[IDS[50]] == ["Région Île-de-France", "Société"]
    assert tags[IDS[65]] == ["Région Île-de-France"]  # written urn:uuid:...


def test_webinar_xlsx(tmp_path: Path) -> None:
    """XLSX, three tag columns: 22 rows, 1 empty row skipped, the number ID at sheet row 22."""
    result = plan_of([SAMPLES / "webinar.xlsx"], tmp_path)
    stats = result.stats
    assert (stats.rows_read, stats.rows_grouped, stats.rows_rejected) == (22, 21, 1)
    assert stats.blank_rows == 1
    assert stats.rejects_by_reason == {NUMERIC_ID: 1}
    assert result.rejects.select("contact_id", "tags", "line").rows() == [
        ("1234567890123400", "webinar-2026-11", 22)
    ]
    assert (stats.contacts, stats.pairs) == (21, 42)
    summary = stats.inputs[0]
    assert (summary.format, summary.encoding, summary.encoding_detected) == ("xlsx", None, False)
    assert summary.tag_columns == ("Tag 1", "Tag 2", "Tag 3")
    assert result.tags()[IDS[70]] == ["webinar-2026-11", "attended"]
    assert result.plan["line"].to_list()[-1] == 24  # after the empty row 23


def test_scoring_parquet(tmp_path: Path) -> None:
    """Parquet with list[str] tags: 22 rows, a null ID, 21 contacts."""
    result = plan_of([SAMPLES / "scoring.parquet"], tmp_path)
    stats = result.stats
    assert (stats.rows_read, stats.rows_grouped, stats.rows_rejected) == (22, 21, 1)
    assert stats.rejects_by_reason == {MISSING_ID: 1}
    assert result.reasons() == [(21, MISSING_ID)]
    assert (stats.contacts, stats.pairs) == (21, 41)
    summary = stats.inputs[0]
    assert (summary.format, summary.encoding, summary.encoding_detected) == ("parquet", None, False)
    assert result.tags()[IDS[95]] == ["mql", "score-80+"]


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("contacts_long.csv", 58),
        ("segment_excel_utf8.csv", 25),
        ("segment_excel_ansi.csv", 18),
        ("webinar.xlsx", 22),
        ("scoring.parquet", 22),
    ],
)
def test_validate_reports_each_sample(
    capsys: pytest.CaptureFixture[str], name: str, rows: int
) -> None:
    """`bulktag validate` on each sample: exit 1 (each has rejects), its rows counted."""
    code, out, err = validate(capsys, SAMPLES / name)
    assert (code, err) == (1, "")
    assert out.startswith(f"input {SAMPLES / name}: ")
    assert f"rows: {rows:,} read" in out


def test_all_samples_in_one_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """Together: 145 rows, 8 rejects, 104 contacts (the CSVs share contacts 20 to 24)."""
    names = [
        "contacts_long.csv",
        "segment_excel_utf8.csv",
        "segment_excel_ansi.csv",
        "webinar.xlsx",
        "scoring.parquet",
    ]
    code, out, _ = validate(capsys, *(SAMPLES / name for name in names), "--json")
    assert code == 1
    stats = json.loads(out)
    assert (stats["rows_read"], stats["rows_grouped"], stats["rows_rejected"]) == (145, 137, 8)
    assert (stats["rejects"], stats["blank_rows"], stats["contacts"]) == (8, 1, 104)
    assert [item["rows"] for item in stats["inputs"]] == [58, 25, 18, 22, 22]
