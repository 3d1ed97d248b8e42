"""Input preparation on every input shape: read -> normalise -> validate -> group -> plan.

Each candidate turns an input into a plan (one row per contact, in order of first
appearance, tags de-duplicated in first-seen order, the contact's first line). The shapes
users send, each seeded, about four (contact, tag) pairs per contact, 0.1 % bad rows
(non-UUID IDs, empty tag cells) so that rejects exist:

- ``long-clean``: ``contact_id,tag``, one tag a row, nearly every row clean (1.5 % of IDs
  and 1 % of tags need trimming or lower-casing), as CSV; ``long-clean-parquet``: the same
  rows as Parquet (in-process only);
- ``long-messy``: long, half the tags padded (``" Segment 012  "``), half upper-case (tag
  case is kept), 30 % of IDs upper-case, 5 % ``{braced}``;
- ``wide``: one row per contact, ``contact_id,tags``, about four tags a cell separated by
  ``,`` and sometimes ``;`` or ``|``, spaces around them;
- ``xlsx``: the wide shape as an XLSX workbook (xlsxwriter), sized in rows.

Sizes are counted in pairs (XLSX: in sheet rows). Two comparisons, each against the
shape's straightforward polars script (``bench/plain_polars.py``: ``scan_csv`` or
``read_excel``, the ID stripped, lower-cased, braces off, UUID regex; tags split on
``,;|`` and exploded (wide), stripped, empty ones dropped; ``group_by`` + ``unique
(maintain_order=True)``; then every plan row read with ``iter_rows``):

- **whole process**, as a user runs it: ``bulktag validate FILE`` against ``python
  bench/plain_polars.py SHAPE FILE``, each a process started by a small launcher that
  times it (interpreter start and imports included) and takes its peak RSS from
  ``wait4`` (the launcher is a fresh, small process: no high-water mark inherited);
- **in-process**: ``bulktag.plan.build.prepare_plan`` against the plain script's body (whose
  plan is also written as Parquet), each in a fresh ``python -m bench.prep --worker ...``
  process timed from opening the input to the plan written (imports not included: for a
  workbook, fastexcel, and the pyarrow polars' ``read_excel`` loads, are imported first);
  peak RSS is the worker's ``VmHWM``. The long-clean shape also has a pandas and a
  csv-module candidate.

Candidates take turns, run by run; the median wall time is reported. Every candidate's
plan is checked to be the same (contacts, tags, lines, order: a hash of the plan Parquet);
for the whole-process sizes not measured in-process, by one more in-process run each.
Per shape, one more run of ``bulktag validate`` in a worker (``bench.stages``; and of
``prepare_plan`` at the in-process size when it differs) times bulktag's imports and the
top-level functions of ``bulktag.plan.build`` and ``bulktag.read.inputs`` (and a few of ``sniff``,
``precheck``, ``report``), by name, those that exist.

Inputs are generated once (seeded) under ``bench/.work/prep/`` and reused.
``python -m bench.prep`` runs the quick sizes; ``--full`` the full ones; ``--shapes`` and
``--comparisons`` pick some; ``--json FILE`` also writes the section's figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import WORK, Section, median, peak_rss_kib
from bench.stages import timed_stages

SEED = 20_240_601
DATA_VERSION = 1  # long-clean's files
SHAPES_VERSION = 1  # the other shapes' files
TAGS_PER_CONTACT = 4
BAD_SHARE = 0.001  # rows with a non-UUID ID or an empty tag cell
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
BROKEN_IDS = ("12345", "1.23E+15", "not-a-uuid", "6f1c1d5e-1c2b-4c8e-9a7e")

BULKTAG = "bulktag"
POLARS = "polars (straightforward)"
PANDAS = "pandas (pyarrow read_csv)"
CSV_MODULE = "csv module"
#: candidate -> worker name
CANDIDATES = {BULKTAG: "bulktag", POLARS: "polars", PANDAS: "pandas", CSV_MODULE: "csvmodule"}

WHOLE = "whole process"
IN_PROCESS = "in-process"
COMPARISONS = (WHOLE, IN_PROCESS)


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    plain: str  #: the plain script's shape: "long" or "wide"
    suffix: str  #: csv, parquet, xlsx
    whole: bool = True  #: measured as a whole process too
    extra: tuple[str, ...] = ()  #: more in-process candidates
    targets: bool = True  #: the in-process targets apply


SHAPES = {
    s.name: s
    for s in (
        Shape("long-clean", "long", "csv", extra=(PANDAS, CSV_MODULE)),
        Shape("long-clean-parquet", "long", "parquet", whole=False, targets=False),
        Shape("long-messy", "long", "csv"),
        Shape("wide", "wide", "csv"),
        Shape("xlsx", "wide", "xlsx", targets=False),
    )
}

#: Sizes: (contact, tag) pairs, sheet rows for XLSX; per comparison, quick and full.
SIZES: dict[bool, dict[str, dict[str, int]]] = {
    True: {
        WHOLE: {"pairs": 100_000, "rows": 10_000},
        IN_PROCESS: {"pairs": 100_000, "rows": 10_000},
    },
    False: {
        WHOLE: {"pairs": 3_000_000, "rows": 100_000},
        IN_PROCESS: {"pairs": 10_000_000, "rows": 100_000},
    },
}
#: Targets: whole process, at the full sizes
MAX_WHOLE_VS_PLAIN = 1.0
#: Targets: in-process, on the CSV shapes at the full size
TARGET_ROWS = 10_000_000
MAX_WALL_VS_POLARS = 0.6
MAX_RSS_MIB = 1024
MIN_SPEEDUP_PANDAS = 4.0
MIN_SPEEDUP_CSV = 8.0

DATA = WORK / "prep"
ROOT = Path(__file__).resolve().parents[1]
PLAIN_SCRIPT = ROOT / "bench" / "plain_polars.py"


def _unit(shape: Shape) -> str:
    return "rows" if shape.suffix == "xlsx" else "pairs"


def _sizes(shape: Shape, comparison: str, *, quick: bool) -> list[int]:
    if comparison == WHOLE and not shape.whole:
        return []
    return [SIZES[quick][comparison][_unit(shape)]]


# -- data ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Input:
    path: Path
    rows: int  #: data rows
    pairs: int  #: (contact, tag) pairs written, bad rows' included


def _tag_vocabulary() -> list[str]:
    words = ("vip", "newsletter", "webinar", "Trade Show", "partner", "lead", "Churn Risk", "beta")
    return [f"{words[i % len(words)]} {i:04d}" for i in range(2_000)]


def _segments() -> list[str]:
    return [f"Segment {i:03d}" for i in range(1_000)]


def _uuids(rng: Any, n: int) -> Any:
    """``n`` random canonical (lower-case) UUIDs, a polars Series."""
    import numpy as np
    import polars as pl

    hexed = np.frombuffer(
        rng.integers(0, 256, size=(n, 16), dtype=np.uint8).tobytes().hex().encode(),
        dtype="S32",
    )
    h = pl.col("h")
    return (
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


def _skewed(rng: Any, n: int, size: int) -> Any:
    """``n`` indexes below ``size``, a few of them common: a polars Series."""
    import numpy as np
    import polars as pl

    return pl.Series((rng.random(n) ** 3 * size).astype(np.int64))


def _bad_rows(rng: Any, ids: Any, vocabulary: Any, bad: int, contacts: int) -> Any:
    """``bad`` rows of the usual mistakes: half with a broken ID, half with an empty tag."""
    import polars as pl

    half = bad // 2
    return pl.DataFrame(
        {
            "contact_id": [BROKEN_IDS[i % len(BROKEN_IDS)] for i in range(half)]
            + ids.gather(pl.Series(rng.integers(0, contacts, size=bad - half))).to_list(),
            "tag": vocabulary.gather(pl.Series(rng.integers(0, 50, size=half))).to_list()
            + [""] * (bad - half),
        }
    )


def _write(frame: Any, path: Path) -> None:
    """``frame`` as ``path`` (CSV, Parquet), written aside and renamed."""
    partial = path.with_name(path.name + ".partial")
    if path.suffix == ".csv":
        frame.write_csv(partial)
    else:
        frame.write_parquet(partial)
    partial.replace(path)


def _known(path: Path) -> Input | None:
    meta = path.with_name(path.name + ".json")
    if path.exists() and meta.exists():
        return Input(path, **json.loads(meta.read_text(encoding="utf-8")))
    return None


def _remember(item: Input) -> Input:
    meta = item.path.with_name(item.path.name + ".json")
    meta.write_text(json.dumps({"rows": item.rows, "pairs": item.pairs}), encoding="utf-8")
    return item


def generate(rows: int, folder: Path = DATA) -> tuple[Path, Path]:
    """The long-clean input of ``rows`` rows, as CSV and Parquet (reused when present).

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
    ids = _uuids(rng, contacts)
    vocabulary = pl.Series(_tag_vocabulary())
    owner = pl.Series(rng.integers(0, contacts, size=good))
    tag_index = _skewed(rng, good, len(vocabulary))
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
    bad_rows = _bad_rows(rng, ids, vocabulary, bad, contacts)
    everything = pl.concat([frame, bad_rows]).select(pl.all().gather(rng.permutation(rows)))
    _write(everything, csv_path)
    _write(everything, parquet_path)
    return csv_path, parquet_path


