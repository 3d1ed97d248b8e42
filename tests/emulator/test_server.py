"""`bulktag emulator` as a process: its ready line, real dropped connections, clean shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import httpx2
import pytest

from tests.constants import KEY
from tests.helpers import bulktag_env, run_bulktag, running_emulator, start_bulktag


def test_prints_one_json_line_then_serves_until_sigterm() -> None:
    """The first stdout line is {"url", "control", "keys", "plan"}; SIGTERM stops it, exit 0."""
    process = start_bulktag(
        ["emulator", "--port", "0", "--key", f"{KEY}:read,write", "--plan", "org"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert set(ready) == {"url", "control", "keys", "plan"}
        assert ready["keys"] == {KEY: ["read", "write"]}
        assert ready["plan"] == "org"
        root = ready["url"].removesuffix("/functions/v1/api-gateway")
        assert root.startswith("http://127.0.0.1:")
        assert ready["url"] == root + "/functions/v1/api-gateway"
        assert ready["control"] == root + "/_emulator"
        assert httpx2.get(f"{ready['control']}/stats").status_code == 200
        answer = httpx2.get(
            f"{ready['url']}/v1/contacts", headers={"Authorization": f"Bearer {KEY}"}
        )
        assert answer.status_code == 200
        assert answer.headers["x-ratelimit-limit"] == "10000"
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert out == ""  # exactly one line on stdout


def test_default_key_is_printed() -> None:
    """Without --key, a demo key with read and write is accepted and announced."""
    with running_emulator() as ready:
        assert list(ready["keys"].values()) == [["read", "write"]]


def test_dropped_connection_is_a_real_socket_close() -> None:
    """Over loopback an injected drop closes the socket without an answer: a protocol error."""
    with running_emulator("--drop-rate", "1", "--auto-create") as ready:
        url, key = ready["url"], next(iter(ready["keys"]))
        with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
            for _ in range(6):
                with pytest.raises(httpx2.RemoteProtocolError):
                    client.post(
                        "/v1/contacts/6f1c1d5e-1c2b-4c8e-9a7e-0a1b2c3d4e5f/tags",
                        json={"tags": ["x"]},
                    )
            httpx2.post(f"{ready['control']}/faults", json={"drop_rate": 0})
            assert (
                client.post(
                    "/v1/contacts/6f1c1d5e-1c2b-4c8e-9a7e-0a1b2c3d4e5f/tags", json={"tags": ["x"]}
                ).status_code
                == 200
            )


def test_slow_body_arrives_late() -> None:
    """A slow body: the headers come at once, the body after slow_ms."""
    with running_emulator("--slow-rate", "1", "--slow-ms", "300", "--generate", "1") as ready:
        url, key = ready["url"], next(iter(ready["keys"]))
        with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
            start = time.monotonic()
            with client.stream("GET", "/v1/contacts") as response:
                headers_at = time.monotonic() - start
                response.read()
                body_at = time.monotonic() - start
    assert headers_at < 0.25
    assert body_at >= 0.3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "only listens on loopback"),
        (["--fault-rate", "2"], "not between 0 and 1"),
        (["--key", "nocolon"], "KEY:PERMISSIONS"),
        (["--key", "k:admin"], "unknown permission"),
        (["--latency-ms", "9:1"], "latency_ms"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    """Bad emulator options end with one line on stderr and the usage exit code."""
    result = run_bulktag(["emulator", "--port", "0", *args], bulktag_env(), timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
