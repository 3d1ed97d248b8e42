"""Every mistake gets a message that fixes it, and no mistake costs the key, a file or quota.

Each test makes one of the usual mistakes through the real command and checks the exit
code, the words of the one line that answers it, and, for the unsafe ones, that the key
appears nowhere, the user's file is untouched, no call was made and nothing crashed.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from tests.constants import KEY
from tests.helpers import bulktag_env, contact_ids, emulator_env, run_bulktag, running_emulator
from tests.world import World, read_results

pytestmark = pytest.mark.usefixtures("_in_tmp")


@pytest.fixture
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own folder (runs/ would land there)."""
    monkeypatch.chdir(tmp_path)


def _everything_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _stderr(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out + err


# -- 1. the key never leaks --------------------------------------------------------------

SUB_COMMANDS = [
    ["run", "in.csv"],
    ["validate", "in.csv"],
    ["check-job", "job.toml"],
    ["demo"],
    ["emulator"],
]
TRIES = [
    ["--api-key", KEY],
    [f"--api-key={KEY}"],
    ["--token", KEY],
    ["--key", KEY],
    ["--api-k", KEY],  # a prefix of --api-key-file: never matched
    ["--api-key-fil", KEY],
    [KEY],  # as an input
]


@pytest.mark.parametrize(
    ("command", "attempt"),
    [
        (command, attempt)
        for command in SUB_COMMANDS
        for attempt in TRIES
        # the emulator's own --key names the keys it accepts
        if not (command[0] == "emulator" and attempt[0] == "--key")
    ],
    ids=lambda value: value[0].split("=")[0],
)
def test_a_key_on_the_command_line_is_refused_and_never_repeated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], attempt: list[str]
) -> None:
    """Every sub-command, every way to type a key: refused (2), the key in no output and
    in no file; no run folder, no config.json."""
    (tmp_path / "in.csv").write_text("contact_id,tags\n")
    (tmp_path / "job.toml").write_text('inputs = ["in.csv"]\nout = "job"\n')
    before = set(tmp_path.rglob("*"))
    code, said = _stderr(capsys, [*command, *attempt])
    assert code in (ExitCode.USAGE, ExitCode.INPUT_UNUSABLE, ExitCode.CONFIG)
    assert KEY not in said
    assert "Traceback" not in said
    assert set(tmp_path.rglob("*")) == before
    assert KEY.encode() not in _everything_under(tmp_path)
    if attempt[0].split("=")[0] in ("--api-key", "--token", "--key"):
        assert "keys never come from the command line" in said
        assert "LEADLEX_API_KEY" in said


