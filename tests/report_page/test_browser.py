"""report.html in a real browser: headless Chromium opens it from disk with the network off.

The browser is Debian's ``chromium``. Without it these tests skip, saying why, except
where ``BULKTAG_REQUIRE_BROWSER=1`` (CI: ``.ci/run`` installs the browser and sets it),
where a missing browser fails them. ``BULKTAG_SCREENSHOT=PATH`` keeps the screenshot
(``docs/report.png`` is one, shown in the README).

Network off: every host resolves to nothing and every proxy is a closed port on
loopback, so no load could leave the machine; Chromium's net log records every request
the page starts (a page's requests carry its origin as initiator, the browser's own
background requests ``not an origin``), and the tests find none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bulktag.emulator import Faults
from tests.report_page.png import read_png
from tests.report_page.support import HOSTILE_FILE, HOSTILE_TAG, hostile_run
from tests.report_page.test_run_report import parse
from tests.world import World

OFFLINE = (
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pings",
)


@pytest.fixture
def browser() -> str:
    """Chromium's path; skip without it, fail without it when BULKTAG_REQUIRE_BROWSER=1."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("BULKTAG_REQUIRE_BROWSER") == "1":
        pytest.fail("BULKTAG_REQUIRE_BROWSER=1 and no chromium on PATH: apt-get install chromium")
    pytest.skip("no chromium on PATH (apt-get install chromium); CI installs it and runs this")


def _open(
    browser: str, page: Path, work: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, str]]]:
    """Chromium headless on ``page`` (a file:// URL), offline; its output and the
    (url, initiator) of every request its net log shows."""
    work.mkdir(parents=True, exist_ok=True)
    netlog = work / "netlog.json"
    command = [
        browser,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # root in CI's container: the sandbox needs a user namespace
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={work / 'profile'}",
        f"--log-net-log={netlog}",
        "--enable-logging=stderr",
        "--v=0",
        *OFFLINE,
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    log = json.loads(netlog.read_text(encoding="utf-8"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    requests = [
        (str(e["params"]["url"]), str(e["params"].get("initiator")))
        for e in log["events"]
        if names[e["type"]] == "URL_REQUEST_START_JOB" and "url" in e.get("params", {})
    ]
    return done, requests


def _from_the_page(requests: list[tuple[str, str]]) -> list[str]:
    return [url for url, initiator in requests if initiator != "not an origin"]


def test_the_report_renders_offline_with_hostile_text_as_text(
    browser: str, make_world: Callable[..., World], tmp_path: Path
) -> None:
    """The rendered DOM has the tiles, the charts, the hostile tag and file name as text
    and no element they could inject; the page asks for nothing, its CSP blocks nothing."""
    _code, run_dir, _world = hostile_run(make_world)
    done, requests = _open(browser, run_dir / "report.html", tmp_path / "chromium", "--dump-dom")
    dom = parse(done.stdout)
    tiles = [attrs["data-tile"] for tag, attrs in dom.elements if "data-tile" in attrs]
    assert tiles == ["ok", "failed", "deferred", "not attempted", "skipped", "rejected rows"]
    charts = [a for tag, a in dom.elements if tag == "svg" and "pygal-chart" in (a["class"] or "")]
    assert len(charts) >= 5
    assert sum(tag == "rect" for tag, _ in dom.elements) > 20  # bars, tiles of legend
    assert not {tag for tag, _ in dom.elements} & {"script", "img", "iframe", "object", "link"}
    text = "".join(dom.text)
    assert HOSTILE_TAG in text
    assert HOSTILE_FILE in text
    assert _from_the_page(requests) == []
    assert "Content Security Policy" not in done.stderr  # nothing of the page was blocked


def test_the_network_check_sees_what_a_page_loads(browser: str, tmp_path: Path) -> None:
    """The check above is not blind: a page with an image and a stylesheet shows both."""
    page = tmp_path / "loads.html"
    page.write_text(
        '<img src="http://example.invalid/x.png">'
        '<link rel="stylesheet" href="https://cdn.example.invalid/a.css">'
    )
    _done, requests = _open(browser, page, tmp_path / "chromium", "--dump-dom")
    assert sorted(_from_the_page(requests)) == [
        "http://example.invalid/x.png",
        "https://cdn.example.invalid/a.css",
    ]


def _everyday_run(make_world: Callable[..., World]) -> Path:
    """A Pro-plan run as a person meets one: 429s from a workspace that allows fewer calls
    than the plan says, a few 5xx, contacts unknown to the CRM, bad rows, the quota spent."""
    world = make_world(
        contacts=240, plan="pro", per_minute=45, faults=Faults(fault_rate=0.04), seed=9
    )
    world.workspace_used(780)  # 220 calls left today
    tags = ["customer,newsletter", "webinar-2026-11", "vip,customer", "trial"]
    rows = [(cid, tags[n % 4]) for n, cid in enumerate(world.contact_ids[:230])]
    for n in range(6):  # unknown to the CRM, early in the file
        rows.insert(20 * n + 7, (f"00000000-0000-4000-8000-0000000001{n:02d}", "webinar-2026-11"))
    rows += [("5.00765965359373E+031", "vip"), ("CUST-1021", "trial"), ("", "newsletter")]
    source = world.write_csv("segment-november.csv", rows)
    _code, run_dir = world.run(str(source), "--plan", "pro", "--out", "runs/20261126T120000Z")
    return run_dir


def test_the_report_screenshot_is_not_blank(
    browser: str, make_world: Callable[..., World], tmp_path: Path
) -> None:
    """A 1200-pixel-wide screenshot of an everyday run's report shows text and charts."""
    run_dir = _everyday_run(make_world)
    shot = tmp_path / "report.png"
    _open(
        browser,
        run_dir / "report.html",
        tmp_path / "chromium",
        "--window-size=1200,2200",
        f"--screenshot={shot}",
    )
    image = read_png(shot.read_bytes())
    assert (image.width, image.height) == (1200, 2200)
    levels = [
        sum(image.pixel(x, y)[:3]) // 3
        for y in range(0, image.height, 6)
        for x in range(0, 1200, 6)
    ]
    mean = sum(levels) / len(levels)
    variance = sum((v - mean) ** 2 for v in levels) / len(levels)
    inked = sum(v < 200 for v in levels) / len(levels)
    colours = {image.pixel(x, y)[:3] for y in range(0, image.height, 6) for x in range(0, 1200, 6)}
    assert variance > 300, variance  # not one flat colour
    assert 0.02 < inked < 0.6, inked  # text and charts on a white page
    assert len(colours) > 50  # the charts' colours, anti-aliased text
    keep = os.environ.get("BULKTAG_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
