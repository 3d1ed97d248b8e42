"""The package stays readable: no module over 450 lines (each reads in one sitting; a
module that grows past it is split by what its parts own, as run/, send/ and read/ were).
The layers between stages are import-linter's (`make lint`)."""

from __future__ import annotations

from pathlib import Path

LONGEST = 450
PACKAGE = Path(__file__).resolve().parent.parent / "bulktag"


def test_no_module_is_over_450_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > LONGEST
    }
    assert long == {}


#: How a plan file's or an output's name was spelled outside the run folder.
SPELLED = ('"plan-', '"plan.parquet"', '"results.{', 'f"results.', ".replace(plan.path")


def test_the_run_folder_owns_the_plans_files() -> None:
    """The plan's scratch files and every move between them are the run folder's
    (``bulktag/run/folder.py``): before, ``plan-raw``, ``plan-start``, ``plan-ledger`` and
    ``plan-checked`` were spelled and replaced in the runner, the session and the skip
    stage, and the output names in the publisher."""
    owner = PACKAGE / "run" / "folder.py"
    spelled = {
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if path != owner and any(name in path.read_text(encoding="utf-8") for name in SPELLED)
    }
    assert spelled == set()


def test_a_session_is_given_the_settings_it_uses() -> None:
    """A session's target holds the five settings a session reads, not the run's whole
    RunConfig; the key carries where it came from (for a 401's message), so no stage
    threads a ``key_source`` down to the dispatcher."""
    from dataclasses import fields

    from bulktag.run.session import Target

    names = {f.name for f in fields(Target)}
    assert "config" not in names
    assert "key_source" not in names
    threaded = {
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if "key_source=" in path.read_text(encoding="utf-8")
    }
    assert threaded <= {"bulktag/run/session.py"}  # Dispatcher(key_source=target.key.source)