def generate_messy(pairs: int, folder: Path = DATA) -> Input:
    """The long-messy input: long, ``pairs`` rows, about four per contact, scattered.

    Tags drawn from 1,000 ``Segment NNN`` with a skew; each tag padded (``" Segment 012  "``)
    with a chance of one half and upper-cased with one of a half; each ID upper-cased with a
    chance of 30 % and braced (``{...}``) with one of 5 %; ``BAD_SHARE`` of the rows bad.
    """
    import numpy as np
    import polars as pl

    path = folder / f"long-messy-{pairs}-s{SEED}-v{SHAPES_VERSION}.csv"
    if (known := _known(path)) is not None:
        return known
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([SEED, 2, pairs])
    bad = max(2, round(pairs * BAD_SHARE))
    good = pairs - bad
    contacts = max(1, good // TAGS_PER_CONTACT)
    ids = _uuids(rng, contacts)
    vocabulary = pl.Series(_segments())
    owner = pl.Series(rng.integers(0, contacts, size=good))
    frame = pl.DataFrame(
        {
            "contact_id": ids.gather(owner),
            "tag": vocabulary.gather(_skewed(rng, good, len(vocabulary))),
            "upper_tag": rng.random(good) < 0.5,
            "padded": rng.random(good) < 0.5,
            "upper_id": rng.random(good) < 0.3,
            "braced": rng.random(good) < 0.05,
        }
    )
    contact, tag = pl.col("contact_id"), pl.col("tag")
    contact = pl.when("upper_id").then(contact.str.to_uppercase()).otherwise(contact)
    contact = pl.when("braced").then(pl.lit("{") + contact + pl.lit("}")).otherwise(contact)
    tag = pl.when("upper_tag").then(tag.str.to_uppercase()).otherwise(tag)
    tag = pl.when("padded").then(pl.lit(" ") + tag + pl.lit("  ")).otherwise(tag)
    frame = frame.select(contact_id=contact, tag=tag)
    bad_rows = _bad_rows(rng, ids, vocabulary, bad, contacts)
    everything = pl.concat([frame, bad_rows]).select(pl.all().gather(rng.permutation(pairs)))
    _write(everything, path)
    return _remember(Input(path, pairs, pairs))


#: Between two tags of a wide cell, and how often.
SEPARATORS = {", ": 0.55, ",": 0.1, " , ": 0.05, "; ": 0.1, " ; ": 0.05, " | ": 0.1, "|": 0.05}


def _wide(rng: Any, rows: int) -> tuple[Any, int]:
    """A wide frame of ``rows`` rows (``contact_id, tags``) and the pairs its cells hold.

    One row per contact, in no order; 1 to 7 tags a cell (4 on average) from 1,000
    ``Segment NNN`` with a skew (a cell may repeat a tag), separated by ``SEPARATORS``; 10 %
    of the cells padded with a space each side; ``BAD_SHARE`` of the rows bad: half with a
    non-UUID ID, half with an empty tags cell.
    """
    import numpy as np
    import polars as pl

    bad = max(2, round(rows * BAD_SHARE))
    half = bad // 2
    good = rows - half  # the rows of an empty cell hold a new contact each
    ids = _uuids(rng, good)
    counts = 1 + rng.binomial(6, 0.5, size=good - (bad - half))
    total = int(counts.sum())
    row = np.repeat(np.arange(len(counts)), counts)
    first = np.ones(total, dtype=bool)
    first[1:] = row[1:] != row[:-1]
    vocabulary = pl.Series(_segments())
    separators = pl.Series(list(SEPARATORS))
    chosen = rng.choice(len(SEPARATORS), size=total, p=list(SEPARATORS.values()))
    pieces = pl.DataFrame(
        {
            "row": row,
            "first": first,
            "tag": vocabulary.gather(_skewed(rng, total, len(vocabulary))),
            "sep": separators.gather(pl.Series(chosen)),
        }
    )
    piece = pl.when("first").then(pl.col("tag")).otherwise(pl.col("sep") + pl.col("tag"))
    cells = (
        pieces.group_by("row", maintain_order=True).agg(tags=piece.str.join("")).get_column("tags")
    )
    padded = pl.Series(rng.random(len(cells)) < 0.1)
    cells = (
        pl.DataFrame({"tags": cells, "padded": padded})
        .select(
            pl.when("padded").then(pl.lit(" ") + pl.col("tags") + pl.lit(" ")).otherwise("tags")
        )
        .to_series()
    )
    broken = [BROKEN_IDS[i % len(BROKEN_IDS)] for i in range(half)]
    empty = [""] * (good - len(cells))  # valid IDs, empty cells
    frame = pl.DataFrame(
        {
            "contact_id": pl.concat([ids, pl.Series(broken, dtype=pl.String)]),
            "tags": pl.concat([cells, pl.Series(empty + ["Segment 001, Segment 002"] * half)]),
        }
    )
    frame = frame.select(pl.all().gather(rng.permutation(rows)))
    return frame, total + 2 * half


def generate_wide(pairs: int, folder: Path = DATA) -> Input:
    """The wide input, as CSV: about ``pairs`` pairs, in ``pairs // 4`` rows (:func:`_wide`)."""
    import numpy as np

    path = folder / f"wide-{pairs}-s{SEED}-v{SHAPES_VERSION}.csv"
    if (known := _known(path)) is not None:
        return known
    folder.mkdir(parents=True, exist_ok=True)
    rows = max(4, pairs // TAGS_PER_CONTACT)
    frame, written = _wide(np.random.default_rng([SEED, 3, pairs]), rows)
    _write(frame, path)
    return _remember(Input(path, rows, written))


def generate_xlsx(rows: int, folder: Path = DATA) -> Input:
    """The wide shape as an XLSX workbook of ``rows`` rows, written with xlsxwriter (an empty
    tags cell is a blank cell)."""
    import numpy as np
    import xlsxwriter

    path = folder / f"xlsx-{rows}-rows-s{SEED}-v{SHAPES_VERSION}.xlsx"
    if (known := _known(path)) is not None:
        return known
    folder.mkdir(parents=True, exist_ok=True)
    frame, written = _wide(np.random.default_rng([SEED, 4, rows]), rows)
    partial = path.with_name(path.name + ".partial")
    with xlsxwriter.Workbook(str(partial), {"constant_memory": True}) as book:
        sheet = book.add_worksheet("contacts")
        sheet.write_row(0, 0, ["contact_id", "tags"])
        for at, (contact, tags) in enumerate(frame.iter_rows(), start=1):
            sheet.write_string(at, 0, contact)
            if tags:
                sheet.write_string(at, 1, tags)
    partial.replace(path)
    return _remember(Input(path, rows, written))


def make_input(shape: Shape, size: int, folder: Path = DATA) -> Input:
    """The shape's input of ``size`` pairs (XLSX: rows), generated when absent."""
    if shape.name.startswith("long-clean"):
        csv_path, parquet_path = generate(size, folder)
        return Input(csv_path if shape.suffix == "csv" else parquet_path, size, size)
    if shape.name == "long-messy":
        return generate_messy(size, folder)
    if shape.name == "wide":
        return generate_wide(size, folder)
    return generate_xlsx(size, folder)


# -- candidates (each runs in a worker process) ---------------------------------------------


def _bulktag(path: Path, out: Path, shape: str) -> dict[str, Any]:
    from bulktag.config import ReadOptions
    from bulktag.plan.build import prepare_plan

    del shape  # bulktag finds the shape itself
    _, plan = prepare_plan(
        (str(path),), ReadOptions(), out, out / "plan.parquet", out / "rejects.parquet"
    )
    stats = plan.stats
    return {
        "contacts": stats.contacts,
        "pairs": stats.pairs - stats.duplicate_pairs,
        "rejects": stats.rejects,
    }


def _polars(path: Path, out: Path, shape: str) -> dict[str, Any]:
    from bench.plain_polars import build, read_rows

    plan = build(path, shape)
    started = time.perf_counter()
    read_rows(plan)
    read_s = time.perf_counter() - started
    plan.write_parquet(out / "plan.parquet")
    pairs = int(plan["tags"].list.len().sum() or 0)
    return {"contacts": plan.height, "pairs": pairs, "rejects": -1, "read_rows_s": read_s}


def _pandas(path: Path, out: Path, shape: str) -> dict[str, Any]:
    import pandas as pd

    if shape != "long" or path.suffix != ".csv":
        raise ValueError("pandas: long CSV only")
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


def _csv_module(path: Path, out: Path, shape: str) -> dict[str, Any]:
    import csv
    import re

    import pyarrow as pa
    import pyarrow.parquet as pq

    if shape != "long" or path.suffix != ".csv":
        raise ValueError("csv module: long CSV only")
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


WORKERS: dict[str, Callable[[Path, Path, str], dict[str, Any]]] = {
    "bulktag": _bulktag,
    "polars": _polars,
    "pandas": _pandas,
    "csvmodule": _csv_module,
}
IMPORTS = {
    "bulktag": ("bulktag.plan.build", "polars"),
    "polars": ("polars", "bench.plain_polars"),
    "pandas": ("pandas", "pyarrow.parquet"),
    "csvmodule": ("csv", "pyarrow.parquet"),
}

#: Stages shorter than this are left out of the notes (they stay in the figures).
STAGE_NOTE_S = 0.01


def _fingerprint(plan: Path) -> str:
    """A hash of (contact_id, tags, line) in plan order: the candidates' plans must agree."""
    import polars as pl

    rows = pl.read_parquet(plan, columns=["contact_id", "tags", "line"]).select(
        "contact_id", pl.col("tags").list.join("\x1f"), pl.col("line").cast(pl.Int64)
    )
    return f"{int(rows.hash_rows(seed=1).sum() or 0) % (1 << 64):016x}:{rows.height}"


def _worker(name: str, path: Path, out: Path, *, shape: str, check: bool, stages: bool) -> None:
    """One measurement: import, then time the work; print wall, peak RSS and counts as JSON."""
    for module in IMPORTS[name]:
        importlib.import_module(module)
    if path.suffix == ".xlsx":  # what reading a workbook loads (polars' read_excel: pyarrow too)
        for module in ("fastexcel", "pyarrow") if name == "polars" else ("fastexcel",):
            importlib.import_module(module)
    spent = timed_stages() if stages else {}
    out.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), _cpu_s()
    counts: dict[str, Any] = WORKERS[name](path, out, shape)
    wall, cpu = time.perf_counter() - started, _cpu_s() - cpu
    rss_kib = peak_rss_kib()  # before the check reads
    if check:
        counts["fingerprint"] = _fingerprint(out / "plan.parquet")
    figures = {"wall": wall, "cpu": cpu, "rss_mib": rss_kib / 1024, "stages": spent}
    print(json.dumps({**figures, **counts}))


def _cpu_s() -> float:
    """The CPU time this process has used, user and system, on every core."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the harness ----------------------------------------------------------------------------


def _measure(
    candidate: str,
    shape: Shape,
    path: Path,
    out: Path,
    *,
    check: bool = False,
    stages: bool = False,
) -> dict[str, Any]:
    """One in-process measurement, in a fresh worker process."""
    command = [sys.executable, "-m", "bench.prep", "--worker", CANDIDATES[candidate]]
    command += [str(path), str(out), "--shape", shape.plain]
    command += ["--check"] * check + ["--stages"] * stages
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, env=dict(os.environ)
    )
    if result.returncode != 0:
        raise RuntimeError(f"{candidate} on {path.name} failed:\n{result.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


#: Runs a command (argv[2:]) as its child, and writes to argv[1] its wall time, peak RSS
#: (``wait4``: this process is small and fresh, so the child inherits no high-water mark)
#: and exit code. Started with ``-I -S``: its own start-up is a few ms, and not timed.
LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as handle:
    json.dump({"wall": wall, "rss_kib": usage.ru_maxrss, "rc": code}, handle)
"""


def _launch(command: Sequence[str], report: Path, *, ok: Sequence[int] = (0,)) -> dict[str, Any]:
    """``command`` as a process: wall (start-up included), peak RSS, exit code, stdout."""
    report.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER, str(report), *command],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=dict(os.environ),
    )
    figures: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    if result.returncode != 0 or figures["rc"] not in ok:
        raise RuntimeError(f"{' '.join(command)} exited {figures['rc']}:\n{result.stderr[-4000:]}")
    return {
        "wall": figures["wall"],
        "rss_mib": figures["rss_kib"] / 1024,
        "rc": figures["rc"],
        "stdout": result.stdout,
    }


