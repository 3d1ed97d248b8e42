"""bulktag's job-level errors and its exit codes: a contract scripts rely on.

Row-level problems never raise: they become reject or result rows and the job
goes on. Job-level problems stop it with one line and one of these codes::

    BulkTagError                 (root; exit code on the class)
    ├── UsageError               2   bad command line
    ├── InputError               65  input unusable: missing column, unreadable file
    ├── WorkLeftError            75  another run holds the job's lock
    ├── ConfigError              78  bad job file, URL, key file, output folder
    └── MachineError          75/78  a fault of the machine (bulktag.machine): a full
                                     disk (75), a read-only folder (78), ...

A key LeadLex refuses (77) is no exception: the run records it as a halt, and its
summary's exit code says so. A bug (any other exception) ends in one line, the traceback
written to a file, and exit 70: never 1, which scripts read as "some rows failed".

Precedence when a finished run has several outcomes (highest first):
77 key rejected > 78 a run fault configuration fixes (an untrusted certificate, a
wrong URL, an answer that is not LeadLex's, a proxy's 407) > 75 work left to re-run >
1 permanent failures or rejects > 0. 65, 2 and 78 for bad configuration are raised
before any request is made.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import IntEnum

__all__ = [
    "KEY_SHAPE",
    "BulkTagError",
    "ConfigError",
    "ExitCode",
    "InputError",
    "UsageError",
    "WorkLeftError",
    "redact",
]


class ExitCode(IntEnum):
    """Exit codes (sysexits.h where one fits)."""

    OK = 0  #: every contact ok (or skipped as already done)
    FAILURES = 1  #: finished; permanent failures or rejected rows remain
    USAGE = 2  #: bad command line
    INPUT_UNUSABLE = 65  #: EX_DATAERR: input cannot be read at all
    SOFTWARE = 70  #: EX_SOFTWARE: a bug in bulktag (the traceback is in a file)
    WORK_LEFT = 75  #: EX_TEMPFAIL: quota spent, interrupted, retryable failures, locked
    KEY_REJECTED = 77  #: EX_NOPERM: key invalid, revoked, expired or lacking permission
    CONFIG = 78  #: EX_CONFIG: configuration error, or a run fault configuration fixes

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "all contacts ok",
    ExitCode.FAILURES: "finished with permanent failures or rejected rows",
    ExitCode.USAGE: "usage error",
    ExitCode.INPUT_UNUSABLE: "input unusable (nothing was sent)",
    ExitCode.WORK_LEFT: (
        "work left to re-run: quota spent, interrupted, retryable failures, LeadLex "
        "unreachable or down longer than --max-wait, job locked, or a fault of the machine "
        "a re-run recovers from (a full disk)"
    ),
    ExitCode.SOFTWARE: "a bug in bulktag: the message names the file with the traceback",
    ExitCode.KEY_REJECTED: "API key invalid or lacking permission",
    ExitCode.CONFIG: (
        "configuration error: bad settings (nothing was sent), or a run-wide fault "
        "configuration fixes (certificate, URL, proxy, a read-only folder)"
    ),
}


class BulkTagError(Exception):
    """Root of bulktag's errors; ``cli`` prints the message and exits with ``exit_code``."""

    exit_code: ExitCode = ExitCode.CONFIG


class UsageError(BulkTagError):
    exit_code = ExitCode.USAGE


class ConfigError(BulkTagError):
    exit_code = ExitCode.CONFIG


class InputError(BulkTagError):
    """Input that cannot be used at all; names the file and, when known, line and column."""

    exit_code = ExitCode.INPUT_UNUSABLE

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        where = source or ""
        if source and line is not None:
            where += f":{line}"
        if column:
            where += f" (column {column!r})"
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.line = line
        self.column = column


class WorkLeftError(BulkTagError):
    exit_code = ExitCode.WORK_LEFT


#: What a LeadLex key looks like (``wbk_`` and its secret), with or without "Bearer ".
KEY_SHAPE = re.compile(r"(?:Bearer\s+)?wbk_[^\s'\",;]+")


def redact(text: str, hidden: Sequence[str]) -> str:
    """``text`` with each of ``hidden``, and anything shaped like a key, as ``***``: no
    message, log line or bug report ever carries the key."""
    for secret in hidden:
        text = text.replace(secret, "***")
    return KEY_SHAPE.sub("***", text)
