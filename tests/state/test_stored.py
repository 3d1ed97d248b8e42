"""A run folder's ``config.json`` (:class:`bulktag.state.stored.StoredRun`): every setting a
run starts with comes back as it was, an older file reads, and each flag of ``bulktag run``
is decided once: taken from the command line by a resume, or the run's own.

Before, ``config.json`` was written and read by two hand-kept functions in the run folder,
and which flags a resume takes was a third list in the command line: a setting added to
one and not the others came back as its default on a resume, in silence."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from bulktag.cli.commands import build_parser, main
from bulktag.config import DispatchSettings, JobSettings, ReadOptions, RunConfig
from bulktag.errors import ExitCode
from bulktag.runtime import Runtime
from bulktag.state.stored import NEVER_ON_RESUME, RESUME_TAKES, STORED_AS, StoredRun

#: A value other than the default for every setting a run stores.
READ = ReadOptions(
    delimiter=";",
    encoding="cp1252",
    sheet="Contacts",
    header_row=3,
    id_column="Contact ID",
    match="email",
    email_column="E-Mail",
    tags_columns=("Segments", "Labels"),
    tag_separators=",",
    tag_case="lower",
    tag_prefix="seg-",
    static_tags=("nightly",),
    retry_permanent=True,
    settle_seconds=120.0,
    cut_suspects=("/srv/exports/a.csv",),
)
DISPATCH = DispatchSettings(
    concurrency=3,
    rate_per_minute=10.0,
    per_day=100,
    quota_reserve=7,
    timeout=12.0,
    max_attempts=4,
    retry_time=90.0,
    max_wait=120.0,
    backoff_base=0.25,
    backoff_cap=9.0,
    grace=4.0,
    verify_ambiguous=True,
)
JOB = JobSettings(
    name="nightly",
    folder=Path("/var/lib/bulktag/nightly"),
    keep_runs=5,
    ledger=False,
    ledger_days=30.0,
    directory_days=0.5,
    file=Path("/etc/bulktag/nightly.toml"),
)
CONFIG = RunConfig(
    inputs=("/srv/exports/a.csv", "b.xlsx"),
    api_url="https://gw.example/functions/v1/api-gateway",
    key_file=Path("/etc/bulktag/key"),
    key_env="OTHER_KEY",
    plan_name="starter",
    read=READ,
    dispatch=DISPATCH,
    output_format="parquet",
    dry_run=True,
    force=True,
    skip_existing=True,
    job=JOB,
    ca_bundle=Path("/etc/ssl/corp.pem"),
)
#: RunConfig fields a run does not store, and why: where it writes, where the URL came
#: from (said anew), and how this process shows and reports (a resume's own).
NOT_STORED = {"out_dir", "api_url_from", "progress", "resume", "metrics_file", "report"}


def test_every_stored_setting_comes_back_as_it_was() -> None:
    # every field of each section differs from its default here: a field added later and
    # not stored would come back as its default, and fail below
    for value, default in (
        (READ, ReadOptions()),
        (DISPATCH, DispatchSettings()),
        (JOB, JobSettings("j", Path("j"))),
    ):
        same = {f.name for f in fields(value) if getattr(value, f.name) == getattr(default, f.name)}
        assert same == set(), (type(value).__name__, same)
    stored = StoredRun("run-1", 1_795_694_400.0, CONFIG).to_dict()
    back = StoredRun.from_dict(stored, RunConfig(inputs=()))
    assert back.run_id == "run-1"
    assert back.started_at == 1_795_694_400.0
    for f in fields(RunConfig):
        if f.name not in NOT_STORED:
            assert getattr(back.config, f.name) == getattr(CONFIG, f.name), f.name
    assert asdict(back.config.read) == asdict(READ)


def test_a_config_json_of_schema_0_reads() -> None:
    """An earlier bulktag wrote no schema, no job settings, no CA bundle, no cut suspects."""
    old = StoredRun("run-0", 1.0, RunConfig(inputs=("a.csv",))).to_dict()
    for key in ("schema", "job_settings", "ca_bundle", "bulktag"):
        del old[key]
    del old["read"]["cut_suspects"]
    back = StoredRun.from_dict(old, RunConfig(inputs=()))
    assert back.config.inputs == ("a.csv",)
    assert back.config.job is None
    assert back.config.read.cut_suspects == ()


def test_every_flag_of_run_is_taken_by_a_resume_or_stored_by_the_run() -> None:
    """A new flag of ``bulktag run`` must be decided: a resume takes it from the command
    line (RESUME_TAKES), or the run stores it and a resume refuses another value."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    run = commands.choices["run"]
    dests = {a.dest for a in run._actions if a.dest != "help" and not a.dest.startswith("_")}
    stored = StoredRun.flat(StoredRun("r", 0.0, CONFIG).to_dict())
    undecided = {
        d
        for d in dests
        if d not in RESUME_TAKES | {o.dest for o in NEVER_ON_RESUME}
        and STORED_AS.get(d, d) not in stored
    }
    assert undecided == set()
    assert {o.dest for o in NEVER_ON_RESUME} == {"inputs", "job", "out"}


def test_a_resume_refuses_only_values_that_differ() -> None:
    stored = StoredRun("r", 0.0, CONFIG).to_dict()
    same = {"api_url": CONFIG.api_url + "/", "plan": "starter", "concurrency": 3}
    assert StoredRun.differing(same, stored) == []
    other = {"api_url": "https://elsewhere.example", "plan": "org", "concurrency": 3}
    assert StoredRun.differing(other, stored) == ["--api-url", "--plan"]
    assert StoredRun.differing({"verbose": 2, "metrics_file": "m.prom"}, stored) == []


def test_a_stored_setting_out_of_its_range_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``config.json`` edited by hand to a value no flag allows (``concurrency = 0``)
    is refused as the flag's value would be, naming the file (exit 75, a damaged file);
    before, the settings' own checks (``DispatchSettings.__post_init__``, a second copy
    of the ranges that allowed a timeout of 0) decided."""
    run_dir = tmp_path / "run"
    (run_dir / ".bulktag").mkdir(parents=True)
    stored = StoredRun("r", 0.0, CONFIG).to_dict()
    stored["dispatch"]["concurrency"] = 0
    stored["dispatch"]["timeout"] = 0.0
    (run_dir / ".bulktag" / "config.json").write_text(json.dumps(stored), encoding="utf-8")
    assert StoredRun.problems(stored) == [
        "concurrency 0 must be between 1 and 256",
        "timeout 0.0 must be more than 0",
    ]
    code = main(["run", "--resume", str(run_dir)], runtime=Runtime(environ={}))
    err = capsys.readouterr().err
    assert code == ExitCode.WORK_LEFT
    assert f"{run_dir}/.bulktag/config.json" in err
    assert "concurrency 0 must be between 1 and 256" in err
    assert "Traceback" not in err
