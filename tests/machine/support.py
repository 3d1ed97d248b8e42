"""What every fault test asserts of what the command said: one error line, its code."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx2

from bulktag.cli.commands import main
from tests.world import World


def said(err: str) -> tuple[list[str], list[str]]:
    """The error and warning messages in ``err`` (JSON lines or plain ``bulktag: error:``
    lines), and nothing else: a traceback or a stray line fails the test."""
    assert "Traceback" not in err, err
    errors: list[str] = []
    warnings: list[str] = []
    for line in err.splitlines():
        if not line.strip():
            continue
        if line.startswith("bulktag: error: "):
            errors.append(line.removeprefix("bulktag: error: "))
            continue
        record: dict[str, Any] = json.loads(line)  # anything else is a stray line
        if record["level"] == "error":
            errors.append(record["message"])
        elif record["level"] == "warning":
            warnings.append(record["message"])
    return errors, warnings


def one_error(err: str) -> str:
    """The one error line the command printed."""
    errors, _ = said(err)
    assert len(errors) == 1, errors
    return errors[0]


def after_calls(world: World, calls: int, act: Any) -> None:
    """``act()`` just before the add-tags call after ``calls`` more goes out (once)."""
    seen = {"n": 0}

    def hook(request: httpx2.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/tags"):
            seen["n"] += 1
            if seen["n"] == calls + 1:
                act()

    world.hook = hook


def resume(world: World, run_dir: Path) -> int:
    return main(["run", "--resume", str(run_dir)], runtime=world.runtime())


def tagged(world: World, tag: str) -> int:
    """Contacts carrying ``tag`` in the emulator's CRM."""
    return sum(tag in world.tags_of(c) for c in world.contact_ids)


def quota_calls(state_dir: Path) -> int:
    """Calls the user's quota store booked, every key and day."""
    db = sqlite3.connect(f"file:{state_dir / 'quota.sqlite'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT coalesce(sum(calls), 0) FROM quota").fetchone()[0])
    finally:
        db.close()


class Disk:
    """A tmpfs mounted at ``path``: ``fill()`` leaves no byte free, ``free()`` undoes it,
    ``read_only()`` / ``writable()`` remount it."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.filler = path / ".filler"
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )

    def fill(self) -> None:
        """Every free block taken (a file written until ENOSPC)."""
        chunk = b"\0" * 4096
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, chunk)
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self) -> None:
        self._remount("ro")

    def writable(self) -> None:
        self._remount("rw")

    def _remount(self, how: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,{how}", str(self.path)], check=True, capture_output=True
        )

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
        shutil.rmtree(self.path, ignore_errors=True)
