"""Run the benchmarks and write docs/benchmarks.md and bench/results.json.

python -m bench            # everything (make bench)
python -m bench --quick    # small sizes, 2-3 minutes (make bench-quick)
python -m bench --only prep startup   # measure these again; the report keeps the others
"""

from __future__ import annotations

import argparse
import importlib
import time
from datetime import UTC, datetime

from bench.common import Section, write_report

#: Benchmark modules, in report order; each has ``run(quick=...) -> Section``.
BENCHMARKS = {
    "emulator": "bench.emulator_throughput",
    "startup": "bench.startup",
    "prep": "bench.prep",
    "dispatch": "bench.dispatch",
    "overhead": "bench.overhead",
    "limiter": "bench.limiter_fidelity",
    "memory": "bench.memory",
    "report": "bench.report",
    "encodings": "bench.encodings",
    "bombs": "bench.bombs",
    "emails": "bench.emails",
    "nightly": "bench.nightly",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer runs")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    command = "python -m bench" + (" --quick" if args.quick else "")
    command += f" --only {' '.join(args.only)}" if args.only else ""
    sections: list[Section] = []
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        print(f"bench: {name} ...", flush=True)
        section = importlib.import_module(BENCHMARKS[name]).run(quick=args.quick)
        section.seconds = time.monotonic() - started
        section.measured = f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC} ({command})"
        print(section.markdown(), flush=True)
        print(f"bench: {name} took {section.seconds:.0f} s", flush=True)
        sections.append(section)
    write_report(sections, quick=args.quick, order=list(BENCHMARKS))


if __name__ == "__main__":
    main()
