"""What a usable contact ID and tag are, in plain Python: the one home of the rules.

The patterns, the reject reasons and the one-string forms of the rules live here;
:mod:`bulktag.read.normalise` applies the same rules to whole columns as polars
expressions. Nothing here imports polars, so the commands that only check options
(``--help``, ``--version``, a usage error) start in a few tens of milliseconds.

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

from bulktag.leadlex import MAX_TAG_LENGTH

__all__ = [
    "CELL_TOO_LARGE",
    "CONTROL",
    "CUT_CHARACTER",
    "CUT_LINE",
    "DEFAULT_SEPARATORS",
    "ENDS",
    "HEX32_PATTERN",
    "ID_REASONS",
    "MAX_CELL_BYTES",
    "MAX_RAW_CHARS",
    "MAX_TAGS_PER_CONTACT",
    "MISSING_ID",
    "NOT_UUID",
    "NO_TAGS",
    "NUMBER",
    "NUMERIC_ID",
    "PERMANENT_BEFORE",
    "RAGGED",
    "TAG_CONTROL",
    "TAG_TOO_LONG",
    "UUID_PATTERN",
    "WHOLE_ROW",
    "ZERO_WIDTH",
    "canonical_id_text",
    "normalise_tag_text",
    "split_pattern",
    "tag_problem_text",
]

#: An ID in canonical form: lower-case 8-4-4-4-12 hex.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: The same UUID as 32 bare hex digits.
HEX32_PATTERN = r"^[0-9a-f]{32}$"
#: Invisible artefacts, removed from tags. Not the joiners U+200C and U+200D: they carry
#: meaning (emoji sequences such as 👩‍💻 and flags, words in Persian, Hindi and more).
ZERO_WIDTH = "[\u200b\u2060\ufeff\u00ad\u180e]"
CONTROL = "[\x00-\x1f\x7f-\x9f]"
#: A decimal number as spreadsheets write one: sign, digits, a decimal point or comma,
#: an exponent (``5.00765965359373E+031``, ``5,0077E+31``, ``1.5e15``, ``12345``).
NUMBER = r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?$"
#: What splits a tags cell, besides line breaks, unless --tag-separators says otherwise.
DEFAULT_SEPARATORS = ",;|"
#: Stripped from both ends of a tag: white space, and the joiners (they join nothing there).
ENDS = " \t\n\r\x0b\x0c\u200c\u200d"

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
#: The last line of a UTF-8 file that ends inside a character (copied while being written).
CUT_CHARACTER = (
    "the file ends inside a character: cut while it was being written? (the rest was read; "
    "export it again to send this row)"
)
#: How other programs write an empty cell (PostgreSQL's COPY, SQL, pandas, R, spreadsheets),
#: and spreadsheets' error values: never a tag. A cell holding one is empty; such a piece
#: of a cell a reject. In double quotes (``"NULL"``) it is a tag like any other.
NULL_MARKERS = ("\\N", "NULL", "null", "None", "nan", "NaN", "N/A", "#N/A", "<NA>")
ERROR_VALUES = ("#REF!", "#VALUE!", "#NAME?", "#DIV/0!", "#NULL!", "#NUM!", "#N/A", "#SPILL!")
NOT_TAGS = tuple(dict.fromkeys((*NULL_MARKERS, *ERROR_VALUES)))
MARKER_CELL = (
    "no tags: the tags cell holds a null marker or an error value (\\N, NULL, nan, #N/A, "
    "#REF!...), which other programs write for an empty cell, never a tag"
)
MARKER_PIECE = (
    "not a tag: a null marker or an error value (\\N, NULL, nan, #N/A, #REF!...), which "
    "other programs write for an empty cell; in double quotes it would be sent as a tag"
)
LIST_PIECE = (
    "not a tag: part of a list another program wrote (['a', 'b'] or [\"a\", \"b\"]) that "
    "is not whole: save the file again, or split the list into tags"
)
CUT_LINE = (
    "the last line has no end: cut? (the job's earlier exports of this input ended with "
    "one; the rest was read; export it again to send this row)"
)
#: A cell larger than this is no list of tags a person wrote (at most 100 tags of 100
#: characters go in a call): the input is refused whole (exit 65), never split.
MAX_CELL_BYTES = 64 * 1024
CELL_TOO_LARGE = f"a cell larger than {MAX_CELL_BYTES // 1024} KiB"
#: Tags one contact may get in a run: 10 calls. More is not what a person meant (another
#: kind of column taken for tags?): the input is refused whole (exit 65).
MAX_TAGS_PER_CONTACT = 1_000
#: A reject's raw value longer than this is kept as its start, its length and its hash.
MAX_RAW_CHARS = 1_000
#: Reasons about a whole row, no column in particular.
WHOLE_ROW = (RAGGED, CUT_CHARACTER, CUT_LINE)
NO_TAGS = "no tags"
TAG_TOO_LONG = f"tag longer than {MAX_TAG_LENGTH} characters"
TAG_CONTROL = "tag contains control characters"
ID_REASONS = (MISSING_ID, NUMERIC_ID, NOT_UUID)


def split_pattern(separators: str) -> str:
    """The regex whose matches are a tags cell's pieces (``str.extract_all``).

    A piece is text between separators or line breaks, or a double-quoted run that
    separators do not split (``"A, B"``): from a quote to the first quote followed by a
    separator or the end (kept in the piece: trimming takes it off; the regex engine has
    no look-ahead), so ``";""`` is the tag ``;"``. White space and
    invisible artefacts around the quotes do not count: the artefacts are removed from
    every tag, so ``\u200b"A, B"`` is ``"A, B"``. Line breaks split like separators, and
    like them not inside the quotes (trimming makes one a space: no tag holds one).
    ``""0`` is one piece, not ``""`` and ``0``.
    """
    seps = re.escape(separators)
    ends = f"[{seps}\r\n]|$" if separators else "[\r\n]|$"
    pad = f"[ \t{ZERO_WIDTH[1:-1]}]*"
    return f'{pad}"(?s:.)*?"{pad}(?:{ends})|[^{seps}\r\n]+'


_WHITE = re.compile(r"\s+")
_ZW = re.compile(ZERO_WIDTH)
_CONTROL = re.compile(CONTROL)
_UUID = re.compile(UUID_PATTERN)
_HEX32 = re.compile(HEX32_PATTERN)


def canonical_id_text(raw: str | None) -> str | None:
    """The lowercase 8-4-4-4-12 form of ``raw``, or None when it is not a UUID."""
    if raw is None:
        return None
    text = raw.strip().lower().removeprefix("urn:uuid:")
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if _HEX32.match(text):
        text = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text if _UUID.match(text) else None


def normalise_tag_text(tag: str, *, lower: bool = False, prefix: str = "") -> str:
    """One tag (a static tag, a job file's): trimmed, collapsed, artefacts and one pair
    of wrapping double quotes off, then cased and prefixed; empty stays empty."""
    text = _WHITE.sub(" ", _ZW.sub("", tag)).strip(ENDS)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip(ENDS)
    if lower:
        text = text.lower()
    return prefix + text if text else text


def tag_problem_text(tag: str) -> str | None:
    """Why a normalised tag cannot be sent (None when it can)."""
    if not tag:
        return "empty tag"
    if len(tag) > MAX_TAG_LENGTH:
        return TAG_TOO_LONG
    if _CONTROL.search(tag):
        return TAG_CONTROL
    return None
