"""An interrupted run, resumed: the same files as if it had never stopped, nothing sent twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx2
import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from bulktag.spec import BY_DEST, NEVER_ON_RESUME
from tests.world import URL, World, new_world, read_results


class Crash(BaseException):
    """The process dies here (what kill -9 does, without a process)."""


def crash_after(world: World, calls: int) -> None:
    sent = {"n": 0}

    def hook(request: httpx2.Request) -> None:
        sent["n"] += 1
        if sent["n"] > calls:
            raise Crash

    world.hook = hook


def test_resume_finishes_as_if_never_stopped(make_world: Callable[..., World]) -> None:
    """Crash after 40 of 100 calls; --resume sends only what is not recorded; same results."""
    world = make_world(contacts=100)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    crash_after(world, 40)
    with pytest.raises(BaseExceptionGroup):
        world.run(str(source), out="run")
    recorded_calls = world.handled_tag_calls()
    assert recorded_calls == 40
    world.hook = None
    code = main(["run", "--resume", str(world.folder / "run")], runtime=world.runtime())
    assert code == ExitCode.OK
    results = read_results(world.folder / "run" / "results.csv")
    assert results["contact_id"].to_list() == world.contact_ids
    assert set(results["status"]) == {"ok"}
    assert world.handled_tag_calls() == 100  # not one call repeated
    summary = json.loads((world.folder / "run" / "summary.json").read_text())
    assert summary["resumed"] is True
    assert summary["calls"]["add_tags"] == 100


TIMING = ("request_id", "finished_at")  # differ between any two runs


def _rows(run_dir: Path, name: str) -> list[dict[str, str]]:
    """A published file's rows, timing columns left out, the folder of the input cut off."""
    frame = read_results(run_dir / name)
    frame = frame.drop([c for c in TIMING if c in frame.columns])
    folder = str(run_dir.parent) + "/"
    return [
        {k: (v or "").replace(folder, "") for k, v in row.items()}
        for row in frame.iter_rows(named=True)
    ]


def _mixed_input(world: World) -> Path:
    """40 contacts with one to three tags, 3 unknown contacts (404), 2 rows rejected."""
    ids = world.contact_ids
    rows = [(cid, ",".join(["a", "b", "c"][: 1 + i % 3])) for i, cid in enumerate(ids[:40])]
    rows[5:5] = [(f"00000000-0000-4000-8000-00000000000{i}", "lost") for i in range(3)]
    rows[20:20] = [("not-an-id", "x"), (ids[0], "")]
    return world.write_csv("in.csv", rows)


def test_a_resumed_run_publishes_the_files_of_an_uninterrupted_one(tmp_path: Path) -> None:
    """The same input, once without a stop and once crashed after 17 calls then resumed:
    results, failures and rejects are the same rows in the same order, with the same
    statuses, tags, errors and attempts (request IDs and finish times aside)."""
    whole = new_world(tmp_path / "whole")
    code, whole_dir = whole.run(str(_mixed_input(whole)), "--concurrency", "4", out="run")
    assert code == ExitCode.FAILURES
    broken = new_world(tmp_path / "broken")
    source = _mixed_input(broken)
    crash_after(broken, 17)
    with pytest.raises(BaseExceptionGroup):
        broken.run(str(source), "--concurrency", "4", out="run")
    broken.hook = None
    code = main(["run", "--resume", str(broken.folder / "run")], runtime=broken.runtime())
    assert code == ExitCode.FAILURES
    assert broken.handled_tag_calls() == whole.handled_tag_calls()  # nothing sent twice
    for name in ("results.csv", "failures.csv", "rejects.csv"):
        expected = _rows(whole_dir, name)
        assert expected, name
        assert _rows(broken.folder / "run", name) == expected, name
    resumed = json.loads((broken.folder / "run" / "summary.json").read_text())
    uninterrupted = json.loads((whole_dir / "summary.json").read_text())
    for key in ("contacts", "failures_by_type", "rejects", "calls", "exit_code"):
        assert resumed[key] == uninterrupted[key], key


