"""What every benchmark shares: sections of results, medians, the machine, the report."""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"

#: The base URL in-process runs use: LeadLex's path, on a test host.
API_URL = "https://leadlex.test/functions/v1/api-gateway"


@dataclass
class Section:
    """One benchmark's results: a table, how it was measured, and its targets."""

    key: str
    title: str
    method: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    #: When and by which command it was measured, and how long it took (set by ``bench``).
    measured: str = ""
    seconds: float = 0.0

    def markdown(self) -> str:
        lines = [f"## {self.title}", ""]
        if self.measured:
            lines += [f"*Measured {self.measured}, in {self.seconds:,.0f} s.*", ""]
        lines += [self.method, ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def peak_rss_kib() -> int:
    """This process's peak RSS since it started its program (``VmHWM``, Linux).

    Not ``ru_maxrss``: Linux carries the parent's high-water mark across fork
    and exec into it, so a worker started by a bench that had grown (generating
    10M rows, say) would report the bench's peak, not its own.
    """
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def method_of(doc: str | None) -> str:
    """A benchmark module's docstring less its title line and its ``python -m bench ...``
    usage: how the section was measured, for its report."""
    if not doc:
        return ""
    return doc.split("\n\n", 1)[1].split("``python -m bench", 1)[0].strip()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict[str, Any]:
    versions = {}
    for package in (
        "polars",
        "httpx2",
        "anyio",
        "uvicorn",
        "starlette",
        "httpx",
        "aiohttp",
        "pandas",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


@contextmanager
def emulator(*args: str, module: str = "bulktag") -> Iterator[dict[str, Any]]:
    """A `bulktag emulator` on a free port (or ``module``'s server); yields its ready line."""
    command = [sys.executable, "-m", module]
    if module == "bulktag":
        command += ["emulator", "--port", "0"]
    process = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def stored_sections(quick: bool = False) -> list[Section]:
    """The sections of the last report (``bench/results.json``), each as it was measured
    (sections written before they carried their own date get the report's)."""
    path = ROOT / "bench" / ("results-quick.json" if quick else "results.json")
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    known = set(Section.__dataclass_fields__)
    sections = [Section(**{k: v for k, v in s.items() if k in known}) for s in data["sections"]]
    for section in sections:
        section.measured = section.measured or f"{data['machine']['date']} (python -m bench)"
    return sections


def write_report(
    sections: list[Section],
    *,
    quick: bool,
    order: Sequence[str] = (),
    info: dict[str, Any] | None = None,
) -> None:
    """bench/results.json and docs/benchmarks.md (``info``: the machine, measured now).

    ``sections`` replace the stored sections of the same key and the others are kept
    (``--only`` measures a few): the document is always what the code wrote, each
    section saying when and by which command it was measured. ``order``: the keys in
    report order.
    """
    info = info or machine()
    fresh = {s.key for s in sections}
    merged = [s for s in stored_sections(quick) if s.key not in fresh] + sections
    rank = {key: i for i, key in enumerate(order)}
    merged.sort(key=lambda s: rank.get(s.key, len(rank)))
    results_path = ROOT / "bench" / ("results-quick.json" if quick else "results.json")
    results_path.write_text(
        json.dumps(
            {"machine": info, "quick": quick, "sections": [asdict(s) for s in merged]}, indent=2
        )
        + "\n",
        encoding="utf-8",
    )
    if quick:
        return
    sections = merged
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    head = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`; `python -m bench --only SECTION` measures",
        "some sections again and rewrites this file, keeping the others); the same figures are",
        "in `bench/results.json`. Each section says when it was measured. Machines here are",
        "shared and noisy: every figure is a median of repeated runs, and each is set against a",
        "baseline measured in the same invocation.",
        "",
        f"- Last written: {info['date']}",
        f"- Machine: {info['platform']}, {info['cpus']} CPUs, Python {info['python']}",
        f"- Versions: {versions}",
        "",
    ]
    body = "\n".join(section.markdown() for section in sections)
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(head) + "\n" + body, encoding="utf-8")
