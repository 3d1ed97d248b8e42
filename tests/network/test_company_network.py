"""Behind a company's CA and proxy, and when the run cannot succeed: real processes, loopback.

The emulator serves TLS with a certificate from a private CA (made with trustme), proxy.py
is a real forward proxy, and bulktag runs as the ``bulktag`` command. A run that cannot
succeed stops after three calls and says why; a company network just works once it is
described (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, ``--ca-bundle``, ``HTTPS_PROXY``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

from bulktag.errors import ExitCode
from tests.helpers import run_bulktag, running_emulator
from tests.network.support import (
    DEMO_KEY,
    Tls,
    bulktag_run,
    contacts_csv,
    environment,
    running_proxy,
)

CONTACTS = 300


def _tls_emulator(tls: Tls, *args: str) -> list[str]:
    return ["--tls-cert", str(tls.chain), "--tls-key", str(tls.key), "--plan", "unmetered", *args]


def test_an_untrusted_certificate_stops_the_run_in_three_calls(tmp_path: Path, tls: Tls) -> None:
    """Without the company's CA: exit 78 after 3 calls (0.01 a contact) and seconds, one
    line naming the certificate and SSL_CERT_FILE; the contacts tried keep their error."""
    source = contacts_csv(tmp_path, CONTACTS)
    with running_emulator(*_tls_emulator(tls, "--generate", str(CONTACTS))) as ready:
        ran = bulktag_run(source, environment(ready["url"], tmp_path), "--plan", "org")
    assert ran.code == ExitCode.CONFIG
    assert ran.summary["calls"]["total"] <= 5
    assert ran.summary["calls"]["total"] / CONTACTS <= 0.05
    assert ran.seconds <= 10
    assert ran.summary["halt"] == "config_fault"
    message = ran.summary["halt_message"]
    assert message.startswith("TLS certificate of 127.0.0.1:")
    assert "not trusted" in message
    assert "SSL_CERT_FILE" in message
    assert "--ca-bundle" in message
    assert message in ran.stderr  # said at once, not only in the files
    counts = ran.summary["contacts"]
    assert counts["failed"] == ran.summary["calls"]["total"]
    assert counts["not_attempted"] == CONTACTS - counts["failed"]
    assert DEMO_KEY not in ran.stderr


def test_ssl_cert_file_trusts_the_company_ca(tmp_path: Path, tls: Tls) -> None:
    """SSL_CERT_FILE naming the company's CA: every contact ok over https."""
    source = contacts_csv(tmp_path, 20)
    with running_emulator(*_tls_emulator(tls, "--generate", "20")) as ready:
        assert ready["url"].startswith("https://127.0.0.1:")
        env = environment(ready["url"], tmp_path, SSL_CERT_FILE=str(tls.ca))
        ran = bulktag_run(source, env, "--plan", "unmetered")
    assert ran.code == ExitCode.OK, ran.stderr
    assert ran.summary["contacts"]["ok"] == 20


def test_ssl_cert_dir_trusts_the_company_ca(tmp_path: Path, tls: Tls) -> None:
    """SSL_CERT_DIR naming a hashed folder (c_rehash's <hash>.0) of the company's CA: all ok."""
    folder = tmp_path / "certs"
    folder.mkdir()
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(tls.ca)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copy(tls.ca, folder / f"{subject_hash}.0")
    source = contacts_csv(tmp_path, 20)
    with running_emulator(*_tls_emulator(tls, "--generate", "20")) as ready:
        env = environment(ready["url"], tmp_path, SSL_CERT_DIR=str(folder))
        del env["SSL_CERT_FILE"]  # it would win over SSL_CERT_DIR
        ran = bulktag_run(source, env, "--plan", "unmetered")
    assert ran.code == ExitCode.OK, ran.stderr
    assert ran.summary["contacts"]["ok"] == 20


def test_ca_bundle_trusts_the_company_ca(tmp_path: Path, tls: Tls) -> None:
    """--ca-bundle FILE, for those who cannot set the environment: every contact ok."""
    source = contacts_csv(tmp_path, 20)
    with running_emulator(*_tls_emulator(tls, "--generate", "20")) as ready:
        env = environment(ready["url"], tmp_path)
        ran = bulktag_run(source, env, "--plan", "unmetered", "--ca-bundle", str(tls.ca))
    assert ran.code == ExitCode.OK, ran.stderr


