"""Helpers shared by this folder's tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulktag.emulator import generate_contacts
from tests.helpers import bulktag_env, run_bulktag

__all__ = [
    "DEMO_KEY",
    "OTHER_CA",
    "Proxy",
    "Ran",
    "Tls",
    "bulktag_run",
    "contacts_csv",
    "environment",
    "running_proxy",
]


DEMO_KEY = "wbk_demo_emulator_key"


#: A CA that signed nothing here: what a child trusts unless a test names the company's.
OTHER_CA = Path(tempfile.gettempdir()) / "bulktag-tests-other-ca.pem"


@dataclass(frozen=True)
class Tls:
    """A private CA (as a company runs one) and a certificate it signed for 127.0.0.1."""

    ca: Path  #: the CA's certificate (PEM): what SSL_CERT_FILE or --ca-bundle names
    chain: Path  #: the server's certificate chain (PEM)
    key: Path  #: its private key (PEM)


def contacts_csv(folder: Path, n: int, tag: str = "net") -> Path:
    """An input naming the first ``n`` contacts of ``bulktag emulator --generate N`` (seed 0)."""
    path = folder / "in.csv"
    ids = [c.id for c in generate_contacts(n, seed=0)]
    path.write_text("contact_id,tags\n" + "".join(f"{i},{tag}\n" for i in ids))
    return path


def environment(url: str, folder: Path, **extra: str) -> dict[str, str]:
    """A child's environment: the demo key, the URL, no proxy or CA of the machine's."""
    env = bulktag_env(url, DEMO_KEY, BULKTAG_STATE_DIR=str(folder / "state"))
    env.pop("SSL_CERT_DIR", None)
    env["SSL_CERT_FILE"] = str(OTHER_CA)  # trust only what a test names
    return env | extra


@dataclass
class Ran:
    code: int
    seconds: float
    stderr: str
    summary: dict[str, Any]
    folder: Path


def bulktag_run(source: Path, env: dict[str, str], *args: str, out: str = "run") -> Ran:
    """``bulktag run SOURCE --out OUT ARGS`` as a real process."""
    folder = source.parent / out
    started = time.monotonic()
    done = run_bulktag(["run", str(source), "--out", str(folder), *args], env)
    seconds = time.monotonic() - started
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Ran(done.returncode, seconds, done.stderr, summary, folder)


@dataclass(frozen=True)
class Proxy:
    url: str
    log: Path


@contextmanager
def running_proxy(folder: Path, *args: str) -> Iterator[Proxy]:
    """proxy.py, a real forward proxy (CONNECT tunnels), on a loopback port it picks."""
    port_file, log = folder / "proxy.port", folder / "proxy.log"
    command = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0"]
    command += ["--port-file", str(port_file), "--log-file", str(log), "--log-level", "INFO"]
    process = subprocess.Popen(
        [*command, "--num-workers", "1", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("proxy.py did not start")
            time.sleep(0.05)
        yield Proxy(f"http://127.0.0.1:{port_file.read_text().strip()}", log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
