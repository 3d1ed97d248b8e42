"""A run folder's ``config.json``: which run it holds, when it started, and the settings
it started with, kept so that a resumed run is the same run.

:class:`StoredRun` is the file as a value: :meth:`StoredRun.to_dict` writes it,
:meth:`StoredRun.from_dict` reads it (a newer schema is refused, an older one brought up
to date, settings a newer patch release added are ignored). What a resume takes from the
command line, rather than from the run, is each option's ``resume`` in the option spec
(:mod:`bulktag.spec`, whence :data:`RESUME_TAKES` and :data:`NEVER_ON_RESUME`);
:meth:`StoredRun.differing` names the flags that would change what the run started with.
A stored number out of its option's range (a hand-edited file) is refused as the flag
would be: :meth:`StoredRun.problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from bulktag import __version__
from bulktag.config import DispatchSettings, JobSettings, ReadOptions, RunConfig
from bulktag.spec import NEVER_ON_RESUME, OPTIONS, RESUME_TAKES, STORED_AS
from bulktag.state.rundir import CONFIG_SCHEMA

__all__ = ["CONFIG_SCHEMA", "NEVER_ON_RESUME", "RESUME_TAKES", "STORED_AS", "StoredRun"]

#: What a resume refuses whatever its value (told apart, before the values are compared).
_NEVER = frozenset(o.dest for o in NEVER_ON_RESUME)
#: Each option with a range by the name config.json stores it under.
_RANGED = {STORED_AS.get(o.dest, o.dest): o for o in OPTIONS if (o.low, o.high) != (None, None)}

_UNKNOWN = object()


def _known(kind: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` less the keys ``kind`` (a dataclass) does not have (a newer bulktag's)."""
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in values.items() if k in names}


def _path(value: object) -> Path | None:
    return None if value is None else Path(str(value))


def _job_to_dict(job: JobSettings) -> dict[str, Any]:
    return {
        **asdict(job),
        "folder": str(job.folder),
        "file": None if job.file is None else str(job.file),
    }


def _job_from_dict(data: Mapping[str, Any]) -> JobSettings:
    return JobSettings(
        **_known(
            JobSettings, {**data, "folder": Path(data["folder"]), "file": _path(data.get("file"))}
        )
    )


def _read_from_dict(data: Mapping[str, Any]) -> ReadOptions:
    return ReadOptions(
        **_known(
            ReadOptions,
            {
                **data,
                "tags_columns": tuple(data["tags_columns"]),
                "static_tags": tuple(data["static_tags"]),
                "cut_suspects": tuple(data.get("cut_suspects", ())),
            },
        )
    )


@dataclass(frozen=True, slots=True)
class StoredRun:
    """What ``config.json`` holds."""

    run_id: str
    started_at: float  #: Unix seconds
    config: RunConfig  #: the settings the run started with
    bulktag: str = __version__  #: the version that started it

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "schema": CONFIG_SCHEMA,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "bulktag": self.bulktag,
            "inputs": list(c.inputs),
            "api_url": c.api_url,
            "key_file": None if c.key_file is None else str(c.key_file),
            "key_env": c.key_env,
            "plan_name": c.plan_name,
            "read": asdict(c.read),
            "dispatch": asdict(c.dispatch),
            "output_format": c.output_format,
            "dry_run": c.dry_run,
            "force": c.force,
            "skip_existing": c.skip_existing,
            "job": None if c.job is None else c.job.name,
            "job_settings": None if c.job is None else _job_to_dict(c.job),
            "ca_bundle": None if c.ca_bundle is None else str(c.ca_bundle),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], given: RunConfig) -> StoredRun:
        """The stored run, its settings over ``given``'s (the command line's), but for what
        a resume takes from the command line (:data:`RESUME_TAKES`: the key file and the
        CA bundle when given) and the job a night resumes it for. ``data`` is brought up
        to date first (an earlier bulktag's schema 0 had no job settings, no cut suspects,
        no CA bundle); the caller refuses a newer schema."""
        data = cls.upgraded(data)
        config = replace(
            given,
            inputs=tuple(data["inputs"]),
            api_url=data["api_url"],
            api_url_from="as the run started (its config.json)",
            key_file=given.key_file or _path(data["key_file"]),
            key_env=data["key_env"],
            plan_name=data["plan_name"],
            read=_read_from_dict(data["read"]),
            dispatch=DispatchSettings(**_known(DispatchSettings, data["dispatch"])),
            output_format=data["output_format"],
            dry_run=data["dry_run"],
            force=data["force"],
            skip_existing=data["skip_existing"],
            ca_bundle=given.ca_bundle or _path(data["ca_bundle"]),
            job=given.job or cls.job_of(data),
        )
        return cls(str(data["run_id"]), float(data["started_at"]), config, str(data["bulktag"]))

    @staticmethod
    def upgraded(data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` as this schema reads it: an older file's missing keys filled in."""
        found = dict(data)
        if int(found.get("schema", 0)) < 1:
            found.setdefault("job_settings", None)
            found.setdefault("ca_bundle", None)
            found.setdefault("bulktag", "0")
            found["read"] = {**found["read"], "cut_suspects": found["read"].get("cut_suspects", [])}
        job = found.get("job_settings")
        if isinstance(job, Mapping) and job.get("ledger_days", 0) is None:
            found["job_settings"] = {**job, "ledger_days": 0.0}  # an earlier "never"
        found["schema"] = CONFIG_SCHEMA
        return found

    @staticmethod
    def problems(data: Mapping[str, Any]) -> list[str]:
        """The stored numbers out of their option's range, each as a flag's would be told."""
        sections = [data, data.get("read"), data.get("dispatch"), data.get("job_settings")]
        found = []
        for section in (s for s in sections if isinstance(s, Mapping)):
            for name, value in section.items():
                option = _RANGED.get(name)
                if option is None or isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                problem = option.problem(value)
                if problem is not None:
                    found.append(f"{name} {value!r} {problem}")
        return found

    @staticmethod
    def job_of(data: Mapping[str, Any]) -> JobSettings | None:
        settings = data.get("job_settings")
        return None if settings is None else _job_from_dict(settings)

    @staticmethod
    def flat(data: Mapping[str, Any]) -> dict[str, Any]:
        """The stored settings, by name, their sections (read, dispatch) flattened."""
        flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
        for section in ("read", "dispatch"):
            if isinstance(data.get(section), dict):
                flat.update(data[section])
        return flat

    @staticmethod
    def differing(given: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
        """The flags among ``given`` (argparse's destinations and values) that a resume does
        not take and whose value differs from the run's (``data``: its config.json); what it
        never takes (:data:`NEVER_ON_RESUME`) is refused before, whatever its value."""
        stored = StoredRun.flat(data)
        return sorted(
            "--" + dest.replace("_", "-")
            for dest, value in given.items()
            if dest not in RESUME_TAKES
            and dest not in _NEVER
            and not dest.startswith("_")
            and value not in (None, False)
            and not _same(value, stored.get(STORED_AS.get(dest, dest), _UNKNOWN))
        )


def _same(given: Any, stored: Any) -> bool:
    """Whether a flag's value is the run's own (URLs alike but for a trailing slash)."""
    if stored is _UNKNOWN:
        return False
    if isinstance(given, str) and isinstance(stored, str):
        return given.rstrip("/") == stored.rstrip("/")
    if isinstance(given, list | tuple) and isinstance(stored, list | tuple):
        return list(given) == list(stored)
    return bool(given == stored)
