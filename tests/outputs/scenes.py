"""The runs whose pages people look at, made against the emulator on a virtual clock.

Each scene is a real ``bulktag`` command (``main()``) against an in-process emulator:
an everyday run (429s, 5xx, unknown contacts, rejects, the quota spent), a run at a rate
LeadLex refuses (429s), a wrong URL, a dry run, a job night stopped by SIGTERM, a
``--skip-existing`` run, and a job's history over nights (a short one, a dry run, a
night stopped by a bad export, one with everything already done).

``tests/outputs/test_reconcile.py`` checks every figure of their pages against the
results files and the emulator's own counters; ``python -m tests.outputs.scenes
OUT [SHOTS]`` writes the pages into ``OUT`` and, with Chromium, a 1,280-pixel
screenshot of each into ``SHOTS`` (``docs/report-pages/`` holds them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx2

from bulktag.cli.commands import main
from bulktag.emulator import Faults
from tests.constants import API_URL as URL
from tests.outputs.support import OFFLINE
from tests.world import World, new_world

UNKNOWN = "00000000-0000-4000-8000-0000000001{:02d}"


@dataclass
class Scene:
    """A run (or a job's history) and what the emulator counted during it."""

    name: str
    page: Path  #: report.html, or the job's history.html
    code: int
    world: World
    #: the emulator's requests by (route, status), and the calls its quota counted, before
    requests_before: Counter[tuple[str, str]] = field(default_factory=Counter)
    used_before: int = 0
    #: a job's night: the status of the contacts it could not send (they are in the
    #: job's carry-over, not in the night's results)
    unsent: str | None = None

    @property
    def run_dir(self) -> Path:
        return self.page.parent

    def requests(self) -> Counter[tuple[str, str]]:
        """The requests this run made, by (route, status), as the emulator counted them."""
        now: Counter[tuple[str, str]] = Counter(self.world.emulator.requests)
        now.subtract(self.requests_before)
        return +now

    def counted(self) -> int:
        """The calls LeadLex's daily quota counted during this run."""
        return self.world.emulator.workspace("default").used_today - self.used_before


def _before(world: World) -> tuple[Counter[tuple[str, str]], int]:
    return Counter(world.emulator.requests), world.emulator.workspace("default").used_today


def everyday(folder: Path) -> Scene:
    """A Pro-plan run as a person meets one: a workspace that allows fewer calls a minute
    than the plan says (429s), a few 5xx, contacts unknown to the CRM, bad rows, the quota
    spent before the end."""
    world = new_world(
        folder, 240, plan="pro", per_minute=45, faults=Faults(fault_rate=0.04), seed=9
    )
    world.workspace_used(780)  # 220 calls left today
    tags = ["customer,newsletter", "webinar-2026-11", "vip,customer", "trial"]
    rows = [(cid, tags[n % 4]) for n, cid in enumerate(world.contact_ids[:230])]
    for n in range(6):  # unknown to the CRM, early in the file
        rows.insert(20 * n + 7, (UNKNOWN.format(n), "webinar-2026-11"))
    rows += [("5.00765965359373E+031", "vip"), ("CUST-1021", "trial"), ("", "newsletter")]
    source = world.write_csv("segment-november.csv", rows)
    before, used = _before(world)
    code, run_dir = world.run(str(source), "--plan", "pro", out="runs/20261126T120000Z")
    return Scene("everyday", run_dir / "report.html", code, world, before, used)


def rate_limited(folder: Path) -> Scene:
    """``--plan org`` (200 a minute) on a Pro workspace (50): LeadLex answers 429 and
    bulktag slows to what it allows."""
    world = new_world(folder, 150, plan="pro", seed=4)
    source = world.write_csv("org.csv", [(cid, "q4-campaign") for cid in world.contact_ids])
    before, used = _before(world)
    code, run_dir = world.run(str(source), "--plan", "org", out="runs/429")
    return Scene("429", run_dir / "report.html", code, world, before, used)


def wrong_url(folder: Path) -> Scene:
    """A base URL with ``/v1`` once too often: every call answers 404."""
    world = new_world(folder, 40, seed=2)
    source = world.write_csv("segment.csv", [(cid, "vip") for cid in world.contact_ids])
    before, used = _before(world)
    code, run_dir = world.run(str(source), "--api-url", URL + "/v1", out="runs/wrong-url")
    return Scene("wrong-url", run_dir / "report.html", code, world, before, used)


def dry_run(folder: Path) -> Scene:
    """What a run would send, and one bad row."""
    world = new_world(folder, 5, seed=2)
    rows = [(cid, "vip,webinar") for cid in world.contact_ids] + [("CUST-7", "vip")]
    source = world.write_csv("segment.csv", rows)
    before, used = _before(world)
    code, run_dir = world.run(str(source), "--dry-run", out="runs/dry-run")
    return Scene("dry-run", run_dir / "report.html", code, world, before, used)


def interrupted(folder: Path) -> Scene:
    """A job's night stopped by SIGTERM at its 20th call (calls take a second)."""
    world = new_world(folder, 60, faults=Faults(latency_ms=(1000.0, 1000.0)), seed=2)
    exports = folder / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    world.write_csv("exports/segment.csv", [(cid, "winter") for cid in world.contact_ids])
    job = world.write_job('inputs = ["exports/*.csv"]\n[limits]\nconcurrency = 4\n')
    seen = {"n": 0}

    def hook(request: httpx2.Request) -> None:
        if request.url.path.endswith("/tags"):
            seen["n"] += 1
            if seen["n"] == 20:
                os.kill(os.getpid(), signal.SIGTERM)

    world.hook = hook
    before, used = _before(world)
    code = main(
        ["run", "--job", str(job), "--api-url", URL],
        runtime=replace(world.runtime(), handle_signals=True),
    )
    world.hook = None
    (run_dir,) = sorted((folder / "job" / "runs").glob("*"))
    return Scene("interrupted", run_dir / "report.html", code, world, before, used, "not_attempted")


def skip_existing(folder: Path) -> Scene:
    """``--skip-existing`` on 100 contacts of which 80 already carry the tag."""
    world = new_world(folder, 100, seed=2)
    for contact in world.contact_ids[:80]:
        world.emulator.contacts[contact].tags.append("newsletter")
    source = world.write_csv("news.csv", [(cid, "newsletter") for cid in world.contact_ids])
    before, used = _before(world)
    code, run_dir = world.run(str(source), "--skip-existing", out="runs/skip-existing")
    return Scene("skip-existing", run_dir / "report.html", code, world, before, used)


def history(folder: Path) -> Scene:
    """A job over five nights: 40 contacts on 20 calls a night (75), a dry run, a night
    whose export is a web page (65), the rest (0), and a night with nothing new (0)."""
    world = new_world(folder, 60, seed=2)
    (folder / "exports").mkdir(parents=True, exist_ok=True)
    export = folder / "exports" / "segment.csv"
    world.write_csv("exports/segment.csv", [(cid, "winter") for cid in world.contact_ids[:40]])
    job = world.write_job(
        'inputs = ["exports/*.csv"]\n[limits]\nplan = "pro"\nquota_reserve = 0\n',
        name="job.toml",
    )
    before, used = _before(world)
    world.workspace_used(980)
    codes = [world.run_job(job)[0]]
    world.run_job(job, "--dry-run")
    world.next_night()
    saved = export.read_bytes()
    export.write_text("<!DOCTYPE html><html><body>Sign in</body></html>\n", encoding="utf-8")
    codes.append(world.run_job(job)[0])
    export.write_bytes(saved)
    world.next_night()
    codes.append(world.run_job(job)[0])
    world.next_night()
    codes.append(world.run_job(job)[0])
    assert codes == [75, 65, 0, 0], codes
    return Scene("history", folder / "job" / "history.html", codes[-1], world, before, used)


SCENES: dict[str, Callable[[Path], Scene]] = {
    "everyday": everyday,
    "429": rate_limited,
    "wrong-url": wrong_url,
    "dry-run": dry_run,
    "interrupted": interrupted,
    "skip-existing": skip_existing,
    "history": history,
}


def screenshot(page: Path, shot: Path, width: int = 1280, height: int = 2400) -> None:
    """Chromium's headless screenshot of ``page``, offline."""
    browser = "chromium"
    subprocess.run(
        [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            *OFFLINE,
            f"--user-data-dir={shot.parent / '.profile'}",
            f"--window-size={width},{height}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )


if __name__ == "__main__":
    out = Path(sys.argv[1])
    shots = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    for name, make in SCENES.items():
        scene = make(out / name)
        print(f"{name}: exit {scene.code}, {scene.page}")
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            screenshot(scene.page, (shots / f"{name}.png").resolve())
