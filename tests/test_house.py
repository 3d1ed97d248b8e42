"""The package stays readable: no module over 450 lines (each reads in one sitting; a
module that grows past it is split by what its parts own, as run/, send/ and read/ were).
The layers between stages are import-linter's (`make lint`)."""

from __future__ import annotations

import ast
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


#: The files of a run folder, by name (and the job's page of its nights).
RUN_FOLDER_NAMES = {
    ".bulktag",
    "config.json",
    "summary.json",
    "report.html",
    "history.html",
    "journal.sqlite",
    "precheck.json",
    "plan.json",
    "plan.parquet",
    "rejects.parquet",
    "plan-raw.parquet",
    "plan-draft.parquet",
    "applied.parquet",
    "permanent.parquet",
}
#: The published files, ``{stem}.{format}`` (and globs of them: ``failures.*``).
OUTPUT_PREFIXES = ("results.", "failures.", "rejects.")


def _names_spelled(path: Path) -> set[str]:
    """The run folder's file names among ``path``'s string constants, docstrings aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        if id(node) in docstrings:
            continue
        text = node.value
        if text in RUN_FOLDER_NAMES or text.startswith(OUTPUT_PREFIXES):
            found.add(text)
        found |= {name for name in RUN_FOLDER_NAMES if f"/{name}" in text}
    return found


def test_one_module_names_a_run_folders_files() -> None:
    """Every name of a run folder's files is ``bulktag/state/rundir.py``'s, and every move
    between the plan's files is the run folder's (``bulktag/run/folder.py``). Before,
    ``plan-raw``, ``plan-start``, ``plan-ledger`` and ``plan-checked`` were spelled and
    replaced in the runner, the session and the skip stage, the output names in the
    publisher, and ``.bulktag/config.json``, ``summary.json``, ``report.html`` and
    ``failures.*`` in the pages, the history, the readers, the demo and the resume check
    (the pages read ``config.json`` without its schema check)."""
    owner = PACKAGE / "state" / "rundir.py"
    spelled = {
        str(path.relative_to(PACKAGE.parent)): names
        for path in PACKAGE.rglob("*.py")
        if path != owner and "emulator" not in path.parts and (names := _names_spelled(path))
    }
    assert spelled == {}
    moved = {
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if path != PACKAGE / "run" / "folder.py"
        and ".replace(plan.path" in path.read_text(encoding="utf-8")
    }
    assert moved == set()


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


def test_the_architecture_names_every_module() -> None:
    """``docs/architecture.md`` is the map: a module it does not name (``run/stored.py``
    moved, ``spec.py`` became ``spec/``, and the map said neither) is a module a newcomer
    cannot place."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    unnamed = {
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py") and f"`{path.name}`" not in text
    }
    assert unnamed == set()