def _byte_compile() -> None:
    """bulktag's modules byte-compiled, as an installed package is (pip and uv compile
    on install; an editable checkout under PYTHONDONTWRITEBYTECODE never is): else each
    process would compile them again, a start-up cost no user pays. polars and the rest
    of the environment are compiled by ``uv sync`` (``compile-bytecode`` in pyproject)."""
    import bulktag

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(bulktag.__file__).parent)],
        check=True,
        capture_output=True,
    )


def _bulktag_command() -> list[str]:
    script = Path(sys.executable).with_name("bulktag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bulktag"]


def _whole(candidate: str, shape: Shape, path: Path, report: Path) -> dict[str, Any]:
    """One whole-process measurement: ``bulktag validate FILE`` or the plain script."""
    if candidate == BULKTAG:  # exit 1: rejects found
        return _launch([*_bulktag_command(), "validate", str(path)], report, ok=(0, 1))
    return _launch([sys.executable, str(PLAIN_SCRIPT), shape.plain, str(path)], report)


_PRINTED = re.compile(r"contacts: ([\d,]+) \(([\d,]+) tags to add")


def _printed_counts(candidate: str, stdout: str) -> tuple[int, int] | None:
    """(contacts, unique pairs) as the process printed them; ``None`` if not found."""
    if candidate == POLARS:
        counts = json.loads(stdout.strip().splitlines()[-1])
        return int(counts["contacts"]), int(counts["pairs"])
    found = _PRINTED.search(stdout)
    if found is None:
        return None
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


