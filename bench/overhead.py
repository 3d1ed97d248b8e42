"""bulktag's own cost per contact, without a network: MockTransport on both sides.

``python -m bench.overhead N C`` prints JSON: the seconds of a bare httpx2 loop of
N calls against ``httpx2.MockTransport``, and of ``bulktag run`` (real command,
in-process) and its ``--dry-run`` on the same N contacts and the same transport.
bulktag's overhead per contact = (run - dry run - bare loop) / N: what the
journal, limiter, budget, retries and recorder add to each call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2

from bench.bareloop import ids
from bench.common import API_URL, Section, median
from bulktag.cli.commands import main
from bulktag.run.runner import Runtime

BODY_HEADERS = {"content-type": "application/json", "x-ratelimit-remaining": "100000000"}


def handler(request: httpx2.Request) -> httpx2.Response:
    contact = request.url.path.split("/")[-2]  # .../contacts/ID/tags
    tags = json.loads(request.content)["tags"]
    body = json.dumps({"data": {"contact_id": contact, "tags": tags}}).encode()
    return httpx2.Response(200, content=body, headers=BODY_HEADERS)


def bare(n: int, c: int) -> float:
    async def job() -> None:
        async with httpx2.AsyncClient(
            base_url=API_URL, transport=httpx2.MockTransport(handler)
        ) as client:
            todo = iter(ids(n))

            async def worker() -> None:
                for contact in todo:
                    response = await client.post(
                        f"/v1/contacts/{contact}/tags", json={"tags": ["vip"]}
                    )
                    response.json()

            async with anyio.create_task_group() as group:
                for _ in range(c):
                    group.start_soon(worker)

    started = time.perf_counter()
    anyio.run(job, backend_options={"use_uvloop": True})
    return time.perf_counter() - started


def bulktag(n: int, c: int, *extra: str) -> float:
    folder = Path(tempfile.mkdtemp(prefix="bulktag-overhead-"))
    source = folder / "in.csv"
    source.write_text("contact_id,tags\n" + "".join(f"{i},vip\n" for i in ids(n)))
    runtime = Runtime(
        transport=httpx2.MockTransport(handler),
        environ={"LEADLEX_API_KEY": "wbk_bench", "BULKTAG_STATE_DIR": str(folder / "state")},
        handle_signals=False,
    )
    started = time.perf_counter()
    code = main(
        [
            "run",
            str(source),
            "--plan",
            "unmetered",
            "--concurrency",
            str(c),
            "--out",
            str(folder / "run"),
            "--api-url",
            API_URL,
            "-q",
            *extra,
        ],
        runtime=runtime,
    )
    assert code == 0, code
    return time.perf_counter() - started


def main_() -> None:
    n, c = int(sys.argv[1]), int(sys.argv[2])
    os.environ.pop("LEADLEX_API_KEY", None)
    result = {"bare": bare(n, c), "run": bulktag(n, c), "dry": bulktag(n, c, "--dry-run")}
    print(json.dumps(result))


if __name__ == "__main__":
    main_()


def run(*, quick: bool) -> Section:
    """The section for ``python -m bench``: medians over fresh processes."""
    n, runs, c = (5000, 3, 32) if quick else (50_000, 5, 32)
    section = Section(
        key="overhead",
        title="bulktag's own cost per contact (no network)",
        method=(
            f"{n:,} contacts, concurrency {c}, `httpx2.MockTransport` answering at once, each in "
            f"a fresh process, median of {runs} runs. bulktag's overhead per contact = (run - "
            "dry run on the same input - bare httpx2 loop on the same transport) / N: the "
            "journal, limiter, budget, retry bookkeeping and recorder. Target: at most 150 us."
        ),
        columns=["measure", "median", "runs"],
    )
    samples: dict[str, list[float]] = {"bare": [], "run": [], "dry": []}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-m", "bench.overhead", str(n), str(c)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name, value in json.loads(out).items():
            samples[name].append(value)
    per = {name: median(values) / n * 1e6 for name, values in samples.items()}
    overhead = [
        (r - d - b) / n * 1e6
        for r, d, b in zip(samples["run"], samples["dry"], samples["bare"], strict=True)
    ]
    section.rows += [
        [
            "bare httpx2 loop, per call (us)",
            per["bare"],
            ", ".join(f"{v / n * 1e6:.0f}" for v in samples["bare"]),
        ],
        [
            "bulktag run, per contact (us)",
            per["run"],
            ", ".join(f"{v / n * 1e6:.0f}" for v in samples["run"]),
        ],
        [
            "bulktag dry run, per contact (us)",
            per["dry"],
            ", ".join(f"{v / n * 1e6:.0f}" for v in samples["dry"]),
        ],
        [
            "bulktag's overhead per contact (us)",
            median(overhead),
            ", ".join(f"{v:.0f}" for v in overhead),
        ],
    ]
    section.figures = {"per_call_us": per, "overhead_us": median(overhead)}
    verdict = "met" if median(overhead) <= 150 else "NOT met"
    section.notes.append(
        f"Target at most 150 us of overhead per contact: {verdict} ({median(overhead):.0f} us)."
    )
    return section
