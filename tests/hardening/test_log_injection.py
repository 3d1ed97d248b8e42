"""Input text with CR, LF or ANSI escapes cannot forge or break a log line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2

from tests.helpers import emulator_env, run_bulktag, running_emulator

EVIL = "x\r\nbulktag: summary: forged\x1b[2J\x1b[31m"


def test_injected_text_cannot_break_log_lines(tmp_path: Path) -> None:
    """File names, IDs and tags full of control characters: JSON lines parse, text lines hold."""
    folder = tmp_path / f"in{EVIL}"
    folder.mkdir()
    with running_emulator("--generate", "3", "--plan", "unmetered") as ready:
        with httpx2.Client(
            base_url=ready["url"], headers={"Authorization": "Bearer wbk_demo_emulator_key"}
        ) as client:
            ids = [c["id"] for c in client.get("/v1/contacts").json()["data"]["contacts"]]
        source = folder / f"contacts{EVIL}.csv"
        rows = [
            f"{ids[0]},ok",
            f'"{ids[1]}{EVIL}",x',
            f'{ids[2]},"tag{EVIL}"',
            f'"{EVIL}","{EVIL}"',
        ]
        source.write_text("contact_id,tags\n" + "\n".join(rows) + "\n", encoding="utf-8")
        env = emulator_env(ready)
        runs = {}
        for fmt in ("json", "text"):
            runs[fmt] = run_bulktag(
                [
                    "run",
                    str(source),
                    "--plan",
                    "unmetered",
                    "-vv",
                    "--log-format",
                    fmt,
                    "--out",
                    str(tmp_path / f"run-{fmt}"),
                ],
                env,
                timeout=60,
            )
        missing = run_bulktag(["run", str(folder / f"missing{EVIL}.csv")], env, timeout=60)
    json_lines = runs["json"].stderr.splitlines()
    assert json_lines
    for line in json_lines:
        assert isinstance(json.loads(line), dict)
        assert "\x1b" not in line
    text = runs["text"].stderr
    assert "\x1b" not in text
    assert "\r" not in text
    for line in text.splitlines():
        assert line.startswith(("bulktag: ", "  ")), line  # a record, or the indented body of one
    assert not any(line.startswith("bulktag: summary: forged") for line in text.splitlines())
    assert missing.returncode == 65
    assert len(missing.stderr.splitlines()) == 1
    assert "\x1b" not in missing.stderr
