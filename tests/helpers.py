"""Helpers for tests that run bulktag or its emulator as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def running_emulator(*args: str) -> Iterator[dict[str, Any]]:
    """Start `bulktag emulator --port 0 ARGS`, yield its ready line, stop it with SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bulktag", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"emulator did not start: {process.communicate(timeout=10)[1]}")
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
