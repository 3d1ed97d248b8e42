"""Spreadsheet-safe outputs that read back exactly; files bulktag refuses to overwrite."""

from __future__ import annotations

import csv
import html
import re
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

import httpx2
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from bulktag.machine import MachineError
from bulktag.outputs.publish import atomic_write, neutralise
from bulktag.read.rules import NOT_TAGS
from tests.world import URL, World, new_world

FORMULA_STARTS = ("=", "+", "-", "@", "'", "\t", "\r")
# Tags as a plan can hold them: no separator, no control character, trimmed, collapsed.
TAG_TEXT = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
            blacklist_characters=",;|\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e",
        ),
        min_size=1,
        max_size=30,
    )
    .map(lambda t: " ".join(t.split()))
    # one pair of wrapping quotes is how a cell quotes a tag: the reader takes it off
    .filter(lambda t: 0 < len(t) <= 100 and not (len(t) > 1 and t[0] == t[-1] == '"'))
    # another program's null marker ("null", "#N/A") is never a tag, even in a list
    .filter(lambda t: t not in NOT_TAGS)
)
RISKY = st.sampled_from(["=", "+", "-", "@", "'"]).flatmap(lambda c: TAG_TEXT.map(lambda t: c + t))
#: A piece of a list another program wrote, cut apart (``['a``, ``b']``, ``[]``), is never a
#: tag (README, "What bulktag reads"): the generator once made ``']`` (an apostrophe, then
#: a bracket) and asked for it back.
LIST_PART = re.compile(r"""^\s*\[\s*['"]|['"]\s*\]\s*$|^\s*\[\s*\]\s*$""")
TAGS = st.lists(
    st.one_of(TAG_TEXT, RISKY).filter(lambda t: not LIST_PART.search(t)),
    min_size=1,
    max_size=5,
    unique=True,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(TAGS, min_size=1, max_size=6))
@example(rows=[["0", "'x]"], ["=a", "'b"]])
def test_failures_csv_reads_back_to_the_exact_tags(tmp_path: Path, rows: list[list[str]]) -> None:
    """Round trip: tags -> failures.csv (neutralised) -> bulktag's reader -> the same tags."""
    world = new_world(Path(tempfile.mkdtemp(dir=tmp_path)), contacts=1)
    unknown = [f"00000000-0000-4000-8000-{i:012d}" for i in range(len(rows))]
    source = world.folder / "in.parquet"
    pl.DataFrame(
        {"contact_id": unknown, "tags": rows},
        schema={"contact_id": pl.String, "tags": pl.List(pl.String)},
    ).write_parquet(source)
    _, run_dir = world.run(str(source), "--format", "csv")
    with (run_dir / "failures.csv").open(newline="", encoding="utf-8") as handle:
        cells = [row["tags"] for row in csv.DictReader(handle)]
    for cell, tags in zip(cells, rows, strict=True):
        assert not cell.startswith(FORMULA_STARTS[:4]), cell  # never a live formula
        if ",".join(tags).startswith(FORMULA_STARTS):  # neutralised, or quoted as a tag
            assert cell.startswith("'") or (cell.startswith('"') and tags[0].endswith('"'))
    failures = str(run_dir / "failures.csv")  # not_found rows: sent again only when asked
    code, again = world.run(failures, "--dry-run", "--format", "parquet", "--retry-permanent")
    assert code == ExitCode.OK
    reread = pl.read_parquet(again / "results.parquet").select("contact_id", "tags").rows()
    assert reread == list(zip(unknown, rows, strict=True))


def test_the_neutralise_helper_prefixes_exactly_the_formula_starts() -> None:
    """=, +, -, @, tab, CR and ' at the start of a cell get an apostrophe; others do not."""
    frame = pl.DataFrame({"cell": ["=SUM(A1)", "+1", "-2", "@x", "\tx", "\rx", "'x", "ok", "a=b"]})
    out = frame.select(neutralise(pl.col("cell")).alias("cell"))["cell"].to_list()
    assert out == ["'=SUM(A1)", "'+1", "'-2", "'@x", "'\tx", "'\rx", "''x", "ok", "a=b"]


