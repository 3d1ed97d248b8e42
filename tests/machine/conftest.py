"""A small disk of our own: a tmpfs that can be filled, freed and made read-only.

The faults are the kernel's own (ENOSPC, EROFS from every writer: Python, polars' Rust,
SQLite's C), so no phase can hide from them. Mounting needs root (CI runs as root); without
it these tests skip, and ``test_seams.py`` injects the same faults by patching.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.machine.support import Disk
from tests.world import World, new_world


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def make_disk(tmp_path: Path) -> Iterator[Callable[..., Disk]]:
    """``make_disk(size="8m")``: a fresh tmpfs under the test's folder (root only)."""
    if not _can_mount():
        pytest.skip("mounting a tmpfs needs root (test_seams.py covers the phases without it)")
    made: list[Disk] = []

    def make(size: str = "8m") -> Disk:
        try:
            disk = Disk(tmp_path / f"disk-{uuid.uuid4().hex[:6]}", size)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot mount a tmpfs here: {exc.stderr.decode().strip()}")
        made.append(disk)
        return disk

    yield make
    for disk in made:
        disk.unmount()


@pytest.fixture
def disk_world(make_disk: Callable[..., Disk]) -> Callable[..., tuple[World, Disk]]:
    """A world whose folder (inputs, runs, job, quota store) lies on a small disk."""

    def make(contacts: int = 60, size: str = "8m", **options: Any) -> tuple[World, Disk]:
        disk = make_disk(size)
        return new_world(disk.path / "world", contacts, **options), disk

    return make
