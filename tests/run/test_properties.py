"""Properties over generated inputs: every row and every contact is accounted for."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulktag.emulator import Faults
from tests.world import new_world, read_results

UNKNOWN = "00000000-0000-4000-8000-00000000000{}"
ID_KINDS = st.one_of(
    st.integers(0, 9).map(lambda i: ("known", i)),
    st.integers(0, 2).map(lambda i: ("unknown", i)),
    st.sampled_from([("bad", "not-a-uuid"), ("bad", ""), ("bad", "1.2E+15"), ("bad", "42")]),
)
TAGS = st.lists(
    st.sampled_from(["a", "b", "c", "-neg", "=f", " spaced  out ", "", "x" * 101, "d\x07"]),
    min_size=0,
    max_size=4,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.tuples(ID_KINDS, TAGS), min_size=1, max_size=25),
    fault_rate=st.sampled_from([0.0, 0.4]),
    seed=st.integers(0, 1000),
)
def test_conservation(
    tmp_path: Path, rows: list[tuple[tuple[str, object], list[str]]], fault_rate: float, seed: int
) -> None:
    """Rows = grouped + rejected; contacts = ok + failed + deferred + not_attempted; re-read."""
    world = new_world(
        Path(tempfile.mkdtemp(dir=tmp_path)),
        contacts=10,
        faults=Faults(fault_rate=fault_rate),
        seed=seed,
    )
    ids = world.contact_ids

    def contact(kind: str, value: object) -> str:
        if kind == "known":
            return ids[int(str(value))]
        if kind == "unknown":
            return UNKNOWN.format(value)
        return str(value)

    source = world.write_csv("in.csv", [(contact(k, v), ",".join(tags)) for (k, v), tags in rows])
    _, run_dir = world.run(str(source), "--plan", "unmetered", "--max-attempts", "2")
    summary = json.loads((run_dir / "summary.json").read_text())
    plan = summary["plan"]
    assert plan["rows_read"] + plan["blank_rows"] == len(rows)
    assert plan["rows_read"] == plan["rows_grouped"] + plan["rows_rejected"]
    results = read_results(run_dir / "results.csv")
    counts = summary["contacts"]
    assert results.height == counts["planned"] == plan["contacts"]
    assert counts["planned"] == sum(
        counts[s] for s in ("ok", "failed", "deferred", "not_attempted", "skipped")
    )
    for row in results.filter(pl.col("status") == "ok").iter_rows(named=True):
        assert set(row["tags"].lstrip("'").split(",")) <= set(world.tags_of(row["contact_id"]))
    failures = read_results(run_dir / "failures.csv")
    assert failures.height == counts["planned"] - counts["ok"] - counts["skipped"]
    failures_file = str(run_dir / "failures.csv")  # all of it, permanent failures included
    _, again = world.run(failures_file, "--dry-run", "--format", "parquet", "--retry-permanent")
    reread = pl.read_parquet(again / "results.parquet") if failures.height else None
    expected = {
        (r["contact_id"], tuple(r["pending_tags"]))
        for r in pl.read_parquet(_as_parquet(run_dir)).iter_rows(named=True)
        if r["status"] not in ("ok", "skipped")
    }
    got = (
        set()
        if reread is None
        else {(r["contact_id"], tuple(r["tags"])) for r in reread.iter_rows(named=True)}
    )
    assert got == expected


def _as_parquet(run_dir: Path) -> Path:
    """results.csv as Parquet, tags split back into lists (as bulktag's reader would)."""
    frame = pl.read_csv(run_dir / "results.csv", infer_schema=False).with_columns(
        pl.col("pending_tags")
        .str.strip_prefix("'")
        .str.split(",")
        .list.eval(pl.element().filter(pl.element() != "")),
    )
    target = run_dir.parent / f"{run_dir.name}-results.parquet"
    frame.write_parquet(target)
    return target
