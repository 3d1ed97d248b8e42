"""The ledger's rows, compact: a contact as the 16 bytes of its UUID, a run as a number.

A ledger row was the contact's 36 characters, the tag, the time and the run's 36
characters: 80 bytes a pair on disk, 1.5 GB for 20M pairs. Keyed by the 16 bytes of the
UUID, with the run a number (``ledger_runs`` names it), a row is about half that, so
more of the key fits each page and the cache; each batch is written in key order.

Version 3 of a job's state (:mod:`bulktag.state.job`) has this ledger; an older file's
is brought up to date as it is opened to write (:func:`upgrade`), a batch at a time.
A dry run reads an older file as it is (opened read-only, never changed):
:func:`layout` tells which the file has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Literal

import polars as pl

__all__ = [
    "LEDGER_TABLES",
    "compact_rows",
    "contact_bytes",
    "contact_ids",
    "grouped_frame",
    "layout",
    "pairs_frame",
    "upgrade",
]

LEDGER_TABLES = """
CREATE TABLE IF NOT EXISTS ledger (
    contact BLOB NOT NULL,
    tag TEXT NOT NULL,
    applied_at REAL NOT NULL,
    run INTEGER NOT NULL,
    PRIMARY KEY (contact, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_runs (
    run INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE
);
"""

#: Rows copied a statement when an older ledger is brought up to date.
_BATCH = 100_000

Layout = Literal["compact", "text"]


def contact_bytes(contact_id: str) -> bytes:
    """A canonical contact ID (``8-4-4-4-12`` hex digits) as its UUID's 16 bytes."""
    return bytes.fromhex(contact_id.replace("-", ""))


def contact_ids(hexes: pl.Expr) -> pl.Expr:
    """Contacts as SQLite's ``hex()`` gives their 16 bytes, as canonical IDs."""
    low = hexes.str.to_lowercase()
    cuts = ((0, 8), (8, 4), (12, 4), (16, 4), (20, 12))
    return pl.concat_str([low.str.slice(start, size) for start, size in cuts], separator="-")


def pairs_frame(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    """Ledger rows read as ``hex(contact), tag, applied_at``: ``contact_id, tag, applied_at``."""
    schema = {"hex": pl.String, "tag": pl.String, "applied_at": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.select(contact_ids(pl.col("hex")).alias("contact_id"), "tag", "applied_at")


def grouped_frame(rows: list[tuple[str, str]]) -> pl.DataFrame:
    """Ledger rows read as ``hex(contact), json_group_array(tag)``: ``contact_id, tag``."""
    frame = pl.DataFrame(rows, schema={"hex": pl.String, "tags": pl.String}, orient="row")
    return frame.select(
        contact_ids(pl.col("hex")).alias("contact_id"),
        tag=pl.col("tags").str.json_decode(pl.List(pl.String)),
    ).explode("tag")


def layout(db: sqlite3.Connection) -> Layout:
    """Whether the file's ledger is compact (version 3 on) or an older one's (text IDs)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(ledger)")}
    return "text" if "contact_id" in columns else "compact"


def _old_rows(db: sqlite3.Connection) -> Iterator[list[tuple[bytes, str, float, str]]]:
    cursor = db.execute("SELECT contact_id, tag, applied_at, run_id FROM ledger_v2")
    while rows := cursor.fetchmany(_BATCH):
        yield sorted((contact_bytes(c), t, at, run) for c, t, at, run in rows)


def upgrade(db: sqlite3.Connection) -> None:
    """An older file's ledger (text IDs and run IDs) rewritten compact, in the transaction
    the file is opened in."""
    if layout(db) == "compact":
        return
    db.execute("ALTER TABLE ledger RENAME TO ledger_v2")
    for statement in LEDGER_TABLES.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT OR IGNORE INTO ledger_runs (run_id) SELECT DISTINCT run_id FROM ledger_v2")
    numbers = dict(db.execute("SELECT run_id, run FROM ledger_runs").fetchall())
    for batch in _old_rows(db):
        db.executemany(
            "INSERT OR REPLACE INTO ledger (contact, tag, applied_at, run) VALUES (?, ?, ?, ?)",
            ((c, t, at, numbers[run]) for c, t, at, run in batch),
        )
    db.execute("DROP TABLE ledger_v2")


def compact_rows(
    pairs: Iterable[tuple[str, str]], at: float, run: int, batch: int = _BATCH
) -> Iterator[tuple[bytes, str, float, int]]:
    """``pairs`` as ledger rows, each batch of ``batch`` in key order."""
    chunk: list[tuple[bytes, str, float, int]] = []
    for contact_id, tag in pairs:
        chunk.append((contact_bytes(contact_id), tag, at, run))
        if len(chunk) >= batch:
            chunk.sort()
            yield from chunk
            chunk = []
    chunk.sort()
    yield from chunk
