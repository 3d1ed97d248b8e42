"""The option spec (the package bulktag/spec/: reading.py and running.py, with the
:class:`Option` of bulktag/option.py) is the one home of every setting: the command line,
job files, their checks, the help's defaults and what a resume takes all follow it."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bulktag.cli.commands import build_parser
from bulktag.cli.options import resolve
from bulktag.config import DispatchSettings, RunConfig
from bulktag.errors import ConfigError
from bulktag.jobfile import load_job
from bulktag.option import Option
from bulktag.spec import BY_DEST, JOB_TABLES, OPTIONS, STORED_AS

ROOT = Path(__file__).resolve().parents[2]
#: Options of one command that are no run setting (validate's output).
OWN = {"validate": {"json", "rejects"}, "run": set[str]()}
NUMBERS = [o for o in OPTIONS if o.kind in ("whole", "number")]


def _parser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    chosen: argparse.ArgumentParser = commands.choices[command]
    return chosen


@pytest.mark.parametrize("command", ["run", "validate"])
def test_the_command_line_is_the_spec(command: str) -> None:
    """Every option of run and validate comes from the spec, and every flag of the spec
    for the command is on it: a flag added by hand beside the spec fails here."""
    actions = [
        a
        for a in _parser(command)._actions
        if a.dest not in ("help", "handler") and not a.dest.startswith("_")
    ]
    dests = {a.dest for a in actions} - OWN[command]
    assert dests <= set(BY_DEST)
    wanted = {o.dest for o in OPTIONS if command in o.commands and o.flag} | {"inputs"}
    assert dests == wanted
    for action in actions:
        option = BY_DEST.get(action.dest)
        if option is not None and option.flag is not None:
            assert option.flag in action.option_strings
            assert action.help == option.help_text()


def test_job_files_take_the_specs_keys() -> None:
    """The job file's tables and keys are the spec's: each key of the spec loads."""
    assert set(JOB_TABLES) == {"", "read", "tags", "api", "limits", "ledger"}
    for option in OPTIONS:
        if option.job is None:
            continue
        assert JOB_TABLES[option.job[0]][option.job[1]] is option


def test_the_shipped_job_file_names_every_key() -> None:
    """jobs/nightly-export.toml is the job file's documentation: every key is in it, set or
    in a comment, in its table."""
    text = (ROOT / "jobs" / "nightly-export.toml").read_text(encoding="utf-8")
    tables = re.split(r"^\[(\w+)\]$", text, flags=re.M)
    by_table = {"": tables[0], **dict(zip(tables[1::2], tables[2::2], strict=True))}
    missing = [
        option.where
        for option in OPTIONS
        if option.job is not None
        and not re.search(rf"^#? ?{option.job[1]} = ", by_table.get(option.job[0], ""), re.M)
    ]
    assert missing == []


def _job(tmp_path: Path, option: Option, value: object) -> Path:
    table, key = option.job or ("", "")
    path = tmp_path / "job.toml"
    text = 'inputs = ["a.csv"]\nout = "o"\n'
    literal = (
        repr(value).lower() if isinstance(value, float) and not math.isfinite(value) else value
    )
    text += f"{key} = {literal}\n" if not table else f"[{table}]\n{key} = {literal}\n"
    path.write_text(text, encoding="utf-8")
    return path


def _flag_takes(option: Option, text: str) -> bool:
    try:
        option.parse(text)
    except ValueError:
        return False
    return True


def _job_takes(tmp_path: Path, option: Option, value: float) -> bool:
    try:
        load_job(_job(tmp_path, option, value))
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("option", [o for o in NUMBERS if o.flag and o.job], ids=lambda o: o.dest)
@given(value=st.one_of(st.integers(-300, 100_000), st.floats(allow_nan=False)))
@example(value=0)
@example(value=256)
@example(value=257)
@example(value=math.inf)
def test_a_flag_and_its_job_key_allow_the_same_numbers(
    tmp_path_factory: pytest.TempPathFactory, option: Option, value: float
) -> None:
    """--concurrency 0 and ``concurrency = 0`` are both refused, ``max_wait = inf`` and
    ``--max-wait inf`` too: one range, one check."""
    if option.kind == "whole" and not isinstance(value, int):
        return  # TOML has no whole number 2.5; the type check refuses it
    tmp = tmp_path_factory.mktemp("job")
    text = repr(value) if isinstance(value, float) else str(value)
    assert _flag_takes(option, text) == _job_takes(tmp, option, value)


#: Options that are no setting of a run: how bulktag speaks, and what names the run.
NOT_A_SETTING = {"verbose", "quiet", "log_format", "inputs", "job", "resume", "out"}


def _setting(config: RunConfig, option: Option) -> object:
    """The value a run's settings hold for ``option`` (under its config.json name)."""
    name = STORED_AS.get(option.dest, option.dest)
    for holder in (config.read, config.dispatch, config.job, config):
        if holder is not None and name in {f.name for f in fields(holder)}:
            return getattr(holder, name)
    raise AssertionError(f"{option.dest}: no setting of a run holds it")


@pytest.mark.parametrize("in_a_job", [False, True], ids=["by hand", "a job"])
def test_the_help_shows_the_defaults_a_run_uses(tmp_path: Path, in_a_job: bool) -> None:
    """The default the help names is the one a run gets when nothing sets it, by hand
    and in a job (whose own defaults, ``verify_ambiguous`` on, are the spec's too): the
    spec's default is the settings' own, so a default changed in one place changes both.
    Before, ``[ledger] days`` said 0 and a job got None, ``directory_days`` was spelled
    1 and 1.0, and ``verify_ambiguous`` was on in jobs by a line of the option resolver."""
    job = None
    if in_a_job:
        path = tmp_path / "job.toml"
        path.write_text('inputs = ["a.csv"]\nout = "o"\n', encoding="utf-8")
        job = load_job(path)
    config = resolve(argparse.Namespace(inputs=[] if job else ["a.csv"]), {}, job)
    checked = 0
    for option in OPTIONS:
        if option.dest in NOT_A_SETTING or option.default_for(in_a_job) is None:
            continue
        if option.dest in {"ledger", "keep_runs", "directory_days", "ledger_days"} and not job:
            continue  # a job's settings: a run by hand has none
        assert _setting(config, option) == option.default_for(in_a_job), option.dest
        checked += 1
    assert checked >= 15
    assert (
        DispatchSettings.for_plan(config.plan_name or "pro").concurrency
        == BY_DEST["concurrency"].default
    )
    text = _parser("run").format_help().replace("\n", " ")
    assert "(default 8)" in text
    assert re.search(r"\(default off; +on in job files\)", text)


def test_a_job_key_has_its_flags_default(tmp_path: Path) -> None:
    """A job file that leaves a key out gets the flag's default; one that sets it, its
    value, unless the flag is given."""
    option = BY_DEST["concurrency"]
    job = load_job(_job(tmp_path, option, 3))
    assert resolve(argparse.Namespace(inputs=[]), {}, job).dispatch.concurrency == 3
    flagged = argparse.Namespace(inputs=[], concurrency=5)
    assert resolve(flagged, {}, job).dispatch.concurrency == 5
    plain = load_job(_job(tmp_path, BY_DEST["grace"], 1))
    assert resolve(argparse.Namespace(inputs=[]), {}, plain).dispatch.concurrency == 8