def test_a_resumed_sessions_first_404_spends_no_route_check(
    make_world: Callable[..., World],
) -> None:
    """LeadLex answered at the run's URL before the crash, so the resume's first answer, a
    404, is a contact LeadLex does not know: no ``GET /v1/contacts`` to check the URL."""
    world = make_world(contacts=8)
    ids = world.contact_ids
    unknown = "00000000-0000-4000-8000-000000000001"
    source = world.write_csv("in.csv", [(c, "x") for c in [*ids[:5], unknown, *ids[5:]]])
    crash_after(world, 5)  # the unknown contact's call is the one cut
    with pytest.raises(BaseExceptionGroup):
        world.run(str(source), "--concurrency", "1", out="run")
    world.hook = None
    code = main(["run", "--resume", str(world.folder / "run")], runtime=world.runtime())
    assert code == ExitCode.FAILURES
    summary = json.loads((world.folder / "run" / "summary.json").read_text())
    assert summary["calls"] == {"add_tags": 9, "total": 9}
    assert summary["failures_by_type"] == {"not_found": 1}
    assert world.emulator.handled.get("GET /v1/contacts", 0) == 0


def test_a_call_whose_answer_was_lost_is_replayed_on_resume(
    make_world: Callable[..., World],
) -> None:
    """The crash hits after LeadLex applied call 5: the resume resends it with the same key."""
    world = make_world(contacts=10)
    source = world.write_csv("in.csv", [(cid, "x") for cid in world.contact_ids])
    keys: list[str] = []
    transport = world.runtime().transport
    assert transport is not None
    inner: httpx2.AsyncBaseTransport = transport

    class LoseFifthAnswer(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            keys.append(request.headers["idempotency-key"])
            response = await inner.handle_async_request(request)
            if len(keys) == 5:
                raise Crash  # applied by LeadLex, never recorded by bulktag
            return response

    with pytest.raises(BaseExceptionGroup):
        main(
            [
                "run",
                str(source),
                "--out",
                str(world.folder / "run"),
                "--api-url",
                URL,
                "--concurrency",
                "1",
            ],
            runtime=replace(world.runtime(), transport=LoseFifthAnswer()),
        )
    code = main(
        ["run", "--resume", str(world.folder / "run")],
        runtime=replace(world.runtime(), transport=LoseFifthAnswer()),
    )
    assert code == ExitCode.OK
    assert keys.count(keys[4]) == 2  # the lost call went again, with the same Idempotency-Key
    assert world.emulator.replays == 1  # and LeadLex answered it from its replay store
    assert max(world.emulator.tag_calls.values()) == 1  # no contact merged twice


def test_resume_of_a_folder_that_is_not_a_run_is_78(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """--resume on an unrelated folder: one line, exit 78."""
    code = main(["run", "--resume", str(world.folder)], runtime=world.runtime())
    assert code == ExitCode.CONFIG
    assert "not a bulktag run folder" in capsys.readouterr().err


def test_a_second_run_into_the_same_folder_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out onto a folder that holds a finished run: exit 2, asking for a new folder (a
    finished run has nothing to continue)."""
    source = world.write_csv("in.csv", [(world.contact_ids[0], "x")])
    world.run(str(source), out="same")
    code, _ = world.run(str(source), out="same")
    assert code == ExitCode.USAGE
    assert "holds a finished run" in capsys.readouterr().err


@pytest.mark.parametrize("dest", sorted(o.dest for o in NEVER_ON_RESUME))
def test_what_a_resume_never_takes_is_refused(
    world: World, capsys: pytest.CaptureFixture[str], dest: str
) -> None:
    """--resume continues the run's own inputs, in its own folder, with its own settings:
    INPUT, --out and --job with it are refused (exit 2), each with why, as the option spec
    says (each option's ``resume``), whatever the value."""
    job = world.write_job('inputs = ["x.csv"]\n')
    given = {"inputs": ["x.csv"], "out": ["--out", "elsewhere"], "job": ["--job", str(job)]}
    argv = ["run", *given[dest], "--resume", str(world.folder)]
    assert main(argv, runtime=world.runtime()) == 2
    option = BY_DEST[dest]
    err = capsys.readouterr().err
    assert f"--resume {option.never_why}; give no {option.flag or 'INPUT'}" in err
