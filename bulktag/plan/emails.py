"""Contacts by email: an input's addresses matched to contact IDs through the workspace's
directory (its ``id, email`` pairs, from the export), as polars joins.

The rules (README, "Contacts by email"):

- an address compares after trimming white space and lower-casing, on both sides; nothing
  else is rewritten (dots and ``+tags`` are kept);
- an address one contact has is that contact: the row goes on as if it held its ID;
- a cell that is no address at all (email-validator's syntax check, never DNS) is a
  reject saying so, even when a contact's stored email is that same text;
- an address no contact has is a reject (``unknown_email``); neither costs an add-tags
  call;
- an address two or more contacts share is a reject (``ambiguous_email``) naming their
  IDs: bulktag never guesses.

The row's ``id`` becomes the contact's ID and ``email`` keeps the address as given, for
the results; an unmatched row keeps its cell in ``id`` and its reason in ``held`` (as a
reject's reason). Rows of one person (one address in any case) then group into one
contact as IDs do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import polars as pl

from bulktag.read.columns import ADDRESS_SHAPE
from bulktag.read.normalise import uuid_text

__all__ = [
    "AMBIGUOUS_EMAIL",
    "NOT_AN_EMAIL",
    "NO_SHAPE",
    "PLAIN_ADDRESS",
    "UNKNOWN_EMAIL",
    "email_key",
    "given_address",
    "keyed_directory",
    "looks_like_an_address",
    "not_addresses",
    "refused_directory",
    "resolve_emails",
    "stand_in_directory",
    "waiting_directory",
]

UNKNOWN_EMAIL = "unknown_email: no contact in the workspace has this address"
AMBIGUOUS_EMAIL = "ambiguous_email"
NOT_AN_EMAIL = "not an email address"
#: The reason of a cell that has not even an address's shape (ADDRESS_SHAPE).
NO_SHAPE = f"{NOT_AN_EMAIL} (not of the form name@domain.tld)"
_LABEL = r"[a-z0-9]+(?:-[a-z0-9]+)*"  # a hostname label, no "--" (Punycode's is the validator's)
#: A plain address, beyond doubt (email-validator takes every one; the lengths are checked
#: apart): an ASCII dot-atom of common characters, hostname labels, a top-level domain of
#: letters. On an address as it compares (lower case).
PLAIN_ADDRESS = rf"^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}$"
_MAX_LENGTH = 254  # an address's, in bytes (RFC 5321, as email-validator checks it)


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


def refused_directory(directory: pl.LazyFrame, refused: pl.DataFrame) -> pl.LazyFrame:
    """The keyed directory (:func:`keyed_directory`) with the addresses in ``refused``
    (``key, reason``: :func:`not_addresses`) matched to no contact, whatever the directory
    holds: their rows are rejects with the reason (a contact whose stored email is junk
    is never tagged from a junk cell)."""
    if refused.is_empty():
        return directory
    held = _no_contact(refused.lazy())
    kept = directory.select("key", "contact", "n", "shared").join(held, on="key", how="anti")
    return pl.concat([kept, held], how="vertical_relaxed")


def given_address(*, apostrophe: bool) -> pl.Expr:
    """An input's email cell (its ``id``) as given: trimmed, and without Excel's text
    marker when the format may carry one (``apostrophe``). Its key is its lower case."""
    given = pl.col("id").str.strip_chars()
    return given.str.strip_prefix("'") if apostrophe else given


def waiting_directory(keys: pl.Series, reason: str) -> pl.LazyFrame:
    """A keyed directory (:func:`keyed_directory`'s columns) in which every address of
    ``keys`` has no contact and ``reason``: the directory could not be read whole, so no
    address can be told one contact's (one it has not reached may be shared) and every
    row matched by email waits, a reject with ``reason``."""
    given = pl.DataFrame({"key": keys}, schema={"key": pl.String}).lazy().unique()
    return _no_contact(given.with_columns(reason=pl.lit(reason)))


def _no_contact(held: pl.LazyFrame) -> pl.LazyFrame:
    """``key, reason`` as keyed directory rows of no contact: each key's rows a reject
    with its reason (the directory's ``shared``)."""
    return held.select(
        "key", contact=pl.lit(None, pl.String), n=pl.lit(0, pl.UInt32), shared="reason"
    )


def resolve_emails(
    frame: pl.LazyFrame, directory: pl.LazyFrame, *, apostrophe: bool = False
) -> pl.LazyFrame:
    """``frame`` (an input in the one shape, its ``id`` the email cell) matched against the
    keyed directory (:func:`keyed_directory`): ``id`` the contact's where one contact has
    the address, ``held`` the reason where none or several do, ``email`` the address as
    given. ``apostrophe``: the format may carry Excel's text marker before a cell."""
    given = given_address(apostrophe=apostrophe)
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


def not_addresses(keys: pl.Series) -> pl.DataFrame:
    """Of distinct addresses (as they compare: ``email_key``), those that are no address at
    all, with the reason (``key, reason``): a syntax check only, never DNS.

    Vectorised where the numbers are: what has no address's shape (ADDRESS_SHAPE) is none,
    and what is a plain address (PLAIN_ADDRESS, within the lengths) is one, both told by a
    pattern over the distinct values; only what lies between (international, quoted,
    unusual characters) goes through email-validator, one value at a time. Every value the
    plain pattern takes, email-validator takes too (tests/plan/test_emails.py)."""
    from email_validator import (  # noqa: PLC0415  (only when matching by email: it loads dnspython)
        SPECIAL_USE_DOMAIN_NAMES,
        EmailNotValidError,
        validate_email,
    )

    key = pl.col("key")
    special = r"\.(?:" + "|".join(re.escape(name) for name in SPECIAL_USE_DOMAIN_NAMES) + r")$"
    judged = (
        pl.DataFrame({"key": keys}, schema={"key": pl.String})
        .filter(key.is_not_null() & (key != ""))
        .unique()
        .with_columns(shaped=key.str.contains(ADDRESS_SHAPE))
        .with_columns(
            plain=pl.col("shaped")
            & key.str.contains(PLAIN_ADDRESS)
            & (key.str.len_bytes() <= _MAX_LENGTH)
            & key.str.contains(r"^[^@]{1,64}@")  # the local part's bound
            & ~key.str.contains(r"[^.@]{64}")  # a domain label's bound
            & ~key.str.contains(special)  # special-use domains: the validator's list
        )
    )
    told = [
        (address, f"{NOT_AN_EMAIL} ({exc})")
        for address in judged.filter(pl.col("shaped") & ~pl.col("plain"))["key"]
        if (exc := _invalid(address, validate_email, EmailNotValidError)) is not None
    ]
    return pl.concat(
        [
            judged.filter(~pl.col("shaped")).select("key", reason=pl.lit(NO_SHAPE)),
            pl.DataFrame(told, schema={"key": pl.String, "reason": pl.String}, orient="row"),
        ]
    )


def _invalid(
    address: str, validate: Callable[..., object], invalid: type[Exception]
) -> Exception | None:
    try:
        validate(address, check_deliverability=False)
    except invalid as exc:
        return exc
    return None


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
