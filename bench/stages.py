"""Where bulktag's time goes: its functions timed by name, and ``bulktag validate`` profiled.

``python -m bench.stages FILE`` runs ``bulktag validate FILE`` in this process, its
imports timed (polars, then bulktag's modules that ``validate`` needs), then the command,
with :func:`timed_stages` on; prints the figures as JSON. Only the standard library is
imported before that, so that the process's wall time less the imports and the command
is about its start-up and exit. ``bench.prep`` uses both.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import sys
import time
import types
from pathlib import Path
from typing import Any

#: Functions timed by name (module, name), besides every top-level function of the
#: modules in ``STAGE_MODULES``; a name a module does not have (any more) is skipped.
STAGES = (
    ("bulktag.plan.build", "prepare_plan"),
    ("bulktag.read.sniff", "detect_format"),
    ("bulktag.read.sniff", "sniff_csv"),
    ("bulktag.read.inputs", "read_input"),
    ("bulktag.read.inputs", "_read_csv"),
    ("bulktag.read.inputs", "_read_excel"),
    ("bulktag.read.inputs", "_read_columnar"),
    ("bulktag.read.inputs", "_open_workbook"),
    ("bulktag.read.columns", "map_columns"),
    ("bulktag.read.inputs", "_typed_ids"),
    ("bulktag.plan.build", "build_plan"),
    ("bulktag.read.csvlines", "count_lines"),
    ("bulktag.read.pieces", "parts_for"),
    ("bulktag.read.pieces", "read_pieces"),
    ("bulktag.read.pieces", "_queries"),
    ("bulktag.plan.build", "_write_rejects"),
    ("bulktag.plan.build", "_row_counts"),
    ("bulktag.plan.build", "_write_plan"),
    ("bulktag.read.csvlines", "fix_csv_lines"),
    ("bulktag.send.precheck", "tag_demand"),
    ("bulktag.outputs.console", "describe_plan"),
    ("bulktag.outputs.console", "describe_precheck"),
)
#: Modules whose every top-level function is timed too, whatever its name.
STAGE_MODULES = ("bulktag.plan.build", "bulktag.read.pieces", "bulktag.read.inputs")
#: What ``bulktag validate`` imports, in order (a module that does not exist is skipped).
VALIDATE_IMPORTS = (
    "polars",
    "bulktag.cli.commands",
    "bulktag.plan.build",
    "bulktag.send.precheck",
    "bulktag.outputs.console",
)


def _module(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def timed_stages() -> dict[str, float]:
    """Wrap bulktag's stages to add their wall times up in the returned dict.

    Keys are ``module.function`` (without ``bulktag.``), in the order of their first call;
    the times nest (``plan.build_plan`` holds ``plan._read``). A function imported into
    another of bulktag's modules is wrapped there too.
    """
    targets: list[tuple[str, str]] = list(STAGES)
    for name in STAGE_MODULES:
        module = _module(name)
        if module is not None:
            targets += [
                (name, attr)
                for attr, value in vars(module).items()
                if isinstance(value, types.FunctionType) and value.__module__ == name
            ]
    spent: dict[str, float] = {}
    for module_name, name in dict.fromkeys(targets):
        module = _module(module_name)
        function = getattr(module, name, None)
        if not isinstance(function, types.FunctionType):
            continue
        key = f"{module_name.removeprefix('bulktag.')}.{name}"

        @functools.wraps(function)
        def timed(*args: Any, _key: str = key, _f: Any = function, **kwargs: Any) -> Any:
            spent.setdefault(_key, 0.0)
            started = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                spent[_key] += time.perf_counter() - started

        for loaded in list(sys.modules.values()):
            if getattr(loaded, "__name__", "").startswith("bulktag"):
                for attr, value in list(vars(loaded).items()):
                    if value is function:
                        setattr(loaded, attr, timed)
    return spent


def validate_profile(path: Path) -> dict[str, Any]:
    """``bulktag validate FILE`` in this process: imports, then the command, stages timed."""
    imports: dict[str, float] = {}
    started = time.perf_counter()
    for name in VALIDATE_IMPORTS:
        at = time.perf_counter()
        if _module(name) is not None:
            imports[name] = time.perf_counter() - at
    imports_s = time.perf_counter() - started
    spent = timed_stages()
    cli: Any = importlib.import_module("bulktag.cli.commands")
    at = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["validate", str(path)])
    return {
        "imports_s": imports_s,
        "imports": imports,
        "validate_s": time.perf_counter() - at,
        "exit_code": code,
        "stages": spent,
    }


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.stages FILE")
    print(json.dumps(validate_profile(Path(sys.argv[1]))))


if __name__ == "__main__":
    main()
