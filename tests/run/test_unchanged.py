"""A job's night whose inputs did not change plans from its carry-over alone, and reads
everything again whenever that could plan less than a full read would.

Expected tags are worked out here from the export (and the job's prefix), never from
bulktag; "read" is what a night's summary lists as its inputs."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bulktag.errors import ExitCode
from tests.world import World

TAG = "import-2026-11"


def _night(world: World, job: Path, *args: str) -> tuple[int, list[str], int]:
    """A night: its exit code, the files its plan read (names), the calls it made."""
    world.next_night()
    before = world.handled_tag_calls()
    code, run_dir = world.run_job(job, *args)
    assert run_dir is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    read = [Path(i["source"]).name for i in summary["plan"]["inputs"]]
    return code, read, world.handled_tag_calls() - before


def _backlog(make_world: Callable[..., World]) -> tuple[World, Path]:
    """250 contacts under 100 calls a day, and a bad row (a reject of the export)."""
    world = make_world(contacts=250, plan="starter")
    rows = [(cid, TAG) for cid in world.contact_ids] + [("CUST-1", TAG)]
    world.write_csv("export.csv", rows)
    job = world.write_job('inputs = ["export.csv"]\n[limits]\nplan = "starter"\n')
    return world, job


def test_an_unchanged_export_is_not_read_again_while_its_backlog_is_sent(
    make_world: Callable[..., World],
) -> None:
    """Night 1 reads the export; nights 2 and 3, the same bytes landed again (a new
    mtime), read only the carry-over; every contact gets its tag, each pair sent once."""
    world, job = _backlog(make_world)
    export = world.folder / "export.csv"
    nights = [_night(world, job)]
    for _ in range(2):
        export.write_bytes(export.read_bytes())  # the export lands again, the same bytes
        os.utime(export, None)
        nights.append(_night(world, job))
    assert nights == [
        (ExitCode.WORK_LEFT, ["export.csv"], 100),
        (ExitCode.WORK_LEFT, ["carry-over.parquet"], 100),
        (ExitCode.OK, ["carry-over.parquet"], 50),  # the export's bad row told on night 1
    ]
    assert all(world.tags_of(cid) == [TAG] for cid in world.contact_ids)
    assert world.statuses() == {"200": 250}
    # nothing carried over, nothing to plan from: the export is read again
    assert _night(world, job) == (ExitCode.FAILURES, ["export.csv"], 0)


def test_a_changed_export_is_read_with_the_carry_over(
    make_world: Callable[..., World],
) -> None:
    """A row added to the export: the night reads both, and the new pair is sent after
    what was carried over; then the same bytes again: the carry-over alone."""
    world, job = _backlog(make_world)
    _night(world, job)
    first = world.contact_ids[0]
    with (world.folder / "export.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.write(f"{first},late-tag\r\n")
    nights = [_night(world, job) for _ in range(3)]
    assert nights == [
        (ExitCode.WORK_LEFT, ["carry-over.parquet", "export.csv"], 100),
        (ExitCode.OK, ["carry-over.parquet"], 51),
        (ExitCode.FAILURES, ["export.csv"], 0),  # nothing carried over: read again
    ]
    assert world.tags_of(first) == [TAG, "late-tag"]
    assert all(world.tags_of(cid) == [TAG] for cid in world.contact_ids[1:])


@pytest.mark.parametrize(
    ("change", "flags"),
    [
        ("the job's prefix", ()),
        ("--force", ("--force",)),
        ("--retry-permanent", ("--retry-permanent",)),
        ("[ledger] days", ()),
    ],
)
def test_what_could_plan_more_than_the_carry_over_reads_everything(
    make_world: Callable[..., World], change: str, flags: tuple[str, ...]
) -> None:
    """A setting that shapes the plan changed, or a night that does not take the ledger
    or the failed pairs as they are: the export is read again."""
    world, job = _backlog(make_world)
    _night(world, job)
    if change == "the job's prefix":
        job.write_text(job.read_text().replace("[limits]", '[tags]\nprefix = "seg-"\n[limits]'))
    if change == "[ledger] days":
        job.write_text(job.read_text() + "[ledger]\ndays = 400\n")
    _code, read, _calls = _night(world, job, *flags)
    assert read == ["carry-over.parquet", "export.csv"]


def test_a_carry_over_a_person_removed_means_the_export_is_read(
    make_world: Callable[..., World],
) -> None:
    """The carry-over deleted by hand: nothing is lost, the export is read again and the
    150 contacts left are planned from it (100 sent tonight)."""
    world, job = _backlog(make_world)
    _night(world, job)
    (world.folder / "job" / "carry-over.parquet").unlink()
    assert _night(world, job) == (ExitCode.WORK_LEFT, ["export.csv"], 100)
    assert _night(world, job)[1:] == (["carry-over.parquet"], 50)
    assert all(world.tags_of(cid) == [TAG] for cid in world.contact_ids)


def test_a_killed_night_is_finished_then_the_export_read(
    make_world: Callable[..., World],
) -> None:
    """Night 2 is killed mid-way; night 3 finishes it first, which rewrites the carry-over,
    so it reads the export again; each contact is tagged once, none lost."""
    world, job = _backlog(make_world)
    _night(world, job)
    world.next_night()
    world.crash_after(30)
    world.crashing("--job", str(job))
    _code, read, _calls = _night(world, job)
    assert read == ["carry-over.parquet", "export.csv"]
    for _ in range(3):
        _night(world, job)
    assert all(world.tags_of(cid) == [TAG] for cid in world.contact_ids)
    assert world.handled_tag_calls() == 250


def test_a_dry_run_shows_the_nights_plan_and_changes_nothing(
    make_world: Callable[..., World],
) -> None:
    """After night 1, a dry run plans from the carry-over as the next night will, and
    leaves the job as it was; the next night then reads only the carry-over too."""
    world, job = _backlog(make_world)
    _night(world, job)
    before = world.job_fingerprint()
    code, run_dir = world.run_job(job, "--dry-run")
    assert code == ExitCode.OK  # the export's bad row is night 1's, not read again
    assert run_dir is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [Path(i["source"]).name for i in summary["plan"]["inputs"]] == ["carry-over.parquet"]
    assert summary["would_send"]["contacts"] == 150
    assert world.job_fingerprint() == before
    assert _night(world, job)[1:] == (["carry-over.parquet"], 100)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nights"


def test_an_export_saved_by_libreoffice_then_resaved_then_by_gnumeric(
    make_world: Callable[..., World],
) -> None:
    """A job's export as LibreOffice Calc saved it (XLSX), landed twice with the same
    bytes: the second night reads only the carry-over. Saved again by LibreOffice (the
    same cells, other bytes), then by gnumeric (CSV): those nights read the export. Each
    contact ends with the tags of its segment cell, worked out from the source CSV with
    the csv module, in one call each (tests/fixtures/nights/make_nights.py)."""
    world = make_world(contacts=30, plan="starter", per_day=10)
    with (FIXTURES / "backlog.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    meant = {cid: {t.strip() for t in re.split("[,;|]", cell)} for cid, cell in rows}
    assert set(meant) == set(world.contact_ids)
    exports = world.folder / "exports"
    exports.mkdir()
    job = world.write_job(
        'inputs = ["exports/*"]\n[read]\nid_column = "LeadLex ID"\n'
        'tags_columns = ["Segments"]\n[limits]\nplan = "starter"\n'
    )

    def land(name: str, as_name: str) -> None:
        for old in exports.iterdir():
            old.unlink()
        shutil.copy(FIXTURES / name, exports / as_name)

    nights = []
    for name, as_name in [
        ("backlog_libreoffice.xlsx", "export.xlsx"),
        ("backlog_libreoffice.xlsx", "export.xlsx"),  # the same bytes, landed again
        ("backlog_resaved.xlsx", "export.xlsx"),
        ("backlog_gnumeric.csv", "export.csv"),
    ]:
        land(name, as_name)
        nights.append(_night(world, job))
    assert nights == [
        (ExitCode.WORK_LEFT, ["export.xlsx"], 10),
        (ExitCode.WORK_LEFT, ["carry-over.parquet"], 10),
        (ExitCode.OK, ["carry-over.parquet", "export.xlsx"], 10),
        (ExitCode.OK, ["export.csv"], 0),
    ]
    assert {cid: set(world.tags_of(cid)) for cid in meant} == meant
    assert world.statuses() == {"200": 30}
