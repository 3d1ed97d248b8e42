"""Spreadsheet-safe outputs that read back exactly; files bulktag refuses to overwrite."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulktag.errors import ExitCode
from bulktag.publish import neutralise
from tests.world import World, new_world

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
)
RISKY = st.sampled_from(["=", "+", "-", "@", "'"]).flatmap(lambda c: TAG_TEXT.map(lambda t: c + t))
TAGS = st.lists(st.one_of(TAG_TEXT, RISKY), min_size=1, max_size=5, unique=True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(TAGS, min_size=1, max_size=6))
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


def test_every_text_column_of_a_csv_is_neutralised() -> None:
    """=, +, -, @, tab, CR and ' at the start of any cell get an apostrophe; others do not."""
    frame = pl.DataFrame({"cell": ["=SUM(A1)", "+1", "-2", "@x", "\tx", "\rx", "'x", "ok", "a=b"]})
    out = frame.select(neutralise(pl.col("cell")).alias("cell"))["cell"].to_list()
    assert out == ["'=SUM(A1)", "'+1", "'-2", "'@x", "'\tx", "'\rx", "''x", "ok", "a=b"]


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


def test_output_files_are_private(world: World) -> None:
    """Every output and state file is 0600 (the metrics file, read by a collector, is 0644)."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    job = world.write_job('inputs = ["in.csv"]\nmetrics_file = "m.prom"\n')
    world.run_job(job)
    modes = {
        str(p.relative_to(world.folder)): oct(p.stat().st_mode & 0o777)
        for p in (world.folder / "job").rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }
    assert modes
    assert set(modes.values()) == {"0o600"}, modes
    assert oct((world.folder / "m.prom").stat().st_mode & 0o777) == "0o644"
    assert source.exists()
