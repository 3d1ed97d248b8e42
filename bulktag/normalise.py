"""Validation and normalisation of IDs and tags, as polars expressions.

IDs: ``{UPPER-CASE}``, ``urn:uuid:...`` and 32 bare hex digits all become the
lowercase 8-4-4-4-12 form; anything else is a reject, and a value a spreadsheet
has damaged (``1.23E+15``, a plain number) is reported as such.

Tags: white space trimmed and collapsed to one space, zero-width characters
removed, optionally lower-cased and prefixed; then empty pieces are dropped, and
a tag over 100 characters or with a control character is a reject.
"""

from __future__ import annotations

import re

import polars as pl

from bulktag.leadlex import MAX_TAG_LENGTH

__all__ = [
    "ID_REASONS",
    "canonical_id",
    "id_problem",
    "normalise_tag",
    "normalise_tag_text",
    "tag_problem",
    "tag_problem_text",
]

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_HEX32 = r"^[0-9a-f]{32}$"
ZERO_WIDTH = "[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e]"
CONTROL = "[\x00-\x1f\x7f-\x9f]"

MISSING_ID = "missing contact id"
SCIENTIFIC_ID = (
    "contact id was damaged by a spreadsheet (scientific notation, e.g. 1.23E+15): "
    "format the column as text and export again"
)
NUMERIC_ID = "contact id is a number, not a UUID (a spreadsheet may have converted it)"
NOT_UUID = "contact id is not a UUID"
RAGGED = "row has more fields than the header: quote cells that contain the delimiter"
NO_TAGS = "no tags"
TAG_TOO_LONG = f"tag longer than {MAX_TAG_LENGTH} characters"
TAG_CONTROL = "tag contains control characters"
ID_REASONS = (MISSING_ID, SCIENTIFIC_ID, NUMERIC_ID, NOT_UUID)


def canonical_id(raw: pl.Expr) -> pl.Expr:
    """The lowercase 8-4-4-4-12 UUID, or null when ``raw`` is not a UUID."""
    text = (
        raw.str.strip_chars()
        .str.to_lowercase()
        .str.replace(r"^urn:uuid:", "")
        .str.replace(r"^\{(.*)\}$", "${1}")
    )
    dashed = pl.concat_str(
        [text.str.slice(a, b - a) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))],
        separator="-",
    )
    text = pl.when(text.str.contains(_HEX32)).then(dashed).otherwise(text)
    return pl.when(text.str.contains(_UUID)).then(text)


def id_problem(raw: pl.Expr) -> pl.Expr:
    """Why ``raw`` is not a usable ID (null when it is one)."""
    stripped = raw.str.strip_chars()
    return (
        pl.when(canonical_id(raw).is_not_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(raw.is_null() | (stripped == ""))
        .then(pl.lit(MISSING_ID))
        .when(stripped.str.contains(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$"))
        .then(pl.lit(SCIENTIFIC_ID))
        .when(stripped.str.contains(r"^[+-]?\d+(?:[.,]\d+)?$"))
        .then(pl.lit(NUMERIC_ID))
        .otherwise(pl.lit(NOT_UUID))
    )


def normalise_tag(tag: pl.Expr, *, lower: bool = False, prefix: str = "") -> pl.Expr:
    """Trimmed, inner white space collapsed, zero-width characters removed."""
    text = tag.str.replace_all(ZERO_WIDTH, "").str.replace_all(r"\s+", " ").str.strip_chars()
    if lower:
        text = text.str.to_lowercase()
    if prefix:
        text = pl.when(text != "").then(pl.lit(prefix) + text).otherwise(text)
    return text


def tag_problem(tag: pl.Expr) -> pl.Expr:
    """Why a normalised, non-empty tag cannot be sent (null when it can)."""
    return (
        pl.when(tag.str.len_chars() > MAX_TAG_LENGTH)
        .then(pl.lit(TAG_TOO_LONG))
        .when(tag.str.contains(CONTROL))
        .then(pl.lit(TAG_CONTROL))
    )


_WHITE = re.compile(r"\s+")
_ZW = re.compile(ZERO_WIDTH)
_CONTROL = re.compile(CONTROL)


def normalise_tag_text(tag: str, *, lower: bool = False, prefix: str = "") -> str:
    """:func:`normalise_tag` for one Python string (static tags, job files)."""
    text = _WHITE.sub(" ", _ZW.sub("", tag)).strip()
    if lower:
        text = text.lower()
    return prefix + text if text else text


def tag_problem_text(tag: str) -> str | None:
    """:func:`tag_problem` for one Python string."""
    if not tag:
        return "empty tag"
    if len(tag) > MAX_TAG_LENGTH:
        return TAG_TOO_LONG
    if _CONTROL.search(tag):
        return TAG_CONTROL
    return None
