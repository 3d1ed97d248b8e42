"""``bulktag demo``: an emulator and the documentation's example, end to end over loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx2

from bulktag.errors import ConfigError, ExitCode

__all__ = ["run_demo"]

SEED_CONTACT = "123e4567-e89b-12d3-a456-426614174000"


def _say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(data: Path) -> int:
    """Start ``bulktag emulator`` on the sample CRM, add ["vip", "legal"] to the seed contact."""
    contacts = data / "crm_contacts.csv"
    if not contacts.is_file():
        raise ConfigError(f"{contacts}: sample CRM contacts not found (run from the repository)")
    command = [
        sys.executable,
        "-m",
        "bulktag",
        "emulator",
        "--port",
        "0",
        "--contacts",
        str(contacts),
    ]
    _say(f"$ bulktag emulator --port 0 --contacts {contacts}")
    emulator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())  # noqa: S603  (our own interpreter and module)
    try:
        assert emulator.stdout is not None
        ready = json.loads(emulator.stdout.readline())
        _say(json.dumps(ready))
        key = next(iter(ready["keys"]))
        with httpx2.Client(
            base_url=ready["url"], headers={"Authorization": f"Bearer {key}"}
        ) as client:
            path = f"/v1/contacts/{SEED_CONTACT}/tags"
            _say(f"\n$ POST {path}  {json.dumps({'tags': ['vip', 'legal']})}")
            response = client.post(path, json={"tags": ["vip", "legal"]})
            _say(f"{response.status_code} {json.dumps(response.json())}")
            _say(f"X-RateLimit-Remaining: {response.headers['x-ratelimit-remaining']}")
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(timeout=10)
    return ExitCode.OK