def _candidates(shape: Shape, comparison: str) -> list[str]:
    return [BULKTAG, POLARS, *(shape.extra if comparison == IN_PROCESS else ())]


def run(
    *,
    quick: bool,
    shapes: Sequence[str] | None = None,
    comparisons: Sequence[str] | None = None,
    runs: int | None = None,
) -> Section:
    chosen = [SHAPES[name] for name in (shapes or SHAPES)]
    compared = list(comparisons or COMPARISONS)
    whole_runs = runs or 3
    inner_runs = runs or (3 if quick else 5)
    sizes = {(c, s.name): _sizes(s, c, quick=quick) for c in compared for s in chosen}
    section = Section(
        key="prep",
        title="Input preparation on every input shape (read, normalise, validate, group, plan)",
        method=_method(quick, whole_runs, inner_runs),
        columns=[
            "shape",
            "comparison",
            "pairs",
            "rows",
            "candidate",
            "median wall s",
            "pairs/s",
            "peak RSS MiB",
            "vs plain polars (time)",
        ],
    )
    inputs = {
        (shape.name, size): make_input(shape, size)
        for shape in chosen
        for c in compared
        for size in sizes[c, shape.name]
    }
    scratch = DATA / "out"
    _byte_compile()
    results: dict[str, Any] = {}
    fingerprints: dict[str, str] = {}
    printed: dict[str, Any] = {}
    for comparison in compared:
        items = [
            (shape, size, candidate)
            for shape in chosen
            for size in sizes[comparison, shape.name]
            for candidate in _candidates(shape, comparison)
        ]
        samples: dict[tuple[str, int, str], list[dict[str, Any]]] = {
            (s.name, n, c): [] for s, n, c in items
        }
        for turn in range(whole_runs if comparison == WHOLE else inner_runs):
            for shape, size, candidate in items:
                item = inputs[shape.name, size]
                tag = f"{shape.name}/{size}/{CANDIDATES[candidate]}"
                if comparison == WHOLE:
                    sample = _whole(candidate, shape, item.path, scratch / "launch.json")
                    stdout = sample.pop("stdout")
                    if turn == 0:
                        printed[tag] = _printed_counts(candidate, stdout)
                else:
                    out = scratch / f"{CANDIDATES[candidate]}-{shape.name}"
                    sample = _measure(candidate, shape, item.path, out, check=turn == 0)
                    if turn == 0:
                        fingerprints[tag] = sample["fingerprint"]
                samples[shape.name, size, candidate].append(sample)
        for shape, size, candidate in items:
            section.rows.append(
                _record(
                    results,
                    comparison,
                    shape,
                    inputs[shape.name, size],
                    candidate,
                    size=size,
                    samples=samples[shape.name, size, candidate],
                    base_samples=samples[shape.name, size, POLARS],
                )
            )
    # the plans of the whole-process inputs not measured in-process: one check run each
    for shape in chosen:
        for size in sizes.get((WHOLE, shape.name), []):
            for candidate in (BULKTAG, POLARS):
                tag = f"{shape.name}/{size}/{CANDIDATES[candidate]}"
                if tag not in fingerprints:
                    out = scratch / f"check-{CANDIDATES[candidate]}-{shape.name}"
                    path = inputs[shape.name, size].path
                    fingerprints[tag] = _measure(candidate, shape, path, out, check=True)[
                        "fingerprint"
                    ]
    profiles = _profiles(chosen, sizes, inputs, scratch)
    section.figures = {
        "quick": quick,
        "runs": {WHOLE: whole_runs, IN_PROCESS: inner_runs},
        "sizes": {f"{c}/{s}": v for (c, s), v in sizes.items()},
        "inputs": {f"{s}/{n}": asdict(i) | {"path": str(i.path)} for (s, n), i in inputs.items()},
        "results": results,
        "fingerprints": fingerprints,
        "printed_counts": printed,
        "bulktag_profiles": profiles,
        "python_startup_s": _startup(scratch),
    }
    _notes(section, results, fingerprints, printed, profiles, quick=quick)
    shutil.rmtree(scratch, ignore_errors=True)  # the plans written; the inputs stay for reuse
    return section


