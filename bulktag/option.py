"""One setting of ``run`` and ``validate``: its flag, its job-file key, its kind and
range, its default, its help, and what ``--resume`` does with it. The settings themselves
are the option spec, :mod:`bulktag.spec`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = ["BOTH", "RUN", "Derived", "Kind", "OnResume", "Option", "derived"]

#: text, a path, a whole number, a number, one of ``choices``, a flag (on or absent), a
#: switch (``--x`` / ``--no-x``), a repeatable flag (a list in a job file), a count (-vv).
Kind = Literal["text", "path", "whole", "number", "choice", "flag", "switch", "list", "count"]
#: On ``--resume``: ``stored``, the run's own setting (the same value may be given again,
#: another is refused); ``takes``, the command line's (how to run, how to reach LeadLex);
#: ``never``, refused (``--out``: the run folder is the one ``--resume`` names).
OnResume = Literal["stored", "takes", "never"]

_TOML: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "path": (str,),
    "choice": (str,),
    "whole": (int,),
    "number": (int, float),
    "flag": (bool,),
    "switch": (bool,),
    "list": (list,),
    "count": (int,),
}

RUN = frozenset({"run"})
BOTH = frozenset({"run", "validate"})


@dataclass(frozen=True, slots=True)
class Option:
    """One setting. ``help`` may say ``{default}``, ``{low}`` and ``{high}``."""

    dest: str  #: argparse's destination (and, unless ``stored_as``, config.json's name)
    help: str
    flag: str | None = None  #: None: a job file's key only
    job: tuple[str, str] | None = None  #: (table, key) in a job file; "" is the top level
    kind: Kind = "text"
    default: Any = None  #: what a run uses when neither a flag nor a job file sets it
    low: float | None = None  #: the least value
    above: bool = False  #: the value must be more than ``low``
    high: float | None = None  #: the most value
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    group: str = ""  #: the help's section ("" for the command's own)
    commands: frozenset[str] = RUN
    resume: OnResume = "stored"
    stored_as: str | None = None  #: its name in config.json when not ``dest``
    toml: tuple[type, ...] = field(default=())  #: a job file's types when not the kind's
    short: str | None = None  #: a one-letter flag besides ``flag`` (``-v``)
    required: str = ""  #: a job file must set it: what it is, for the message
    in_jobs: Any = None  #: a job's run's default when not ``default`` (None: the same)
    #: with ``resume="never"``: why, for the message (``--out``: "continues RUN_DIR in place")
    never_why: str = ""

    @property
    def toml_types(self) -> tuple[type, ...]:
        return self.toml or _TOML[self.kind]

    @property
    def where(self) -> str:
        """How a job file's message names the key: ``[limits] concurrency``."""
        assert self.job is not None
        table, key = self.job
        return f"[{table}] {key}" if table else key

    def problem(self, value: float) -> str | None:
        """What is wrong with a number for this setting (None when it is in range)."""
        if self.low is None and self.high is None:
            return None
        low = 0 if self.low is None else self.low
        if not math.isfinite(value):
            return "must be a finite number"
        if self.high is not None and not low <= value <= self.high:
            return f"must be between {low:g} and {self.high:g}"
        if self.above and value <= low:
            return f"must be more than {low:g}"
        if value < low:
            return "cannot be negative" if low == 0 else f"must be at least {low:g}"
        return None

    def parse(self, text: str) -> int | float:
        """A flag's text as this setting's number; ValueError saying what is wrong."""
        try:
            value: int | float = int(text) if self.kind == "whole" else float(text)
        except ValueError:
            what = "a whole number" if self.kind == "whole" else "a number"
            raise ValueError(f"{text!r} is not {what}") from None
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(f"{text} {problem}")
        return value

    def help_text(self) -> str:
        return self.help.format(
            default=_shown(self.default), in_jobs=_shown(self.in_jobs), low=self.low, high=self.high
        )

    def default_for(self, in_a_job: bool) -> Any:
        """What a run uses when neither a flag nor a job file sets it."""
        return self.in_jobs if in_a_job and self.in_jobs is not None else self.default


def _shown(value: Any) -> Any:
    """A default as the help says it: a switch's as on or off."""
    return ("on" if value else "off") if isinstance(value, bool) else value


class Derived(NamedTuple):
    """What the spec's options give (:func:`derived`)."""

    by_dest: Mapping[str, Option]  #: each option by its destination
    #: a job file's tables and their keys (``{"limits": {"concurrency": Option}}``; "" the top)
    job_tables: Mapping[str, Mapping[str, Option]]
    resume_takes: frozenset[str]  #: what --resume takes from the command line
    never_on_resume: tuple[Option, ...]  #: what --resume refuses whatever its value
    stored_as: Mapping[str, str]  #: the settings config.json stores under another name


def derived(options: Sequence[Option]) -> Derived:
    """What the spec's ``options`` give: each by its destination; a job file's tables and
    their keys; the flags ``--resume`` takes from the command line (and argparse's own
    destinations), and those it refuses; the flags whose setting ``config.json`` stores
    under another name."""
    by_dest = {o.dest: o for o in options}
    tables = {
        table: {o.job[1]: o for o in options if o.job is not None and o.job[0] == table}
        for table in dict.fromkeys(o.job[0] for o in options if o.job is not None)
    }
    takes = frozenset(o.dest for o in options if o.resume == "takes") | {"handler", "command"}
    never = tuple(o for o in options if o.resume == "never")
    stored = {o.dest: o.stored_as for o in options if o.stored_as}
    return Derived(by_dest, tables, takes, never, stored)