CMD = "=cmd|' /C calc'!A0"


class _Refuses(httpx2.AsyncBaseTransport):
    """Answers add-tags for ``contact`` with a 400 whose code and message are formulas."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, contact: str) -> None:
        self.inner = inner
        self.contact = contact

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and self.contact in request.url.path:
            body = b'{"error":{"code":"-err+1","message":"@SUM(A1:A9)"}}'
            return httpx2.Response(
                400, content=body, headers={"content-type": "application/json"}, request=request
            )
        return await self.inner.handle_async_request(request)


def _written(world: World, fmt: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real run whose outputs carry a formula in tags, message, error_code, source and the
    raw values of a reject: an input named ``+in.csv`` (given relative, so the source
    column starts with +), a tag ``=cmd|...``, a 400 answering code ``-err+1`` and message
    ``@SUM(A1:A9)``, and a row whose ID and tags are formulas."""
    ok, refused = world.contact_ids[:2]
    world.write_csv("+in.csv", [(ok, CMD), (refused, "+plus"), (CMD, "@at"), ("-1+2", "-x")])
    monkeypatch.chdir(world.folder)
    runtime = world.runtime()
    assert runtime.transport is not None
    run_dir = world.folder / "run"
    argv = ["run", "+in.csv", "--out", str(run_dir), "--api-url", URL, "--format", fmt]
    code = main(argv, runtime=replace(runtime, transport=_Refuses(runtime.transport, refused)))
    assert code == ExitCode.FAILURES
    return run_dir


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_text_column_of_real_csv_outputs_is_neutralised(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results, failures and rejects.csv of a real run: no cell of any column starts with
    = + - @ (each formula written gets its apostrophe, in every column that held one)."""
    run_dir = _written(world, "csv", monkeypatch)
    files = {
        name: _csv_rows(run_dir / f"{name}.csv") for name in ("results", "failures", "rejects")
    }
    for name, rows in files.items():
        assert rows, name
        for row in rows:
            for column, cell in row.items():
                assert not cell.startswith(FORMULA_STARTS[:4]), (name, column, cell)
    results = {r["contact_id"]: r for r in files["results"]}
    ok, refused = world.contact_ids[:2]
    assert results[ok]["tags"] == "'=cmd,' /C calc'!A0"  # | separates tags: two tags
    assert results[ok]["source"] == "'+in.csv"
    assert results[refused]["error_code"] == "'-err+1"
    assert results[refused]["message"].startswith("'@SUM(A1:A9)")
    failure = files["failures"][0]
    assert (failure["tags"], failure["error_code"]) == ("'+plus", "'-err+1")
    assert failure["message"].startswith("'@SUM(A1:A9)")
    raw = {(r["contact_id"], r["tags"], r["source"]) for r in files["rejects"]}
    assert raw == {("'" + CMD, "'@at", "'+in.csv"), ("'-1+2", "'-x", "'+in.csv")}


def test_xlsx_outputs_hold_formulas_only_as_text(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results, failures and rejects.xlsx of the same run: no cell is a formula; the
    formula-like values are there as strings (inline: the sheet is written row by row),
    exactly as written."""
    run_dir = _written(world, "xlsx", monkeypatch)
    for name in ("results", "failures", "rejects"):
        with zipfile.ZipFile(run_dir / f"{name}.xlsx") as book:
            sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
            assert sheets, name
            for sheet in sheets:
                assert not re.search(rb"<f[ >]", book.read(sheet)), (name, sheet)
            text = "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/"))
            strings = re.findall(r"<t[^>]*>([^<]*)</t>", text)
        expected = {
            "results": ["=cmd,' /C calc'!A0", "+in.csv", "-err+1", "@SUM(A1:A9)"],
            "failures": ["+plus", "-err+1", "@SUM(A1:A9)"],
            "rejects": [CMD, "@at", "-1+2", "-x", "+in.csv"],
        }[name]
        assert set(expected) <= {html.unescape(text) for text in strings}, (name, strings)


