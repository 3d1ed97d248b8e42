"""Which columns hold the contact ID and the tags, as a person named them.

The header row is found below title lines (the first of the first 20 rows that names an
ID column; ``--header-row`` forces it). The ID column is found by its name (aliases,
without CRM prefixes like ``Person -`` or suffixes like ``__c``) or, when no name fits or
the named column holds almost no UUIDs, by its content; the tag columns by their names
(``tags``, ``tag1``...). A name given on the command line that is not there gets the
closest names found (did you mean).

A file with no ID column but an email column (by name: ``email``, ``E-Mail-Adresse``,
``Work Email``...; or by content) is matched by email (``--match email`` forces it, and
``--email-column`` names the column): its ``id`` is then the email cell.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.read.rules import canonical_id_text

__all__ = [
    "ADDRESS_SHAPE",
    "EMAIL_ALIASES",
    "ColumnMap",
    "header_index",
    "listed",
    "map_columns",
    "normalise_header",
    "uuid_shares",
]

ID_ALIASES = (
    "contact_id",
    "contactid",
    "contact_uuid",
    "leadlex_id",
    "leadlex_contact_id",
    "crm_id",
    "id",
    "uuid",
    "guid",
    "contact",
    "record_id",
    # Localised spreadsheet exports
    "kontakt_id",
    "id_contact",
    "id_du_contact",
    "id_contacto",
    "id_contatto",
)
EMAIL_ALIASES = (
    "email",
    "e_mail",
    "email_address",
    "e_mail_address",
    "emailaddress",
    "mail",
    "work_email",
    "business_email",
    "primary_email",
    "email_1",
    # Localised spreadsheet exports
    "e_mail_adresse",
    "email_adresse",
    "emailadresse",
    "mail_adresse",
    "courriel",
    "adresse_e_mail",
    "adresse_email",
    "correo",
    "correo_electrónico",
    "correo_electronico",
)
#: What an email address looks like at the least (text, one @, a dotted domain, no white
#: space): how an email column is found by its content, and what ``validate`` counts.
ADDRESS_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_ADDRESS = re.compile(ADDRESS_SHAPE)
TAG_ALIASES = (
    "tags",
    "tag",
    "tag_list",
    "tags_list",
    "labels",
    "label",
    "segments",
    "segment",
    "schlagwörter",
    "schlagworte",
    "étiquettes",
    "etiquettes",
    "etiquetas",
)
_NUMBERED_TAG = re.compile(r"^(?:tags?|labels?)_?(\d+)$")
_ZERO_WIDTH_OR_BOM = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
#: Prefixes CRMs put before a field's name (Pipedrive's "Person - Labels") and Salesforce's
#: suffix for custom fields ("Tags__c"): a header is matched with and without them.
_ENTITY_PREFIX = re.compile(r"^(?:person|contact|lead)_+")
_CUSTOM_SUFFIX = re.compile(r"_+c$")
#: The header is looked for in this many first rows (titles, dates, blank rows above it).
HEADER_SEARCH_ROWS = 20
#: Data rows sampled to find the ID column by its content.
SAMPLE_ROWS = 1_000
#: A column holding at least this share of UUIDs (of its non-empty sample values) holds
#: contact IDs; an aliased column with at most ALMOST_NONE gives way to such a column.
MOSTLY = 0.5
ALMOST_NONE = 0.1


def normalise_header(name: str) -> str:
    """Trim, case-fold, spaces / dashes / dots to ``_``: "Contact ID" -> "contact_id"."""
    cleaned = _ZERO_WIDTH_OR_BOM.sub("", name).strip().casefold()
    return re.sub(r"[\s\-./]+", "_", cleaned).strip("_")


def _bare_header(normalised: str) -> str:
    """A normalised header without a CRM's entity prefix and Salesforce's ``__c``."""
    return _CUSTOM_SUFFIX.sub("", _ENTITY_PREFIX.sub("", normalised)) or normalised


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which header columns hold the contact ID and the tags."""

    header: tuple[str, ...]
    id_index: int
    tag_indexes: tuple[int, ...]
    #: How the ID column was found, when not by its name (e.g. by its content).
    id_note: str | None = None
    #: What the ID column holds: contact IDs, or email addresses to match.
    match: Literal["id", "email"] = "id"

    @property
    def id_name(self) -> str:
        return self.header[self.id_index]

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(self.header[i] for i in self.tag_indexes)


