"""Contacts by email: an input's addresses matched to contact IDs through the workspace's
directory (its ``id, email`` pairs, from the export), as polars joins.

The rules (README, "Contacts by email"):

- an address compares after trimming white space and lower-casing, on both sides; nothing
  else is rewritten (dots and ``+tags`` are kept);
- an address one contact has is that contact: the row goes on as if it held its ID;
- an address no contact has is a reject (``unknown_email``), or, when it is no address
  at all, a reject saying so; neither costs an add-tags call;
- an address two or more contacts share is a reject (``ambiguous_email``) naming their
  IDs: bulktag never guesses.

The row's ``id`` becomes the contact's ID and ``email`` keeps the address as given, for
the results; an unmatched row keeps its cell in ``id`` and its reason in ``held`` (as a
reject's reason). Rows of one person (one address in any case) then group into one
contact as IDs do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import polars as pl

from bulktag.read.columns import ADDRESS_SHAPE
from bulktag.read.normalise import uuid_text

__all__ = [
    "AMBIGUOUS_EMAIL",
    "NOT_AN_EMAIL",
    "UNKNOWN_EMAIL",
    "email_key",
    "keyed_directory",
    "looks_like_an_address",
    "resolve_emails",
    "stand_in_directory",
    "unknown_reasons",
]

UNKNOWN_EMAIL = "unknown_email: no contact in the workspace has this address"
AMBIGUOUS_EMAIL = "ambiguous_email"
NOT_AN_EMAIL = "not an email address"
#: Distinct unknown addresses checked one by one with the validator; past this, a pattern
#: tells an address from what is none (both are rejects: only the words differ).
VALIDATED_AT_MOST = 50_000


def email_key(cell: pl.Expr) -> pl.Expr:
    """An address as it compares: trimmed, lower-cased (no other rewriting)."""
    return cell.str.strip_chars().str.to_lowercase()


def keyed_directory(directory: pl.LazyFrame) -> pl.LazyFrame:
    """The directory (``id, email``, as exported) by address: ``key``, the ``contact``
    that has it (none when several do), how many do (``n``) and, where several do, the
    reject's ``shared`` reason naming them all (sorted). A contact without an address is
    left out.

    Cheap aggregations for every address (the first ID, a count); the list of IDs only
    for the few addresses several contacts share: a list per address was most of the
    time of matching 1M rows against 500,000 contacts."""
    people = directory.select("id", key=email_key(pl.col("email"))).filter(
        pl.col("key").is_not_null() & (pl.col("key") != "")
    )  # one row a contact: the export's pages are de-duplicated by ID
    counted = people.group_by("key").agg(contact=pl.col("id").first(), n=pl.len())
    several = counted.filter(pl.col("n") > 1).select("key", "n")
    shared = (
        people.join(several, on="key", how="inner")
        .group_by("key")
        .agg(ids=pl.col("id").sort().str.join(", "), n=pl.col("n").first())
        .select(
            "key",
            shared=pl.concat_str(
                pl.lit(AMBIGUOUS_EMAIL + ": "),
                pl.col("n").cast(pl.String),
                pl.lit(" contacts have this address ("),
                pl.col("ids"),
                pl.lit("); bulktag never guesses: give the row one of their IDs"),
            ),
        )
    )
    return counted.join(shared, on="key", how="left").with_columns(
        contact=pl.when(pl.col("n") == 1).then(pl.col("contact"))  # none for a shared one
    )


def resolve_emails(
    frame: pl.LazyFrame, directory: pl.LazyFrame, *, apostrophe: bool = False
) -> pl.LazyFrame:
    """``frame`` (an input in the one shape, its ``id`` the email cell) matched against the
    keyed directory (:func:`keyed_directory`): ``id`` the contact's where one contact has
    the address, ``held`` the reason where none or several do, ``email`` the address as
    given. ``apostrophe``: the format may carry Excel's text marker before a cell."""
    given = pl.col("id").str.strip_chars()
    if apostrophe:
        given = given.str.strip_prefix("'")
    matched = frame.with_columns(email=given, __key=given.str.to_lowercase()).join(
        directory.select("key", "contact", "shared"),
        left_on="__key",
        right_on="key",
        how="left",
        maintain_order="left",
    )
    # a blank cell is in no directory (its key is null or ""): the ID rules tell it
    unknown = pl.col("contact").is_null() & pl.col("shared").is_null() & (pl.col("__key") != "")
    reason = pl.when(unknown).then(pl.lit(UNKNOWN_EMAIL)).otherwise(pl.col("shared"))
    return matched.with_columns(
        id=pl.coalesce("contact", "id"), held=pl.coalesce("held", reason)
    ).drop("__key", "contact", "shared")


def unknown_reasons(addresses: Iterable[str]) -> dict[str, str]:
    """Of the addresses no contact has, those that are no address at all, with the reason
    (a syntax check only, never DNS: email-validator's, for up to VALIDATED_AT_MOST; the
    shape, ADDRESS_SHAPE, past it)."""
    from email_validator import EmailNotValidError, validate_email  # noqa: PLC0415  (only when an address is unknown: it loads dnspython)

    found: dict[str, str] = {}
    shape = re.compile(ADDRESS_SHAPE)
    for count, address in enumerate(addresses):
        if count >= VALIDATED_AT_MOST:
            if not shape.match(address):
                found[address] = NOT_AN_EMAIL
            continue
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            found[address] = f"{NOT_AN_EMAIL} ({exc})"
    return found


def looks_like_an_address(cell: pl.Expr) -> pl.Expr:
    """Whether ``cell`` has an address's shape at the least (ADDRESS_SHAPE, which also
    finds an email column by its content)."""
    return cell.str.strip_chars().str.contains(ADDRESS_SHAPE)


def stand_in_directory(frames: Sequence[pl.LazyFrame]) -> pl.LazyFrame:
    """A directory made of the inputs' own addresses (``id`` cells), each standing for a
    contact of its own, for ``bulktag validate``, which reads none: rows group by address
    as they would by contact, and what is no address is a reject."""
    given = [f.select(email=pl.col("id").str.strip_chars().str.strip_prefix("'")) for f in frames]
    valid = pl.concat(given).filter(looks_like_an_address(pl.col("email")))
    addresses = valid.select(email=email_key(pl.col("email"))).unique()  # one a person
    key = pl.col("email")
    number = key.hash(1).cast(pl.UInt128) * pl.lit(1 << 64, dtype=pl.UInt128) + key.hash(2).cast(
        pl.UInt128
    )
    return addresses.select(id=uuid_text(number), email="email")
