"""Job files: every option used by a real run; a bad file is one line and exit 78."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from bulktag.state.job import JobState
from tests.constants import KEY
from tests.world import World, read_results

EVERY_OPTION = """
name = "everything"
inputs = ["exports/*.csv", "missing-*.csv"]
keep_runs = 2
format = "parquet"
metrics_file = "metrics/bulktag.prom"
dry_run = false

[read]
delimiter = ";"
encoding = "cp1252"
id_column = "Kontakt"
tags_columns = ["Seg A", "Seg B"]
tag_separators = "|"

[tags]
case = "lower"
prefix = "seg-"
add = ["Nightly"]

[api]
key_env = "MY_LEADLEX_KEY"

[limits]
plan = "org"
rate_per_minute = 120
quota_reserve = 5
concurrency = 4
timeout = 20
max_attempts = 3
retry_time = 60
max_wait = 300
grace = 5

[ledger]
enabled = true
days = 30
"""


def test_a_job_file_with_every_option(world: World) -> None:
    """Every key of a job file takes effect in a real run of the job."""
    ids = world.contact_ids
    exports = world.folder / "exports"
    exports.mkdir()
    (world.folder / "metrics").mkdir()  # node_exporter's folder: bulktag does not create it
    (exports / "a.csv").write_bytes(
        "Kontakt;Seg A;Seg B;Other\r\n".encode("cp1252")
        + f"{ids[0]};VIP|Région;Gold;x\r\n{ids[1]};Silver;;y\r\n".encode("cp1252")
    )
    job = world.write_job(EVERY_OPTION)
    world.environ["MY_LEADLEX_KEY"] = world.environ.pop("LEADLEX_API_KEY")
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert world.tags_of(ids[0]) == ["seg-vip", "seg-région", "seg-gold", "nightly"]
    assert world.tags_of(ids[1]) == ["seg-silver", "nightly"]
    results = pl.read_parquet(run_dir / "results.parquet")  # format = "parquet"
    assert results.height == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["job"] == "everything"
    assert summary["rate"]["configured_per_minute"] == 120
    assert summary["plan"]["inputs"][0]["encoding"] == "cp1252"
    assert (world.folder / "metrics" / "bulktag.prom").read_text().count('job="everything"') > 5
    for _ in range(3):  # keep_runs = 2
        world.run_job(job)
    assert len(list((world.folder / "job" / "runs").iterdir())) == 2


def test_flags_override_the_job_file(world: World) -> None:
    """--dry-run and --plan on the command line win over the job file."""
    world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    job = world.write_job('inputs = ["in.csv"]\n[limits]\nplan = "org"\n')
    code, run_dir = world.run_job(job, "--dry-run", "--plan", "starter")
    assert code == ExitCode.OK
    assert run_dir is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["dry_run"] is True
    assert summary["rate"]["configured_per_minute"] == 10
    assert world.emulator.requests == {}


def test_inputs_matching_nothing_with_nothing_carried_over_is_75(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job whose export has not landed, and nothing left from before: exit 75 (the next
    night may find it), nothing sent."""
    job = world.write_job('inputs = ["exports/*.csv"]\n')
    code, _ = world.run_job(job)
    assert code == ExitCode.WORK_LEFT
    err = capsys.readouterr().err
    assert "no input yet" in err
    assert "has the export landed?" in err
    assert world.emulator.statistics()["requests"] == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'inputs = ["a.csv"]\nconcurency = 3\n',
            "unknown key 'concurency'; did you mean 'concurrency' in [limits]?",
        ),
        ('inputs = ["a.csv"]\nplan = "org"\n', "'plan' belongs in [limits]: move it there"),
        (
            'inputs = ["a.csv"]\n[limits]\nplan = "gold"\n',
            "must be one of starter, pro, org, unmetered",
        ),
        ('inputs = ["a.csv"]\n[limits]\nconcurrency = "8"\n', "must be a whole number, not str"),
        ('inputs = ["a.csv"]\n[limits]\nquota_reserve = -1\n', "cannot be negative"),
        (
            'inputs = ["a.csv"]\n[limit]\nplan = "pro"\n',
            "unknown table [limit]; did you mean [limits]?",
        ),
        ("inputs = [\n", "not valid TOML"),
        ("[read]\ndelimiter = ';'\n", "'inputs' is required"),
        ('inputs = ["a.csv"]\n[ledger]\nenabled = "yes"\n', "must be true or false"),
        ('inputs = ["a.csv"]\nkeep_runs = 0\n', "keep_runs must be at least 1"),
        ('inputs = "a.csv"\n', "inputs must be a list"),
    ],
)
def test_a_bad_job_file_is_one_line_and_78(
    world: World, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    """Typos, wrong types, bad values, broken TOML: exit 78 with the file and the problem."""
    job = world.write_job(text)
    code, _ = world.run_job(job)
    err = capsys.readouterr().err
    assert code == ExitCode.CONFIG
    assert message in err
    assert str(job) in err
    assert len(err.strip().splitlines()) == 1
    assert main(["check-job", str(job)]) == ExitCode.CONFIG
    assert world.emulator.requests == {}


def test_check_job_describes_a_good_file(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check-job: exit 0 and what a run would use, the URL and the key with their sources."""
    monkeypatch.setenv("LEADLEX_API_KEY", KEY)
    monkeypatch.delenv("LEADLEX_API_URL", raising=False)
    world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    job = world.write_job('inputs = ["in.csv"]\n[limits]\nplan = "starter"\nquota_reserve = 5\n')
    assert main(["check-job", str(job)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "plan starter: 10.0 calls a minute, 100 a day, reserve 5" in out
    assert str(world.folder / "in.csv") in out
    assert "API: https://data.leadlex.com/functions/v1/api-gateway (LeadLex's, the default)" in out
    assert "key: the key in $LEADLEX_API_KEY" in out
    assert KEY not in out


def _on_this_machine(job: Path, root: Path) -> Path:
    """A copy of a shipped job file whose absolute paths point below ``root``, made."""
    text = job.read_text(encoding="utf-8")
    for absolute in sorted(set(re.findall(r'"(/[^"]+)"', text))):
        local = root / absolute.lstrip("/")
        folder = local if "." not in local.name else local.parent
        folder.mkdir(parents=True, exist_ok=True)
        text = text.replace(f'"{absolute}"', f'"{local}"')
    copy = root / "jobs" / job.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text, encoding="utf-8")
    return copy


def test_shipped_job_files_are_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """jobs/*.toml pass every check a run makes (their folders made, a key in the
    environment); their inputs need not exist on this machine."""
    monkeypatch.setenv("LEADLEX_API_KEY", KEY)
    monkeypatch.delenv("LEADLEX_API_URL", raising=False)
    jobs = sorted((Path(__file__).resolve().parents[2] / "jobs").glob("*.toml"))
    assert len(jobs) >= 2
    for job in jobs:
        assert main(["check-job", str(_on_this_machine(job, tmp_path))]) == ExitCode.OK, job
        assert "usable: every check a run makes" in capsys.readouterr().out


def test_check_job_checks_what_a_run_checks(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check-job fails where the run would, before its first call: a metrics file whose
    folder is missing, no key (the run would exit 78 on each; chain 10 of issue 22)."""
    world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    job = world.write_job('inputs = ["in.csv"]\nmetrics_file = "nowhere/bulktag.prom"\n')
    monkeypatch.setenv("LEADLEX_API_KEY", KEY)
    assert main(["check-job", str(job)]) == ExitCode.CONFIG
    assert "nowhere does not exist" in capsys.readouterr().err
    code, _ = world.run_job(job)
    assert code == ExitCode.CONFIG  # the run agrees
    assert world.emulator.requests == {}
    job = world.write_job('inputs = ["in.csv"]\n')
    monkeypatch.delenv("LEADLEX_API_KEY")
    assert main(["check-job", str(job)]) == ExitCode.CONFIG
    assert "no API key: set LEADLEX_API_KEY" in capsys.readouterr().err


def test_job_key_comes_from_the_named_variable_only(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """key_env names the variable; without it set, exit 78 naming that variable."""
    world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    job = world.write_job('inputs = ["in.csv"]\n[api]\nkey_env = "OTHER_KEY"\n')
    code, _ = world.run_job(job)
    assert code == ExitCode.CONFIG
    assert "set OTHER_KEY" in capsys.readouterr().err
    world.environ["OTHER_KEY"] = KEY
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert read_results(run_dir / "results.csv")["status"].to_list() == ["ok"]


def test_a_job_keeps_30_run_folders_unless_it_says(world: World) -> None:
    """keep_runs defaults to 30 (a month of nights), not every folder for ever: after 32
    nights of a job that names no keep_runs, the 30 newest folders are left; each night is
    still a row of the history."""
    world.write_csv("in.csv", [(world.contact_ids[0], "a")])
    job = world.write_job('inputs = ["in.csv"]\n[ledger]\nenabled = false\n')
    for _ in range(32):
        code, _ = world.run_job(job)
        assert code == ExitCode.OK
        world.next_night()
    runs = sorted((world.folder / "job" / "runs").iterdir())
    assert len(runs) == 30
    with JobState(world.folder / "job", read_only=True) as state:
        assert len(state.nights()) == 32


def test_ledger_days_checks_old_pairs_with_the_crm_instead_of_sending_them(
    make_world: Callable[..., World],
) -> None:
    """[ledger] days = 90, on a faked clock: day 89 sends nothing; day 91 sends nothing
    either (before: all 250 contacts again): the old pairs are checked with the export and
    found in the CRM. A tag removed in the CRM by hand is sent again after the window, and
    the ledger keeps no pair older than it."""
    world = make_world(contacts=250, plan="org")
    ids = world.contact_ids
    world.write_csv("in.csv", [(c, "seg") for c in ids])
    job = world.write_job('inputs = ["in.csv"]\n[limits]\nplan = "org"\n[ledger]\ndays = 90\n')

    def night(days: float) -> dict[str, int]:
        world.clock.jump(days * 86_400)
        code, run_dir = world.run_job(job)
        assert code == ExitCode.OK
        assert run_dir is not None
        calls: dict[str, int] = json.loads((run_dir / "summary.json").read_text())["calls"]
        return calls

    assert night(0)["add_tags"] == 250
    assert night(89)["add_tags"] == 0  # the ledger: no call at all
    on_day_91 = night(2)
    assert on_day_91["add_tags"] == 0
    assert 1 <= on_day_91.get("export", 0) <= 2  # one export page said every pair is there
    world.emulator.contacts[ids[0]].tags.remove("seg")  # a person removed it in the CRM
    assert night(91)["add_tags"] == 1
    assert world.tags_of(ids[0]) == ["seg"]
    with JobState(world.folder / "job", read_only=True) as state:
        horizon = world.runtime().clock.wall() - 90 * 86_400
        assert (state.applied()["applied_at"] >= horizon).all()
        assert state.ledger_size() == 250


def test_a_night_asks_the_ledger_only_about_its_plans_contacts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: each night read every pair the job ever applied (2.7 GiB at 10M pairs) to
    join it with the plan. Now the ledger is looked up by the plan's contacts: reading it
    whole fails this night, which still skips what was applied."""
    ids = world.contact_ids
    world.write_csv("in.csv", [(c, "seg") for c in ids[:5]])
    job = world.write_job('inputs = ["in.csv"]\n')
    assert world.run_job(job)[0] == ExitCode.OK
    asked: list[int] = []
    looked_up = JobState.applied_to

    def counted(state: JobState, contacts: pl.Series, since: float | None = None) -> pl.DataFrame:
        asked.append(contacts.len())
        return looked_up(state, contacts, since)

    def whole(*_: object, **__: object) -> None:
        raise AssertionError("the whole ledger was read")

    monkeypatch.setattr(JobState, "applied", whole)
    monkeypatch.setattr(JobState, "applied_to", counted)
    world.write_csv("in.csv", [(c, "seg") for c in ids[:6]])
    world.next_night()
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert asked == [6]
    assert json.loads((run_dir / "summary.json").read_text())["calls"]["add_tags"] == 1
