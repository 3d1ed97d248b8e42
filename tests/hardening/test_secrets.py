"""The API key stays in the Authorization header: no file, log line, error or repr has it."""

from __future__ import annotations

import argparse
import pickle
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from bulktag.cli.commands import build_parser, main
from bulktag.cli.options import resolve
from bulktag.cli.usage import RefuseSecret
from bulktag.clock import LoopClock
from bulktag.config import ApiKey, load_api_key
from bulktag.emulator import Faults
from bulktag.errors import ExitCode
from bulktag.send.client import BearerAuth, LeadLexClient, make_http_client
from tests.constants import KEY
from tests.helpers import bulktag_env, run_bulktag, running_emulator
from tests.world import World

CANARY = KEY.encode()


def _leaks(folder: Path) -> list[str]:
    """Every file under ``folder`` (outputs, journals, state, logs) holding the canary."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and CANARY in p.read_bytes()]


def test_no_file_of_any_run_holds_the_key(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs of every kind with the canary key: 0 occurrences in files, state, logs, reprs."""
    world = make_world(contacts=40, faults=Faults(fault_rate=0.3, drop_rate=0.2), seed=4)
    state = world.folder / "user-state"  # the user's quota store: every run writes it
    world.environ["BULKTAG_STATE_DIR"] = str(state)
    ids = world.contact_ids
    world.emulator.contacts[ids[0]].tags.append("x")
    source = world.write_csv("in.csv", [(cid, "x") for cid in ids] + [("bad", "x")])
    world.run(str(source), "-vv", "--log-format", "text", "--skip-existing", "--verify-ambiguous")
    world.run(str(source), "-vv", "--log-format", "json", "--format", "parquet")
    job = world.write_job(
        'inputs = ["in.csv"]\nmetrics_file = "metrics.prom"\nskip_existing = true\n'
    )
    world.run_job(job, "-vv")
    world.emulator.keys[KEY].revoked = True  # a 401 path
    world.run(str(source), "-vv", "--log-format", "text")
    key_file = world.folder / "keyfile"
    key_file.write_text(KEY)
    key_file.chmod(0o644)  # warned about, by path only
    world.environ.pop("LEADLEX_API_KEY")
    world.run(str(source), "--api-key-file", str(key_file), "-vv")
    out, err = capsys.readouterr()
    assert KEY not in out + err
    assert "chmod 600" in err
    files = _leaks(world.folder)
    assert files == [str(key_file)]  # the key file itself, and nothing else
    assert (state / "quota.sqlite").is_file()  # the runs wrote the store, yet it holds no key
    assert (world.folder / "job" / "state.sqlite").is_file()  # and the job's own store
    assert _leaks(state) == []


def test_a_process_never_prints_the_key(tmp_path: Path) -> None:
    """bulktag run as a process, valid and invalid keys, debug logs: the key is never printed."""
    with running_emulator(
        "--generate", "5", "--plan", "unmetered", "--key", f"{KEY}:read,write"
    ) as ready:
        with httpx2.Client(
            base_url=ready["url"], headers={"Authorization": f"Bearer {KEY}"}
        ) as client:
            ids = [c["id"] for c in client.get("/v1/contacts").json()["data"]["contacts"]]
        source = tmp_path / "in.csv"
        source.write_text("contact_id,tags\n" + "".join(f"{i},p\n" for i in ids))
        outputs: list[str] = []
        for key, fmt in ((KEY, "json"), (KEY, "text"), (KEY + "x", "json"), (KEY + "x", "text")):
            env = bulktag_env(ready["url"], key)
            result = run_bulktag(
                [
                    "run",
                    str(source),
                    "--plan",
                    "unmetered",
                    "-vv",
                    "--log-format",
                    fmt,
                    "--out",
                    str(tmp_path / f"run-{len(outputs)}"),
                ],
                env,
                timeout=60,
            )
            outputs.append(result.stdout + result.stderr)
    assert [KEY in text for text in outputs] == [False] * 4
    assert _leaks(tmp_path) == []


