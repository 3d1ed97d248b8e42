"""The workspace's directory: every contact's ``id`` and ``email``, read through the export
(``fields=id,email,created_at``), 50,000 contacts a call, paged by creation date.

A whole workspace costs one export call per 50,000 contacts, against one call per
address for ``GET /v1/contacts?search=``. Those calls are under the export's own hourly
limit (LeadLex documents 10 an hour): a workspace of more than 500,000 contacts, or a day
that already spent its exports, waits for it, within ``--max-wait``; past that the run
stops and defers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from bulktag.send.exports import Paging, Reads, Wait, paged_export

__all__ = ["FIELDS", "SCHEMA", "DirectoryRead", "read_directory"]

log = logging.getLogger("bulktag")

FIELDS = "id,email,created_at"


#: A directory's columns as kept: the contact, its address, and when it was created (where
#: a paging stopped by the hourly limit goes on).
SCHEMA = {"id": pl.String, "email": pl.String, "created_at": pl.String}


@dataclass(frozen=True, slots=True)
class DirectoryRead:
    """A directory read, or why not: ``frame`` (``id, email, created_at``) is None when
    it stopped; stopped by the hourly limit, ``paging.partial`` holds the pages read and
    ``paging.after`` where the next run goes on."""

    frame: pl.DataFrame | None
    paging: Paging

    @property
    def warning(self) -> str | None:
        return self.paging.warning

    @property
    def partial(self) -> pl.DataFrame | None:
        rows = self.paging.partial
        return None if rows is None else _shaped(rows)


def _shaped(rows: pl.DataFrame) -> pl.DataFrame:
    if rows.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    return rows.select(pl.col("id"), pl.col("email").fill_null(""), pl.col("created_at"))


async def read_directory(
    reads: Reads, *, wait: Wait, max_wait: float, after: str | None = None
) -> DirectoryRead:
    """The workspace's ``id, email`` pairs, every page from ``after`` on (a paging an
    earlier run left; None: from the start); waiting for the hourly export limit up to
    ``max_wait`` seconds in all (``wait`` shows and sleeps it)."""
    paging = Paging()
    rows = await paged_export(reads, [], FIELDS, paging, wait=wait, max_wait=max_wait, after=after)
    if rows is None:
        return DirectoryRead(None, paging)
    frame = _shaped(rows)
    log.info(
        "the workspace's directory: %s contacts in %d export calls (%d refused by the "
        "hourly export limit first)",
        f"{frame.height:,}",
        paging.counted,
        paging.refused,
    )
    return DirectoryRead(frame, paging)