def test_ca_bundle_in_a_job_file_trusts_the_company_ca(tmp_path: Path, tls: Tls) -> None:
    """[api] ca_bundle in a job file, relative to the job file, run from elsewhere: all ok."""
    shutil.copy(tls.ca, tmp_path / "company-ca.pem")
    contacts_csv(tmp_path, 20)
    job = tmp_path / "job.toml"
    job.write_text(
        'inputs = ["in.csv"]\nout = "job"\n[api]\nca_bundle = "company-ca.pem"\n'
        '[limits]\nplan = "unmetered"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with running_emulator(*_tls_emulator(tls, "--generate", "20")) as ready:
        done = run_bulktag(
            ["run", "--job", str(job)],
            environment(ready["url"], tmp_path),
            cwd=elsewhere,
            timeout=60,
        )
    assert done.returncode == ExitCode.OK, done.stderr
    (summary,) = (tmp_path / "job" / "runs").glob("*/summary.json")
    assert json.loads(summary.read_text())["contacts"]["ok"] == 20


def test_ca_bundle_that_is_not_pem_is_refused_before_any_call(tmp_path: Path, tls: Tls) -> None:
    """A --ca-bundle that is not PEM: exit 78 naming it, and no call is made."""
    junk = tmp_path / "bundle.pem"
    junk.write_text("not a certificate\n")
    source = contacts_csv(tmp_path, 5)
    with running_emulator(*_tls_emulator(tls, "--generate", "5")) as ready:
        env = environment(ready["url"], tmp_path)
        ran = bulktag_run(source, env, "--ca-bundle", str(junk))
    assert ran.code == ExitCode.CONFIG
    assert f"--ca-bundle {junk}" in ran.stderr
    assert ran.summary == {}


def test_https_to_a_plain_http_server_is_a_tls_handshake_fault(tmp_path: Path) -> None:
    """https:// to a server that speaks plain HTTP: the handshake fails: exit 78, 3 calls."""
    source = contacts_csv(tmp_path, 30)
    with running_emulator("--generate", "30", "--plan", "unmetered") as ready:
        url = ready["url"].replace("http://", "https://")
        ran = bulktag_run(source, environment(url, tmp_path))
    assert ran.code == ExitCode.CONFIG
    assert ran.summary["calls"]["total"] == 3
    assert "TLS handshake with 127.0.0.1:" in ran.summary["halt_message"]


def test_a_captive_portal_stops_the_run_in_three_calls(tmp_path: Path) -> None:
    """Every call answered 200 with an HTML sign-in page: not LeadLex's answer: exit 78."""
    source = contacts_csv(tmp_path, CONTACTS)
    args = ("--generate", str(CONTACTS), "--plan", "unmetered", "--captive-portal")
    with running_emulator(*args) as ready:
        ran = bulktag_run(source, environment(ready["url"], tmp_path))
    assert ran.code == ExitCode.CONFIG
    assert ran.summary["calls"]["total"] <= 5
    message = ran.summary["halt_message"]
    assert "HTTP 200 with a text/html body" in message
    assert "captive portal" in message
    assert "sign in to the network" in message


def test_a_url_without_the_gateway_path_stops_the_run(tmp_path: Path) -> None:
    """--api-url naming the host alone: the host's 404 is not LeadLex's: exit 78, 3 calls,
    and the message gives LeadLex's real base URL."""
    source = contacts_csv(tmp_path, 30)
    with running_emulator("--generate", "30", "--plan", "unmetered") as ready:
        root = ready["url"].removesuffix("/functions/v1/api-gateway")
        ran = bulktag_run(source, environment(root, tmp_path))
    assert ran.code == ExitCode.CONFIG
    assert ran.summary["calls"]["total"] == 3
    message = ran.summary["halt_message"]
    assert "404 without LeadLex's error envelope" in message
    assert "https://data.leadlex.com/functions/v1/api-gateway" in message


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_from_the_start_exits_75_in_three_calls(tmp_path: Path) -> None:
    """Nothing listens there: 3 calls, exit 75 (time may fix it), nothing else sent."""
    source = contacts_csv(tmp_path, CONTACTS)
    url = f"http://127.0.0.1:{_closed_port()}/functions/v1/api-gateway"
    ran = bulktag_run(source, environment(url, tmp_path))
    assert ran.code == ExitCode.WORK_LEFT
    assert ran.summary["calls"]["total"] == 3
    assert ran.seconds <= 10
    assert ran.summary["halt"] == "unreachable"
    assert "refused" in ran.summary["halt_message"]
    assert ran.summary["contacts"]["not_attempted"] == CONTACTS - 3


def test_a_host_that_does_not_resolve_exits_75(tmp_path: Path) -> None:
    """A host DNS cannot resolve (.invalid never does): exit 75 after 3 calls."""
    source = contacts_csv(tmp_path, 30)
    url = "https://leadlex-bulktag-test.invalid/functions/v1/api-gateway"
    ran = bulktag_run(source, environment(url, tmp_path))
    assert ran.code == ExitCode.WORK_LEFT
    assert ran.summary["calls"]["total"] == 3
    assert "cannot resolve leadlex-bulktag-test.invalid" in ran.summary["halt_message"]


def test_calls_go_through_a_forward_proxy_and_the_key_stays_out_of_its_log(
    tmp_path: Path, tls: Tls
) -> None:
    """HTTPS_PROXY: every call goes through proxy.py (CONNECT tunnels), all ok; the key
    never shows in the proxy's log; NO_PROXY sends the next run around it."""
    source = contacts_csv(tmp_path, 20)
    with (
        running_emulator(*_tls_emulator(tls, "--generate", "20")) as ready,
        running_proxy(tmp_path) as proxy,
    ):
        env = environment(ready["url"], tmp_path, SSL_CERT_FILE=str(tls.ca))
        ran = bulktag_run(source, env | {"HTTPS_PROXY": proxy.url}, "--plan", "unmetered")
        assert ran.code == ExitCode.OK, ran.stderr
        port = ready["url"].split(":")[2].split("/")[0]
        carried = proxy.log.read_text()
        assert f"CONNECT 127.0.0.1:{port}" in carried
        assert DEMO_KEY not in carried
        bypass = env | {"HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}
        around = bulktag_run(source, bypass, "--plan", "unmetered", out="around")
        assert around.code == ExitCode.OK
        assert proxy.log.read_text().count("CONNECT") == carried.count("CONNECT")


def test_a_proxy_that_wants_credentials(tmp_path: Path, tls: Tls) -> None:
    """A proxy answering 407: exit 78 saying to put credentials in HTTPS_PROXY; with them
    in HTTPS_PROXY, every contact ok, and the password is in no output."""
    source = contacts_csv(tmp_path, 20)
    with (
        running_emulator(*_tls_emulator(tls, "--generate", "20")) as ready,
        running_proxy(tmp_path, "--basic-auth", "alice:s3cret-proxy-pw") as proxy,
    ):
        env = environment(ready["url"], tmp_path, SSL_CERT_FILE=str(tls.ca))
        refused = bulktag_run(source, env | {"HTTPS_PROXY": proxy.url})
        assert refused.code == ExitCode.CONFIG
        assert refused.summary["calls"]["total"] <= 5
        assert "407" in refused.summary["halt_message"]
        assert "HTTPS_PROXY" in refused.summary["halt_message"]
        with_credentials = proxy.url.replace("http://", "http://alice:s3cret-proxy-pw@")
        ran = bulktag_run(
            source, env | {"HTTPS_PROXY": with_credentials}, "--plan", "unmetered", out="auth"
        )
    assert ran.code == ExitCode.OK, ran.stderr
    for folder in (refused.folder, ran.folder):
        for path in folder.rglob("*"):
            if path.is_file():
                assert b"s3cret-proxy-pw" not in path.read_bytes(), path
    assert "s3cret-proxy-pw" not in refused.stderr + ran.stderr


def test_an_ssl_cert_file_that_cannot_be_read_is_refused_before_any_call(
    tmp_path: Path, tls: Tls
) -> None:
    """SSL_CERT_FILE naming a missing file: exit 78 naming the variable, no traceback."""
    source = contacts_csv(tmp_path, 5)
    with running_emulator(*_tls_emulator(tls, "--generate", "5")) as ready:
        env = environment(ready["url"], tmp_path, SSL_CERT_FILE=str(tmp_path / "missing.pem"))
        ran = bulktag_run(source, env)
    assert ran.code == ExitCode.CONFIG
    assert f"SSL_CERT_FILE={tmp_path / 'missing.pem'}: cannot load it" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.summary == {}