def _record(
    results: dict[str, Any],
    comparison: str,
    shape: Shape,
    item: Input,
    candidate: str,
    *,
    size: int,
    samples: list[dict[str, Any]],
    base_samples: list[dict[str, Any]],
) -> list[Any]:
    """The candidate's figures, into ``results``; returns its row of the table."""
    wall = median([s["wall"] for s in samples])
    rss = median([s["rss_mib"] for s in samples])
    base = median([s["wall"] for s in base_samples])
    figures = {
        "candidate": candidate,
        "shape": shape.name,
        "comparison": comparison,
        "size": size,
        "pairs": item.pairs,
        "rows": item.rows,
        "wall_s": wall,
        "walls_s": [round(s["wall"], 3) for s in samples],
        "pairs_per_s": item.pairs / wall,
        "peak_rss_mib": rss,
        "peak_rss_mib_runs": [round(s["rss_mib"], 1) for s in samples],
        "vs_polars": wall / base,
    }
    if comparison == IN_PROCESS:
        figures["contacts"] = samples[0]["contacts"]
        figures["unique_pairs"] = samples[0]["pairs"]
        if "read_rows_s" in samples[0]:
            figures["read_rows_s"] = median([s["read_rows_s"] for s in samples])
    results[f"{comparison}/{shape.name}/{size}/{CANDIDATES[candidate]}"] = figures
    return [
        shape.name,
        comparison,
        item.pairs,
        item.rows,
        candidate,
        wall,
        f"{item.pairs / wall:,.0f}",
        rss,
        f"{wall / base:.2f}x",
    ]


