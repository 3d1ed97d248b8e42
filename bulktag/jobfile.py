"""Job files (``jobs/*.toml``): everything a recurring run needs, checked strictly.

Relative paths in a job file are relative to the job file's folder, so a cron
entry works from any working directory. Unknown keys are errors: a typo must
not silently fall back to a default. See ``jobs/nightly-export.toml`` for every
key with its meaning. The keys, their types and ranges are the option spec's
(:mod:`bulktag.spec`): a key and its flag allow the same values.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulktag.errors import ConfigError
from bulktag.spec import JOB_TABLES

__all__ = ["JobFile", "load_job"]

#: The job file's tables and keys, from the option spec (the top level is "").
_SECTIONS = JOB_TABLES


@dataclass(frozen=True, slots=True)
class JobFile:
    """A parsed job file; ``values[(section, key)]`` holds what it set."""

    path: Path
    name: str
    values: dict[tuple[str, str], Any] = field(default_factory=dict)

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.values.get((section, key), default)

    def path_value(self, section: str, key: str) -> Path | None:
        raw = self.get(section, key)
        if raw is None:
            return None
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.path.parent / path

    @property
    def inputs(self) -> tuple[str, ...]:
        base = self.path.parent
        return tuple(
            item if item == "-" or Path(item).expanduser().is_absolute() else str(base / item)
            for item in self.get("", "inputs", [])
        )

    @property
    def out(self) -> Path:
        out = self.path_value("", "out")
        assert out is not None  # required by load_job
        return out


def _fail(path: Path, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}")


def load_job(path: Path) -> JobFile:
    """Parse and check a job file; raises ConfigError (exit 78) with one clear line.

    Written by any editor: a UTF-8 byte-order mark (Notepad's) is dropped, and Windows'
    and old Macs' line ends (CRLF, CR) read as line ends; UTF-16 (Notepad's "Unicode")
    is named with the fix."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot read the job file ({exc.strerror})") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(path, "the job file is UTF-16 text: save it as UTF-8") from None
    try:
        text = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(
            path, f"the job file is not UTF-8 text (line {line}): save it as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML: {exc}") from None
    values = _flatten(path, data)
    _check_whole(path, values)
    name = values.get(("", "name")) or path.stem
    return JobFile(path=path, name=name, values=values)


def _flatten(path: Path, data: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """``{(section, key): value}``, each value checked on its own."""
    values: dict[tuple[str, str], Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in _SECTIONS or not key:
                known = [s for s in _SECTIONS if s]
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"did you mean [{close[0]}]? " if close else ""
                raise _fail(path, f"unknown table [{key}]; {hint}known: {', '.join(known)}")
            for inner, inner_value in value.items():
                values[(key, inner)] = _check(path, key, inner, inner_value)
        else:
            values[("", key)] = _check(path, "", key, value)
    return values


def _check_whole(path: Path, values: dict[tuple[str, str], Any]) -> None:
    """What one value cannot tell: required keys, list items, ranges."""
    for table in _SECTIONS.values():
        for option in table.values():
            assert option.job is not None
            if option.required and not values.get(option.job):
                raise _fail(path, f"'{option.where}' is required: {option.required}")
            if option.kind == "list" and any(
                not isinstance(i, str) or not i for i in values.get(option.job, [])
            ):
                raise _fail(path, f"{option.where} must be a list of non-empty strings")


def _check(path: Path, section: str, key: str, value: Any) -> Any:
    known = _SECTIONS[section]
    if key not in known:
        raise _fail(path, _unknown_key(section, key))
    option = known[key]
    where = option.where
    expected = option.toml_types
    if isinstance(value, bool) and bool not in expected:
        raise _fail(path, f"{where} must be {_type_name(expected)}, not true/false")
    if not isinstance(value, expected):
        raise _fail(path, f"{where} must be {_type_name(expected)}, not {type(value).__name__}")
    if option.choices and value not in option.choices:
        raise _fail(path, f"{where} must be one of {', '.join(option.choices)}, not {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        problem = option.problem(value)
        if problem is not None:
            raise _fail(path, f"{where} {problem}, not {value!r}")
    return str(value) if key == "sheet" else value


def _table(section: str) -> str:
    return f"[{section}]" if section else "the top level (before any [table])"


def _unknown_key(section: str, key: str) -> str:
    """Where the key belongs if another table has it, else the closest names here."""
    where = f"[{section}] {key}" if section else key
    homes = [other for other, keys in _SECTIONS.items() if other != section and key in keys]
    if homes:
        return f"{where!r} belongs in {_table(homes[0])}: move it there"
    known = _SECTIONS[section]
    everywhere = {name: table for table, keys in _SECTIONS.items() for name in keys}
    close = difflib.get_close_matches(key, [*known, *everywhere], n=1, cutoff=0.6)
    hint = ""
    if close:
        table = section if close[0] in known else everywhere[close[0]]
        hint = f"did you mean {close[0]!r}" + ("" if table == section else f" in {_table(table)}")
        hint += "? "
    return f"unknown key {where!r}; {hint}known in {_table(section)}: {', '.join(known)}"


def _type_name(types: tuple[type, ...]) -> str:
    names = {
        "str": "a string",
        "int": "a whole number",
        "float": "a number",
        "list": "a list",
        "bool": "true or false",
    }
    return " or ".join(names.get(t.__name__, t.__name__) for t in types)
