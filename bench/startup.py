"""Start-up: how long the commands people type by hand take, as whole processes.

``bulktag --help``, ``bulktag --version`` and a usage error import neither polars nor
httpx2; ``bulktag validate`` of a 100-row file imports polars and nothing of the HTTP
side. Each is measured against its floor in the same run: the interpreter alone
(``python -c pass``) for the first three, the interpreter importing polars for
``validate``. Every module is byte-compiled first, as an installed package is.

``python -m bench --only startup``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench.common import WORK, Section

#: Targets (whole process, median).
MAX_HELP_S = 0.15
MAX_VALIDATE_S = 0.45
ROWS = 100


def _timed(command: Sequence[str], runs: int, cwd: Path) -> list[float]:
    """Wall times of ``command`` as a process, ``runs`` times (after one warm-up run); a
    usage error must exit 2, anything else 0 (a command that fails fast proves nothing)."""
    expected = 2 if "--concurency" in command else 0
    times = []
    for turn in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, check=False)
        if done.returncode != expected:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr!r}")
        if turn:  # the first run warms the page cache
            times.append(time.perf_counter() - started)
    return times


def _sample(folder: Path) -> Path:
    """A 100-row wide CSV, as a colleague would send it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hundred.csv"
    rows = [f'{uuid.UUID(int=n * 7919 + 1)},"Segment {n % 7}, VIP"' for n in range(ROWS)]
    path.write_text("contact_id,tags\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def run(*, quick: bool) -> Section:
    import bulktag

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(bulktag.__file__).parent)],
        check=True,
        capture_output=True,
    )
    runs = 5 if quick else 15
    folder = WORK / "startup"
    sample = _sample(folder)
    python = [sys.executable]
    bulktag_cmd = [*python, "-m", "bulktag"]
    cases = [
        ("python -c pass (floor)", [*python, "-c", "pass"], None, None),
        ("bulktag --help", [*bulktag_cmd, "--help"], MAX_HELP_S, 0),
        ("bulktag --version", [*bulktag_cmd, "--version"], MAX_HELP_S, 0),
        (
            "bulktag run --concurency 4 (usage error)",
            [*bulktag_cmd, "run", "--concurency", "4"],
            MAX_HELP_S,
            0,
        ),
        ("python -c 'import polars' (floor)", [*python, "-c", "import polars"], None, None),
        (
            f"bulktag validate ({ROWS} rows)",
            [*bulktag_cmd, "validate", str(sample)],
            MAX_VALIDATE_S,
            4,
        ),
    ]
    section = Section(
        key="startup",
        title="Start-up: the commands typed by hand, as whole processes",
        method=(
            f"Wall time of each command as a process (interpreter start, imports, work, exit), "
            f"median of {runs} runs after one warm-up, every module byte-compiled as an "
            "installed package is. Floors measured in the same run: the interpreter alone, "
            "and the interpreter importing polars (what `validate` cannot do without). "
            f"Targets: `--help`, `--version` and a usage error at most {MAX_HELP_S} s; "
            f"`validate` of a {ROWS}-row CSV at most {MAX_VALIDATE_S} s."
        ),
        columns=["command", "median s", "fastest s", "vs floor"],
    )
    medians: dict[str, float] = {}
    for name, command, target, floor in cases:
        times = _timed(command, runs, folder)
        median = statistics.median(times)
        medians[name] = median
        base = None if floor is None else medians[cases[floor][0]]
        section.rows.append(
            [name, median, min(times), "1.00x" if base is None else f"{median / base:.2f}x"]
        )
        if target is not None:
            met = "met" if median <= target else "NOT met"
            section.notes.append(f"Target `{name}` at most {target} s: {met} ({median:.2f} s).")
    section.figures = {"median_s": medians}
    return section
