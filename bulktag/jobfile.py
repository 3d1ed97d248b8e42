"""Job files (``jobs/*.toml``): everything a recurring run needs, checked strictly.

Relative paths in a job file are relative to the job file's folder, so a cron
entry works from any working directory. Unknown keys are errors: a typo must
not silently fall back to a default. See ``jobs/nightly-export.toml`` for every
key with its meaning.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulktag.config import OUTPUT_FORMATS
from bulktag.errors import ConfigError
from bulktag.leadlex import PLANS

__all__ = ["JobFile", "load_job"]

_SECTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "": {
        "name": str,
        "inputs": list,
        "out": str,
        "keep_runs": int,
        "format": str,
        "metrics_file": str,
        "dry_run": bool,
        "skip_existing": bool,
        "verify_ambiguous": bool,
        "report": bool,
    },
    "read": {
        "delimiter": str,
        "encoding": str,
        "sheet": (str, int),
        "header_row": int,
        "id_column": str,
        "tags_columns": list,
        "tag_separators": str,
        "settle_seconds": (int, float),
    },
    "tags": {"case": str, "prefix": str, "add": list},
    "api": {"url": str, "key_env": str, "key_file": str, "ca_bundle": str},
    "limits": {
        "plan": str,
        "rate_per_minute": (int, float),
        "quota_reserve": int,
        "concurrency": int,
        "timeout": (int, float),
        "max_attempts": int,
        "retry_time": (int, float),
        "max_wait": (int, float),
        "grace": (int, float),
    },
    "ledger": {"enabled": bool, "days": (int, float)},
}
_CHOICES = {
    ("", "format"): OUTPUT_FORMATS,
    ("tags", "case"): ("preserve", "lower"),
    ("limits", "plan"): tuple(PLANS),
}


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
    if not values.get(("", "inputs")):
        raise _fail(path, "'inputs' is required: a list of files or globs")
    if not values.get(("", "out")):
        raise _fail(path, "'out' is required: the job's folder (state, runs)")
    for item in values[("", "inputs")]:
        if not isinstance(item, str) or not item:
            raise _fail(path, "'inputs' must be a list of non-empty strings")
    for section, key in (("read", "tags_columns"), ("tags", "add")):
        if any(not isinstance(i, str) for i in values.get((section, key), [])):
            raise _fail(path, f"[{section}] {key} must be a list of strings")
    header_row = values.get(("read", "header_row"))
    if header_row is not None and header_row < 1:
        raise _fail(path, "[read] header_row must be a line or row number from 1")
    settle = values.get(("read", "settle_seconds"))
    if settle is not None and not 0 <= settle <= 86_400:
        raise _fail(path, "[read] settle_seconds must be between 0 and 86400 (a day)")
    keep = values.get(("", "keep_runs"))
    if keep is not None and keep < 1:
        raise _fail(path, "keep_runs must be at least 1")
    for key in ("concurrency", "max_attempts", "timeout", "rate_per_minute", "retry_time"):
        value = values.get(("limits", key))
        if value is not None and value <= 0:
            raise _fail(path, f"[limits] {key} must be more than 0, not {value}")
    concurrency = values.get(("limits", "concurrency"))
    if concurrency is not None and concurrency > 256:
        raise _fail(path, f"[limits] concurrency must be at most 256, not {concurrency}")


def _check(path: Path, section: str, key: str, value: Any) -> Any:
    known = _SECTIONS[section]
    where = f"[{section}] {key}" if section else key
    if key not in known:
        raise _fail(path, _unknown_key(section, key))
    expected = known[key]
    if (
        isinstance(value, bool)
        and expected is not bool
        and bool not in (expected if isinstance(expected, tuple) else (expected,))
    ):
        raise _fail(path, f"{where} must be {_type_name(expected)}, not true/false")
    if not isinstance(value, expected):
        raise _fail(path, f"{where} must be {_type_name(expected)}, not {type(value).__name__}")
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise _fail(path, f"{where} must be one of {', '.join(choices)}, not {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise _fail(path, f"{where} cannot be negative")
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


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {
        "str": "a string",
        "int": "a whole number",
        "float": "a number",
        "list": "a list",
        "bool": "true or false",
    }
    return " or ".join(names.get(t.__name__, t.__name__) for t in types)
