"""Which column holds the addresses when a file is matched by email: by name in the
languages spreadsheets are exported in, by content, or as named; IDs first."""

from __future__ import annotations

import pytest

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.read.columns import header_index, map_columns

A = "123e4567-e89b-42d3-a456-426614174000"
DEFAULT = ReadOptions()
ADDRESSES = [["ann@example.com", "vip"], ["Bob.Lee+news@Example.org", "x"]]


@pytest.mark.parametrize(
    "name",
    ["email", "E-Mail", "Email Address", "E-Mail-Adresse", "Work Email", "Contact Email",
     "courriel", "Correo electrónico", "email_address"],
)  # fmt: skip
def test_an_email_column_is_found_by_its_name(name: str) -> None:
    columns = map_columns([name, "tags"], "in.csv", DEFAULT)
    assert (columns.match, columns.id_index, columns.tag_indexes) == ("email", 0, (1,))


def test_an_email_column_is_found_by_its_content() -> None:
    """No name fits: the one column of mostly addresses is it, and the plan says so."""
    columns = map_columns(["Kontakt", "tags"], "in.csv", DEFAULT, ADDRESSES)
    assert (columns.match, columns.id_index) == ("email", 0)
    assert columns.id_note == "found by content: 'Kontakt' holds addresses"


def test_ids_come_first() -> None:
    """A file with IDs and addresses is matched by ID, unless --match email."""
    header = ["email", "contact_id", "tags"]
    samples = [["ann@example.com", A, "vip"]]
    assert map_columns(header, "in.csv", DEFAULT, samples).match == "id"
    forced = map_columns(header, "in.csv", ReadOptions(match="email"), samples)
    assert (forced.match, forced.id_index) == ("email", 0)


def test_match_id_never_falls_back_to_addresses() -> None:
    with pytest.raises(InputError, match="no contact ID column"):
        map_columns(["email", "tags"], "in.csv", ReadOptions(match="id"), ADDRESSES)


def test_a_named_email_column_that_is_not_there_gets_the_closest_names() -> None:
    with pytest.raises(InputError, match=r"no column 'Emial' \(from --email-column\) \(did you"):
        map_columns(["E-mail", "tags"], "in.csv", ReadOptions(email_column="Emial"))


def test_match_email_without_an_email_column_says_so() -> None:
    with pytest.raises(InputError, match="no email column"):
        map_columns(["contact_id", "tags"], "in.csv", ReadOptions(match="email"), [[A, "x"]])


def test_two_columns_of_addresses_are_not_guessed_between() -> None:
    rows = [["a@example.com", "b@example.com", "x"]]
    with pytest.raises(InputError, match="several columns hold email addresses"):
        map_columns(["from", "to", "tags"], "in.csv", DEFAULT, rows)


def test_the_header_row_of_an_email_file_is_found_below_titles() -> None:
    rows = [["Trade show scans"], [], ["E-Mail", "Tags"], ["ann@example.com", "vip"]]
    assert header_index(rows, DEFAULT) == 2
    assert header_index(rows, ReadOptions(match="id")) == 0  # IDs only: the first row