def _profiles(
    chosen: Sequence[Shape],
    sizes: dict[tuple[str, str], list[int]],
    inputs: dict[tuple[str, int], Input],
    scratch: Path,
) -> dict[str, Any]:
    """Where bulktag's time goes, per shape: ``validate`` at the whole-process size (imports
    and stages; start-up and exit: the process's wall less both), and ``prepare_plan`` at the
    in-process size when it is another one."""
    profiles: dict[str, Any] = {}
    for shape in chosen:
        whole = sizes.get((WHOLE, shape.name), [])
        inner = sizes.get((IN_PROCESS, shape.name), [])
        if whole:
            path = inputs[shape.name, whole[-1]].path
            command = [sys.executable, "-m", "bench.stages", str(path)]
            launched = _launch(command, scratch / "launch.json")
            figures = json.loads(launched["stdout"].strip().splitlines()[-1])
            profiles[f"{WHOLE}/{shape.name}/{whole[-1]}"] = {
                "process_wall_s": round(launched["wall"], 3),
                "startup_exit_s": round(
                    launched["wall"] - figures["imports_s"] - figures["validate_s"], 3
                ),
                "imports_s": round(figures["imports_s"], 3),
                "imports": {k: round(v, 3) for k, v in figures["imports"].items()},
                "validate_s": round(figures["validate_s"], 3),
                "stages_s": {k: round(v, 3) for k, v in figures["stages"].items()},
            }
        if inner and inner[-1] not in whole:
            size = inner[-1]
            out = scratch / f"stages-{shape.name}"
            figures = _measure(BULKTAG, shape, inputs[shape.name, size].path, out, stages=True)
            profiles[f"{IN_PROCESS}/{shape.name}/{size}"] = {
                "wall_s": round(figures["wall"], 3),
                "cpu_s": round(figures["cpu"], 3),
                "stages_s": {k: round(v, 3) for k, v in figures["stages"].items()},
            }
    return profiles


