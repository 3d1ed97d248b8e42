"""Input preparation: read -> normalise -> validate -> group -> plan, against plain baselines.

Each candidate turns a long ``contact_id,tag`` file into a plan (one row per contact, in order
of first appearance, tags de-duplicated in first-seen order, the contact's first line)
written as Parquet:

- ``bulktag``: ``bulktag.runner.prepare_plan`` (plan, rejects with line numbers, counts);
- ``polars (straightforward)``: ``scan_csv`` (all strings) / ``scan_parquet``, canonical ID
  (strip, lowercase, UUID regex), trimmed tags, empty ones dropped, ``group_by`` with
  ``unique(maintain_order=True)``, collected with the default engine;
- ``pandas``: ``read_csv(engine="pyarrow", dtype=str)``, the same normalisation, ``groupby``;
- ``csv module``: ``csv.reader`` and a dict of ordered sets (dicts).

Every measurement is a fresh ``python -m bench.prep --worker ...`` process, so the peak
RSS is its own (``VmHWM``, interpreter and imports included); candidates take turns,
run by run. The wall time covers opening the input to the plan (and, for bulktag, the
rejects) written, not the interpreter's start or the imports. Inputs are generated once
(seeded) under ``bench/.work/prep/`` and reused.

``python -m bench.prep`` runs the quick sizes; ``--full`` the full ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import WORK, Section, median, peak_rss_kib

SEED = 20_240_601
DATA_VERSION = 1
TAGS_PER_CONTACT = 4
BAD_SHARE = 0.001  # rows with a non-UUID ID or an empty tag
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

BULKTAG = "bulktag"
POLARS = "polars (straightforward)"
PANDAS = "pandas (pyarrow read_csv)"
CSV_MODULE = "csv module"
#: candidate -> worker name
CANDIDATES = {BULKTAG: "bulktag", POLARS: "polars", PANDAS: "pandas", CSV_MODULE: "csvmodule"}

#: Targets, on the largest CSV; set for this one.
TARGET_ROWS = 10_000_000
MAX_WALL_VS_POLARS = 0.6
MAX_RSS_MIB = 1024
MIN_SPEEDUP_PANDAS = 4.0
MIN_SPEEDUP_CSV = 8.0

DATA = WORK / "prep"
ROOT = Path(__file__).resolve().parents[1]


# -- data ---------------------------------------------------------------------------------


def _tag_vocabulary() -> list[str]:
    words = ("vip", "newsletter", "webinar", "Trade Show", "partner", "lead", "Churn Risk", "beta")
    return [f"{words[i % len(words)]} {i:04d}" for i in range(2_000)]


def generate(rows: int, folder: Path = DATA) -> tuple[Path, Path]:
    """A seeded long input of ``rows`` rows, as CSV and Parquet (reused when present).

    About four rows per contact, scattered through the file; tags drawn from 2,000 with a
    skew (a few are common); 1 % of IDs upper-cased and 0.5 % padded with spaces, 1 % of
    tags padded; ``BAD_SHARE`` of the rows are bad: half with a non-UUID ID, half with an
    empty tag.
    """
    import numpy as np
    import polars as pl

    stem = f"contacts-{rows}-s{SEED}-v{DATA_VERSION}"
    csv_path, parquet_path = folder / f"{stem}.csv", folder / f"{stem}.parquet"
    if csv_path.exists() and parquet_path.exists():
        return csv_path, parquet_path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([SEED, rows])
    bad = max(2, round(rows * BAD_SHARE))
    good = rows - bad
    contacts = max(1, good // TAGS_PER_CONTACT)
    hexed = np.frombuffer(
        rng.integers(0, 256, size=(contacts, 16), dtype=np.uint8).tobytes().hex().encode(),
        dtype="S32",
    )
    h = pl.col("h")
    ids = (
        pl.DataFrame({"h": pl.Series(hexed).cast(pl.String)})
        .select(
            pl.concat_str(
                [h.str.slice(a, b - a) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20))]
                + [h.str.slice(20, 12)],
                separator="-",
            )
        )
        .to_series()
    )
    vocabulary = pl.Series(_tag_vocabulary())
    owner = pl.Series(rng.integers(0, contacts, size=good))
    tag_index = pl.Series((rng.random(good) ** 3 * len(vocabulary)).astype(np.int64))
    noise = rng.random(good)
    frame = pl.DataFrame({"contact_id": ids.gather(owner), "tag": vocabulary.gather(tag_index)})
    frame = frame.with_columns(
        contact_id=pl.when(pl.Series(noise < 0.01))
        .then(pl.col("contact_id").str.to_uppercase())
        .when(pl.Series(noise < 0.015))
        .then(pl.lit(" ") + pl.col("contact_id") + pl.lit(" "))
        .otherwise(pl.col("contact_id")),
        tag=pl.when(pl.Series((noise > 0.5) & (noise < 0.51)))
        .then(pl.lit("  ") + pl.col("tag") + pl.lit(" "))
        .otherwise(pl.col("tag")),
    )
    broken_ids = ["12345", "1.23E+15", "not-a-uuid", "6f1c1d5e-1c2b-4c8e-9a7e"]
    half = bad // 2
    bad_rows = pl.DataFrame(
        {
            "contact_id": [broken_ids[i % len(broken_ids)] for i in range(half)]
            + ids.gather(pl.Series(rng.integers(0, contacts, size=bad - half))).to_list(),
            "tag": vocabulary.gather(pl.Series(rng.integers(0, 50, size=half))).to_list()
            + [""] * (bad - half),
        }
    )
    everything = pl.concat([frame, bad_rows]).select(pl.all().gather(rng.permutation(rows)))
    for path, write in ((csv_path, everything.write_csv), (parquet_path, everything.write_parquet)):
        partial = path.with_name(path.name + ".partial")
        write(partial)
        partial.replace(path)
    return csv_path, parquet_path


# -- candidates (each runs in a worker process) ---------------------------------------------


def _bulktag(path: Path, out: Path) -> dict[str, int]:
    from bulktag.config import RunConfig
    from bulktag.runner import prepare_plan

    _, plan = prepare_plan(RunConfig(inputs=(str(path),)), out, out / "plan.parquet")
    stats = plan.stats
    return {
        "contacts": stats.contacts,
        "pairs": stats.pairs - stats.duplicate_pairs,
        "rejects": stats.rejects,
    }


def _polars(path: Path, out: Path) -> dict[str, int]:
    import polars as pl

    if path.suffix == ".csv":
        scan = pl.scan_csv(path, infer_schema=False).with_row_index("line", offset=2)
    else:
        scan = pl.scan_parquet(path).with_row_index("line", offset=1)
    rows = scan.select(
        "line",
        id=pl.col("contact_id").str.strip_chars().str.to_lowercase(),
        tag=pl.col("tag").str.strip_chars(),
    )
    valid = rows.filter(pl.col("id").str.contains(UUID_RE) & (pl.col("tag") != ""))
    plan = (
        valid.group_by("id", maintain_order=True)
        .agg(tags=pl.col("tag").unique(maintain_order=True), line=pl.col("line").first())
        .select(
            seq=pl.int_range(pl.len(), dtype=pl.Int64),
            contact_id="id",
            tags="tags",
            line=pl.col("line").cast(pl.Int64),
        )
        .collect()
    )
    plan.write_parquet(out / "plan.parquet")
    return {"contacts": plan.height, "pairs": int(plan["tags"].list.len().sum()), "rejects": -1}


def _pandas(path: Path, out: Path) -> dict[str, int]:
    import pandas as pd

    frame = pd.read_csv(path, engine="pyarrow", dtype=str, keep_default_na=False)
    ids = frame["contact_id"].str.strip().str.lower()
    tags = frame["tag"].str.strip()
    keep = ids.str.match(UUID_RE) & (tags != "")
    pairs = pd.DataFrame(
        {
            "contact_id": ids[keep],
            "tag": tags[keep].astype(object),  # lists of Python strings: agg(list) is 2x faster
            "line": pd.RangeIndex(2, len(frame) + 2)[keep.to_numpy()],
        }
    ).drop_duplicates(["contact_id", "tag"])  # keeps each first: the contact's first line too
    grouped = pairs.groupby("contact_id", sort=False)
    plan = pd.DataFrame({"tags": grouped["tag"].agg(list), "line": grouped["line"].first()})
    plan = plan.reset_index()
    plan.insert(0, "seq", range(len(plan)))
    plan.to_parquet(out / "plan.parquet", index=False)
    return {"contacts": len(plan), "pairs": len(pairs), "rejects": -1}


def _csv_module(path: Path, out: Path) -> dict[str, int]:
    import csv
    import re

    import pyarrow as pa
    import pyarrow.parquet as pq

    valid_id = re.compile(UUID_RE).match
    tags: dict[str, dict[str, None]] = {}  # ordered sets
    lines: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        for line, (raw_id, raw_tag) in enumerate(reader, start=2):
            contact = raw_id.strip().lower()
            tag = raw_tag.strip()
            if not tag or not valid_id(contact):
                continue
            known = tags.get(contact)
            if known is None:
                tags[contact] = {tag: None}
                lines[contact] = line
            else:
                known[tag] = None
    table = pa.table(
        {
            "seq": pa.array(range(len(tags)), pa.int64()),
            "contact_id": pa.array(list(tags), pa.string()),
            "tags": pa.array([list(t) for t in tags.values()], pa.list_(pa.string())),
            "line": pa.array(list(lines.values()), pa.int64()),
        }
    )
    pq.write_table(table, out / "plan.parquet")
    return {"contacts": len(tags), "pairs": sum(len(t) for t in tags.values()), "rejects": -1}


WORKERS: dict[str, Callable[[Path, Path], dict[str, int]]] = {
    "bulktag": _bulktag,
    "polars": _polars,
    "pandas": _pandas,
    "csvmodule": _csv_module,
}
IMPORTS = {
    "bulktag": ("bulktag.runner", "polars"),
    "polars": ("polars",),
    "pandas": ("pandas", "pyarrow.parquet"),
    "csvmodule": ("csv", "pyarrow.parquet"),
}
#: bulktag.plan's stages, timed by ``--stages`` (names absent from bulktag are skipped)
STAGES = ("_count_lines", "_read", "_write_rejects", "_write_plan", "_fix_csv_lines")


def _timed_stages() -> dict[str, float]:
    """Wrap bulktag.plan's stages to add their wall times up in the returned dict."""
    import functools

    import bulktag.plan

    spent: dict[str, float] = {}
    for name in STAGES:
        function = getattr(bulktag.plan, name, None)
        if function is None:
            continue

        @functools.wraps(function)
        def timed(*args: Any, _name: str = name, _f: Any = function, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - started

        setattr(bulktag.plan, name, timed)
    return spent


def _fingerprint(plan: Path) -> str:
    """A hash of (contact_id, tags, line) in plan order: the candidates' plans must agree."""
    import polars as pl

    rows = pl.read_parquet(plan, columns=["contact_id", "tags", "line"]).select(
        "contact_id", pl.col("tags").list.join("\x1f"), pl.col("line").cast(pl.Int64)
    )
    return f"{int(rows.hash_rows(seed=1).sum() or 0) % (1 << 64):016x}:{rows.height}"


def _worker(name: str, path: Path, out: Path, *, check: bool, stages: bool) -> None:
    """One measurement: import, then time the work; print wall, peak RSS and counts as JSON."""
    import importlib

    for module in IMPORTS[name]:
        importlib.import_module(module)
    spent = _timed_stages() if stages else {}
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    counts: dict[str, Any] = WORKERS[name](path, out)
    wall = time.perf_counter() - started
    rss_kib = peak_rss_kib()  # before the check reads
    if check:
        counts["fingerprint"] = _fingerprint(out / "plan.parquet")
    print(json.dumps({"wall": wall, "rss_mib": rss_kib / 1024, "stages": spent, **counts}))


# -- the harness ----------------------------------------------------------------------------


def _measure(
    candidate: str, path: Path, out: Path, *, check: bool = False, stages: bool = False
) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.prep", "--worker", CANDIDATES[candidate]]
    command += [str(path), str(out)]
    command += ["--check"] * check + ["--stages"] * stages
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, env=dict(os.environ)
    )
    if result.returncode != 0:
        raise RuntimeError(f"{candidate} on {path.name} failed:\n{result.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def run(*, quick: bool) -> Section:
    sizes = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    runs = 3 if quick else 5
    section = Section(
        key="prep",
        title="Input preparation (read, normalise, validate, group, plan)",
        method=(
            f"Long `contact_id,tag` inputs of {' and '.join(f'{s:,}' for s in sizes)} rows "
            f"(about {TAGS_PER_CONTACT} rows per contact, scattered; {BAD_SHARE:.1%} bad rows: "
            "non-UUID IDs, empty tags; 1.5 % of IDs and 1 % of tags need trimming or "
            "lower-casing), seeded, as CSV and Parquet. Each measurement is a fresh process; "
            f"median wall time of {runs} runs, candidates taking turns, from opening the input "
            "to the plan Parquet written (bulktag: `prepare_plan`, which also writes the "
            "rejects with line numbers and counts everything); peak RSS is the process's "
            "`VmHWM` (interpreter and imports included). Baseline: a straightforward "
            "polars script (the same normalisation, `group_by` + `unique(maintain_order=True)`, "
            "default engine). Every candidate's plan is checked to be the same (contacts, "
            "tags, lines, order). "
            f"Targets on the {sizes[-1]:,}-row CSV: bulktag at most {MAX_WALL_VS_POLARS}x the "
            f"baseline's time, at most {MAX_RSS_MIB:,} MiB, at least {MIN_SPEEDUP_PANDAS:g}x "
            f"faster than pandas and {MIN_SPEEDUP_CSV:g}x faster than the csv module."
        ),
        columns=[
            "candidate",
            "format",
            "rows",
            "median wall s",
            "rows/s",
            "peak RSS MiB",
            "vs polars (time)",
        ],
    )
    results: dict[str, Any] = {}
    fingerprints: dict[str, str] = {}
    scratch = DATA / "out"
    for rows in sizes:
        csv_path, parquet_path = generate(rows)
        plan: list[tuple[str, str, Path]] = [
            *((c, "csv", csv_path) for c in CANDIDATES),
            *((c, "parquet", parquet_path) for c in (BULKTAG, POLARS)),
        ]
        measured: dict[tuple[str, str], list[dict[str, Any]]] = {(c, f): [] for c, f, _ in plan}
        for turn in range(runs):
            for candidate, fmt, path in plan:
                out = scratch / f"{CANDIDATES[candidate]}-{fmt}"
                sample = _measure(candidate, path, out, check=turn == 0)
                if turn == 0:
                    fingerprints[f"{CANDIDATES[candidate]}/{fmt}/{rows}"] = sample["fingerprint"]
                measured[candidate, fmt].append(sample)
        for (candidate, fmt), samples in measured.items():
            wall = median([s["wall"] for s in samples])
            rss = median([s["rss_mib"] for s in samples])
            base = median([s["wall"] for s in measured[POLARS, fmt]])
            results[f"{CANDIDATES[candidate]}/{fmt}/{rows}"] = {
                "candidate": candidate,
                "format": fmt,
                "rows": rows,
                "wall_s": wall,
                "walls_s": [round(s["wall"], 3) for s in samples],
                "rows_per_s": rows / wall,
                "peak_rss_mib": rss,
                "peak_rss_mib_runs": [round(s["rss_mib"], 1) for s in samples],
                "vs_polars": wall / base,
                "contacts": samples[0]["contacts"],
                "unique_pairs": samples[0]["pairs"],
            }
            section.rows.append(
                [candidate, fmt, rows, wall, f"{rows / wall:,.0f}", rss, f"{wall / base:.2f}x"]
            )
    # where bulktag's time goes, on the largest CSV (one more run, timed by stage)
    profile = _measure(BULKTAG, generate(sizes[-1])[0], scratch / "bulktag-stages", stages=True)
    section.figures = {
        "runs": runs,
        "sizes": list(sizes),
        "results": results,
        "fingerprints": fingerprints,
        "bulktag_stages_s": {k: round(v, 3) for k, v in profile["stages"].items()},
        "bulktag_stages_wall_s": round(profile["wall"], 3),
    }
    _notes(section, results, fingerprints, sizes[-1])
    shutil.rmtree(scratch, ignore_errors=True)  # the plans written; the inputs stay for reuse
    return section


def _notes(
    section: Section, results: dict[str, Any], fingerprints: dict[str, str], rows: int
) -> None:
    def get(candidate: str, fmt: str = "csv") -> dict[str, Any]:
        found: dict[str, Any] = results[f"{CANDIDATES[candidate]}/{fmt}/{rows}"]
        return found

    ours, base = get(BULKTAG), get(POLARS)
    pandas, plain = get(PANDAS), get(CSV_MODULE)
    checks = [
        (
            f"bulktag at most {MAX_WALL_VS_POLARS}x the straightforward polars script's time",
            ours["vs_polars"] <= MAX_WALL_VS_POLARS,
            f"{ours['vs_polars']:.2f}x: {ours['wall_s']:.2f} s against {base['wall_s']:.2f} s",
        ),
        (
            f"bulktag peak RSS at most {MAX_RSS_MIB:,} MiB",
            ours["peak_rss_mib"] <= MAX_RSS_MIB,
            f"{ours['peak_rss_mib']:,.0f} MiB; the baseline {base['peak_rss_mib']:,.0f} MiB",
        ),
        (
            f"bulktag at least {MIN_SPEEDUP_PANDAS:g}x faster than pandas",
            pandas["wall_s"] / ours["wall_s"] >= MIN_SPEEDUP_PANDAS,
            f"{pandas['wall_s'] / ours['wall_s']:.1f}x",
        ),
        (
            f"bulktag at least {MIN_SPEEDUP_CSV:g}x faster than the csv module",
            plain["wall_s"] / ours["wall_s"] >= MIN_SPEEDUP_CSV,
            f"{plain['wall_s'] / ours['wall_s']:.1f}x",
        ),
    ]
    for name, met, detail in checks:
        verdict = "met" if met else "NOT met"
        section.notes.append(f"Target ({rows:,}-row CSV) {name}: {verdict} ({detail}).")
    if rows < TARGET_ROWS:
        section.notes.append(
            f"The targets are set for the {TARGET_ROWS:,}-row CSV (the full run); at "
            f"{rows:,} rows (quick run) the verdicts above are only indicative: the baseline's "
            "group-by still fits in the CPU caches there, and bulktag's fixed costs weigh more."
        )
    section.figures["targets"] = {name: met for name, met, _ in checks}
    stages = section.figures["bulktag_stages_s"]
    if stages:
        spent = ", ".join(f"{name.strip('_')} {seconds:.2f} s" for name, seconds in stages.items())
        section.notes.append(
            f"Where bulktag's time goes ({rows:,}-row CSV, one run of "
            f"{section.figures['bulktag_stages_wall_s']:.2f} s): {spent} (`_read`: the one "
            "pass over the input; `_write_plan`: grouping and writing the plan)."
        )
    by_input: dict[str, set[str]] = {}  # lines are records in Parquet: one per format
    for key, value in fingerprints.items():
        by_input.setdefault(key.split("/", 1)[1], set()).add(value)
    same = all(len(values) == 1 for values in by_input.values())
    section.figures["plans_agree"] = same
    section.notes.append(
        "Every candidate wrote the same plan (contacts, tags, lines, order) for every input."
        if same
        else f"The candidates' plans DIFFER: {fingerprints}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prep", description=__doc__)
    parser.add_argument("--worker", nargs=3, metavar=("CANDIDATE", "INPUT", "OUT"))
    parser.add_argument("--check", action="store_true", help="worker: fingerprint the plan")
    parser.add_argument("--stages", action="store_true", help="worker: time bulktag's stages")
    parser.add_argument("--full", action="store_true", help="full sizes (default: quick)")
    args = parser.parse_args()
    if args.worker:
        name, path, out = args.worker
        _worker(name, Path(path), Path(out), check=args.check, stages=args.stages)
        return
    print(run(quick=not args.full).markdown())


if __name__ == "__main__":
    main()
