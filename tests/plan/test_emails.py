"""The matching rules (bulktag/plan/emails.py) against a plain dictionary: for any
directory and any rows, each row gets the contact one address names, or the reason."""

from __future__ import annotations

import uuid
from collections import defaultdict

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulktag.plan.emails import (
    AMBIGUOUS_EMAIL,
    NO_SHAPE,
    PLAIN_ADDRESS,
    UNKNOWN_EMAIL,
    keyed_directory,
    not_addresses,
    refused_directory,
    resolve_emails,
    stand_in_directory,
)

LOCAL = st.sampled_from(["ann", "Ann", "bob.lee", "bob.lee+news", "BOB.LEE", "x_y"])
DOMAIN = st.sampled_from(["example.com", "Example.COM", "mail.example.org"])
ADDRESS = st.builds(lambda a, b: f"{a}@{b}", LOCAL, DOMAIN)


def _frame(cells: list[str]) -> pl.LazyFrame:
    """Rows in the one shape, their ID cell the address."""
    return pl.LazyFrame(
        {
            "line": list(range(2, len(cells) + 2)),
            "id": cells,
            "id_number": [False] * len(cells),
            "held": [None] * len(cells),
            "extra": [None] * len(cells),
            "tag0": ["t"] * len(cells),
        },
        schema_overrides={
            "id": pl.String,
            "held": pl.String,
            "extra": pl.String,
            "tag0": pl.String,
        },
    )


@settings(max_examples=200, deadline=None)
@given(
    directory=st.lists(ADDRESS, max_size=12),
    rows=st.lists(
        st.one_of(ADDRESS, st.sampled_from(["", "  ", "nobody@example.net"])).flatmap(
            lambda a: st.sampled_from([a, f" {a} ", a.upper()])
        ),
        max_size=12,
    ),
)
def test_each_row_gets_the_one_contact_its_address_names(
    directory: list[str], rows: list[str]
) -> None:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(len(directory))]
    oracle: dict[str, list[str]] = defaultdict(list)
    for contact_id, address in zip(ids, directory, strict=True):
        oracle[address.strip().lower()].append(contact_id)
    keyed = keyed_directory(
        pl.LazyFrame({"id": ids, "email": directory}, schema={"id": pl.String, "email": pl.String})
    )
    out = resolve_emails(_frame(rows), keyed).collect()
    assert out["line"].to_list() == list(range(2, len(rows) + 2))  # every row, in order
    for cell, got in zip(rows, out.iter_rows(named=True), strict=True):
        key = cell.strip().lower()
        owners = oracle.get(key, [])
        assert got["email"] == cell.strip()
        if not key:
            assert got["held"] is None  # a blank cell: the ID rules say what it is
        elif len(owners) == 1:
            assert (got["id"], got["held"]) == (owners[0], None)
        elif owners:
            assert got["held"].startswith(AMBIGUOUS_EMAIL)
            assert all(owner in got["held"] for owner in owners)
            assert got["id"] == cell
        else:
            assert (got["id"], got["held"]) == (cell, UNKNOWN_EMAIL)


def test_dots_and_plus_tags_are_kept() -> None:
    """Only case and white space are rewritten: bob.lee+news is not boblee."""
    keyed = keyed_directory(
        pl.LazyFrame({"id": [str(uuid.UUID(int=1))], "email": ["bob.lee+news@example.com"]})
    )
    out = resolve_emails(_frame(["boblee@example.com", "bob.lee@example.com"]), keyed).collect()
    assert out["held"].to_list() == [UNKNOWN_EMAIL, UNKNOWN_EMAIL]


def test_a_cell_that_is_no_address_is_told_by_the_validator() -> None:
    """What has an address's shape but is none gets email-validator's words; what has not
    even the shape is told by the pattern."""
    keys = ["not an address", "ann@example.com", "a@@b.com", "ann@", "a..b@example.com"]
    bad = dict(not_addresses(pl.Series(keys)).iter_rows())
    assert set(bad) == {"not an address", "a@@b.com", "ann@", "a..b@example.com"}
    assert bad["not an address"] == NO_SHAPE
    assert bad["a..b@example.com"].startswith("not an email address (")
    assert bad["a..b@example.com"] != NO_SHAPE  # the validator's own words


@pytest.mark.parametrize(
    "cell",
    [
        "x@localhost.test",  # a special-use domain: the validator's list
        "a@xn--zz.com",  # Punycode that is none
        "a@" + "b" * 64 + ".com",  # a label past 63
        "x@" + "b" * 250 + ".com",  # an address past 254
        "a@example.123",  # a top-level domain of digits, and...
        "a@1.2.3.4",  # ...an IP address
    ],
)
def test_what_only_looks_plain_is_left_to_the_validator(cell: str) -> None:
    """Each is refused by email-validator, so never taken by the plain pattern's path."""
    from email_validator import EmailNotValidError, validate_email

    with pytest.raises(EmailNotValidError):
        validate_email(cell, check_deliverability=False)
    assert cell in not_addresses(pl.Series([cell]))["key"].to_list()


@settings(max_examples=300, deadline=None)
@given(st.from_regex(PLAIN_ADDRESS, fullmatch=True))
def test_every_plain_address_is_one_to_the_validator(address: str) -> None:
    """The fast path never takes what email-validator refuses: an address the plain
    pattern takes, within the lengths not_addresses checks, is valid to it."""
    from email_validator import EmailNotValidError, validate_email

    refused = address in not_addresses(pl.Series([address]))["key"].to_list()
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        assert refused
    else:
        assert not refused


def test_a_directory_address_that_is_no_address_matches_nobody() -> None:
    """A contact whose stored email is junk is not found by a junk cell: the reject says
    why, and the contact's ID is not taken."""
    junk = str(uuid.UUID(int=7))
    keyed = keyed_directory(pl.LazyFrame({"id": [junk], "email": ["N/A"]}))
    refused = refused_directory(keyed, not_addresses(pl.Series(["n/a"])))
    out = resolve_emails(_frame(["n/a"]), refused).collect()
    assert out["id"].to_list() == ["n/a"]
    assert out["held"].to_list() == [NO_SHAPE]


def test_validate_stands_one_contact_in_for_each_address() -> None:
    """Two spellings of one address are one contact; what is no address stands for none."""
    stand_in = stand_in_directory([_frame(["Ann@Example.com", "ann@example.com ", "nope"])])
    keyed = keyed_directory(stand_in).collect()
    assert keyed.height == 1
    assert keyed["n"].to_list() == [1]
