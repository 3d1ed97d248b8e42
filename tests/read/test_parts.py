"""How many parts the plan is grouped in: from what an input holds, not its compressed bytes."""

from __future__ import annotations

import uuid
from pathlib import Path

import polars as pl
import pytest

from bulktag.config import ReadOptions
from bulktag.read import parts
from bulktag.read.inputs import read_input


def _ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1, version=4)) for i in range(n)]


def test_a_parquet_lists_pairs_count_not_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 contacts with the same four tags a list: 12,000 pairs in a file of a few KiB
    (as a job's carry-over compresses), grouped in as many parts as 12,000 pairs need."""
    path = tmp_path / "lists.parquet"
    tags = ["seg-a", "seg-b", "seg-c", "seg-d"]
    pl.DataFrame({"contact_id": _ids(3_000), "tags": [tags] * 3_000}).write_parquet(path)
    assert path.stat().st_size < 12_000 * 16 / 4  # the bytes say under 3,000 pairs
    monkeypatch.setattr(parts, "PAIRS_PER_PART", 1_000)
    item = read_input(str(path), ReadOptions(), tmp_path / "work")
    assert parts.parts_for([item]) == 12


def test_a_parquet_text_cell_counts_a_pair_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "text.parquet"
    pl.DataFrame({"contact_id": _ids(2_500), "tags": ["vip"] * 2_500}).write_parquet(path)
    monkeypatch.setattr(parts, "PAIRS_PER_PART", 1_000)
    item = read_input(str(path), ReadOptions(), tmp_path / "work")
    assert parts.parts_for([item]) == 3