def _startup(scratch: Path) -> float:
    """The interpreter's start-up alone (``python -c pass``), median of 3."""
    walls = [
        _launch([sys.executable, "-c", "pass"], scratch / "launch.json")["wall"] for _ in range(3)
    ]
    return round(median(walls), 3)


def _method(quick: bool, whole_runs: int, inner_runs: int) -> str:
    whole, inner = SIZES[quick][WHOLE], SIZES[quick][IN_PROCESS]
    return (
        "Inputs of every shape users send, seeded, about "
        f"{TAGS_PER_CONTACT} (contact, tag) pairs per contact, {BAD_SHARE:.1%} bad rows "
        "(non-UUID IDs, empty tag cells): `long-clean` (`contact_id,tag`, 1.5 % of IDs and 1 % "
        "of tags to trim or lower-case; also as Parquet, `long-clean-parquet`), `long-messy` "
        "(half the tags padded, half upper-case, 30 % of IDs upper-case, 5 % braced), `wide` "
        "(`contact_id,tags`, one row per contact, tags separated by `,` `;` `|` with spaces) "
        "and `xlsx` (the wide shape as a workbook). Each against its straightforward polars "
        "script (`bench/plain_polars.py`: `scan_csv` or `read_excel`, the same rules, split and "
        "`explode` for wide cells, `group_by` + `unique(maintain_order=True)`, then every plan "
        f"row read with `iter_rows`). **Whole process** ({whole['pairs']:,} pairs; XLSX "
        f"{whole['rows']:,} rows): `bulktag validate FILE` against `python "
        "bench/plain_polars.py SHAPE FILE`, wall time of the process (start-up and imports "
        f"included; every module byte-compiled, as installed), median of {whole_runs} runs; peak "
        "RSS from `wait4`. **In-process** "
        f"({inner['pairs']:,} pairs; XLSX {inner['rows']:,} rows): `prepare_plan` against the "
        "script's body (its plan also written as Parquet), each a fresh worker process timed "
        "from opening the input to the plan written (imports not included), median of "
        f"{inner_runs} runs; peak RSS is the worker's `VmHWM` (interpreter and imports "
        "included); long-clean also against pandas and the csv module. Candidates take turns. "
        "Every candidate's plan is checked to be the same (contacts, tags, lines, order). "
        f"Targets: whole process, bulktag at most {MAX_WHOLE_VS_PLAIN:.1f}x the script's time "
        f"({SIZES[False][WHOLE]['pairs']:,} pairs, XLSX {SIZES[False][WHOLE]['rows']:,} rows); "
        f"in-process on the {TARGET_ROWS:,}-pair CSV shapes, at most {MAX_WALL_VS_POLARS}x "
        f"the script's time and {MAX_RSS_MIB:,} MiB, and on long-clean at least "
        f"{MIN_SPEEDUP_PANDAS:g}x faster than pandas and {MIN_SPEEDUP_CSV:g}x faster than "
        "the csv module."
    )


def _stage_text(stages: dict[str, float]) -> str:
    shown = [(k, v) for k, v in stages.items() if v >= STAGE_NOTE_S]
    return ", ".join(f"{k} {v:.2f} s" for k, v in shown) or "no stage found"


