"""The workspace's directory: every contact's ``id`` and ``email``, read through the export
(``fields=id,email,created_at``), 50,000 contacts a call, paged by creation date.

A whole workspace costs one export call per 50,000 contacts, against one call per
address for ``GET /v1/contacts?search=``. Those calls are under the export's own limit,
10 an hour: a workspace of more than 500,000 contacts, or a day that already spent its
exports, waits for it, within ``--max-wait``; past that the run stops and defers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import polars as pl

from bulktag.leadlex import EXPORT_MAX_LIMIT, EXPORT_PER_HOUR
from bulktag.send.exports import Paging, Reads, Wait, paged_export

__all__ = ["FIELDS", "DirectoryRead", "export_calls", "read_directory"]

log = logging.getLogger("bulktag")

FIELDS = "id,email,created_at"


def export_calls(contacts: int) -> int:
    """The export calls a directory of ``contacts`` costs (one for an empty workspace)."""
    return max(1, math.ceil(contacts / EXPORT_MAX_LIMIT))


@dataclass(frozen=True, slots=True)
class DirectoryRead:
    """A directory read, or why not: ``frame`` (``id, email``) is None when it stopped."""

    frame: pl.DataFrame | None
    paging: Paging

    @property
    def warning(self) -> str | None:
        return self.paging.warning


async def read_directory(reads: Reads, *, wait: Wait, max_wait: float) -> DirectoryRead:
    """The workspace's ``id, email`` pairs, every page; waiting for the hourly export limit
    up to ``max_wait`` seconds in all (``wait`` shows and sleeps it)."""
    paging = Paging()
    rows = await paged_export(reads, [], FIELDS, paging, wait=wait, max_wait=max_wait)
    if rows is None:
        return DirectoryRead(None, paging)
    frame = rows.select(pl.col("id"), pl.col("email").fill_null(""))
    log.info(
        "the workspace's directory: %d contacts in %d export calls (at most %d an hour)",
        frame.height,
        paging.calls,
        EXPORT_PER_HOUR,
    )
    return DirectoryRead(frame, paging)
