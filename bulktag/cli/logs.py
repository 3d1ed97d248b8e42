"""Logging for a person at a terminal and for cron.

On a terminal, lines are text and the plan and summary are shown (INFO). When
stderr is not a terminal (cron, systemd), every line is one JSON object and the
default level is WARNING: a run where every contact is ok prints nothing. ``-v``
shows INFO (and ``-vv`` DEBUG) in both modes; ``-q`` shows errors only.

Messages can carry text from input files (IDs, tags, server messages): control
characters are escaped in text mode, and JSON encoding escapes them in JSON
mode, so no input can forge or break a log line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["JsonFormatter", "TextFormatter", "escape", "setup_logging"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def escape(text: str) -> str:
    """Control characters (CR, LF, ESC, ...) as visible escapes: one line stays one line."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """``bulktag: message`` with control characters escaped; multi-line only for tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = (
            "bulktag: "
            if record.levelno < logging.WARNING
            else f"bulktag: {record.levelname.lower()}: "
        )
        lines = [escape(line) for line in record.getMessage().split("\n")]
        text = prefix + ("\n  ".join(lines) if record.__dict__.get("block") else " ".join(lines))
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in _fields(record).items() if k != "block"})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def setup_logging(
    verbosity: int = 0, *, stream: TextIO | None = None, json_lines: bool | None = None
) -> bool:
    """Configure the ``bulktag`` logger; returns whether lines are JSON.

    ``verbosity``: -1 quiet, 0 default, 1 ``-v``, 2 ``-vv``.
    """
    stream = stream or sys.stderr
    tty = stream.isatty()
    as_json = (not tty) if json_lines is None else json_lines
    default = logging.INFO if tty else logging.WARNING
    level = {-1: logging.ERROR, 0: default, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    logger = logging.getLogger("bulktag")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return as_json