def test_the_key_in_the_environment_is_never_repeated_either(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LEADLEX_API_KEY typed as an input by mistake: the error does not repeat it."""
    monkeypatch.setenv("LEADLEX_API_KEY", "s3cret-not-shaped-like-a-key")
    code, said = _stderr(capsys, ["validate", "s3cret-not-shaped-like-a-key"])
    assert code == ExitCode.INPUT_UNUSABLE
    assert "s3cret-not-shaped-like-a-key" not in said
    assert "***" in said


# -- 2. a user's file is never overwritten ---------------------------------------------------


def test_out_naming_a_folder_of_other_files_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out at a folder holding someone's results.csv: refused (2), the file untouched,
    no call made."""
    theirs = world.folder / "theirs"
    theirs.mkdir()
    (theirs / "results.csv").write_text("mine, do not touch\n")
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    code, _ = world.run(str(source), out="theirs")
    assert code == ExitCode.USAGE
    assert (theirs / "results.csv").read_text() == "mine, do not touch\n"
    assert "holds other files (results.csv)" in capsys.readouterr().err
    assert world.handled_tag_calls() == 0
    assert sorted(p.name for p in theirs.iterdir()) == ["results.csv"]


# -- 3. a failures file sent again ----------------------------------------------------------


def _failing_run(world: World) -> Path:
    """A run with 3 contacts the CRM does not know (permanent) and 2 ok."""
    unknown = ["6f1c1d5e-1c2b-4c8e-9a7e-0a1b2c3d4e5f", "7a2b3c4d-1c2b-4c8e-9a7e-0a1b2c3d4e5f"]
    unknown.append("8b3c4d5e-1c2b-4c8e-9a7e-0a1b2c3d4e5f")
    rows = [(cid, "x") for cid in [*world.contact_ids[:2], *unknown]]
    code, run_dir = world.run(str(world.write_csv("in.csv", rows)))
    assert code == ExitCode.FAILURES
    return run_dir


def test_permanent_failures_are_not_sent_again(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-running a failures file of not_found rows: none is sent again (exit 1), and the
    plan says how many and why; --retry-permanent sends them."""
    failures = _failing_run(world) / "failures.csv"
    capsys.readouterr()
    calls = world.handled_tag_calls()
    code, run_dir = world.run(str(failures), "-v", "--log-format", "text")
    assert code == ExitCode.FAILURES
    assert world.handled_tag_calls() == calls
    said = capsys.readouterr().err
    assert "3 rows of a failures file failed for good in the run that wrote it" in said
    assert "(3 not_found)" in said
    rejects = read_results(run_dir / "rejects.csv")
    assert set(rejects["column"]) == {"retryable"}
    assert all(r.startswith("not_found: a permanent failure") for r in rejects["reason"])
    code, _ = world.run(str(failures), "--retry-permanent")
    assert code == ExitCode.FAILURES
    assert world.handled_tag_calls() == calls + 3


def test_a_failures_file_sent_twice_is_warned_about(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second run of the same failures file warns, naming the first re-run's own
    failures file."""
    failures = _failing_run(world) / "failures.csv"
    world.run(str(failures), "--retry-permanent", out="again-1")
    capsys.readouterr()
    world.run(str(failures), "--retry-permanent", out="again-2")
    said = capsys.readouterr().err
    assert "was already sent by the run" in said
    assert str(world.folder / "again-1" / "failures.csv") in said


# -- 4. no home folder, no metrics folder ---------------------------------------------------


def test_a_quota_store_that_cannot_be_created(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """BULKTAG_STATE_DIR naming a file: exit 78 with the path, the reason and the variable
    to set; no traceback, no call."""
    blocker = world.folder / "not-a-folder"
    blocker.write_text("a file")
    world.environ["BULKTAG_STATE_DIR"] = str(blocker)
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    code, _ = world.run(str(source))
    said = capsys.readouterr().err
    assert code == ExitCode.CONFIG
    assert str(blocker / "quota.sqlite") in said
    assert "set BULKTAG_STATE_DIR" in said
    assert "Traceback" not in said
    assert world.handled_tag_calls() == 0


def test_a_metrics_file_in_a_missing_folder_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """--metrics-file in a folder that does not exist: exit 78 before any call; the folder
    is not created."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    missing = world.folder / "node-exporter" / "bulktag.prom"
    code, _ = world.run(str(source), "--metrics-file", str(missing))
    assert code == ExitCode.CONFIG
    assert f"the folder {missing.parent} does not exist" in capsys.readouterr().err
    assert not missing.parent.exists()
    assert world.handled_tag_calls() == 0


# -- 5. values checked before anything runs -------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--timeout", "0", "must be more than 0"),
        ("--concurrency", "0", "must be between 1 and 256"),
        ("--concurrency", "1000", "must be between 1 and 256"),
        ("--concurrency", "eight", "'eight' is not a whole number"),
        ("--rate-per-minute", "0", "must be more than 0"),
        ("--max-attempts", "0", "must be at least 1"),
        ("--retry-time", "-5", "must be more than 0"),
        ("--max-wait", "-5", "cannot be negative"),
        ("--max-wait", "inf", "must be a finite number"),
        ("--quota-reserve", "1000", "not below the pro plan's daily quota (1,000)"),
        ("--plan", "enterprise", "invalid choice: 'enterprise'"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_flag(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, words: str
) -> None:
    """Each bad value: exit 2 before anything runs, the flag and the problem named."""
    Path("in.csv").write_text("contact_id,tags\n")
    code, said = _stderr(capsys, ["run", "in.csv", flag, value, "--log-format", "text"])
    assert code == ExitCode.USAGE
    assert flag in said
    assert words in said
    assert not Path("runs").exists()


def test_a_bad_value_in_a_job_file_names_its_key(capsys: pytest.CaptureFixture[str]) -> None:
    """quota_reserve as large as the day: exit 78 naming the job file and the key."""
    Path("job.toml").write_text(
        'inputs = ["in.csv"]\nout = "job"\n[limits]\nplan = "starter"\nquota_reserve = 100\n'
    )
    code, said = _stderr(capsys, ["check-job", "job.toml"])
    assert code == ExitCode.CONFIG
    assert "job.toml: [limits] quota_reserve" in said
    assert "starter plan's daily quota (100)" in said


# -- 6. did you mean ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "in.csv", "--concurency", "3"], "--concurency: did you mean --concurrency?"),
        (["run", "in.csv", "--tag", "vip"], "--tag: did you mean --add-tag?"),
        (["--plan", "org", "run", "in.csv"], "--plan goes after the sub-command: bulktag run"),
        (["run", "in.csv", "--id-column", "contact_di"], "did you mean 'contact_id'?"),
    ],
)
def test_a_typo_gets_the_closest_names(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    """Unknown flags, --tag, a global-looking option, a column name: the fix is named."""
    Path("in.csv").write_text("contact_id,tags\n123e4567-e89b-12d3-a456-426614174000,x\n")
    code, said = _stderr(capsys, [*argv, "--dry-run"] if argv[0] == "run" else argv)
    assert code in (ExitCode.USAGE, ExitCode.INPUT_UNUSABLE)
    assert words in said


# -- 7. nothing silently ignored ------------------------------------------------------------


def test_resume_with_other_settings_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """--resume RUN_DIR --concurrency 2: refused (they would be ignored), with what to do."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    _, run_dir = world.run(str(source))
    capsys.readouterr()
    code = main(["run", "--resume", str(run_dir), "--concurrency", "2", "--api-url", "x"])
    said = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "--api-url, --concurrency would be ignored" in said
    assert f"bulktag run {run_dir}/failures.csv" in said


def test_job_with_out_is_refused(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """--job FILE --out DIR: refused, since a job's runs go in its own folder."""
    job = world.write_job('inputs = ["in.csv"]\n')
    code = main(["run", "--job", str(job), "--out", "elsewhere"])
    assert code == ExitCode.USAGE
    assert "a job's runs go in its own folder" in capsys.readouterr().err


def test_a_start_that_fails_before_sending_leaves_no_run_folder(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad input with --out DIR: exit 65 and no DIR left; the corrected command, with the
    same --out, runs (it is not refused, and --resume would not replay the mistake)."""
    broken = world.folder / "broken.csv"
    broken.write_text("name,tags\nAnn Lee,x\n")
    code, run_dir = world.run(str(broken), out="today")
    assert code == ExitCode.INPUT_UNUSABLE
    assert not run_dir.exists()
    fixed = world.write_csv("fixed.csv", [(world.contact_ids[0], "x")])
    code, run_dir = world.run(str(fixed), out="today")
    assert code == ExitCode.OK
    assert (run_dir / "results.csv").exists()


def test_a_job_start_that_fails_is_not_resumed_next_night(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job whose input is unusable: exit 65; fixed the next night, the job runs it, not
    the broken start again."""
    (world.folder / "in.csv").write_text("name,tags\nAnn Lee,x\n")
    job = world.write_job('inputs = ["in.csv"]\n')
    code, _ = world.run_job(job)
    assert code == ExitCode.INPUT_UNUSABLE
    world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    world.next_night()
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert len(list((world.folder / "job" / "runs").iterdir())) == 1


# -- 8. what the data suggests --------------------------------------------------------------


def test_a_header_only_file_says_nothing_to_send(capsys: pytest.CaptureFixture[str]) -> None:
    """A quiet night's export: exit 0, and it says there was nothing to send."""
    Path("in.csv").write_text("contact_id,tags\n")
    code, said = _stderr(capsys, ["validate", "in.csv"])
    assert code == ExitCode.OK
    assert "no data rows in in.csv: nothing to send from it" in said


def test_an_empty_tags_column_asks_whether_it_is_the_right_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every row's tags cell empty: the message asks whether the tags are in another
    column and lists the columns."""
    ids = ["123e4567-e89b-12d3-a456-426614174000", "223e4567-e89b-12d3-a456-426614174000"]
    Path("in.csv").write_text("contact_id,tags,segment\n" + "".join(f"{i},,vip\n" for i in ids))
    code, said = _stderr(capsys, ["validate", "in.csv"])
    assert code == ExitCode.FAILURES
    assert "every row's tags column ('tags') is empty: is the tags column another one?" in said
    assert "'segment'" in said


def test_every_contact_not_found_suggests_another_workspace(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every contact not_found: the summary asks whether the key is another workspace's."""
    world = make_world(contacts=5)
    elsewhere = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"other-crm/{n}")) for n in range(3)]
    source = world.write_csv("in.csv", [(cid, "x") for cid in elsewhere])
    code, _ = world.run(str(source), "-v", "--log-format", "text")
    assert code == ExitCode.FAILURES
    assert "is the key in $LEADLEX_API_KEY for another workspace?" in capsys.readouterr().err


def test_a_rejected_key_says_where_it_came_from(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 names the key's source; a key given with 'Bearer ' is told to drop the word."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    world.environ["LEADLEX_API_KEY"] = "wbk_not_this_workspace"
    code, _ = world.run(str(source), "--log-format", "text")
    said = capsys.readouterr().err
    assert code == ExitCode.KEY_REJECTED
    assert "LeadLex refused the key in $LEADLEX_API_KEY (invalid_key" in said
    assert "wbk_not_this_workspace" not in said
    world.environ["LEADLEX_API_KEY"] = f"Bearer {KEY}"
    code, _ = world.run(str(source), "--log-format", "text")
    said = capsys.readouterr().err
    assert code == ExitCode.CONFIG
    assert "the key in $LEADLEX_API_KEY starts with 'Bearer ': give the key alone" in said
    assert KEY not in said


def test_a_rejected_key_from_a_key_file_names_the_file(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 for the key of --api-key-file names that file, and never repeats the key."""
    rejected = "wbk_from_the_key_file_not_this_workspace"
    key_file = tmp_path / "leadlex.key"
    key_file.write_text(f"{rejected}\n")
    key_file.chmod(0o600)
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    code, run_dir = world.run(str(source), "--api-key-file", str(key_file), "--log-format", "text")
    out, err = capsys.readouterr()
    assert code == ExitCode.KEY_REJECTED
    assert f"LeadLex refused the key in the file {key_file} (invalid_key" in err
    assert "$LEADLEX_API_KEY" not in err  # the valid key there was not the one sent
    for secret in (rejected, KEY):
        assert secret not in out + err
        assert secret.encode() not in _everything_under(run_dir)


# -- 10. the next command after 75; JSON usage errors --------------------------------------


def test_exit_75_prints_the_next_command(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """The quota runs out: the summary ends with the command that sends the rest."""
    world = make_world(contacts=12, plan="starter")
    world.workspace_used(95)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    code, run_dir = world.run(str(source), "--plan", "starter", "--log-format", "text")
    assert code == ExitCode.WORK_LEFT
    assert f"next: bulktag run --resume {run_dir}" in capsys.readouterr().err


def test_usage_errors_are_json_lines_in_json_mode(capsys: pytest.CaptureFixture[str]) -> None:
    """--log-format json: a usage error is one JSON object with its exit code."""
    code = main(["run", "in.csv", "--concurrency", "0", "--log-format", "json"])
    line = capsys.readouterr().err.strip()
    assert code == ExitCode.USAGE
    record = json.loads(line)
    assert record["level"] == "error"
    assert record["exit_code"] == 2
    assert "--concurrency" in record["message"]


def test_a_clean_exit_leaves_a_lock_that_reads_free(tmp_path: Path) -> None:
    """After a clean run, the job's lock says it was released (not a crash to take over)."""
    from bulktag.state.lock import FolderLock

    with FolderLock(tmp_path):
        pass
    assert (tmp_path / ".lock").read_text().startswith("free since ")
    assert str(os.getpid()) in (tmp_path / ".lock").read_text()


def test_a_run_after_a_clean_exit_takes_over_no_lock(tmp_path: Path) -> None:
    """A job run twice: after the first's clean exit, the second speaks of no lock taken over."""
    with running_emulator("--generate", "3", "--plan", "unmetered") as ready:
        ids = contact_ids(ready, 3)
        (tmp_path / "in.csv").write_text("contact_id,tags\n" + "".join(f"{i},x\n" for i in ids))
        job = 'inputs = ["in.csv"]\nout = "job"\n[limits]\nplan = "unmetered"\n'
        (tmp_path / "job.toml").write_text(job)
        env = emulator_env(ready)
        said = []
        for _ in range(2):  # two processes: the second finds the first's pid in the lock file
            done = run_bulktag(["run", "--job", "job.toml", "-v"], env, cwd=tmp_path, timeout=60)
            assert done.returncode == ExitCode.OK, done.stderr
            said.append(done.stderr)
    for stderr in said:
        for crash in ("without releasing", "taken over", "took over", "killed"):
            assert crash not in stderr, stderr
    assert (tmp_path / "job" / ".lock").read_text().startswith("free since ")


# -- 9. library errors, translated (more in tests/read/test_meaning.py) --------------------


def test_a_missing_sheet_lists_the_sheets(capsys: pytest.CaptureFixture[str]) -> None:
    """--sheet naming no sheet: exit 65, the closest name and every sheet listed."""
    import xlsxwriter

    with xlsxwriter.Workbook("book.xlsx") as book:
        book.add_worksheet("Leads").write_row(0, 0, ["id", "tags"])
        book.add_worksheet("Customers").write_row(0, 0, ["id", "tags"])
    code, said = _stderr(capsys, ["validate", "book.xlsx", "--sheet", "Lead"])
    assert code == ExitCode.INPUT_UNUSABLE
    assert "no sheet 'Lead'; did you mean 'Leads'? Sheets: 'Leads', 'Customers'" in said


# -- 10. round two (issue 25): secrets in a slightly wrong form ----------------------------

A_CONTACT = "123e4567-e89b-12d3-a456-426614174000"
NOWHERE = "http://127.0.0.1:9/functions/v1/api-gateway"  # never reached: refused before


def _csv(name: str = "in.csv") -> Path:
    path = Path(name)
    path.write_text(f"contact_id,tags\n{A_CONTACT},vip\n", encoding="utf-8")
    return path


KEY_FILES = {
    "bom": ("\ufeff" + KEY + "\n", "starts with a byte-order mark (U+FEFF"),
    "dotenv": (f"LEADLEX_API_KEY={KEY}\n", "is a line 'LEADLEX_API_KEY=...' (a copied .env line)"),
    "export": (f"export LEADLEX_API_KEY={KEY}\n", "is a line 'LEADLEX_API_KEY=...'"),
    "quoted": (f'"{KEY}"\n', "is in quotes (as some .env loaders leave them)"),
    "single-quoted": (f"'{KEY}'\n", "is in quotes"),
    "space-inside": (KEY[:8] + " " + KEY[8:] + "\n", "has white space or a control character"),
    "no-prefix": ("abc" + KEY[4:] + "\n", "does not start with wbk_, as every LeadLex key does"),
    "two-lines": (f"{KEY}\n{KEY}\n", "must hold exactly one non-empty line, the key (it holds 2)"),
    "bearer": (f"Bearer {KEY}\n", "starts with 'Bearer '"),
}


@pytest.mark.parametrize("form", list(KEY_FILES))
def test_a_key_file_in_a_wrong_form_says_what_is_wrong_before_any_call(
    capsys: pytest.CaptureFixture[str], form: str
) -> None:
    """Before: exit 77 after a call, "check that it is this workspace's key, whole". Now:
    78 before any call (the URL is a port nothing listens on), the cause, never the key."""
    text, words = KEY_FILES[form]
    key_file = Path("leadlex.key")
    key_file.write_text(text, encoding="utf-8")
    key_file.chmod(0o600)
    code, said = _stderr(
        capsys, ["run", str(_csv()), "--api-key-file", str(key_file), "--api-url", NOWHERE]
    )
    assert code == ExitCode.CONFIG, said
    assert words in said
    assert "Traceback" not in said
    assert KEY[4:] not in said
    assert not list(Path("runs").glob("*")) if Path("runs").exists() else True


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (f'"{KEY}"', "is in quotes"),
        (f"'{KEY}'", "is in quotes"),
        (f"LEADLEX_API_KEY={KEY}", "a copied .env line"),
        ("\ufeff" + KEY, "byte-order mark"),
        ("sk_" + KEY[4:], "does not start with wbk_"),
    ],
    ids=["double-quotes", "single-quotes", "dotenv", "bom", "other-prefix"],
)
def test_a_key_in_the_environment_in_a_wrong_form(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str, words: str
) -> None:
    monkeypatch.setenv("LEADLEX_API_KEY", value)
    code, said = _stderr(capsys, ["run", str(_csv()), "--api-url", NOWHERE])
    assert code == ExitCode.CONFIG
    assert "the key in $LEADLEX_API_KEY " in said
    assert words in said
    assert KEY[4:] not in said
    job = Path("job.toml")
    job.write_text(f'inputs = ["in.csv"]\nout = "job"\n[api]\nurl = "{NOWHERE}"\n')
    code, said = _stderr(capsys, ["check-job", str(job)])
    assert code == ExitCode.CONFIG
    assert words in said


# -- 11. round two: blame the right thing ---------------------------------------------------


def test_a_dead_proxy_is_named_not_the_api_host(tmp_path: Path) -> None:
    """Before: "connection to 127.0.0.1:PORT refused ... set HTTPS_PROXY" while HTTPS_PROXY
    was the dead thing. Now: the proxy named, and its variable; NO_PROXY sends direct."""
    with running_emulator("--generate", "2", "--plan", "unmetered") as ready:
        ids = contact_ids(ready, 2)
        source = tmp_path / "in.csv"
        source.write_text("contact_id,tags\n" + "".join(f"{c},a\n" for c in ids))
        env = {**emulator_env(ready), "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
        env.pop("http_proxy", None)
        command = ["run", str(source)]
        done = run_bulktag(command, env, cwd=tmp_path)
        assert done.returncode == ExitCode.WORK_LEFT, done.stderr
        assert "the proxy 127.0.0.1:9 ($HTTP_PROXY) refused the connection" in done.stderr
        assert "unset $HTTP_PROXY" in done.stderr
        assert "Traceback" not in done.stderr
        direct = run_bulktag(command, {**env, "NO_PROXY": "127.0.0.1"}, cwd=tmp_path)
        assert direct.returncode == ExitCode.OK, direct.stderr


def test_a_file_whose_name_starts_with_a_dash_is_that_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: `bulktag run -export.csv` got "did you mean --report?"."""
    Path("-export.csv").write_text(f"contact_id,tags\n{A_CONTACT},vip\n", encoding="utf-8")
    code, said = _stderr(capsys, ["validate", "-export.csv"])
    assert code == ExitCode.OK, said
    code, said = _stderr(capsys, ["validate", "-missing.csv"])
    assert code == ExitCode.INPUT_UNUSABLE
    assert "./-missing.csv: no such file" in said
    code, said = _stderr(capsys, ["validate", "in.csv", "-x"])  # an option after all
    assert code == ExitCode.USAGE


def _stdin(data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_bulktag(["validate", "-", *args], bulktag_env(), stdin=data, text=False)


def test_a_workbook_on_stdin_is_named_not_read_as_csv() -> None:
    """Before: binary junk listed as the columns, and --id-column suggested."""
    import xlsxwriter

    with xlsxwriter.Workbook("book.xlsx") as book:
        book.add_worksheet().write_row(0, 0, ["id", "tags"])
    done = _stdin(Path("book.xlsx").read_bytes())
    assert done.returncode == ExitCode.INPUT_UNUSABLE
    said = done.stderr.decode()
    assert "stdin holds an XLSX workbook, and '-' reads CSV text only: give the file" in said
    import polars as pl

    pl.DataFrame({"id": [A_CONTACT], "tags": ["x"]}).write_parquet("in.parquet")
    done = _stdin(Path("in.parquet").read_bytes())
    assert done.returncode == ExitCode.INPUT_UNUSABLE
    assert "stdin holds a Parquet file" in done.stderr.decode()
    assert _stdin(f"contact_id,tags\n{A_CONTACT},vip\n".encode()).returncode == ExitCode.OK


# -- 12. round two: commands that hang or crash ---------------------------------------------


def test_dash_with_a_terminal_on_stdin_is_refused_at_once() -> None:
    """Before: `bulktag run -` at a terminal waited forever, silently."""
    import pty

    parent, child = pty.openpty()
    try:
        done = run_bulktag(["validate", "-"], bulktag_env(), stdin=child, timeout=30)
    finally:
        os.close(parent)
        os.close(child)
    assert done.returncode == ExitCode.USAGE
    assert "stdin is a terminal: give the file's name instead" in done.stderr


ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["validate", "tags.csv"], ExitCode.OK),
        (["validate", "header.csv"], ExitCode.INPUT_UNUSABLE),
        (["run", "tags.csv", "--dry-run", "-v", "--log-format", "text"], ExitCode.OK),
        (["run", "tags.csv", "--dry-run", "--log-format", "json"], ExitCode.OK),
        (["run", "nosuch-Müller.csv"], ExitCode.INPUT_UNUSABLE),
        (["check-job", "Jöb.toml"], ExitCode.OK),
    ],
    ids=["validate", "header", "dry-run-text", "dry-run-json", "file-name", "job-name"],
)
def test_any_locale_works(argv: list[str], code: int) -> None:
    """Before: under LANG=C (no UTF-8 mode) a non-ASCII tag, header or name gave a
    UnicodeEncodeError traceback. Now: what cannot be written is escaped."""
    Path("tags.csv").write_text(f"contact_id,tags\n{A_CONTACT},Café;Müller\n", encoding="utf-8")
    Path("header.csv").write_text("Kontakt,Schlagwörter\nx,y\n", encoding="utf-8")
    Path("Jöb.toml").write_text('name = "Größe"\ninputs = ["tags.csv"]\nout = "jöb"\n')
    env = {
        k: v
        for k, v in bulktag_env(key=KEY).items()
        if not k.startswith(("LC_", "LANG", "PYTHONIO"))
    }
    done = run_bulktag(argv, env | ASCII_LOCALE, text=False, timeout=60)
    said = done.stderr.decode("ascii", "replace") + done.stdout.decode("ascii", "replace")
    assert "Traceback" not in said, said
    assert "a bug in bulktag" not in said, said
    assert done.returncode == code, said


# -- 13. round two: files bulktag should recognise ------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        "\ufeffinputs = ['in.csv']\nout = 'job'\n".encode(),
        b"inputs = ['in.csv']\r\nout = 'job'\r\n",
        b"inputs = ['in.csv']\rout = 'job'\r",
        "\ufeffinputs = ['in.csv']\r\nout = 'job'\r\n".encode(),
    ],
    ids=["bom", "crlf", "cr", "bom-crlf"],
)
def test_a_job_file_from_any_editor_reads(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, encoded: bytes
) -> None:
    """Before: "Invalid statement (at line 1, column 1)"."""
    monkeypatch.setenv("LEADLEX_API_KEY", KEY)
    _csv()
    Path("job.toml").write_bytes(encoded)
    code, said = _stderr(capsys, ["check-job", "job.toml"])
    assert "Invalid statement" not in said
    assert "job job: job.toml" in said
    assert code == ExitCode.OK, said


def test_a_job_file_in_utf16_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    Path("job.toml").write_bytes("inputs = ['in.csv']\nout = 'job'\n".encode("utf-16"))
    code, said = _stderr(capsys, ["check-job", "job.toml"])
    assert code == ExitCode.CONFIG
    assert "the job file is UTF-16 text: save it as UTF-8" in said


def test_bare_bulktag_shows_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """Before: "the following arguments are required: COMMAND"."""
    code, said = _stderr(capsys, [])
    assert code == ExitCode.USAGE
    assert "usage: bulktag COMMAND [options]" in said
    for command in ("run", "validate", "check-job", "emulator", "demo", "report", "history"):
        assert f"\n  {command} " in said
    assert "bulktag COMMAND --help" in said


def test_out_naming_a_finished_run_says_choose_a_new_one(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    _, run_dir = world.run(str(source))
    capsys.readouterr()
    code, _ = world.run(str(source), out=run_dir.name)
    said = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "it holds a finished run (its summary.json); give a new or empty folder" in said
    assert "--resume" not in said


def test_report_of_a_run_still_going_says_it_is_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: "bulktag run --resume RUN finishes it" of a run that holds its lock."""
    from bulktag.state.lock import FolderLock

    run_dir = Path("runs/20261207T020000Z")
    (run_dir / ".bulktag").mkdir(parents=True)
    (run_dir / ".bulktag" / "config.json").write_text('{"run_id": "x", "started_at": 1}')
    with FolderLock(run_dir / ".bulktag"):
        code, said = _stderr(capsys, ["report", str(run_dir)])
    assert code == ExitCode.WORK_LEFT
    assert "the run is still going (" in said
    assert "pid since" in said
    assert "--resume" not in said
    code, said = _stderr(capsys, ["report", str(run_dir)])
    assert code == ExitCode.INPUT_UNUSABLE
    assert f"bulktag run --resume {run_dir} finishes it" in said


# -- 14. round two: settings that disagree with the docs -----------------------------------


def test_a_job_whose_export_has_not_landed_exits_75(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: 65, while the shipped example said a glob matching nothing only warns."""
    job = world.write_job('inputs = ["exports/*.csv"]\n')
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.WORK_LEFT
    said = capsys.readouterr().err
    assert "no input yet: the job's inputs (exports/*.csv) match no file" in said.replace(
        str(world.folder) + "/", ""
    )
    assert "has the export landed?" in said
    (world.folder / "exports").mkdir()
    world.write_csv("exports/a.csv", [(world.contact_ids[0], "x")])
    world.next_night()
    assert world.run_job(job)[0] == ExitCode.OK


def test_resume_with_the_same_url_is_no_other_setting(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: --resume RUN --api-url X, X the run's own URL, refused as another setting."""
    source = world.write_csv("in.csv", [(c, "x") for c in world.contact_ids])
    world.crash_after(3)
    world.crashing(str(source))
    run_dir = world.folder / "run1"
    url = json.loads((run_dir / ".bulktag" / "config.json").read_text())["api_url"]
    capsys.readouterr()
    code = main(["run", "--resume", str(run_dir), "--api-url", url + "/"], runtime=world.runtime())
    assert code == ExitCode.OK, capsys.readouterr().err
    code = main(["run", "--resume", str(run_dir), "--api-url", "https://other.example"])
    assert code == ExitCode.USAGE
    assert "--api-url would be ignored" in capsys.readouterr().err


def test_a_dry_runs_summary_says_what_a_run_would_send(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "exit 0: all contacts ok" over a list of not_attempted contacts."""
    rows = [(c, "a,b") for c in world.contact_ids[:5]] + [("not-an-id", "x")]
    source = world.write_csv("in.csv", rows)
    code, _ = world.run(str(source), "--dry-run", "-v", "--log-format", "text")
    said = capsys.readouterr().err
    assert code == ExitCode.FAILURES
    assert "dry run: nothing was sent; 5 contacts would get 10 tags in 5 calls" in said
    assert "not_attempted" not in said
    assert "exit 1: input problems rejected (the rest would be sent)" in said