def test_outputs_are_never_written_through_a_symlink(world: World) -> None:
    """A results.csv that is a symbolic link in --out: refused before any call (the folder
    is not empty: exit 2); a metrics file that is a link: exit 78; the targets untouched."""
    target = world.folder / "precious.txt"
    target.write_text("keep me")
    run_dir = world.folder / "run"
    run_dir.mkdir()
    (run_dir / "results.csv").symlink_to(target)
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    code, _ = world.run(str(source), out="run")
    assert code == ExitCode.USAGE
    link = world.folder / "metrics.prom"
    link.symlink_to(target)
    code, _ = world.run(str(source), "--metrics-file", str(link), out="run2")
    assert code == ExitCode.CONFIG
    assert target.read_text() == "keep me"
    assert world.emulator.requests == {}


def test_an_output_never_overwrites_its_input(world: World) -> None:
    """An input named like an output in the run folder: refused (the folder is not empty:
    exit 2), the input intact, no call."""
    run_dir = world.folder / "run"
    run_dir.mkdir()
    source = run_dir / "results.csv"
    source.write_text(f"contact_id,tags\n{world.contact_ids[0]},x\n")
    before = source.read_bytes()
    code, _ = world.run(str(source), out="run")
    assert code == ExitCode.USAGE
    assert source.read_bytes() == before
    assert world.emulator.requests == {}


def test_every_file_a_run_writes_is_private(world: World) -> None:
    """Every file a job run and a plain run write, the user's quota store in
    $BULKTAG_STATE_DIR included, is 0600; only the metrics file (a collector's) is 0644."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    job = world.write_job('inputs = ["in.csv"]\nmetrics_file = "m.prom"\n')
    assert world.run_job(job)[0] == ExitCode.OK
    assert world.run(str(source), "--format", "xlsx", out="plain")[0] == ExitCode.OK
    state = Path(world.environ["BULKTAG_STATE_DIR"])
    assert (state / "quota.sqlite").is_file()  # the runs did write the user's quota store
    inputs = {source, job, world.folder / "m.prom"}
    modes = {
        str(p.relative_to(world.folder)): oct(p.stat().st_mode & 0o777)
        for p in world.folder.rglob("*")
        if p.is_file() and p not in inputs
    }
    assert "state/quota.sqlite" in modes
    assert any(name.startswith("job/") for name in modes)
    assert any(name.startswith("plain/") for name in modes)
    assert set(modes.values()) == {"0o600"}, modes
    assert oct((world.folder / "m.prom").stat().st_mode & 0o777) == "0o644"
    assert source.exists()


def _half_then_fail(path: Path) -> None:
    path.write_text("contact_id,tags\nhalf a ro")
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where", ["while-writing", "at-fsync"])
def test_a_failure_while_publishing_leaves_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A disk full mid-write, or a failing fsync, while results.csv is replaced: the error
    surfaces as a fault of the machine naming the file, the previous results.csv is intact
    and no partial or temporary file is left."""
    target = tmp_path / "results.csv"
    target.write_text("contact_id,tags\nprevious,run\n")
    target.chmod(0o600)
    before = sorted(p.name for p in tmp_path.iterdir())

    def write(path: Path) -> None:
        path.write_text("contact_id,tags\nnew,run\n")

    if where == "at-fsync":

        def fail(descriptor: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr("bulktag.outputs.publish.os.fsync", fail)
    with pytest.raises(MachineError, match=r"results.csv: (the disk is full|an input/output)"):
        atomic_write(target, _half_then_fail if where == "while-writing" else write)
    assert target.read_text() == "contact_id,tags\nprevious,run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    monkeypatch.undo()
    atomic_write(target, write)  # and a write that succeeds replaces it whole
    assert target.read_text() == "contact_id,tags\nnew,run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
