"""What users chain across nights: each chain that broke, through the real command.

The numbers are those of issue 22's list. The model-based test of the whole command
(``test_stateful.py``) drives the same operations in random orders.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from tests.constants import KEY
from tests.world import URL, World, read_results

NAMED = """inputs = ["export.csv"]
[read]
id_column = "LeadLex ID"
tags_columns = ["Segments"]
[tags]
prefix = "seg-"
[limits]
plan = "starter"
"""


def _export(world: World, ids: list[str], tag: str = "winter") -> Path:
    """A person's export with named columns (as jobs/nightly-export.toml expects)."""
    return world.write_csv("export.csv", [(c, tag) for c in ids], header=("LeadLex ID", "Segments"))


def _summary(run_dir: Path | None) -> dict[str, Any]:
    assert run_dir is not None
    loaded: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return loaded


def _every_tag(world: World) -> set[str]:
    return {tag for cid in world.contact_ids for tag in world.tags_of(cid)}


def test_1_a_job_naming_its_columns_finishes_after_a_short_night(
    make_world: Callable[..., World],
) -> None:
    """40 contacts, 20 calls a day, a job naming its ID and tags columns: 75, then 0,
    every contact tagged once (the carry-over is read with its own columns)."""
    world = make_world(contacts=40, plan="starter", per_day=20)
    _export(world, world.contact_ids)
    job = world.write_job(NAMED)
    codes = []
    for _night in range(3):
        world.next_night()
        codes.append(world.run_job(job)[0])
    assert codes == [ExitCode.WORK_LEFT, ExitCode.OK, ExitCode.OK]
    assert world.handled_tag_calls() == 40
    assert _every_tag(world) == {"seg-winter"}


def test_1_after_a_kill_and_the_examples_dry_run_first(make_world: Callable[..., World]) -> None:
    """Dry run first, a night killed mid-way, a dry run, then nights: never 65, every
    contact tagged seg-winter once at most plus the call in flight at the kill."""
    world = make_world(contacts=40, plan="starter", per_day=20)
    _export(world, world.contact_ids)
    job = world.write_job(NAMED)
    assert world.run_job(job, "--dry-run")[0] == ExitCode.OK
    world.next_night()
    world.crash_after(7, applied=True)
    world.crashing("--job", str(job))
    assert world.run_job(job, "--dry-run")[0] == ExitCode.OK
    codes = []
    for _night in range(3):
        world.next_night()
        codes.append(world.run_job(job)[0])
    assert codes == [ExitCode.WORK_LEFT, ExitCode.OK, ExitCode.OK]
    assert _every_tag(world) == {"seg-winter"}
    assert world.handled_tag_calls() <= 40 + 1  # the call applied at the kill, once more


def test_2_the_prefix_is_never_applied_twice(make_world: Callable[..., World]) -> None:
    """A prefixed job interrupted, a dry run, nights: only seg-winter reaches the CRM."""
    world = make_world(contacts=30, plan="starter", per_day=10)
    _export(world, world.contact_ids)
    job = world.write_job(NAMED)
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.WORK_LEFT  # a carry-over of 20
    world.next_night()
    world.crash_after(3)
    world.crashing("--job", str(job))
    _, dry = world.run_job(job, "--dry-run")
    assert dry is not None
    planned = read_results(dry / "results.csv")["tags"].unique().to_list()
    assert planned == ["seg-winter"]
    for _night in range(4):
        world.next_night()
        world.run_job(job)
    assert _every_tag(world) == {"seg-winter"}


