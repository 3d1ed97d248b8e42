"""Every figure a report shows reconciles with the world: worked out here, independently,
from the run's results and rejects files and the emulator's own counters, never from
``summary.json`` or bulktag's code.

For each scene (:mod:`tests.outputs.scenes`): the tiles are the results file's
statuses (and for a job's night, which lists the contacts it sent, the contacts of the
job's carry-over it did not send, with the status the scene's stop gives them) and the
rejects file's rows; *calls made* is every request the emulator saw;
*answered 429* and *errors LeadLex does not count* are its 429 and 5xx answers;
*calls counted against the daily quota* is what its quota counted; *retries* are the
add-tags attempts beyond each contact's first (the results' ``attempts``, whose sum is
the add-tags requests the emulator saw); *calls saved* is the contacts skipped less the
export calls the emulator answered. A dry run shows what it would send, and neither
"all contacts ok" nor "not attempted".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests.outputs.scenes import SCENES, Scene

RUNS = ["everyday", "429", "wrong-url", "dry-run", "interrupted", "skip-existing"]


def shown(page: str) -> dict[str, int | None]:
    """The page's figures (``data-figure``) and tiles (``data-tile``), by name."""
    found: dict[str, int | None] = {}
    for name, number in re.findall(r'data-figure="([\w-]+)">([\d,]+|unknown)<', page):
        assert name not in found, f"the figure {name} is shown twice"
        found[name] = None if number == "unknown" else int(number.replace(",", ""))
    for name, number in re.findall(r'data-tile="([\w ]+)"><div class="number">([\d,]+)<', page):
        found[f"tile:{name}"] = int(number.replace(",", ""))
    return found


def expected(scene: Scene) -> dict[str, int | None]:
    """The same figures, from the files and the emulator alone."""
    run_dir = scene.run_dir
    results = pl.read_csv(run_dir / "results.csv", infer_schema=False)
    rejects = pl.read_csv(run_dir / "rejects.csv", infer_schema=False)
    status = dict(results["status"].value_counts().rows())
    planned = results.height
    if scene.unsent is not None:  # a job's night: what it did not send is carried over
        carry = pl.read_parquet(run_dir.parent.parent / "carry-over.parquet")
        unsent = carry.filter(~pl.col("contact_id").is_in(results["contact_id"])).height
        assert unsent
        status[scene.unsent] = status.get(scene.unsent, 0) + unsent
        planned += unsent
    requests = scene.requests()
    statuses = [(route, int(code), n) for (route, code), n in requests.items()]
    attempts = results["attempts"].cast(pl.Int64)
    # add-tags is the only POST bulktag sends (under a wrong base URL too)
    tag_calls = sum(n for route, _, n in statuses if route.startswith("POST "))
    assert int(attempts.sum()) == tag_calls  # the results account for every add-tags call
    exports = sum(n for route, _, n in statuses if "export" in route)
    skipped = status.get("skipped", 0)
    figures: dict[str, int | None] = {
        # every scene's contacts are one input row each: input rows = contacts + rejects
        "rows": planned + rejects.height,
        "planned": planned,
        "naive": planned,  # one call a contact: no contact here has over 100 tags
        "saved": skipped - exports,
        "tile:skipped": skipped,
        "tile:rejected rows": rejects.height,
    }
    if "dry" in scene.name:
        assert sum(requests.values()) == 0  # nothing reached LeadLex
        would = results.height - skipped
        return figures | {"would": would, "tile:would send": would}
    return figures | {
        "made": sum(requests.values()),
        "answered_429": sum(n for _, code, n in statuses if code == 429),
        "uncounted": sum(n for _, code, n in statuses if code >= 500),
        "counted": scene.counted(),
        "retries": int(attempts.sum()) - int((attempts > 0).sum()),
        "tile:ok": status.get("ok", 0),
        "tile:failed": status.get("failed", 0),
        "tile:deferred": status.get("deferred", 0),
        "tile:not attempted": status.get("not_attempted", 0),
    }


@pytest.mark.parametrize("name", RUNS)
def test_every_figure_on_the_page_reconciles(tmp_path: Path, name: str) -> None:
    make: Callable[[Path], Scene] = SCENES[name]
    scene = make(tmp_path / name)
    page = scene.page.read_text(encoding="utf-8")
    on_page = shown(page)
    wanted = expected(scene)
    assert {k: on_page.get(k) for k in wanted} == wanted
    # each figure once, under one name: no second "calls" figure elsewhere on the page
    assert "calls this run made" not in page
    assert "counted against it by this run" not in page
    if scene.name == "dry-run":
        assert "all contacts ok" not in page
        assert "not attempted" not in page
        assert "Dry run: nothing was sent. A run would send 5 calls adding 10 tags to 5" in page
    else:
        assert 'id="next"' in page
        assert f"exit {scene.code}" in page


def test_a_wrong_url_is_one_fault_and_its_messages_one_shape(tmp_path: Path) -> None:
    scene = SCENES["wrong-url"](tmp_path)
    page = scene.page.read_text(encoding="utf-8")
    # once the URL is fixed, --resume would refuse the new URL: the failures file it is
    assert f"bulktag run {scene.run_dir / 'failures.csv'}" in page
    assert page.count("One fault of the whole run") == 1
    assert "The run stopped on a fault of the whole run" in page  # What next, first
    assert re.search(r"<bdi>[^<]*&lt;id&gt;[^<]*</bdi>|<bdi>[^<]*&lt;url&gt;", page)


def test_what_next_gives_the_commands(tmp_path: Path) -> None:
    everyday = SCENES["everyday"](tmp_path / "a")
    page = everyday.page.read_text(encoding="utf-8")
    assert f"bulktag run --resume {everyday.run_dir}" in page
    assert "16 contacts were not sent: finish this run after the daily quota resets" in page
    assert "6 contacts LeadLex does not know (not_found)" in page
    assert "3 input rows could not be used" in page
    assert "segment-november.csv (lines" in page
    assert "exit 75: work is left for a later run; not a failure" in page
    job = SCENES["interrupted"](tmp_path / "b")
    page = job.page.read_text(encoding="utf-8")
    assert "The job&#x27;s next night sends them first" in page
    assert f"bulktag run --job {tmp_path / 'b' / 'job.toml'}" in page
    done = SCENES["skip-existing"](tmp_path / "c")
    assert "Nothing to do: every contact has its tags." in done.page.read_text(encoding="utf-8")


def test_the_history_shows_dry_runs_and_stopped_nights_as_such(tmp_path: Path) -> None:
    scene = SCENES["history"](tmp_path)
    page = scene.page.read_text(encoding="utf-8")
    assert "<h1>Job history: job</h1>" in page
    assert "(job.toml)" in page
    assert page.count("(dry run)") == 1
    assert "(stopped)" in page
    for code in (75, 65, 0):
        assert f"exit {code}</text>" in page or f"· exit {code}" in page
    assert ">skipped</li>" in page  # skipped contacts are plotted, in the legend
    nights = re.search(r'data-tile="nights"><div class="number">(\d+)<', page)
    assert nights is not None
    assert int(nights.group(1)) == 4  # the dry run is not a night
