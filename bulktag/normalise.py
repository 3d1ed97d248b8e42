"""Validation and normalisation of IDs and tags, as polars expressions.

IDs: ``{UPPER-CASE}``, ``urn:uuid:...`` and 32 bare hex digits all become the
lowercase 8-4-4-4-12 form; anything else is a reject, and a value a spreadsheet
has damaged (``1.23E+15``, a plain number) is reported as such.

Tags: a cell is split on its separators (``,`` ``;`` ``|`` by default) and on line
breaks (Alt+Enter in Excel, Ctrl+Enter in Google Sheets); a piece wholly wrapped in
double quotes (Mailchimp's ``"Customers","VIP"``) loses them, and separators inside
those quotes do not split it. Each tag: invisible artefacts removed (U+200B, U+2060,
a stray U+FEFF, soft hyphens; the joiners U+200D and U+200C stay: they are part of
emoji and of words in Persian or Hindi), white space collapsed to one space and
trimmed, optionally lower-cased and prefixed; then empty pieces are dropped, and a
tag over 100 characters or with a control character is a reject.
"""

from __future__ import annotations

import re

import polars as pl

from bulktag.leadlex import MAX_TAG_LENGTH

__all__ = [
    "ID_REASONS",
    "UUID_PATTERN",
    "canonical_id",
    "canonical_id_text",
    "clean_tag_pattern",
    "finish_tag",
    "has_control",
    "id_problem",
    "id_reason",
    "normalise_tag",
    "normalise_tag_text",
    "split_pattern",
    "tag_problem",
    "tag_problem_text",
    "trim_tag",
    "uuid_key",
    "uuid_text",
]

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: An ID already in canonical form (what nearly every row holds): nothing to change.
UUID_PATTERN = _UUID
_HEX32 = r"^[0-9a-f]{32}$"
#: Invisible artefacts, removed from tags. Not the joiners U+200C and U+200D: they carry
#: meaning (emoji sequences such as 👩‍💻 and flags, words in Persian, Hindi and more).
ZERO_WIDTH = "[\u200b\u2060\ufeff\u00ad\u180e]"
CONTROL = "[\x00-\x1f\x7f-\x9f]"

MISSING_ID = "missing contact id"
#: A number where a UUID belongs: a cell a spreadsheet typed as a number (a bare-hex UUID
#: of digits only becomes a float and loses its last digits), scientific notation
#: (``5.00766E+31``, ``5,0077E+31``), or digits that cannot be a UUID.
NUMERIC_ID = (
    "contact id is a number: the spreadsheet converted it (or it is another system's "
    "record id); format the ID column as text and export again"
)
NOT_UUID = "contact id is not a UUID"
#: A failures file's row whose failure was permanent (after its type, e.g. "not_found").
PERMANENT_BEFORE = (
    ": a permanent failure in the run that wrote this failures file; not sent again "
    "(--retry-permanent sends it)"
)
RAGGED = "row has more fields than the header: quote cells that contain the delimiter"
NO_TAGS = "no tags"
TAG_TOO_LONG = f"tag longer than {MAX_TAG_LENGTH} characters"
TAG_CONTROL = "tag contains control characters"
ID_REASONS = (MISSING_ID, NUMERIC_ID, NOT_UUID)


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
    return (
        pl.when(canonical_id(raw).is_not_null())
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(id_reason(raw))
    )


def id_reason(raw: pl.Expr) -> pl.Expr:
    """Why ``raw``, known not to be a usable ID, is not one."""
    stripped = raw.str.strip_chars()
    return (
        pl.when(raw.is_null() | (stripped == ""))
        .then(pl.lit(MISSING_ID))
        .when(stripped.str.contains(NUMBER))
        .then(pl.lit(NUMERIC_ID))
        .otherwise(pl.lit(NOT_UUID))
    )


#: A decimal number as spreadsheets write one: sign, digits, a decimal point or comma,
#: an exponent (``5.00765965359373E+031``, ``5,0077E+31``, ``1.5e15``, ``12345``).
NUMBER = r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?$"


def uuid_key(canonical: pl.Expr) -> pl.Expr:
    """A canonical ID as its 128-bit number: cheaper to group and join than its text."""
    return canonical.str.replace("-", "", literal=True, n=4).str.to_integer(
        base=16, dtype=pl.UInt128, strict=False
    )


_HEX4 = pl.Series("hex", [f"{i:04x}" for i in range(1 << 16)], dtype=pl.String)