def test_2_a_failures_rerun_with_the_first_runs_flags(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-running a failures file with the same --tag-prefix, --tag-case and --add-tag as
    the first run sends the tags the first run meant, and the plan says they are final."""
    ids = world.contact_ids[:6]
    source = world.write_csv("in.csv", [(c, "Winter") for c in ids])
    flags = ("--tag-prefix", "crm-", "--tag-case", "lower", "--add-tag", "import-1")
    world.workspace_used(1000 - 2)
    code, first = world.run(str(source), *flags)
    assert code == ExitCode.WORK_LEFT
    world.next_night()
    capsys.readouterr()
    code, again = world.run(str(first / "failures.csv"), *flags, "-v")
    assert code == ExitCode.OK
    assert "bulktag's failures file" in capsys.readouterr().err
    assert read_results(again / "results.csv")["tags"].unique().to_list() == ["crm-winter,import-1"]
    assert _every_tag(world) == {"crm-winter", "import-1"}


def test_3_a_dry_run_changes_nothing_of_the_job(make_world: Callable[..., World]) -> None:
    """After a short night, a killed night and a failed one, a dry run of the job leaves its
    folder, state, carry-over, history and the quota store exactly as they were."""
    world = make_world(contacts=30, plan="starter", per_day=10)
    ids = world.contact_ids
    world.write_csv(
        "export.csv", [*[(c, "a") for c in ids], ("0" * 8 + "-0000-4000-8000-" + "0" * 12, "a")]
    )
    job = world.write_job('inputs = ["export.csv"]\n[tags]\nprefix = "p-"\n')
    world.next_night()
    world.run_job(job)
    world.next_night()
    world.crash_after(4)
    world.crashing("--job", str(job))
    before = world.job_fingerprint()
    assert "carry-over.parquet" in before
    code, dry = world.run_job(job, "--dry-run")
    assert code == ExitCode.OK
    assert dry is not None
    assert dry.parent == world.folder / "job" / "dry-runs"
    assert (dry / "report.html").is_file()
    assert world.job_fingerprint() == before
    out = world.folder / "elsewhere"
    assert world.run_job(job, "--dry-run", "--out", str(out))[0] == ExitCode.OK
    assert (out / "summary.json").is_file()
    assert world.job_fingerprint() == before


def test_4_a_resume_by_hand_of_a_jobs_run_updates_the_job(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """A job's night killed, then `bulktag run --resume` of its run folder: the job's ledger
    learns what it applied, so the next night sends nothing again."""
    world = make_world(contacts=34)
    world.write_csv("export.csv", [(c, "x") for c in world.contact_ids])
    job = world.write_job('inputs = ["export.csv"]\n')
    world.next_night()
    world.crash_after(10)
    world.crashing("--job", str(job))
    (run_dir,) = (world.folder / "job" / "runs").iterdir()
    code = main(["run", "--resume", str(run_dir), "-v"], runtime=world.runtime())
    assert code == ExitCode.OK
    assert "is a run of the job job: finishing it" in capsys.readouterr().err
    assert world.handled_tag_calls() == 34
    world.next_night()
    code, night = world.run_job(job)
    assert code == ExitCode.OK
    assert world.handled_tag_calls() == 34  # none sent twice
    assert _summary(night)["contacts"] == {
        "planned": 34,
        "ok": 0,
        "failed": 0,
        "deferred": 0,
        "not_attempted": 0,
        "skipped": 34,
    }


def test_5_a_results_file_as_input_sends_only_what_is_not_done(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A results file given as input plans only its rows not ok (with their pending tags),
    counts the others as done, and says so."""
    ids = world.contact_ids[:10]
    source = world.write_csv("in.csv", [(c, "x") for c in ids])
    world.workspace_used(1000 - 4)
    code, first = world.run(str(source))
    assert code == ExitCode.WORK_LEFT
    world.next_night()
    capsys.readouterr()
    code, again = world.run(str(first / "results.csv"), "-v")
    err = capsys.readouterr().err
    assert code == ExitCode.OK
    assert world.handled_tag_calls() == 10  # 4 then 6: none sent twice
    summary = _summary(again)
    assert summary["contacts"]["planned"] == 6
    assert summary["plan"]["done_rows"] == 4
    assert "bulktag's results file: only its rows not ok or skipped are planned" in err


def test_5_a_summary_or_rejects_file_is_refused_with_the_file_to_use(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """summary.json and rejects.csv as inputs: exit 65, naming what to run instead."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x"), ("bad", "y")])
    _, run_dir = world.run(str(source))
    capsys.readouterr()
    code, _ = world.run(str(run_dir / "summary.json"))
    assert code == ExitCode.INPUT_UNUSABLE
    err = capsys.readouterr().err
    assert "a run's summary.json, not a list of contacts" in err
    assert f"bulktag run {run_dir / 'failures.csv'}" in err
    code, _ = world.run(str(run_dir / "rejects.csv"))
    assert code == ExitCode.INPUT_UNUSABLE
    assert "bulktag's rejects file" in capsys.readouterr().err


def test_6_resume_of_a_finished_run_changes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """--resume of a run that ended with nothing left: exit 2, summary.json as it was."""
    source = world.write_csv("in.csv", [(c, "x") for c in world.contact_ids[:5]])
    _, run_dir = world.run(str(source))
    written = (run_dir / "summary.json").read_bytes()
    capsys.readouterr()
    code = main(["run", "--resume", str(run_dir)], runtime=world.runtime())
    assert code == ExitCode.USAGE
    assert "the run is finished (exit 0), nothing to resume" in capsys.readouterr().err
    assert (run_dir / "summary.json").read_bytes() == written
    assert world.handled_tag_calls() == 5


def test_7_a_skip_existing_run_keeps_its_report(world: World) -> None:
    """--skip-existing: report.html written, and `bulktag report` writes it again."""
    for cid in world.contact_ids[:30]:
        world.emulator.contacts[cid].tags.append("x")
    source = world.write_csv("in.csv", [(c, "x") for c in world.contact_ids])
    code, run_dir = world.run(str(source), "--skip-existing")
    assert code == ExitCode.OK
    assert (run_dir / "report.html").is_file()
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == ExitCode.OK
    assert "pre-check" in (run_dir / "report.html").read_text()


def test_8_a_base_url_ending_in_v1_stops_the_run_not_the_contacts(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """`.../api-gateway/v1`: one call, one route check, exit 78 naming the URL; nothing
    recorded not_found, so the failures re-run after the fix sends every contact."""
    ids = world.contact_ids[:40]
    source = world.write_csv("in.csv", [(c, "x") for c in ids])
    code, run_dir = world.run(str(source), "--api-url", URL + "/v1")
    assert code == ExitCode.CONFIG
    assert f"the API URL {URL}/v1 serves no LeadLex route" in capsys.readouterr().err
    assert sum(world.emulator.requests.values()) == 2
    results = read_results(run_dir / "results.csv")
    assert "not_found" not in results["error_type"].to_list()
    code, _ = world.run(str(run_dir / "failures.csv"))
    assert code == ExitCode.OK
    assert all(world.tags_of(c) == ["x"] for c in ids)


def test_8_a_real_not_found_costs_one_route_check(world: World) -> None:
    """With the right URL, a first answer of 404 is checked once, then trusted."""
    unknown = "00000000-0000-4000-8000-000000000001"
    source = world.write_csv("in.csv", [(unknown, "x"), *[(c, "x") for c in world.contact_ids[:5]]])
    code, run_dir = world.run(str(source), "--concurrency", "1")
    assert code == ExitCode.FAILURES
    assert world.emulator.handled["GET /v1/contacts"] == 1
    results = read_results(run_dir / "results.csv")
    assert results.filter(results["contact_id"] == unknown)["error_type"].item() == "not_found"


def test_9_the_environments_url_comes_before_the_job_files(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """LEADLEX_API_URL beats the job's [api] url (with a warning), and the plan names the
    URL and where it came from; --api-url beats both."""
    world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    job = world.write_job(
        'inputs = ["in.csv"]\n[api]\nurl = "https://data.leadlex.com/functions/v1/api-gateway"\n'
    )
    world.environ["LEADLEX_API_URL"] = URL
    world.next_night()
    code = main(["run", "--job", str(job), "-v"], runtime=world.runtime())
    err = capsys.readouterr().err
    assert code == ExitCode.OK
    assert world.handled_tag_calls() == 1  # the emulator, not production
    assert "$LEADLEX_API_URL" in err
    assert "not the job file's [api] url" in err
    assert f"API: {URL} (from $LEADLEX_API_URL)" in err
    assert KEY not in err


def test_11_a_job_does_not_resend_its_permanent_failures(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown contact in every night's export: one call on the first night (exit 1),
    none after (exit 0), listed in permanent-failures.csv; --retry-permanent sends it."""
    unknown = "00000000-0000-4000-8000-000000000007"
    world.write_csv("export.csv", [(unknown, "x"), *[(c, "x") for c in world.contact_ids[:3]]])
    job = world.write_job('inputs = ["export.csv"]\n')
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.FAILURES
    listed = read_results(world.folder / "job" / "permanent-failures.csv")
    assert listed.select("contact_id", "tags", "error_type").rows() == [(unknown, "x", "not_found")]
    calls = world.handled_tag_calls()
    world.next_night()
    capsys.readouterr()
    code, night = world.run_job(job, "-v")
    assert code == ExitCode.OK
    assert world.handled_tag_calls() == calls
    assert "failed for good on an earlier night" in capsys.readouterr().err
    assert _summary(night)["skipped_by_reason"] == {
        "already_applied": 3,
        "failed_before": 1,
    }
    world.next_night()
    assert world.run_job(job, "--retry-permanent")[0] == ExitCode.FAILURES
    assert world.handled_tag_calls() == calls + 1


def test_11_a_contact_created_later_leaves_the_list(world: World) -> None:
    """Once --retry-permanent applies a pair that had failed, the job lists it no more."""
    late = world.contact_ids[10]
    world.emulator.contacts.pop(late)
    world.write_csv("export.csv", [(late, "x")])
    job = world.write_job('inputs = ["export.csv"]\n')
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.FAILURES
    assert (world.folder / "job" / "permanent-failures.csv").is_file()
    world.emulator.auto_create = True  # the contact exists now
    world.next_night()
    assert world.run_job(job, "--retry-permanent")[0] == ExitCode.OK
    assert not (world.folder / "job" / "permanent-failures.csv").exists()


def test_12_history_counts_no_dry_run_and_shows_a_stuck_job(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Dry runs are not nights; nights that stop on exit 65 are, with their exit, and the
    history no longer promises "1 night to finish"."""
    world = make_world(contacts=30, plan="starter", per_day=10)
    world.write_csv("export.csv", [(c, "x") for c in world.contact_ids])
    job = world.write_job('inputs = ["export.csv"]\n[limits]\nplan = "starter"\n')
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.WORK_LEFT
    world.run_job(job, "--dry-run")
    (world.folder / "export.csv").write_text("not,a,table\n\x00\x01\x02", encoding="utf-8")
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.INPUT_UNUSABLE
    capsys.readouterr()
    assert main(["history", "--job", str(job)]) == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "job job: 2 nights"
    assert "(stopped)" in out[3]
    assert out[3].split()[3] == "65"
    assert "the last night ended with exit 65" in out[-1]
    assert "waits until that is fixed" in out[-1]


def test_12_a_night_with_nothing_to_send_is_quiet(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """An exit-0 night whose contacts the ledger skipped does not warn that the plan needs
    more calls than the quota allows; its quota is LeadLex's figure, not the plan's."""
    world = make_world(contacts=15, plan="starter", per_day=10)
    world.write_csv("export.csv", [(c, "x") for c in world.contact_ids])
    job = world.write_job('inputs = ["export.csv"]\n[limits]\nplan = "pro"\n')
    for _night in range(2):
        world.next_night()
        world.run_job(job)
    world.next_night()
    capsys.readouterr()
    code, _ = world.run_job(job)
    assert code == ExitCode.OK
    assert "more than today's quota allows" not in capsys.readouterr().err
    main(["history", "--job", str(job), "--json"])
    nights = json.loads(capsys.readouterr().out)["nights"]
    assert [n["per_night"] for n in nights] == [10, 10, 10]  # LeadLex's 10, not pro's 1,000


def test_a_sigterm_at_the_first_call_is_bulktags(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SIGTERM as the very first call goes out is bulktag's to handle (its handler is in
    place before any call): the call finishes, the rest is not attempted, exit 75 (found
    by the model: the handler was installed after the first call could go)."""
    ids = world.contact_ids[:6]
    source = world.write_csv("in.csv", [(c, "x") for c in ids])

    def hook(request: httpx2.Request) -> None:
        if request.url.path.endswith("/tags") and world.handled_tag_calls() == 0:
            os.kill(os.getpid(), signal.SIGTERM)

    missed: list[int] = []
    world.hook, world.handle_signals = hook, True
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: missed.append(signum))
    try:
        code, run_dir = world.run(str(source), "--concurrency", "1")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert missed == []  # not one reached the process's default handler (death)
    assert code == ExitCode.WORK_LEFT
    assert "SIGTERM: finishing requests in flight" in capsys.readouterr().err
    results = read_results(run_dir / "results.csv")
    assert results["status"].to_list() == ["ok"] + ["not_attempted"] * 5