def _checks(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Every target that applies to what was measured: (what, met, the figures)."""
    checks: list[tuple[str, bool, str]] = []
    for key, ours in results.items():
        comparison, shape_name, size, worker = key.split("/")
        shape = SHAPES[shape_name]
        if worker != CANDIDATES[BULKTAG] or (comparison == IN_PROCESS and not shape.targets):
            continue
        base = results[f"{comparison}/{shape_name}/{size}/{CANDIDATES[POLARS]}"]
        where = f"({shape_name}, {comparison}, {int(size):,} {_unit(shape)})"
        ratio = ours["vs_polars"]
        figures = f"{ratio:.2f}x: {ours['wall_s']:.2f} s against {base['wall_s']:.2f} s"
        ours_mib, base_mib = ours["peak_rss_mib"], base["peak_rss_mib"]
        if comparison == WHOLE:
            most = MAX_WHOLE_VS_PLAIN
            figures += f"; peak RSS {ours_mib:,.0f} MiB against {base_mib:,.0f} MiB"
            checks.append(
                (f"{where} at most {most:.1f}x the script's time", ratio <= most, figures)
            )
            continue
        most = MAX_WALL_VS_POLARS
        checks.append((f"{where} at most {most}x the script's time", ratio <= most, figures))
        checks.append(
            (
                f"{where} peak RSS at most {MAX_RSS_MIB:,} MiB",
                ours_mib <= MAX_RSS_MIB,
                f"{ours_mib:,.0f} MiB; the script {base_mib:,.0f} MiB",
            )
        )
        for other, least in ((PANDAS, MIN_SPEEDUP_PANDAS), (CSV_MODULE, MIN_SPEEDUP_CSV)):
            theirs = results.get(f"{comparison}/{shape_name}/{size}/{CANDIDATES[other]}")
            if theirs is not None:
                speedup = theirs["wall_s"] / ours["wall_s"]
                name = f"{where} at least {least:g}x faster than {other}"
                checks.append((name, speedup >= least, f"{speedup:.1f}x"))
    return checks


def _notes(
    section: Section,
    results: dict[str, Any],
    fingerprints: dict[str, str],
    printed: dict[str, Any],
    profiles: dict[str, Any],
    *,
    quick: bool,
) -> None:
    checks = _checks(results)
    for name, met, detail in checks:
        verdict = "met" if met else "NOT met"
        section.notes.append(f"Target {name}: bulktag {verdict} ({detail}).")
    if not all(met for _, met, _ in checks):
        section.notes.append(
            "Where the time goes, for a target not met: the profiles below (by function), "
            "and `docs/performance.md`, *Input preparation* (by operation, with what was "
            "tried)."
        )
    if quick:
        section.notes.append(
            "The targets are set for the full sizes (whole process: "
            f"{SIZES[False][WHOLE]['pairs']:,} pairs, in-process: {TARGET_ROWS:,} pairs); at "
            "the quick sizes the verdicts above are only indicative: the script's group-by "
            "still fits in the CPU caches there, and fixed costs weigh more."
        )
    section.figures["targets"] = {name: met for name, met, _ in checks}
    reading = [
        f"{r['shape']} {r['read_rows_s']:.2f} s of {r['wall_s']:.2f} s"
        for r in results.values()
        if "read_rows_s" in r
    ]
    if reading:
        section.notes.append(
            "Of the plain script's in-process time, reading its plan's rows (`iter_rows`, as "
            f"a dispatcher would): {', '.join(reading)}."
        )
    section.notes += _profile_notes(profiles)
    section.notes += _agreement_notes(section, fingerprints, printed)


def _profile_notes(profiles: dict[str, Any]) -> list[str]:
    notes = []
    for key, profile in profiles.items():
        comparison, shape_name, size = key.split("/")
        where = f"{shape_name}, {int(size):,} {_unit(SHAPES[shape_name])}"
        if comparison == WHOLE:
            imports = ", ".join(f"{k} {v:.2f} s" for k, v in profile["imports"].items())
            notes.append(
                f"Where `bulktag validate` spends its time ({where}, one run of "
                f"{profile['process_wall_s']:.2f} s): start-up and exit "
                f"{profile['startup_exit_s']:.2f} s, "
                f"imports {profile['imports_s']:.2f} s ({imports}), the command "
                f"{profile['validate_s']:.2f} s: {_stage_text(profile['stages_s'])} "
                "(times nest: a function's time holds its callees')."
            )
        else:
            notes.append(
                f"Where `prepare_plan` spends its time ({where}, one run of "
                f"{profile['wall_s']:.2f} s, {profile['cpu_s']:.2f} CPU-seconds on "
                f"{os.cpu_count()} cores): {_stage_text(profile['stages_s'])}."
            )
    return notes


def _agreement_notes(
    section: Section, fingerprints: dict[str, str], printed: dict[str, Any]
) -> list[str]:
    """Whether every candidate's plan is the same, per input; figures into ``section``."""
    by_input: dict[str, set[str]] = {}
    for key, value in fingerprints.items():
        by_input.setdefault(key.rsplit("/", 1)[0], set()).add(value)
    same = all(len(values) == 1 for values in by_input.values())
    section.figures["plans_agree"] = same
    notes = [
        f"Every candidate wrote the same plan (contacts, tags, lines, order) for every input "
        f"({len(by_input)} inputs)."
        if same
        else f"The candidates' plans DIFFER: {fingerprints}."
    ]
    by_whole: dict[str, set[Any]] = {}
    for key, value in printed.items():
        by_whole.setdefault(key.rsplit("/", 1)[0], set()).add(
            None if value is None else tuple(value)
        )
    if by_whole:
        agree = all(len(v) == 1 and None not in v for v in by_whole.values())
        section.figures["printed_counts_agree"] = agree
        if not agree:
            notes.append(
                "The whole-process runs printed DIFFERENT counts (contacts, tags) or bulktag's "
                f"could not be read: {printed}."
            )
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prep", description=__doc__)
    parser.add_argument("--worker", nargs=3, metavar=("CANDIDATE", "INPUT", "OUT"))
    parser.add_argument(
        "--shape", choices=("long", "wide"), default="long", help="worker: the plain script's shape"
    )
    parser.add_argument("--check", action="store_true", help="worker: fingerprint the plan")
    parser.add_argument("--stages", action="store_true", help="worker: time bulktag's stages")
    parser.add_argument("--full", action="store_true", help="full sizes (default: quick)")
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), help="only these shapes")
    parser.add_argument("--comparisons", nargs="+", choices=["whole", "in-process"])
    parser.add_argument("--runs", type=int, help="runs of each (default: 3; in-process full: 5)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args()
    if args.worker:
        name, path, out = args.worker
        _worker(name, Path(path), Path(out), shape=args.shape, check=args.check, stages=args.stages)
        return
    comparisons = [
        WHOLE if c == "whole" else IN_PROCESS for c in args.comparisons or ["whole", "in-process"]
    ]
    section = run(quick=not args.full, shapes=args.shapes, comparisons=comparisons, runs=args.runs)
    if args.json:
        args.json.write_text(json.dumps(asdict(section), indent=2) + "\n", encoding="utf-8")
    print(section.markdown())


if __name__ == "__main__":
    main()
