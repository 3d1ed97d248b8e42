"""Every shell command the README shows, run in a scratch folder against the emulator.

The README is read as a newcomer reads it: each fenced block's commands (the lines after
``$ `` in a block that shows a session, every line that starts with a program in one that
does not), in the order they appear, in one scratch folder, with what a newcomer would
have in place of the README's placeholders (``wbk_...``, the port the example's emulator
printed, the job file's ``/srv`` and ``/var/lib`` paths). A command the test cannot run
is listed in ``CANNOT_RUN`` with the reason; a command the README gains that is in
neither table fails the test, so the README cannot grow a command nobody ran.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path
from typing import Any

import httpx2
import pytest
import xlsxwriter

from tests.helpers import (
    bulktag_env,
    contact_ids,
    run_bulktag,
    running_emulator,
    start_bulktag,
)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# A program word that starts a command in a block that shows no prompt; any other line
# there is output (such as `bulktag: error: ...`).
PROGRAMS = {"bulktag", "make", "export", "uv", "pipx", "pip"}

# Each command the README shows, and the exit code it must end with here.
EXITS: dict[str, int] = {
    "uv tool install .": 0,
    "bulktag --version": 0,
    "export LEADLEX_API_KEY=wbk_...": 0,
    "bulktag validate segment.xlsx": 0,
    "bulktag run segment.xlsx --plan org": 0,
    "bulktag run webinar-registrants.csv": 0,
    "bulktag run runs/20261126T020000Z/failures.csv": 0,
    "bulktag check-job jobs/nightly-export.toml": 0,
    "bulktag run --job jobs/nightly-export.toml": 0,
    "bulktag report runs/20261126T020000Z/": 0,
    "bulktag report --job jobs/nightly-export.toml": 0,
    "bulktag history --job jobs/nightly-export.toml": 0,
    "bulktag emulator --port 0 --plan pro --generate 20 --seed 7 --save-contacts contacts.csv": 0,
    "export LEADLEX_API_URL=http://127.0.0.1:41235/functions/v1/api-gateway": 0,
    # the generated contacts without a tag are rejects ("no tags"), as the README says
    "LEADLEX_API_KEY=wbk_demo_emulator_key bulktag run contacts.csv": 1,
}

CANNOT_RUN: dict[str, str] = {
    "make demo": (
        "its setup is make test's, which runs this test; its one command, `bulktag demo`, "
        "runs in tests/cli/test_basics.py::test_demo_tells_the_whole_story"
    ),
    "make test": "it is the command running this test",
    "export HTTPS_PROXY=http://proxy.corp.example:3128": (
        "it names a company's proxy, which does not exist here; tests/network/"
        "test_company_network.py runs bulktag through a real proxy (proxy.py)"
    ),
    "export NO_PROXY=localhost,127.0.0.1,.corp.example": (
        "it goes with the proxy above; tests/network/test_company_network.py sets NO_PROXY"
    ),
    "export SSL_CERT_FILE=/etc/ssl/corp-ca-bundle.pem": (
        "it names a company's CA bundle, which does not exist here; tests/network/"
        "test_company_network.py gives bulktag a CA of its own (trustme)"
    ),
}

# The README's example emulator printed this origin; the test's prints another.
EXAMPLE_ORIGIN = "http://127.0.0.1:41235"


def readme_commands(text: str) -> list[tuple[int, str]]:
    """The commands of the README's fenced blocks, with their line numbers, in order."""
    found: list[tuple[int, str]] = []
    lines = text.splitlines()
    start: int | None = None
    for number, line in enumerate(lines, start=1):
        if not line.startswith("```"):
            continue
        if start is None:
            start = number
            continue
        block = list(enumerate(lines[start : number - 1], start=start + 1))
        start = None
        prompted = any(body.startswith("$ ") for _, body in block)
        for at, body in block:
            if prompted:
                if not body.startswith("$ "):
                    continue
                shown = body[2:]
            else:
                words = body.split()
                first = next((w for w in words if not re.match(r"^[A-Z_]+=", w)), "")
                if first not in PROGRAMS:
                    continue
                shown = body
            command = re.split(r"\s+#\s", shown, maxsplit=1)[0].strip()
            if command:
                found.append((at, command))
    return found


def test_the_readme_parser_finds_commands_and_skips_output() -> None:
    """The reader above is itself checked: prompts, comments, output lines."""
    text = (
        "```\nbulktag run x.csv   # a comment\nbulktag: error: not a command\n```\n"
        "```\n$ bulktag history\nnight  exit\n$ export A=b\n```\n"
    )
    assert readme_commands(text) == [
        (2, "bulktag run x.csv"),
        (6, "bulktag history"),
        (8, "export A=b"),
    ]


