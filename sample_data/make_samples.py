"""Regenerate the sample files (deterministic): ``python sample_data/make_samples.py``.

The CRM holds 120 contacts. Each input tags some of them, as the exports a
RevOps team really receives, each with a few bad rows:

- contacts_long.csv         long format (one row per contact and tag), UTF-8, comma, LF
- segment_excel_utf8.csv    wide, Excel "CSV UTF-8": BOM, semicolons, CRLF
- segment_excel_ansi.csv    wide, Excel "CSV": cp1252, semicolons, CRLF, accented tags
- webinar.xlsx              several tag columns (Tag 1, Tag 2, Tag 3), a damaged ID cell
- scoring.parquet           tags as a list[str] column
"""

from __future__ import annotations

import csv
import random
import uuid
from pathlib import Path

import polars as pl
import xlsxwriter

from bulktag.emulator.model import EXPORT_FIELDS, generate_contacts

HERE = Path(__file__).resolve().parent
SEED_CONTACT = "123e4567-e89b-12d3-a456-426614174000"


def unknown(n: int) -> str:
    """A well-formed UUID that is no contact in the sample CRM (LeadLex answers 404)."""
    rng = random.Random(1000 + n)  # noqa: S311  (fixed sample data)
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def main() -> None:
    crm = list(generate_contacts(119, seed=2026))
    with (HERE / "crm_contacts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EXPORT_FIELDS)
        writer.writerow(
            [
                SEED_CONTACT,
                "Example Person",
                "person@example.com",
                "",
                "Partner",
                "Lex & Co",
                "",
                "existing-tag",
                "2025-06-01T09:00:00Z",
            ]
        )
        for contact in crm:
            writer.writerow(contact.export_row(EXPORT_FIELDS))
    ids = [c.id for c in crm]

    # Long format: one row per (contact, tag).
    rows = [("contact_id", "tag")]
    rows += [(SEED_CONTACT, "vip"), (SEED_CONTACT, "legal")]
    for cid in ids[:25]:
        rows += [(cid, "webinar-2026-11"), (cid, "newsletter")]
    rows += [
        (ids[0], "webinar-2026-11"),  # a repeated pair: merged
        ("not-a-uuid", "vip"),  # reject: not a UUID
        (ids[1], ""),  # reject: no tags
        (ids[2], "x" * 120),  # reject: tag too long
        (unknown(1), "vip"),  # unknown to the CRM: 404 not_found
        (ids[3].upper(), "Enterprise"),  # upper-case UUID: canonicalised
    ]
    with (HERE / "contacts_long.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)

    # Excel "CSV UTF-8": BOM, semicolons, CRLF, tags in one cell.
    wide = [("Contact ID", "Tags")]
    wide += [(cid, "Q4-campaign, decision-maker") for cid in ids[20:40]]
    wide += [
        ("{" + ids[40].upper() + "}", "Q4-campaign"),  # braces and upper case: canonicalised
        ("1,23457E+15", "Q4-campaign"),  # reject: damaged by Excel
        ("", "Q4-campaign"),  # reject: missing ID
        (unknown(2), "Q4-campaign"),  # 404
        (ids[41], "  Q4-campaign ;  ;partner\u200b "),  # white space, zero-width, empty piece
    ]
    with (HERE / "segment_excel_utf8.csv").open("w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle, delimiter=";", lineterminator="\r\n").writerows(wide)

    # Excel "CSV" (ANSI = cp1252): semicolons, CRLF, accented tags.
    ansi = [("Kontakt-ID", "Schlagwörter")]
    ansi += [(cid, "Région Île-de-France|Société") for cid in ids[50:65]]
    ansi += [
        ("urn:uuid:" + ids[65], "Région Île-de-France"),
        ("12345", "Société"),  # reject: a number
        (unknown(3), "Société"),  # 404
    ]
    with (HERE / "segment_excel_ansi.csv").open("w", newline="", encoding="cp1252") as handle:
        csv.writer(handle, delimiter=";", lineterminator="\r\n").writerows(ansi)

    # XLSX with several tag columns and a number where an ID should be.
    with xlsxwriter.Workbook(HERE / "webinar.xlsx") as book:
        sheet = book.add_worksheet("Attendees")
        sheet.write_row(0, 0, ["Contact ID", "Name", "Tag 1", "Tag 2", "Tag 3"])
        row = 1
        for index, cid in enumerate(ids[70:90]):
            sheet.write_row(row, 0, [cid, f"Attendee {index}", "webinar-2026-11", "attended", ""])
            row += 1
        sheet.write_number(row, 0, 1.2345678901234e15)  # reject: Excel turned the ID into a number
        sheet.write_row(row, 1, ["Lost ID", "webinar-2026-11"])
        row += 2  # an empty row
        sheet.write_row(row, 0, [unknown(4), "Unknown", "webinar-2026-11", "no-show"])

    # Parquet with a list[str] tags column.
    scoring = pl.DataFrame(
        {
            "contact_id": [*ids[95:115], None, unknown(5)],
            "tags": [["mql", "score-80+"]] * 20 + [["mql"], ["mql"]],
        },
        schema={"contact_id": pl.String, "tags": pl.List(pl.String)},
    )
    scoring.write_parquet(HERE / "scoring.parquet")


if __name__ == "__main__":
    main()