def uuid_text(key: pl.Expr) -> pl.Expr:
    """:func:`uuid_key` back to the canonical 8-4-4-4-12 text."""
    high = (key // pl.lit(1 << 64, dtype=pl.UInt128)).cast(pl.UInt64)
    low = (key % pl.lit(1 << 64, dtype=pl.UInt128)).cast(pl.UInt64)

    def group(half: pl.Expr, index: int) -> pl.Expr:  # 16 bits: 4 hex digits
        bits = (half // pl.lit(1 << (48 - 16 * index), dtype=pl.UInt64)) % (1 << 16)
        return pl.lit(_HEX4).gather(bits.cast(pl.UInt32))

    dash = pl.lit("-")
    h = [group(high, i) for i in range(4)] + [group(low, i) for i in range(4)]
    return pl.concat_str([h[0], h[1], dash, h[2], dash, h[3], dash, h[4], dash, h[5], h[6], h[7]])


def normalise_tag(tag: pl.Expr, *, lower: bool = False, prefix: str = "") -> pl.Expr:
    """Trimmed, inner white space collapsed, zero-width characters removed."""
    return finish_tag(trim_tag(tag), lower=lower, prefix=prefix, empty=True)


def trim_tag(tag: pl.Expr, separators: str = "") -> pl.Expr:
    """:func:`normalise_tag` without the case and prefix options: invisible artefacts
    out, white space collapsed and trimmed, the separator after a quoted piece (see
    :func:`split_pattern`) and one pair of wrapping double quotes off."""
    text = tag.str.replace_all(ZERO_WIDTH, "").str.replace_all(r"\s+", " ")
    # a joiner at either end joins nothing: an artefact too
    text = text.str.strip_chars(_ENDS + separators)
    return text.str.replace(r'^"(.*)"$', "${1}").str.strip_chars(_ENDS)


#: What splits a tags cell, besides line breaks, unless --tag-separators says otherwise.
DEFAULT_SEPARATORS = ",;|"
#: Stripped from both ends of a tag: white space, and the joiners (they join nothing there).
_ENDS = " \t\n\r\x0b\x0c\u200c\u200d"


def split_pattern(separators: str) -> str:
    """The regex whose matches are a tags cell's pieces (``str.extract_all``).

    A piece is text between separators or line breaks, or a double-quoted run that
    separators do not split (``"A, B"``), ended by a separator or the end (kept in the
    piece: :func:`trim_tag` takes it off; the regex engine has no look-ahead). Line breaks
    always split: no tag holds one. ``""0`` is one piece, not ``""`` and ``0``.
    """
    seps = re.escape(separators)
    ends = f"[{seps}\r\n]|$" if separators else "[\r\n]|$"
    return f'[ \t]*"[^"\r\n]*"[ \t]*(?:{ends})|[^{seps}\r\n]+'


def finish_tag(tag: pl.Expr, *, lower: bool, prefix: str, empty: bool = False) -> pl.Expr:
    """The case and prefix options on a trimmed tag (``empty``: it may be empty, and stays so)."""
    text = tag
    if lower:
        text = text.str.to_lowercase()
    if prefix:
        prefixed = pl.lit(prefix) + text
        text = pl.when(text != "").then(prefixed).otherwise(text) if empty else prefixed
    return text


def clean_tag_pattern(separators: str) -> str | None:
    """A regex matching a tags cell that trimming and splitting leave as it is, one tag.

    No separator, no zero-width or control character (line breaks are control
    characters), white space only as single spaces between other characters, no
    leading apostrophe or double quote; ``None`` when a separator is a space (then a
    single space splits).
    """
    if " " in separators:
        return None
    excluded = "\\s" + re.escape(separators) + ZERO_WIDTH[1:-1] + CONTROL[1:-1]
    return f"^[^'\"{excluded}](?:[^{excluded}]| [^{excluded}])*$"


def tag_problem(tag: pl.Expr, *, control: bool = True) -> pl.Expr:
    """Why a normalised, non-empty tag cannot be sent (null when it can); ``control=False``
    when the tag is known to hold no control character."""
    too_long = pl.when(tag.str.len_chars() > MAX_TAG_LENGTH).then(pl.lit(TAG_TOO_LONG))
    if not control:
        return too_long.otherwise(pl.lit(None, dtype=pl.String))
    return (
        too_long.when(tag.str.contains(CONTROL))
        .then(pl.lit(TAG_CONTROL))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (as :func:`tag_problem` finds them)."""
    return _CONTROL.search(text) is not None


_WHITE = re.compile(r"\s+")
_ZW = re.compile(ZERO_WIDTH)
_CONTROL = re.compile(CONTROL)
_UUID_TEXT = re.compile(_UUID)
_HEX32_TEXT = re.compile(_HEX32)


def canonical_id_text(raw: str | None) -> str | None:
    """:func:`canonical_id` for one Python string (the ID column's content check)."""
    if raw is None:
        return None
    text = raw.strip().lower().removeprefix("urn:uuid:")
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if _HEX32_TEXT.match(text):
        text = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text if _UUID_TEXT.match(text) else None


def quote_tag(tag: pl.Expr, separators: str = DEFAULT_SEPARATORS) -> pl.Expr:
    """A tag as a joined cell must hold it to read back as itself: in double quotes when it
    holds a separator or starts or ends with one (bulktag's reader takes one pair off, and
    an unquoted ``"a`` would open a quoted run across the next separator).

    A tag holding both a separator and a double quote cannot be written this way (the
    reader has no escape inside quotes); such tags only come from list columns."""
    edge = tag.str.starts_with('"') | tag.str.ends_with('"')
    needs = tag.str.contains("[" + re.escape(separators) + "]") | edge
    return pl.when(needs).then(pl.lit('"') + tag + pl.lit('"')).otherwise(tag)


def normalise_tag_text(tag: str, *, lower: bool = False, prefix: str = "") -> str:
    """:func:`normalise_tag` for one Python string (static tags, job files)."""
    text = _WHITE.sub(" ", _ZW.sub("", tag)).strip(_ENDS)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip(_ENDS)
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