def _find(
    normalised: list[str], wanted: str, header: Sequence[str], source: str, role: str
) -> int | None:
    hits = [i for i, name in enumerate(normalised) if name == wanted]
    if len(hits) > 1:
        places = " and ".join(str(i + 1) for i in hits)
        raise InputError(
            f"the {role} column {header[hits[0]]!r} appears {len(hits)} times (columns {places}); "
            f"rename one or name the column to use",
            source=source,
            line=1,
        )
    return hits[0] if hits else None


def _alias(
    normalised: list[str], aliases: Sequence[str], header: Sequence[str], source: str, role: str
) -> int | None:
    """The first alias a header names: as written, else without prefix and suffix."""
    for alias in aliases:
        index = _find(normalised, alias, header, source, role)
        if index is not None:
            return index
    bare = [_bare_header(name) for name in normalised]
    for alias in aliases:
        if alias in bare:
            return bare.index(alias)
    return None


def listed(header: Sequence[str], most: int = 20) -> str:
    """Column names for a message: quoted, each at most 40 characters, at most ``most``."""
    shown = [repr(h if len(h) <= 40 else h[:39] + "…") for h in header[:most]]
    more = f" and {len(header) - most} more" if len(header) > most else ""
    return (", ".join(shown) + more) or "none"


def _missing(name: str, header: Sequence[str], flag: str, found: str) -> str:
    """``no column NAME (from FLAG)``, with the closest names a typo may have meant."""
    close = difflib.get_close_matches(
        normalise_header(name), [normalise_header(h) for h in header], n=3, cutoff=0.6
    )
    named = [h for h in header if normalise_header(h) in close]
    hint = f" (did you mean {' or '.join(repr(h) for h in named)}?)" if named else ""
    return f"no column {name!r} (from {flag}){hint}; columns found: {found}"


def header_index(rows: Sequence[Sequence[str | None]], options: ReadOptions) -> int | None:
    """Which of the first rows is the header: the first of HEADER_SEARCH_ROWS that names an
    ID column (an alias, or ``--id-column``); else the first row that is not empty."""
    wanted = {normalise_header(options.id_column)} if options.id_column else set(ID_ALIASES)
    if options.match != "id" and not options.id_column:
        wanted |= (
            {normalise_header(options.email_column)} if options.email_column else set(EMAIL_ALIASES)
        )
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        names = [normalise_header(cell) for cell in row if cell]
        if any(name in wanted or _bare_header(name) in wanted for name in names):
            return index
    return next((i for i, row in enumerate(rows) if any(c and c.strip() for c in row)), None)


def uuid_shares(samples: Sequence[Sequence[str | None]], width: int) -> list[float | None]:
    """Per column: the share of its non-empty sample values that are contact IDs (UUIDs in
    any form bulktag accepts); ``None`` for a column with no value."""
    shares: list[float | None] = []
    for column in range(width):
        values = [row[column] for row in samples if column < len(row)]
        filled = [v for v in values if v is not None and v.strip()]
        if not filled:
            shares.append(None)
            continue
        uuids = sum(canonical_id_text(v.removeprefix("'")) is not None for v in filled)
        shares.append(uuids / len(filled))
    return shares


def _by_content(
    alias: int | None,
    *,
    header: Sequence[str],
    normalised: list[str],
    shares: list[float | None],
    source: str,
    found: str,
) -> tuple[int | None, str | None]:
    """The ID column: the alias unless it holds (almost) no UUIDs while another column
    holds mostly UUIDs; that column then, said so in the note."""
    alias_share = shares[alias] if alias is not None else None
    if alias is not None and (alias_share or 0.0) > ALMOST_NONE:
        return alias, None
    tags = set(TAG_ALIASES)
    candidates = [
        i
        for i, share in enumerate(shares)
        if share is not None
        and share >= MOSTLY
        and i != alias
        and _bare_header(normalised[i]) not in tags
    ]
    if len(candidates) > 1:
        named = [i for i in candidates if re.search(r"contact|leadlex|uuid", normalised[i])]
        if len(named) != 1:
            listed = ", ".join(repr(header[i]) for i in candidates)
            raise InputError(
                f"several columns hold UUIDs ({listed}) and none is named as the contact ID "
                "column: name it with --id-column",
                source=source,
            )
        candidates = named
    if candidates:
        chosen = candidates[0]
        why = f"found by content: {header[chosen]!r} holds UUIDs"
        if alias is not None:
            why += f", {header[alias]!r} does not"
        return chosen, why
    if alias is not None:
        return alias, None  # its values are damaged (numbers...): the rejects say how
    return None, None


