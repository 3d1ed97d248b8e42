"""kill -9 at random points of real runs, then resume (bench/killsoak.py, 50 points here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.killsoak import soak


@pytest.mark.slow
def test_kill_9_at_50_points_loses_nothing_and_repeats_little(tmp_path: Path) -> None:
    """50 kills: every contact once and ok; nothing recorded re-sent; <= 8 repeats a kill."""
    report = soak(50, tmp_path, contacts=1000, concurrency=8, kills_per_run=10, seed=11)
    assert report.points == 50
    assert report.problems == []
    assert report.duplicates_in_results == 0
    assert report.not_ok == 0
    assert report.resent_after_recorded == 0
    assert report.worst_repeats_per_kill <= 8
    # a quarter of the kills aim at start-up, the rest just after sending starts (a run
    # can end before its tenth kill): 30-40 of 50 land while requests go out
    assert report.kills_mid_sending >= 20
    assert report.handled_calls - report.contacts == report.repeated_calls
