"""Helpers for tests that run bulktag or its emulator as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
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


def bulktag_env(url: str | None = None, key: str | None = None, **extra: str) -> dict[str, str]:
    """The one environment of a bulktag child process: this process's, less every LeadLex
    setting and every proxy of the machine (a loopback emulator is reached directly), with
    ``url`` and ``key`` as LeadLex's and ``extra`` on top. ``BULKTAG_STATE_DIR`` stays:
    the suite gives each test its own (conftest)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEADLEX_") and "proxy" not in k.lower()
    }
    if url is not None:
        env["LEADLEX_API_URL"] = url
    if key is not None:
        env["LEADLEX_API_KEY"] = key
    return env | extra


def emulator_env(ready: dict[str, Any], **extra: str) -> dict[str, str]:
    """:func:`bulktag_env` for an emulator process's key and URL (its ready line)."""
    return bulktag_env(ready["url"], next(iter(ready["keys"])), **extra)


#: How the suite starts bulktag: the checkout's, run by this interpreter.
PYTHON_M_BULKTAG = (sys.executable, "-m", "bulktag")


def run_bulktag(
    args: Sequence[str],
    env: dict[str, str],
    *,
    cwd: Path | None = None,
    stdin: str | bytes | int | None = None,
    timeout: float = 120,
    text: bool = True,
    program: Sequence[str] = PYTHON_M_BULKTAG,
) -> subprocess.CompletedProcess[Any]:
    """The one way the suite runs ``bulktag ARGS`` as a process of its own, to its end:
    ``stdin`` is text or bytes to feed it, or a file descriptor (a pty's); its output is
    text, or bytes when ``text`` is false. ``program`` is the command that is bulktag: by
    default this interpreter's ``-m bulktag``; else an installed ``bulktag`` (its path), or
    ``python -c CODE`` that calls its ``main``."""
    return subprocess.run(
        [*program, *args],
        input=stdin if isinstance(stdin, str | bytes) else None,
        stdin=stdin if isinstance(stdin, int) else None,
        capture_output=True,
        text=text,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def start_bulktag(
    args: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    program: Sequence[str] = PYTHON_M_BULKTAG,
    **popen: Any,
) -> subprocess.Popen[str]:
    """The one way the suite starts ``bulktag ARGS`` as a process that goes on beside the
    test (to be signalled, killed, or waited for): text mode, ``env`` (else
    :func:`bulktag_env`), ``program`` as :func:`run_bulktag` takes it, and ``popen``'s
    pipes and folder."""
    return subprocess.Popen(
        [*program, *args],
        env=bulktag_env() if env is None else env,
        text=True,
        **popen,
    )


@contextmanager
def running_emulator(*args: str) -> Iterator[dict[str, Any]]:
    """Start `bulktag emulator --port 0 ARGS`, yield its ready line, stop it with SIGTERM."""
    process = start_bulktag(
        ["emulator", "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
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
