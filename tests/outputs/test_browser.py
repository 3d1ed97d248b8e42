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

import html
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.outputs.png import read_png
from tests.outputs.scenes import SCENES
from tests.outputs.support import HOSTILE_FILE, HOSTILE_TAG, OFFLINE, hostile_run, parse
from tests.world import World


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
    charts = [
        a for tag, a in dom.elements if tag == "svg" and "pygal-chart" in (a.get("class") or "")
    ]
    assert len(charts) >= 4  # outcomes, calls over time, failure types, quota
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


def test_the_report_screenshot_is_not_blank(browser: str, tmp_path: Path) -> None:
    """A 1200-pixel-wide screenshot of an everyday run's report shows text and charts."""
    run_dir = SCENES["everyday"](tmp_path / "scene").run_dir
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


#: Measures a page laid out in a frame WIDTH pixels wide (Chromium's headless window is
#: at least 500 wide; a frame is any width, and its media queries see its own width):
#: horizontal overflow of the page, tiles whose text does not fit, and words split
#: across lines in headers, tiles, headings and legends. The page goes in as ``srcdoc``
#: (same origin as the probe, so its DOM can be read); the result is written into the
#: probe's DOM, which --dump-dom prints.
_PROBE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="page" style="border:0;width:WIDTHpx;height:2400px" srcdoc="SRCDOC"></iframe>
<script>
document.getElementById('page').addEventListener('load', () => {
  const frame = document.getElementById('page');
  const doc = frame.contentDocument, win = frame.contentWindow;
  const out = {width: win.innerWidth,
    overflow: doc.documentElement.scrollWidth - win.innerWidth, cut: [], split: []};
  for (const el of doc.querySelectorAll('.tile, .tile *')) {
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)
      out.cut.push(el.className + ': ' + el.textContent.slice(0, 60));
  }
  function words(el) {
    const walk = doc.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walk.nextNode())) {
      const re = /\\S+/g; let m;
      while ((m = re.exec(node.data))) {
        const range = doc.createRange();
        range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
        const tops = new Set(Array.from(range.getClientRects())
          .filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) out.split.push(el.tagName + ': ' + m[0]);
      }
    }
  }
  doc.querySelectorAll('th, .tile, h1, h2, h3, nav a, ul.legend li').forEach(words);
  const pre = document.createElement('pre'); pre.id = 'measured';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script></body></html>"""


def _probe(page: Path, width: int, work: Path) -> Path:
    """A page holding ``page`` in a frame ``width`` pixels wide, with the measuring script."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    probe = work / f"{page.stem}-{width}.html"
    probe.write_text(
        _PROBE.replace("WIDTH", str(width)).replace("SRCDOC", html.escape(text, quote=True)),
        encoding="utf-8",
    )
    return probe


def _measured(browser: str, page: Path, width: int, work: Path) -> dict[str, object]:
    probe = _probe(page, width, work)
    done, _requests = _open(
        browser,
        probe,
        work / f"chromium-{width}",
        "--window-size=1400,1000",
        "--virtual-time-budget=5000",
        "--dump-dom",
    )
    found = re.search(r'<pre id="measured">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, done.stdout[-2000:]
    return dict(json.loads(html.unescape(found.group(1))))


@pytest.mark.parametrize("name", ["everyday", "wrong-url", "dry-run", "history"])
def test_the_layout_holds_at_every_width(browser: str, tmp_path: Path, name: str) -> None:
    """At 1,280, 768 and 400 pixels: no horizontal overflow of the page (wide tables and
    charts scroll in their own box), every tile's text whole, no word split across lines
    in a header, a tile, a heading or a legend. A screenshot of each width is kept (in
    BULKTAG_SCREENSHOT_DIR when set: docs/report-pages/after/ holds them)."""
    scene = SCENES[name](tmp_path / "scene")
    keep = os.environ.get("BULKTAG_SCREENSHOT_DIR")
    for width in (1280, 768, 400):
        measured = _measured(browser, scene.page, width, tmp_path)
        assert measured["width"] == width
        assert measured["overflow"] == 0, (width, measured)
        assert measured["cut"] == [], (width, measured["cut"])
        assert measured["split"] == [], (width, measured["split"])
        shot = tmp_path / f"{name}-{width}.png"
        _open(
            browser,
            _probe(scene.page, width, tmp_path),
            tmp_path / f"shot-{width}",
            f"--window-size={max(width, 500)},2400",
            f"--screenshot={shot}",
        )
        image = read_png(shot.read_bytes())
        inked = sum(
            sum(image.pixel(x, y)[:3]) < 600
            for y in range(0, image.height, 8)
            for x in range(0, width, 8)
        )
        assert inked > 200  # text and charts, not a blank page
        if keep:
            shutil.copyfile(shot, Path(keep) / shot.name)
