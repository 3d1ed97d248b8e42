"""bulktag run end to end on the in-process emulator: outputs, calls, exit codes."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable

import polars as pl
import pytest

from bulktag.errors import ExitCode
from bulktag.plan.build import PLAN_COLUMNS
from tests.world import World, read_results, sliding_window_max


def test_every_contact_gets_its_tags(world: World) -> None:
    """A clean run: every contact ok, the CRM carries the tags, exit 0, one call each."""
    ids = world.contact_ids[:20]
    source = world.write_csv("in.csv", [(cid, "vip, legal") for cid in ids])
    code, run_dir = world.run(str(source))
    assert code == ExitCode.OK
    assert all(world.tags_of(cid) == ["vip", "legal"] for cid in ids)
    results = read_results(run_dir / "results.csv")
    assert results["contact_id"].to_list() == ids
    assert set(results["status"]) == {"ok"}
    assert world.handled_tag_calls() == 20
    assert read_results(run_dir / "failures.csv").height == 0


def test_outputs_and_summary(world: World) -> None:
    """results, failures, rejects, summary.json in the run folder, each 0600; counts add up."""
    ids = world.contact_ids
    source = world.write_csv("in.csv", [(ids[0], "a"), (ids[1], "b"), ("nope", "c")])
    code, run_dir = world.run(str(source))
    assert code == ExitCode.FAILURES  # a rejected row
    for name in (
        "results.csv",
        "failures.csv",
        "rejects.csv",
        "summary.json",
        ".bulktag/journal.sqlite",
    ):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600, name
    plan = pl.read_parquet_schema(run_dir / ".bulktag" / "plan.parquet")
    assert tuple(plan) == PLAN_COLUMNS
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exit_code"] == 1
    assert summary["contacts"] == {
        "planned": 2,
        "ok": 2,
        "failed": 0,
        "deferred": 0,
        "not_attempted": 0,
        "skipped": 0,
    }
    assert summary["rejects"] == {"total": 1, "by_reason": {"contact id is not a UUID": 1}}
    assert summary["calls"]["add_tags"] == 2
    assert summary["quota"]["limit"] == 1000
    assert summary["quota"]["remaining"] == 998
    assert summary["plan"]["inputs"][0]["encoding"] == "utf-8"
    rejects = read_results(run_dir / "rejects.csv")
    assert rejects.row(0, named=True) == {
        "contact_id": "nope",
        "tags": "c",
        "source": str(source),
        "line": "4",
        "column": "contact_id",
        "reason": "contact id is not a UUID",
        "error_type": "invalid_input",
        "bulktag_file": "rejects/1",
    }


def test_result_columns_are_the_contract(world: World) -> None:
    """The results and failures columns are those of the README's "Output files" table,
    in order (the contract; README.md, section "Output files")."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    _, run_dir = world.run(str(source))
    assert read_results(run_dir / "results.csv").columns == [
        "contact_id",
        "tags",
        "status",
        "error_type",
        "retryable",
        "http_status",
        "error_code",
        "message",
        "attempts",
        "request_id",
        "verified",
        "pending_tags",
        "finished_at",
        "source",
        "line",
        "bulktag_file",
    ]
    failures = read_results(run_dir / "failures.csv").columns
    assert failures[:2] == ["contact_id", "tags"]
    assert failures[-1] == "bulktag_file"


def test_more_than_100_tags_are_split_in_requests(world: World) -> None:
    """250 tags for one contact: three requests, every tag applied, one results row."""
    cid = world.contact_ids[0]
    source = world.write_csv("in.csv", [(cid, f"t{i:03d}") for i in range(250)])
    code, run_dir = world.run(str(source))
    assert code == ExitCode.OK
    assert world.handled_tag_calls() == 3
    assert world.tags_of(cid) == [f"t{i:03d}" for i in range(250)]
    results = read_results(run_dir / "results.csv")
    assert results.height == 1
    assert results["attempts"].to_list() == ["3"]


