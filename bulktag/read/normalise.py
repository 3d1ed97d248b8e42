"""The rules of :mod:`bulktag.read.rules` as polars expressions, for whole columns at once."""

from __future__ import annotations

import re
from functools import cache

import polars as pl

from bulktag.leadlex import MAX_TAG_LENGTH
from bulktag.read.rules import (
    CONTROL,
    DEFAULT_SEPARATORS,
    ENDS,
    LIST_PIECE,
    MARKER_PIECE,
    MISSING_ID,
    NOT_TAGS,
    NOT_UUID,
    NUMBER,
    NUMERIC_ID,
    TAG_CONTROL,
    TAG_TOO_LONG,
    ZERO_WIDTH,
    split_pattern,
)

__all__ = [
    "cell_has_text",
    "cell_pieces",
    "contact_key",
    "finish_tag",
    "id_reason",
    "is_marker",
    "list_has_tags",
    "list_pieces",
    "listed",
    "not_a_tag",
    "quote_tag",
    "split_cell",
    "tag_problem",
    "trim_tag",
    "unsplit",
    "uuid_text",
]


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


def contact_key(cell: pl.Expr, *, apostrophe: bool = False) -> pl.Expr:
    """The contact's ID as a 128-bit number: null unless ``cell`` (an ID cell as read) is,
    white space around it and (where ``apostrophe``) Excel's text marker before it aside, a
    UUID in one of the forms :func:`bulktag.read.rules.canonical_id_text` takes. Cheaper to group
    and join than its text; :func:`uuid_text` gives the canonical text back.

    One regex tells the forms apart, then the last 32 digits are the number. Each string
    operation writes the whole column again, so the fewest and cheapest: the apostrophe and
    the white space before the ID are for the regex to allow, not taken off (the number is
    the last digits); the white space after it goes with the closing brace in one strip; no
    lower-casing (the regex takes either case, and so does the parse), no regex replace, no
    dashed text built for the 32-digit form, and the four dashes taken out as four (``n=4``:
    half the time of replacing all). 10M IDs: 3.0 s of one core, against 3.8 s for the
    apostrophe, the white space, then the brace, each taken off in turn."""
    digits = cell.str.strip_chars_end("}" + _WHITE_SPACE).str.replace("-", "", literal=True, n=4)
    number = digits.str.slice(-32).str.to_integer(base=16, dtype=pl.UInt128, strict=False)
    return pl.when(cell.str.contains(_ANY_UUID[apostrophe])).then(number)


_HEX = "[0-9a-fA-F]"
_FORMS = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|{_HEX}{{32}}"
_ID = f"(?:[uU][rR][nN]:[uU][uU][iI][dD]:)?(?:\\{{(?:{_FORMS})\\}}|(?:{_FORMS}))"
#: A UUID in any form :func:`contact_key` takes, between white space (and after Excel's
#: apostrophe, for ``True``): either case, dashed or 32 digits, in braces or not, after
#: ``urn:uuid:`` (either case) or not. Spelled out rather than ``(?i)``, which makes the
#: regex a third slower. (``\s``: Unicode's white space, what ``strip_chars`` strips.)
_ANY_UUID = {False: f"^\\s*{_ID}\\s*$", True: f"^'?\\s*{_ID}\\s*$"}
#: Unicode's White_Space characters: what ``str.strip_chars()`` and the regex ``\s`` take.
_WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)


