"""Helpers for tests that run bulktag or its emulator as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2


def contact_ids(ready: dict[str, Any], n: int) -> list[str]:
    """The first ``n`` contacts of an emulator process, read page by page from its API."""
    ids: list[str] = []
    key = next(iter(ready["keys"]))
    with httpx2.Client(base_url=ready["url"], headers={"Authorization": f"Bearer {key}"}) as api:
        page = 1
        while len(ids) < n:
            answer = api.get("/v1/contacts", params={"page": page, "per_page": 100}).json()
            found = [c["id"] for c in answer["data"]["contacts"]]
            if not found:
                break
            ids += found
            page += 1
    return ids[:n]


def emulator_env(ready: dict[str, Any]) -> dict[str, str]:
    """This process's environment, its LeadLex settings replaced by an emulator's key and URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEX_")}
    return env | {"LEADLEX_API_KEY": next(iter(ready["keys"])), "LEADLEX_API_URL": ready["url"]}


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