def test_org_plan_one_call_per_chunk_and_no_429(make_world: Callable[..., World]) -> None:
    """1,000 contacts on Org (200/min): 1,000 calls, no 429, about 5 minutes of virtual time."""
    world = make_world(contacts=1000, plan="org")
    source = world.write_csv("in.csv", [(cid, "q4") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "org")
    assert code == ExitCode.OK
    assert world.statuses() == {"200": 1000}
    times = [e["t"] for e in world.emulator.log]
    assert sliding_window_max(times) <= 200
    assert 295 <= times[-1] - times[0] <= 305  # the physical limit: 1,000 / 200 a minute
    assert json.loads((run_dir / "summary.json").read_text())["rate"]["rate_limited_429s"] == 0


def test_per_minute_limit_never_exceeded_with_many_workers(
    make_world: Callable[..., World],
) -> None:
    """Starter (10/min), 32 workers: no 60 s window holds more than 10 calls; no 429."""
    world = make_world(contacts=60, plan="starter", per_day=1000)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, _ = world.run(str(source), "--plan", "starter", "--concurrency", "32")
    assert code == ExitCode.OK
    assert world.statuses() == {"200": 60}
    assert sliding_window_max([e["t"] for e in world.emulator.log]) <= 10


def test_dry_run_sends_nothing(world: World) -> None:
    """--dry-run plans and writes the files; no call, exit 0, contacts not_attempted."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    code, run_dir = world.run(str(source), "--dry-run")
    assert code == ExitCode.OK
    assert world.emulator.requests == {}
    results = read_results(run_dir / "results.csv")
    assert results["status"].to_list() == ["not_attempted"]
    assert results["message"].to_list() == ["dry run: nothing was sent"]


def test_header_only_input_is_an_empty_run(world: World) -> None:
    """A file with a header and no rows: nothing to do, exit 0, empty outputs."""
    source = world.write_csv("in.csv", [])
    code, run_dir = world.run(str(source))
    assert code == ExitCode.OK
    assert read_results(run_dir / "results.csv").height == 0


def test_parquet_in_parquet_out(world: World) -> None:
    """Parquet input gives Parquet results and failures, tags as list[str]."""
    ids = world.contact_ids
    path = world.folder / "in.parquet"
    pl.DataFrame(
        {
            "contact_id": [ids[0], "00000000-0000-4000-8000-000000000000"],
            "tags": [["a", "b"], ["c"]],
        }
    ).write_parquet(path)
    code, run_dir = world.run(str(path))
    assert code == ExitCode.FAILURES  # the unknown contact: not_found
    results = pl.read_parquet(run_dir / "results.parquet")
    assert results["tags"].to_list() == [["a", "b"], ["c"]]
    failures = pl.read_parquet(run_dir / "failures.parquet")
    assert failures.select("contact_id", "tags").rows() == [
        ("00000000-0000-4000-8000-000000000000", ["c"])
    ]


def test_format_option_overrides(world: World) -> None:
    """--format ndjson writes NDJSON whatever the input."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    _, run_dir = world.run(str(source), "--format", "ndjson")
    line = json.loads((run_dir / "results.ndjson").read_text().splitlines()[0])
    assert line["status"] == "ok"
    assert line["tags"] == ["a"]


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_text_outputs_are_written_in_slices(
    world: World, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """CSV and NDJSON outputs are written 4 rows at a time: one header, every row once, in
    order; failures filtered slice by slice; rejects too."""
    world.slice_rows = 4
    unknown = [f"00000000-0000-4000-8000-{n:012d}" for n in range(5)]
    ids = [c for pair in zip(world.contact_ids[:5], unknown, strict=True) for c in pair]
    ids += world.contact_ids[5:11]
    rows = [(cid, "=x, y") for cid in ids] + [(f"bad-{n}", "x") for n in range(6)]
    _, run_dir = world.run(str(world.write_csv("in.csv", rows)), "--format", fmt)

    def read(name: str) -> pl.DataFrame:
        path = run_dir / f"{name}.{fmt}"
        if fmt == "csv":
            lines = path.read_text().splitlines()
            assert [n for n, line in enumerate(lines) if line.startswith("contact_id,")] == [0]
            return read_results(path)
        return pl.read_ndjson(path)

    results = read("results")
    assert results["contact_id"].to_list() == ids
    failures = read("failures")
    assert failures["contact_id"].to_list() == unknown
    assert set(failures["error_type"]) == {"not_found"}
    first_tags = "'=x,y" if fmt == "csv" else ["=x", "y"]  # a formula is neutralised in CSV
    assert failures["tags"].to_list() == [first_tags] * 5
    assert read("rejects")["contact_id"].to_list() == [f"bad-{n}" for n in range(6)]


def test_xlsx_in_xlsx_out(world: World) -> None:
    """A spreadsheet in gives spreadsheets out; text stays text, never a formula."""
    import xlsxwriter

    path = world.folder / "in.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["Contact ID", "Tags"])
        sheet.write_string(1, 0, world.contact_ids[0])
        sheet.write_string(1, 1, "=HYPERLINK(1)")  # text that looks like a formula
    code, run_dir = world.run(str(path))
    assert code == ExitCode.OK
    results = pl.read_excel(run_dir / "results.xlsx")
    assert results["contact_id"].to_list() == [world.contact_ids[0]]
    assert results["tags"].to_list() == ["=HYPERLINK(1)"]


def test_progress_bar_when_asked(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """--progress shows tqdm's bar (contacts done, rate) on stderr; --no-progress does not."""
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids[:5]])
    world.run(str(source), "--progress")
    assert "5/5" in capsys.readouterr().err
    world.run(str(source), "--no-progress")
    assert "5/5" not in capsys.readouterr().err


def test_plan_is_logged_first_and_warns_beyond_the_quota(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """-v logs the plan before any call; a plan beyond a day of quota is a warning."""
    world = make_world(contacts=120, plan="starter")
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    world.run(str(source), "--plan", "starter", "-v", "--log-format", "text", "--dry-run")
    err = capsys.readouterr().err
    assert err.index("plan:") < err.index("summary:")
    assert "requests: 120" in err
    assert "120 calls of the starter plan's 100 a day (2 days of quota)" in err
    world.run(str(source), "--plan", "starter", "--log-format", "text")
    assert "more than today's quota allows" in capsys.readouterr().err


def test_a_runs_globs_are_expanded_once(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """The settle check, the landing marks and the reading see one list of files: a glob
    is expanded once (before, three times: a file landing between them was read unmarked,
    and an Excel lock file was warned about three times)."""
    world = make_world(contacts=3)
    (world.folder / "exports").mkdir()
    world.write_csv("exports/a.csv", [(cid, "vip") for cid in world.contact_ids])
    (world.folder / "exports" / "~$a.csv").write_text("lock", encoding="utf-8")
    code, _run_dir = world.run(str(world.folder / "exports" / "*.csv"), "--dry-run")
    assert code == ExitCode.OK
    assert capsys.readouterr().err.count("Excel's lock file") == 1


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_jobs_globs_are_expanded_once(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    """A job's night expands each input pattern once: the files it reads are the files its
    cut-line check notes (before, the check expanded the patterns again: an Excel lock file
    was warned about twice, and a file landing between the two was noted unread)."""
    world = make_world(contacts=3)
    (world.folder / "exports").mkdir()
    world.write_csv("exports/a.csv", [(cid, "vip") for cid in world.contact_ids])
    (world.folder / "exports" / "~$a.csv").write_text("lock", encoding="utf-8")
    job = world.write_job('inputs = ["exports/*.csv"]\n')
    code, _run_dir = world.run_job(job, *(["--dry-run"] if dry_run else []))
    assert code == ExitCode.OK
    assert capsys.readouterr().err.count("Excel's lock file") == 1
    assert world.tags_of(world.contact_ids[0]) == ([] if dry_run else ["vip"])


@pytest.mark.parametrize("precheck", [False, True], ids=["no pre-check", "--skip-existing"])
def test_the_to_do_list_is_made_once(
    world: World, monkeypatch: pytest.MonkeyPatch, precheck: bool
) -> None:
    """What is still to send is joined from the plan and the journal once a session: by
    the run (no pre-check), or by the session after its pre-check took from the plan what
    LeadLex has (before, the runner made it for the session to make it again)."""
    import bulktag.run.session
    import bulktag.run.stages

    made: list[str] = []

    def counted(module: object) -> Callable[..., object]:
        real = bulktag.run.session.unsent

        def unsent(*args: object, **kwargs: object) -> object:
            made.append(getattr(module, "__name__", "?"))
            return real(*args, **kwargs)  # type: ignore[arg-type]

        return unsent

    monkeypatch.setattr(bulktag.run.stages, "unsent", counted(bulktag.run.stages))
    monkeypatch.setattr(bulktag.run.session, "unsent", counted(bulktag.run.session))
    source = world.write_csv("in.csv", [(cid, "vip") for cid in world.contact_ids[:20]])
    code, _run_dir = world.run(str(source), *(["--skip-existing"] if precheck else []))
    assert code == ExitCode.OK
    assert made == (["bulktag.run.session"] if precheck else ["bulktag.run.stages"])
    assert all(world.tags_of(cid) == ["vip"] for cid in world.contact_ids[:20])