def email_shares(samples: Sequence[Sequence[str | None]], width: int) -> list[float]:
    """Per column: the share of its non-empty sample values shaped like an address."""
    shares: list[float] = []
    for column in range(width):
        values = [row[column] for row in samples if column < len(row)]
        filled = [v.strip().removeprefix("'") for v in values if v is not None and v.strip()]
        hits = sum(_ADDRESS.match(v) is not None for v in filled)
        shares.append(hits / len(filled) if filled else 0.0)
    return shares


def _email_column(
    normalised: list[str],
    header: Sequence[str],
    source: str,
    options: ReadOptions,
    samples: Sequence[Sequence[str | None]],
) -> tuple[int, str | None] | None:
    """The email column: ``--email-column``, else by name, else the one column of mostly
    addresses (None: there is none)."""
    if options.email_column:
        index = _find(normalised, normalise_header(options.email_column), header, source, "email")
        if index is None:
            message = _missing(options.email_column, header, "--email-column", listed(header))
            raise InputError(message, source=source)
        return index, None
    alias = _alias(normalised, EMAIL_ALIASES, header, source, "email")
    if alias is not None:
        return alias, None
    tags = set(TAG_ALIASES)
    shares = email_shares(samples, len(header))
    candidates = [
        i
        for i, share in enumerate(shares)
        if share >= MOSTLY and _bare_header(normalised[i]) not in tags
    ]
    if len(candidates) > 1:
        names = ", ".join(repr(header[i]) for i in candidates)
        raise InputError(
            f"several columns hold email addresses ({names}): name one with --email-column",
            source=source,
        )
    if candidates:
        return candidates[0], f"found by content: {header[candidates[0]]!r} holds addresses"
    return None


def map_columns(
    header: Sequence[str],
    source: str,
    options: ReadOptions,
    samples: Sequence[Sequence[str | None]] = (),
) -> ColumnMap:
    """Match the header through normalisation and the alias tables (or the options); the ID
    column may also be found by its content (``samples``: the first data rows)."""
    normalised = [normalise_header(h) for h in header]
    found = listed(header)
    note = None
    match: Literal["id", "email"] = "id"
    id_index: int | None
    if options.match == "email":
        email = _email_column(normalised, header, source, options, samples)
        if email is None:
            raise InputError(
                f"no email column (--match email): no header is one of email, e-mail, "
                f"email address, ... and no column holds addresses; columns found: {found}. "
                "Name it with --email-column",
                source=source,
            )
        (id_index, note), match = email, "email"
    elif options.id_column:
        id_index = _find(normalised, normalise_header(options.id_column), header, source, "ID")
        if id_index is None:
            raise InputError(
                _missing(options.id_column, header, "--id-column", found), source=source
            )
    else:
        alias = _alias(normalised, ID_ALIASES, header, source, "ID")
        shares: list[float | None] = (
            uuid_shares(samples, len(header)) if samples else [None] * len(header)
        )
        if not samples and alias is not None:
            id_index = alias
        else:
            id_index, note = _by_content(
                alias,
                header=header,
                normalised=normalised,
                shares=shares,
                source=source,
                found=found,
            )
        email = None
        if id_index is None and options.match == "auto":
            email = _email_column(normalised, header, source, options, samples)
        if email is not None:
            (id_index, note), match = email, "email"
        if id_index is None:
            raise InputError(
                f"no contact ID column: no header is one of {', '.join(ID_ALIASES[:4])}, ... "
                f"and no column holds UUIDs (nor email addresses, to match by email); columns "
                f"found: {found}. Name it with --id-column (or --email-column)",
                source=source,
            )
    tag_indexes = [
        i for i in _tag_columns(normalised, header, source, options, found) if i != id_index
    ]
    if not tag_indexes:
        raise InputError(
            f"no tags column (looked for tags, tag, labels, tag1, tag2, ...); columns found: "
            f"{found}. Name it with --tags-column",
            source=source,
        )
    return ColumnMap(tuple(header), id_index, tuple(tag_indexes), note, match)


def _tag_columns(
    normalised: list[str], header: Sequence[str], source: str, options: ReadOptions, found: str
) -> list[int]:
    """Named columns; else the first alias; else numbered columns (tag1, tag2, ...) in order."""
    if options.tags_columns:
        indexes = []
        for name in options.tags_columns:
            index = _find(normalised, normalise_header(name), header, source, "tags")
            if index is None:
                raise InputError(_missing(name, header, "--tags-column", found), source=source)
            indexes.append(index)
        return indexes
    index = _alias(normalised, TAG_ALIASES, header, source, "tags")
    if index is not None:
        return [index]
    numbered = [
        (int(m.group(1)), i)
        for i, name in enumerate(normalised)
        if (m := _NUMBERED_TAG.match(_bare_header(name)))
    ]
    return [i for _, i in sorted(numbered)]
