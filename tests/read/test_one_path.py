"""One vectorised path for every row, checked against an independent reading.

The plan no longer has a fast path for clean rows and a general one for the rest: every
ID goes through one regex and one parse, every tags cell through one split, every
distinct piece through one trim. These properties hold that path to the rules as
``tests/fixtures/realworld/expect.py`` reads them (plain Python, written from the README,
importing neither bulktag nor polars), through the real command.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulktag.read.rules import NO_TAGS
from tests.fixtures.realworld import expect
from tests.helpers import bulktag_env, run_bulktag
from tests.inputs import A, cid, csv_text, dry_run, write

#: Examples per property; ``BULKTAG_EXAMPLES=2000`` for a deeper search.
_SETTINGS = settings(
    max_examples=int(os.environ.get("BULKTAG_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def _id_cells(draw: st.DrawFn) -> str:
    """A UUID written the ways exports write one, or nearly (one character off)."""
    value = uuid.UUID(int=draw(st.integers(min_value=0, max_value=(1 << 128) - 1)))
    text = draw(
        st.sampled_from(
            [str(value), str(value).upper(), value.hex, value.hex.upper(), f"{{{value}}}"]
        )
    )
    if draw(st.booleans()):
        text = draw(st.sampled_from(["urn:uuid:", "URN:UUID:", "urn:", "uuid:"])) + text
    damage = draw(st.sampled_from(["none", "none", "cut", "extra", "dash", "brace", "sign"]))
    if damage == "cut":
        text = text[:-1]
    elif damage == "extra":
        text += draw(st.sampled_from(["0", "g", "-", "}"]))
    elif damage == "dash":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + "-" + text[at:]
    elif damage == "brace":
        text = "{" + text
    elif damage == "sign":
        text = "+" + text[1:]
    # white space as Unicode has it (Python's strip() also takes \x1c-\x1f: not here)
    pad = st.sampled_from(["", " ", "\t", "\u00a0", "\u2003", "\u3000", "\u0085", "\u202f"])
    text = draw(pad) + text + draw(pad)
    # Excel's text marker, once, before anything (a second one, or one after white space,
    # is part of the cell)
    return draw(st.sampled_from(["", "", "'", "''"])) + text


def _meant(cell: str) -> str | None:
    """The contact a cell of :func:`_id_cells` names (Excel's apostrophe off, once)."""
    return expect.canonical(cell.removeprefix("'"))


@_SETTINGS
@given(ids=st.lists(_id_cells(), min_size=1, max_size=12))
def test_property_every_form_of_an_id_is_the_contact_it_names(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], ids: list[str]
) -> None:
    """Canonical, upper-case, 32 digits, braces, ``urn:uuid:``, padding of any white space,
    Excel's apostrophe: the contact the independent reading names; a cell one character
    off: a reject, never a contact."""
    folder = tmp_path_factory.mktemp("ids")
    path = write(folder, "in.csv", csv_text([["contact_id", "tags"], *([i, "t"] for i in ids)]))
    run = dry_run(capsys, path, folder / "out")
    expected = [_meant(i) for i in ids]
    assert list(run.contacts) == list(dict.fromkeys(c for c in expected if c is not None))
    assert [line for line, _ in run.rejects] == [
        line for line, c in enumerate(expected, start=2) if c is None
    ]


_TAG_CELLS = st.text(alphabet=st.sampled_from(list("ab ,;|\"'\u200b\t\n\r")), max_size=10)


@_SETTINGS
@given(cells=st.lists(_TAG_CELLS, min_size=1, max_size=10))
def test_property_a_cell_gives_the_tags_the_independent_reading_finds(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], cells: list[str]
) -> None:
    """Separators, quotes, line breaks, padding, invisible characters, Excel's apostrophe,
    in any mix: each contact gets the tags the independent reading finds, in order, and a
    cell that holds none is the "no tags" reject of its row."""
    folder = tmp_path_factory.mktemp("cells")
    ids = [cid(100 + i) for i in range(len(cells))]
    buffer = io.StringIO()  # every cell quoted: a CR in a cell is the cell's, not a line end
    rows = [["contact_id", "tags"], *zip(ids, cells, strict=True)]
    csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows(rows)
    path = write(folder, "in.csv", buffer.getvalue())
    run = dry_run(capsys, path, folder / "out")
    found = {i: expect.cell_tags(expect.Cell(text=c)) for i, c in zip(ids, cells, strict=True)}
    assert run.contacts == {i: list(dict.fromkeys(t)) for i, t in found.items() if t}
    assert sorted(reason for _, reason in run.rejects) == [NO_TAGS] * sum(
        1 for tags in found.values() if not tags
    )
    plan = run.summary["plan"]
    assert plan["rows_read"] == plan["rows_grouped"] + plan["rows_rejected"] == len(cells)


def test_a_cell_of_quotes_alone_is_read_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rare cells only a split can judge: ``","`` is the tag ``,``; ``""`` is none."""
    rows = [["contact_id", "tags"], [A, '","'], [cid(2), '""'], [cid(3), '" "']]
    run = dry_run(capsys, write(tmp_path, "in.csv", csv_text(rows)), tmp_path / "out")
    assert run.contacts == {A: [","]}
    assert run.rejects == [(3, NO_TAGS), (4, NO_TAGS)]


_LIGHT = """
import sys
from bulktag.cli.commands import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = [m for m in ("polars", "httpx2", "anyio", "tqdm") if m in sys.modules]
print("imported:", *heavy, file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("argv", "imported"),
    [
        (["--help"], ""),
        (["--version"], ""),
        (["run", "--help"], ""),
        (["run", "in.csv", "--concurency", "4"], ""),  # a usage error
        (["validate", "{csv}"], "polars"),
    ],
    ids=["help", "version", "run-help", "usage-error", "validate"],
)
def test_commands_import_only_what_they_need(
    tmp_path: Path, argv: list[str], imported: str
) -> None:
    """``--help``, ``--version`` and a usage error start without polars or httpx2 (a tenth of
    a second); ``validate`` reads and plans with polars alone: no HTTP client, no event loop,
    no progress bar."""
    path = write(tmp_path, "in.csv", csv_text([["contact_id", "tags"], [A, "vip"]]))
    args = [a.format(csv=path) for a in argv]
    done = run_bulktag(
        args, bulktag_env(key="wbk_unused"), cwd=tmp_path, program=(sys.executable, "-c", _LIGHT)
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1].split()[1:] == imported.split()
