"""report.html: written by every run and by `bulktag report RUN_DIR`, self-contained, safe."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from tests.outputs.support import HOSTILE_FILE, HOSTILE_TAG, hostile_run, parse
from tests.world import World


def tiles(page: str) -> dict[str, int]:
    """The outcome tiles: label -> number."""
    found = re.findall(r'data-tile="([^"]+)"><div class="number">([\d,]+)</div>', page)
    return {label: int(number.replace(",", "")) for label, number in found}


def test_a_run_writes_its_report_beside_its_files(make_world: Callable[..., World]) -> None:
    """The run's folder holds report.html (0600) with every section and tiles = summary."""
    code, run_dir, _world = hostile_run(make_world)
    assert code == ExitCode.WORK_LEFT
    report = run_dir / "report.html"
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    page = report.read_text(encoding="utf-8")
    summary = json.loads((run_dir / "summary.json").read_text())
    for anchor in ("outcomes", "calls", "rate", "failures", "rejects", "quota", "files"):
        assert f'<section id="{anchor}">' in page
    contacts = summary["contacts"]
    assert tiles(page) == {
        "ok": contacts["ok"],
        "failed": contacts["failed"],
        "deferred": contacts["deferred"],
        "not attempted": contacts["not_attempted"],
        "skipped": contacts["skipped"],
        "rejected rows": summary["rejects"]["total"],
    }
    assert contacts["deferred"]
    assert contacts["failed"]
    assert summary["rejects"]["total"] == 3
    assert 'data-type="not_found"' in page
    assert "Contact not found" in page
    assert "00000000-0000-4000-8000-000000000000" in page  # an example contact
    assert "Calls a minute, UTC" in page  # a run of 4 minutes: minutes
    assert '<section id="next" class="next warn"><h2>What next</h2>' in page
    for name in ("results.csv", "failures.csv", "rejects.csv", "summary.json"):
        assert f'href="{name}"' in page


def test_untrusted_text_stays_text(make_world: Callable[..., World]) -> None:
    """A <script> tag and a file name that closes an attribute are shown, never parsed."""
    _code, run_dir, _world = hostile_run(make_world)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    found = parse(page)
    names = {tag for tag, _ in found.elements}
    assert not names & {"script", "img", "iframe", "object", "embed", "link", "base", "form"}
    assert not [
        (tag, name) for tag, attrs in found.elements for name in attrs if name.startswith("on")
    ]
    text = "".join(found.text)
    assert HOSTILE_TAG in text  # shown, as text
    assert HOSTILE_FILE in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_page_can_load_nothing(make_world: Callable[..., World]) -> None:
    """A CSP forbidding every load heads the page; no script, no URL but the SVG namespace."""
    _code, run_dir, _world = hostile_run(make_world)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    head = page[: page.index("<style>")]
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in head
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "url(" not in page
    assert "@import" not in page
    for _tag, attrs in parse(page).elements:
        for name in ("src", "href", "xlink:href", "action"):
            target = attrs.get(name)
            assert target is None or not re.match(r"^([a-z]+:|//)", target), target


def test_a_dry_run_has_a_report_too(make_world: Callable[..., World]) -> None:
    """--dry-run: the report says nothing was sent; its tiles hold the plan."""
    world = make_world(contacts=5)
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--dry-run")
    assert code == ExitCode.OK
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<h1>bulktag dry run</h1>" in page
    assert "Dry run: nothing was sent. A run would send 5 calls adding 5 tags to 5 contacts" in page
    assert "exit 0 of a dry run: a run would send all of it." in page
    assert "nothing was sent (dry run)" in page
    assert tiles(page) == {"would send": 5, "tags": 5, "calls": 5, "skipped": 0, "rejected rows": 0}
    assert "all contacts ok" not in page
    assert "not attempted" not in page


def test_no_report_writes_none(make_world: Callable[..., World]) -> None:
    """--no-report: the run's files, no report.html."""
    world = make_world(contacts=3)
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--no-report")
    assert code == ExitCode.OK
    assert (run_dir / "summary.json").exists()
    assert not (run_dir / "report.html").exists()


def test_report_writes_the_page_again(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """`bulktag report RUN_DIR` rebuilds report.html from the folder and prints its path."""
    world = make_world(contacts=3)
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids])
    _code, run_dir = world.run(str(source), "--no-report")
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == ExitCode.OK
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    assert tiles((run_dir / "report.html").read_text(encoding="utf-8"))["ok"] == 3


def test_resume_takes_no_report(make_world: Callable[..., World]) -> None:
    """--resume RUN_DIR --no-report is allowed: it is not a setting of the run."""
    world = make_world(contacts=15, plan="starter", per_day=10)
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "starter")
    assert code == ExitCode.WORK_LEFT
    world.next_night()
    argv = ["run", "--resume", str(run_dir), "--no-report"]
    assert main(argv, runtime=world.runtime()) == ExitCode.OK


@pytest.mark.parametrize("fmt", ["parquet", "ndjson", "xlsx"])
def test_every_output_format_is_read(make_world: Callable[..., World], fmt: str) -> None:
    """The failures and rejects files are read in the format the run wrote them."""
    world = make_world(contacts=4)
    rows = [(cid, "a") for cid in world.contact_ids] + [
        ("00000000-0000-4000-8000-00000000000a", "b")
    ]
    source = world.write_csv("in.csv", [*rows, ("bad-id", "c")])
    code, run_dir = world.run(str(source), "--format", fmt)
    assert code == ExitCode.FAILURES
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "00000000-0000-4000-8000-00000000000a" in page  # the not_found example
    assert "in.csv:7" in page  # the reject's file:line
    assert f'href="failures.{fmt}"' in page


def _unfinished(root: Path) -> Path:
    (root / "run" / ".bulktag").mkdir(parents=True)
    (root / "run" / ".bulktag" / "config.json").write_text("{}")
    return root / "run"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda root: root / "absent", "no such folder"),
        (lambda root: root, "not a bulktag run folder (no summary.json)"),
        (
            _unfinished,
            "the run has not finished (no summary.json): bulktag run --resume",
        ),
    ],
)
def test_report_of_what_is_not_a_finished_run_is_exit_65(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    says: str,
) -> None:
    """A folder that is not a finished run: exit 65, one line naming it and the fix."""
    folder = make(tmp_path)
    assert main(["report", str(folder)]) == ExitCode.INPUT_UNUSABLE
    err = capsys.readouterr().err
    assert err.startswith(f"bulktag: error: {folder}: {says}")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["report"], ["report", "runs/x", "--job", "job.toml"]])
def test_report_takes_a_run_folder_or_a_job(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither or both of RUN_DIR and --job: a usage error (exit 2) saying which to give."""
    assert main(argv) == ExitCode.USAGE
    assert "give a run folder (bulktag report RUN_DIR) or a job" in capsys.readouterr().err


def test_a_report_that_cannot_be_written_is_one_line(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """report.html cannot be replaced: a resumed run still ends with its own code (a
    warning); `bulktag report` exits 78 naming the file, never with a traceback."""
    world = make_world(contacts=15, plan="starter", per_day=10)
    source = world.write_csv("in.csv", [(cid, "a") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "starter")
    assert code == ExitCode.WORK_LEFT
    (run_dir / "report.html").unlink()
    (run_dir / "report.html").mkdir()  # in the way of the page
    world.next_night()
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)], runtime=world.runtime()) == ExitCode.OK
    assert f"cannot write the report of {run_dir}" in capsys.readouterr().err
    assert main(["report", str(run_dir)]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"bulktag: error: {run_dir / 'report.html'}: cannot write it (")
    assert "Traceback" not in err
