"""The option spec: every setting of ``run`` and ``validate``, said once (in
:mod:`~bulktag.spec.reading`, the options both commands have; in
:mod:`~bulktag.spec.running`, those of ``run`` alone).

One :class:`Option` names a setting's flag, its key in a job file, its kind and range,
its default, its help, and what ``--resume`` does with it. Everything else is derived:

- the command line (:func:`bulktag.cli.options.add_options` builds argparse from it);
- job files' keys, their types and ranges (:mod:`bulktag.jobfile`);
- the defaults the help shows, those of the dataclasses a run uses (``ReadOptions``,
  ``DispatchSettings``);
- which flags a resume takes from the command line and which it refuses, the name each
  stored setting has in a run folder's ``config.json``, and the ranges its values are
  checked against when it is read (:mod:`bulktag.state.stored`).

A flag and a job key check their values with the same :meth:`Option.problem`.
"""

from __future__ import annotations

from bulktag.option import Option, derived
from bulktag.spec.reading import READING
from bulktag.spec.running import RUNNING

__all__ = [
    "BY_DEST",
    "JOB_TABLES",
    "NEVER_ON_RESUME",
    "OPTIONS",
    "RESUME_TAKES",
    "STORED_AS",
    "Option",
]

#: Every option, in the help's order.
OPTIONS: tuple[Option, ...] = (*READING, *RUNNING)
BY_DEST, JOB_TABLES, RESUME_TAKES, NEVER_ON_RESUME, STORED_AS = derived(OPTIONS)
