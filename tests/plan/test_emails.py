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
    UNKNOWN_EMAIL,
    keyed_directory,
    resolve_emails,
    stand_in_directory,
    unknown_reasons,
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
    bad = unknown_reasons(["not an address", "ann@example.com", "a@@b.com", "ann@"])
    assert set(bad) == {"not an address", "a@@b.com", "ann@"}
    assert all(reason.startswith("not an email address (") for reason in bad.values())


def test_validate_stands_one_contact_in_for_each_address() -> None:
    """Two spellings of one address are one contact; what is no address stands for none."""
    stand_in = stand_in_directory([_frame(["Ann@Example.com", "ann@example.com ", "nope"])])
    keyed = keyed_directory(stand_in).collect()
    assert keyed.height == 1
    assert keyed["n"].to_list() == [1]


def test_past_the_validators_bound_the_shape_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    """More unknown addresses than the validator is run on: the rest are told by shape."""
    import bulktag.plan.emails

    monkeypatch.setattr(bulktag.plan.emails, "VALIDATED_AT_MOST", 1)
    bad = unknown_reasons(["ann@", "no address", "bob@example.com"])
    assert set(bad) == {"ann@", "no address"}
    assert bad["no address"] == "not an email address"
