"""Async tests of this folder run on trio's virtual clock: waits take no real time."""

from __future__ import annotations

from typing import Any

import pytest
import trio.testing


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    """A fresh virtual clock per test; it jumps whenever every task is blocked."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def anyio_backend(mock_clock: trio.testing.MockClock) -> tuple[str, dict[str, Any]]:
    return ("trio", {"clock": mock_clock})