def test_every_readme_command_is_run_or_said_why_not() -> None:
    shown = {command for _, command in readme_commands(README.read_text("utf-8"))}
    assert shown, "no command found in the README"
    unknown = shown - EXITS.keys() - CANNOT_RUN.keys()
    assert not unknown, f"README commands neither run nor listed with a reason: {sorted(unknown)}"
    stale = (EXITS.keys() | CANNOT_RUN.keys()) - shown
    assert not stale, f"commands this test expects that the README no longer shows: {sorted(stale)}"


@dataclass
class Newcomer:
    """One shell session's worth of state: the folder, the environment, the emulators."""

    folder: Path
    env: dict[str, str]
    origin: str = ""
    night: list[str] = field(default_factory=list)
    control: str = ""
    emulators: list[subprocess.Popen[str]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    def run(self, command: str) -> subprocess.CompletedProcess[str] | None:
        command = command.replace("wbk_...", self.env["LEADLEX_API_KEY"])
        if self.origin:
            command = command.replace(EXAMPLE_ORIGIN, self.origin)
        words = shlex.split(command)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.env[name] = value
            return None
        # `NAME=value bulktag ...`: the settings a shell would give that one command
        leading = takewhile(lambda word: re.match(r"^[A-Z_]+=", word) is not None, words)
        settings = dict(word.partition("=")[::2] for word in leading)
        program = words[len(settings) :]
        if program[0] == "bulktag":
            shell = set(command) & set("$*?[]|<>;&`~")
            assert not shell, f"{command}: teach this test the shell's {sorted(shell)}"
            if program[1:2] == ["emulator"]:
                return self._emulator(program[1:])
            return run_bulktag(
                program[1:],
                self.env | settings,
                cwd=self.folder,
                timeout=300,
                program=[self.bulktag()],
            )
        # Not bulktag (`uv tool install .`): through the shell, with this machine's proxies,
        # which uv may need to fetch the build backend.
        proxies = {k: v for k, v in os.environ.items() if "proxy" in k.lower()}
        cwd = ROOT if words[:3] == ["uv", "tool", "install"] else self.folder
        return subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=self.env | proxies,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def bulktag(self) -> str:
        """The `bulktag` the session's PATH finds: the one `uv tool install .` put there."""
        found = shutil.which("bulktag", path=self.env["PATH"])
        assert found is not None, f"no bulktag on the session's PATH: {self.env['PATH']}"
        return found

    def _emulator(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        """The README runs it in the foreground; a test must go on: it runs beside it."""
        process = start_bulktag(
            args,
            self.env,
            program=[self.bulktag()],
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.emulators.append(process)
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert set(ready) >= {"url", "control", "keys", "plan"}
        self.origin = ready["url"].removesuffix("/functions/v1/api-gateway")
        return subprocess.CompletedProcess(["bulktag", *args], 0, json.dumps(ready), "")

    def stop(self) -> None:
        for process in self.emulators:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[Newcomer]:
    """A scratch folder holding what the README's commands name, and an emulator."""
    tools = tmp_path / "tools"
    with running_emulator("--plan", "pro", "--generate", "40", "--seed", "3") as ready:
        ids = contact_ids(ready, 40)
        folder = tmp_path / "work"
        folder.mkdir()
        _spreadsheet(folder / "segment.xlsx", ids[:5])
        _registrants(folder / "webinar-registrants.csv", ready)
        _nightly_job(folder, ready["url"], ids[10:16])
        # A newcomer's shell: no LeadLex settings, proxies or bulktag state of this machine.
        env = {
            k: v
            for k, v in bulktag_env(ready["url"], next(iter(ready["keys"]))).items()
            if not k.startswith("BULKTAG_")
        }
        env |= {
            "PATH": f"{tools / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "HOME": str(tmp_path / "home"),
            "BULKTAG_STATE_DIR": str(tmp_path / "state"),
            "UV_TOOL_DIR": str(tools / "venvs"),
            "UV_TOOL_BIN_DIR": str(tools / "bin"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_PYTHON": sys.executable,
        }
        # The failures file the README re-runs: a dry run's of a CSV export (every contact
        # not attempted).
        rows = ["contact_id,tags", *(f"{c},spring-promo" for c in ids[5:10])]
        (folder / "export.csv").write_text("\n".join(rows) + "\n", "utf-8")
        seeded = run_bulktag(
            ["run", "export.csv", "--dry-run", "--out", "runs/20261126T020000Z"], env, cwd=folder
        )
        assert seeded.returncode == 0, seeded.stderr
        if not shutil.which("uv", path=env["PATH"]):
            env["PATH"] = f"{ROOT / '.tools' / 'bin'}{os.pathsep}{env['PATH']}"
        session = Newcomer(folder, env, control=ready["control"], night=ids[10:16])
        try:
            yield session
        finally:
            session.stop()


def _spreadsheet(path: Path, ids: list[str]) -> None:
    with xlsxwriter.Workbook(str(path)) as book:
        sheet = book.add_worksheet("Contacts")
        sheet.write_row(0, 0, ["Contact ID", "Tags"])
        for row, contact in enumerate(ids, start=1):
            sheet.write_row(row, 0, [contact, "webinar-2026, VIP"])


def _registrants(path: Path, ready: dict[str, Any]) -> None:
    """A list of people by email only (contacts 17 to 20 of the emulator's, one in capitals)."""
    key = next(iter(ready["keys"]))
    with httpx2.Client(base_url=ready["url"], headers={"Authorization": f"Bearer {key}"}) as api:
        listed = api.get("/v1/contacts", params={"per_page": 40}).json()["data"]["contacts"]
    emails = [c["email"] for c in listed[16:20]]
    emails[0] = emails[0].upper()
    path.write_text("Email,Tags\n" + "".join(f"{e},webinar-2026\n" for e in emails), "utf-8")


def _nightly_job(folder: Path, url: str, ids: list[str]) -> None:
    """jobs/nightly-export.toml as shipped, its server paths moved into the folder."""
    text = (ROOT / "jobs" / "nightly-export.toml").read_text("utf-8")
    moves = {
        "/srv/exports/leadlex": folder / "exports",
        "/var/lib/bulktag/nightly-segment": folder / "nightly-segment",
        "/var/lib/prometheus/node-exporter": folder / "metrics",
        "https://data.leadlex.com/functions/v1/api-gateway": url,
    }
    for old, new in moves.items():
        assert old in text, f"the shipped job file no longer names {old}"
        text = text.replace(old, str(new))
    (folder / "jobs").mkdir()
    (folder / "jobs" / "nightly-export.toml").write_text(text, "utf-8")
    (folder / "exports").mkdir()
    (folder / "metrics").mkdir()
    # What the job file says its export is: cp1252, `;`, `Contact ID` and `Segments`.
    rows = ["Contact ID;Segments", *(f"{c};Winter Sale,Müller Kunden" for c in ids)]
    export = folder / "exports" / "segment-2026-12-07.csv"
    export.write_bytes("\r\n".join(rows).encode("cp1252") + b"\r\n")
    # It landed an hour before the night: past the job's settle_seconds.
    landed = export.stat().st_mtime - 3600
    os.utime(export, (landed, landed))


def test_the_readme_commands_run_as_shown(newcomer: Newcomer) -> None:
    outcomes: list[str] = []
    for line, command in readme_commands(README.read_text("utf-8")):
        if command in CANNOT_RUN:
            outcomes.append(f"README:{line} {command}: not run, {CANNOT_RUN[command]}")
            continue
        done = newcomer.run(command)
        if done is None:
            outcomes.append(f"README:{line} {command}: set for the commands after it")
            continue
        said = done.stdout + done.stderr
        assert "Traceback" not in said, f"README:{line} {command}\n{said}"
        assert done.returncode == EXITS[command], (
            f"README:{line} {command}: exit {done.returncode}, not {EXITS[command]}\n{said}"
        )
        outcomes.append(f"README:{line} {command}: exit {done.returncode}")
    print("\n".join(outcomes))

    folder = newcomer.folder
    version = run_bulktag(["--version"], newcomer.env, program=[newcomer.bulktag()])
    assert version.returncode == 0, version.stderr
    assert "bulktag 0.1.0" in version.stdout
    # What the commands promise is there: the job's night, its history, the emulator's file.
    job = folder / "nightly-segment"
    assert (job / "history.html").is_file()
    assert (job / "state.sqlite").is_file()
    assert (folder / "runs" / "20261126T020000Z" / "report.html").is_file()
    assert (folder / "contacts.csv").read_text("utf-8").startswith("id,full_name,email,tags")
    metrics = (folder / "metrics" / "bulktag_nightly_segment.prom").read_text("utf-8")
    assert re.search(r"^bulktag_last_run_exit_code\{[^}]*\} 0$", metrics, re.MULTILINE), metrics
    (night,) = (job / "runs").glob("*/summary.json")
    assert json.loads(night.read_text("utf-8"))["contacts"]["ok"] == 6
    # The job file's reading, as it says: cp1252, lower case, its prefix, its added tag.
    for contact in newcomer.night:
        held = httpx2.get(f"{newcomer.control}/contacts/{contact}").json()["data"]
        assert {"seg-winter sale", "seg-müller kunden", "nightly-import"} <= set(held["tags"]), held