@cache
def _hex4(dash: str = "") -> pl.Series:
    """Every 16-bit number as 4 hex digits after ``dash``, from the 256 two-digit ones (in
    Python, the 65,536 strings cost a start-up 20 ms)."""
    pairs = pl.lit(pl.Series([f"{i:02x}" for i in range(256)], dtype=pl.String))
    number = pl.int_range(1 << 16, dtype=pl.UInt32)
    digits = pairs.gather(number // 256) + pairs.gather(number % 256)
    return pl.select(hex=pl.lit(dash) + digits).to_series()


def uuid_text(key: pl.Expr) -> pl.Expr:
    """:func:`contact_key` back to the canonical 8-4-4-4-12 text: eight groups of 16 bits,
    each looked up as 4 digits (those after a dash with it: 8 pieces to join, not 12)."""
    high = (key // pl.lit(1 << 64, dtype=pl.UInt128)).cast(pl.UInt64)
    low = (key % pl.lit(1 << 64, dtype=pl.UInt128)).cast(pl.UInt64)

    def group(half: pl.Expr, index: int, dash: str = "") -> pl.Expr:
        bits = (half // pl.lit(1 << (48 - 16 * index), dtype=pl.UInt64)) % (1 << 16)
        return pl.lit(_hex4(dash)).gather(bits.cast(pl.UInt32))

    return pl.concat_str(
        group(high, 0),
        group(high, 1),
        group(high, 2, "-"),
        group(high, 3, "-"),
        group(low, 0, "-"),
        group(low, 1, "-"),
        group(low, 2),
        group(low, 3),
    )


def trim_tag(tag: pl.Expr, separators: str = "") -> pl.Expr:
    """A piece of a tags cell as a tag, before the case and prefix options: invisible
    artefacts out, white space collapsed and trimmed, the separator after a quoted piece (see
    :func:`split_pattern`) and one pair of wrapping double quotes off."""
    text = tag.str.replace_all(ZERO_WIDTH, "").str.replace_all(r"\s+", " ")
    # a joiner at either end joins nothing: an artefact too
    text = text.str.strip_chars(ENDS + separators)
    return text.str.replace(r'^"(.*)"$', "${1}").str.strip_chars(ENDS)


def cell_has_text(cell: pl.Expr, separators: str) -> pl.Expr:
    """Whether a text cell holds a character that trimming keeps wherever it stands: not
    white space, a separator, a double quote, an invisible artefact or a joiner. Such a
    cell holds a tag; one without such a character and without a double quote does not
    (one with quotes may: ``", "`` is the tag ``,``). Never null."""
    kept = "[^\\s" + re.escape(separators) + '"' + ZERO_WIDTH[1:-1] + "\u200c\u200d]"
    return cell.str.contains(kept).fill_null(value=False)


def split_cell(cell: pl.Expr, separators: str) -> pl.Expr:
    """A text cell's pieces, as written (a list; see :func:`bulktag.read.rules.split_pattern`)."""
    return cell.str.extract_all(split_pattern(separators))


def cell_pieces(cell: pl.Expr, whole: pl.Expr, quoted: pl.Expr, separators: str) -> pl.Expr:
    """A text cell's pieces (a list): the cell itself where ``whole`` (:func:`unsplit`); a
    cell with a double quote (``quoted``) by :func:`split_cell`; any other cell split at
    its separators and line breaks. Nearly every cell of a long file is one piece as it
    stands, and most cells of a wide one have no quote: the regex of :func:`split_cell`
    costs 2-3 times the plain split, and (each branch computed on its rows only, null
    elsewhere) it runs on the few cells that need it."""
    exact = split_cell(pl.when(quoted).then(cell), separators)
    plain = _split_at(pl.when(~whole & ~quoted).then(cell), separators)
    return pl.when(whole).then(pl.concat_list(cell)).when(quoted).then(exact).otherwise(plain)


def _split_at(cell: pl.Expr, separators: str) -> pl.Expr:
    """A cell without double quotes split at every separator and line break: the pieces
    :func:`split_cell` gives it, and an empty piece between two separators in a row (or
    at an end), which, like a piece of white space, makes no tag."""
    breaks = separators + "\r\n"
    cell = cell.str.replace_all("[" + re.escape(breaks[1:]) + "]", breaks[0])
    return cell.str.split(breaks[0])


def unsplit(cell: pl.Expr, separators: str) -> pl.Expr:
    """Whether a text cell is one piece as it stands: no separator, line break or quote."""
    return ~cell.str.contains("[" + re.escape(separators) + '\r\n"]').fill_null(value=False)


def finish_tag(tag: pl.Expr, *, lower: bool, prefix: str) -> pl.Expr:
    """The case and prefix options on a trimmed, non-empty tag."""
    text = tag.str.to_lowercase() if lower else tag
    return pl.lit(prefix) + text if prefix else text


def tag_problem(tag: pl.Expr) -> pl.Expr:
    """Why a normalised, non-empty tag cannot be sent (null when it can)."""
    return (
        pl.when(tag.str.len_chars() > MAX_TAG_LENGTH)
        .then(pl.lit(TAG_TOO_LONG))
        .when(tag.str.contains(CONTROL))
        .then(pl.lit(TAG_CONTROL))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def quote_tag(tag: pl.Expr, separators: str = DEFAULT_SEPARATORS) -> pl.Expr:
    """A tag as a joined cell must hold it to read back as itself: in double quotes when it
    holds a separator or starts or ends with one (bulktag's reader takes one pair off, and
    an unquoted ``"a`` would open a quoted run across the next separator).

    A tag that reads as a null marker or part of a list (``null``, ``#N/A``, ``['a'``) is
    quoted too: in quotes the reader takes it as a tag. A tag holding both a separator and
    a double quote cannot be written this way (the reader has no escape inside quotes);
    such tags only come from list columns."""
    edge = tag.str.starts_with('"') | tag.str.ends_with('"')
    needs = (
        tag.str.contains("[" + re.escape(separators) + "]")
        | edge
        | not_a_tag(tag).is_not_null()  # a tag "null" or "#N/A": quoted, it reads as a tag
    )
    return pl.when(needs).then(pl.lit('"') + tag + pl.lit('"')).otherwise(tag)


def is_marker(cell: pl.Expr) -> pl.Expr:
    """Whether a text cell is a null marker or an error value as written (never a tag): an
    exact look-up, four times cheaper than a regex that allows white space around it (such
    a cell's piece is rejected all the same, by :func:`not_a_tag`). Never null."""
    return cell.is_in(list(NOT_TAGS)).fill_null(value=False)


#: One element of a JSON or Python list of strings: a double- or single-quoted string.
_ELEMENT = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
#: A whole cell that is such a list: ``["a", "b"]``, ``['a', 'b']``, ``[]``.
_LIST = f"(?s)^\\s*\\[\\s*(?:(?:{_ELEMENT})\\s*(?:,\\s*(?:{_ELEMENT})\\s*)*,?\\s*)?\\]\\s*$"


def listed(cell: pl.Expr) -> pl.Expr:
    """Whether a text cell is a JSON or Python list of strings (pandas' ``to_csv`` of a list
    column, mongoexport, a JSON field): read as that list, never split. Never null. The
    whole-list regex runs only on cells that start with ``[`` (a prefix test, six times
    cheaper than a regex; a list after white space is split, and its parts rejected by
    :func:`not_a_tag`)."""
    starts = cell.str.starts_with("[").fill_null(value=False)
    return starts & pl.when(starts).then(cell).str.contains(_LIST).fill_null(value=False)


def list_pieces(cell: pl.Expr) -> pl.Expr:
    """A list cell's elements, each its string: JSON's escapes read, Python's quotes too."""
    element = pl.element()
    single = element.str.starts_with("'")
    body = element.str.slice(1, element.str.len_chars() - 2)
    as_json = (
        pl.when(single)
        .then(
            pl.lit('"')
            + body.str.replace_all("\\\\'", "'", literal=True).str.replace_all('"', '\\"')
            + pl.lit('"')
        )
        .otherwise(element)
        # an escape JSON has not (Python's \x41): the character itself
        .str.replace_all(r'\\([^"\\/bfnrtu])', "$1")
    )
    return cell.str.extract_all(_ELEMENT).list.eval(as_json.str.json_decode(pl.String))


def list_has_tags(cell: pl.Expr, separators: str) -> pl.Expr:
    """Whether a list cell holds an element a tag can be made of."""
    kept = list_pieces(cell).list.eval(trim_tag(pl.element(), separators) != "")
    return kept.list.any().fill_null(value=False)


#: A piece that is part of a list literal cut apart: ``['a'``, ``"b"]``.
_LIST_PART = r"""^\s*\[\s*['"]|['"]\s*\]\s*$|^\s*\[\s*\]\s*$"""


def not_a_tag(piece: pl.Expr) -> pl.Expr:
    """Why a piece of a cell (as split, before its quotes come off) is no tag: a null
    marker or an error value, part of a list literal; null otherwise."""
    bare = piece.str.strip_chars()
    return (
        pl.when(bare.is_in(list(NOT_TAGS)))
        .then(pl.lit(MARKER_PIECE))
        .when(bare.str.contains(_LIST_PART))
        .then(pl.lit(LIST_PIECE))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
