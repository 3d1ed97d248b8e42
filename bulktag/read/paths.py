"""Which files are read: globs expanded once (Excel's lock files skipped), each input held
open as it is read, bulktag's own files checked, gzip inflated within bounds."""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    pass

from bulktag.config import ReadOptions
from bulktag.errors import InputError
from bulktag.read.columns import (
    normalise_header,
)
from bulktag.read.frame import strip_apostrophe
from bulktag.read.ownfiles import DONE_BEFORE, MARK, OwnKind, check_marks
from bulktag.read.rules import PERMANENT_BEFORE

log = logging.getLogger("bulktag")

__all__ = [
    "GLOB",
    "LOCK_PREFIX",
    "MAX_INFLATE",
    "check_own",
    "expand_inputs",
    "first_line",
    "held",
    "inflate",
]


GLOB = re.compile(r"[*?\[]")


#: Excel's lock file of an open workbook: ``~$segment.xlsx`` beside ``segment.xlsx``.
LOCK_PREFIX = "~$"


def held(
    own: OwnKind | None,
    header: Sequence[str],
    options: ReadOptions,
    cell: Callable[[int], pl.Expr],
) -> pl.Expr:
    """Per row of a bulktag failures or results file, why it is not sent again: its reject
    reason when the earlier run's failure was permanent (``retryable`` false; never with
    ``--retry-permanent``), or :data:`~bulktag.read.ownfiles.DONE_BEFORE` for a results row that
    ended ``ok`` or ``skipped``; null for a row to send. ``cell(i)``: the text of column
    ``i``."""
    if own not in (OwnKind.FAILURES, OwnKind.RESULTS):
        return pl.lit(None, dtype=pl.String)
    names = [normalise_header(h) for h in header]

    def text(name: str) -> pl.Expr:
        return strip_apostrophe(cell(names.index(name))).str.strip_chars()

    permanent = (
        pl.lit(None, dtype=pl.String)
        if options.retry_permanent
        else pl.when(text("retryable").str.to_lowercase() == "false").then(
            pl.concat_str(text("error_type"), pl.lit(PERMANENT_BEFORE))
        )
    )
    done = text("status").str.to_lowercase().is_in(["ok", "skipped"])
    return pl.when(done).then(pl.lit(DONE_BEFORE)).otherwise(permanent)


def check_own(
    own: OwnKind | None,
    header: Sequence[str],
    samples: Sequence[Sequence[str | None]],
    source: str,
) -> None:
    """A file of bulktag's that cannot be read as one: a rejects file, a newer version."""
    if own is None:
        return
    names = [normalise_header(h) for h in header]
    at = names.index(MARK) if MARK in names else None
    marks = [] if at is None else [row[at] for row in samples if at < len(row)]
    check_marks(own, [None if m is None else str(m) for m in marks], source)


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Paths and globs -> existing files, in order; ``-`` stays (stdin)."""
    files: list[str] = []
    for pattern in patterns:
        if pattern == "-":
            files.append(pattern)
            continue
        if GLOB.search(pattern) and not Path(pattern).expanduser().exists():
            base = Path(pattern).expanduser()
            anchor = Path(base.anchor) if base.is_absolute() else Path()
            relative = str(base.relative_to(anchor)) if base.is_absolute() else pattern
            matches = sorted(str(p) for p in anchor.glob(relative) if p.is_file())
            locks = [m for m in matches if Path(m).name.startswith(LOCK_PREFIX)]
            for lock in locks:
                log.warning(
                    "%s: skipped, Excel's lock file of %s (open in Excel right now)",
                    lock,
                    Path(lock).name.removeprefix(LOCK_PREFIX),
                )
            matches = [m for m in matches if m not in locks]
            if not matches:
                raise InputError(f"no file matches {pattern!r}")
            files.extend(matches)
            continue
        path = Path(pattern).expanduser()
        if not path.exists():
            raise InputError("no such file", source=pattern)
        if path.name.startswith(LOCK_PREFIX):
            raise InputError(
                "this is Excel's lock file of an open workbook, not the workbook: give "
                f"{path.with_name(path.name.removeprefix(LOCK_PREFIX))}",
                source=pattern,
            )
        if path.is_dir():
            raise InputError(
                "is a folder; give files or a glob such as 'folder/*.csv'", source=pattern
            )
        files.append(str(path))
    if not files:
        raise InputError("no input files given")
    return files


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: A gzip file inflating more than this many times its size is refused (a bomb); CSV
#: exports compress 5 to 20 times.
MAX_INFLATE = 200


def inflate(path: Path, source: str, workdir: Path) -> tuple[Path, str | None]:
    """A gzip file (``export.csv.gz``) inflated into ``workdir``, and the plan's note; any
    other file as it is. Streamed: memory does not grow with the file."""
    try:
        with path.open("rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
    except OSError:
        return path, None  # detect_format says why
    if not gzipped:
        return path, None
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"inflated-{len(list(workdir.glob('inflated-*')))}-{path.stem}"
    limit = max(1 << 20, path.stat().st_size * MAX_INFLATE)
    written = 0
    try:
        with gzip.open(path, "rb") as packed, target.open("wb") as out:
            while chunk := packed.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise InputError(
                        f"this gzip file inflates more than {MAX_INFLATE} times its size: "
                        "a decompression bomb? Nothing was sent",
                        source=source,
                    )
                out.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(
            f"this gzip file does not inflate ({first_line(exc)}): cut short or damaged; "
            "download or export it again",
            source=source,
        ) from None
    return target, f"gzip: inflated ({written:,} bytes)"