def test_reprs_and_errors_hide_the_key() -> None:
    """The key object, its auth, the client and the errors about a bad key show no secret."""
    key = ApiKey(KEY)
    assert KEY not in repr(key) + str(key) + repr(BearerAuth(key))
    client = make_http_client("https://leadlex.test", key, concurrency=1, timeout=1)
    assert KEY not in repr(client) + repr(client.headers)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(Exception) as caught:  # noqa: PT011  (any error: its text is the point)
        load_api_key(None, {"LEADLEX_API_KEY": KEY + " with spaces"})
    assert KEY not in str(caught.value)


#: The options of run, validate, check-job and demo that take free text: each a path, a
#: URL, a column, a tag or a separator, never a secret. One added to the parser must be
#: added here, so that no option can take a key, whatever its name.
TEXT_OPTIONS = {
    "--add-tag",
    "--api-key-file",
    "--api-url",
    "--ca-bundle",
    "--data",
    "--delimiter",
    "--email-column",
    "--encoding",
    "--id-column",
    "--job",
    "--metrics-file",
    "--out",
    "--rejects",
    "--resume",
    "--sheet",
    "--tag-prefix",
    "--tag-separators",
    "--tags-column",
}


def test_no_option_takes_a_key_value() -> None:
    """Every option of run, validate, check-job and demo is a flag, a choice, a number
    (its type refuses a key), free text listed in TEXT_OPTIONS, or refuses a secret; so an
    option taking a key fails here whatever its name; --api-key, --key, --token refuse."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    refusing: set[str] = set()
    for name in ("run", "validate", "check-job", "demo"):
        for action in commands.choices[name]._actions:
            if not action.option_strings or action.nargs == 0 or action.choices is not None:
                continue  # positional inputs, flags, --help, choices
            if isinstance(action, RefuseSecret):
                refusing.update(action.option_strings)
                continue
            convert = action.type
            if callable(convert) and convert is not Path:
                with pytest.raises((argparse.ArgumentTypeError, ValueError, TypeError)):
                    convert(KEY)  # a number: a key is refused
                continue
            assert set(action.option_strings) <= TEXT_OPTIONS, (name, action.option_strings)
    assert {"--api-key", "--key", "--token"} <= refusing


def test_tls_verification_cannot_be_turned_off() -> None:
    """The client verifies certificates and host names; no option says otherwise."""
    client = make_http_client("https://leadlex.test", ApiKey(KEY), concurrency=1, timeout=1)
    context: ssl.SSLContext = client._transport._pool._ssl_context  # type: ignore[attr-defined]  # httpcore2 keeps it private
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    options = {o for a in build_parser()._actions for o in a.option_strings}
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    run_options = {o for a in commands.choices["run"]._actions for o in a.option_strings}
    words = ("insecure", "ssl", "tls", "cert")
    assert {o for o in options | run_options if any(w in o for w in words)} == set()


@pytest.mark.anyio
async def test_authorization_never_follows_a_redirect() -> None:
    """A 307 to another host is not followed: that host never sees the key (or any request)."""
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        return httpx2.Response(307, headers={"location": "https://evil.example/steal"})

    http = make_http_client(
        "https://leadlex.test",
        ApiKey(KEY),
        concurrency=1,
        timeout=1,
        transport=httpx2.MockTransport(handler),
    )
    async with http:
        attempt = await LeadLexClient(http, LoopClock()).add_tags(
            "123e4567-e89b-12d3-a456-426614174000", ["x"]
        )
    assert attempt.failure is not None
    assert str(attempt.failure) == "unexpected_response"
    assert [host for host, _ in seen] == ["leadlex.test"]


def test_plain_http_to_a_remote_host_is_refused_before_any_request(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """http:// to a non-loopback host: exit 78, nothing sent, the key never used."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    code = main(
        [
            "run",
            str(source),
            "--api-url",
            "http://leadlex.example.com",
            "--out",
            str(world.folder / "r"),
        ],
        runtime=world.runtime(),
    )
    assert code == ExitCode.CONFIG
    assert world.emulator.requests == {}
    assert "plain http" in capsys.readouterr().err
    assert resolve(
        argparse.Namespace(inputs=["x"]), {"LEADLEX_API_URL": "http://127.0.0.1:9"}
    ).api_url.startswith("http://127.")
