"""A night whose inputs have not changed: its plan is the carry-over alone.

A job under the quota works through a backlog for many nights, and each night its export
lands again, often the same bytes. Re-reading it to merge the carry-over into it cost a
10M-pair backlog 27 s and 1.5 GiB a night, for a plan the carry-over already is. So the
job notes what each night's plan was made from (:class:`Fingerprint`): the bytes of every
input, the settings that shape a plan, the bulktag that read them, and the bytes of the
carry-over the night left. The next night, when all of it is the same, reads only the
carry-over, which the ledger and the pairs failed for good are then taken from as usual.

Why that plan is the same as a full read's: a night's plan is its inputs' pairs less the
ledger and the failed pairs, and what the night does not settle (applied: the ledger;
failed for good: the failed pairs; found in the CRM by a pre-check: the ledger) it
carries over. So with the same inputs, read the same way, every pair a full read would
plan is in the carry-over, the ledger or the failed pairs; the ledger and the failed
pairs only grow between two nights, and both are taken from the plan anyway.

Where that argument does not hold, nothing is noted, and the next night reads everything:
``--force`` or ``--retry-permanent`` (the ledger or the failed pairs not taken), ``[ledger]
days`` (pairs leave the ledger with time), the ledger off, a night that matched contacts
by email (the directory changes from day to day), or a dry run; and a night clears what
the last one noted when it starts, so one that does not end (an error, a kill) leaves
nothing to plan from. A carry-over changed or removed since (by a person) differs from
the one noted: everything is read again too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bulktag import __version__
from bulktag.config import RunConfig
from bulktag.machine import digest

__all__ = ["Fingerprint", "reliable"]


def reliable(config: RunConfig) -> bool:
    """Whether a night run with ``config`` may be planned from its carry-over alone when
    nothing changed (see the module docstring), and may note what it was made from."""
    job = config.job
    return (
        job is not None
        and job.ledger
        and not job.ledger_days
        and not config.force
        and not config.read.retry_permanent
        and config.read.match != "email"
        and "-" not in config.inputs
    )


def _settings(config: RunConfig) -> dict[str, object]:
    """What shapes a plan besides the inputs' bytes: how they are read, where to."""
    read = dataclasses.asdict(config.read)
    for name in ("cut_suspects", "settle_seconds"):  # when to read, not how
        read.pop(name)
    return {"bulktag": __version__, "read": read, "api_url": config.api_url}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a night's plan is made from: its inputs' bytes, by path, and its settings."""

    inputs: str  #: the hash of the settings and each input's path and bytes

    @classmethod
    def of(cls, config: RunConfig, files: Sequence[str]) -> Fingerprint:
        """The fingerprint of ``files`` (the job's inputs, expanded; the carry-over not
        among them) read with ``config``; each file read once, in full."""
        found = hashlib.sha256(json.dumps(_settings(config), sort_keys=True).encode())
        for name in files:
            found.update(json.dumps([name, digest(Path(name))]).encode())
        return cls(found.hexdigest())

    def with_carry_over(self, carry: Path) -> str:
        """The fingerprint with the carry-over as it is now (or its absence)."""
        left = digest(carry) if carry.is_file() else "none"
        return hashlib.sha256(f"{self.inputs}\n{left}".encode()).hexdigest()
