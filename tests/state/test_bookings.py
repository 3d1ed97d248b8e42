"""The calls two processes on one key have in flight, in the user's quota store: what is
left, as each last heard it, only goes down within a day, so answers landing out of order
never let the two spend into the reserve they keep between them."""

from __future__ import annotations

import os
from pathlib import Path

from bulktag.config import ApiKey
from bulktag.outcomes import Quota
from bulktag.state.quota import Bookings, QuotaBook
from tests.constants import KEY
from tests.world import URL

NOW = 1_795_694_400.0
RESET = 1_795_737_600  # the next midnight


def _two(tmp_path: Path) -> tuple[Bookings, Bookings]:
    book = QuotaBook(tmp_path, ApiKey(KEY), URL)
    first, other = book.bookings(lambda: NOW), book.bookings(lambda: NOW)
    other._pid = os.getppid()  # another live process on the same key
    other._write(0, None, None)
    return first, other


def test_an_answer_landing_late_never_raises_what_is_left(tmp_path: Path) -> None:
    """Before: the job that heard "21 left" and then, from a call counted earlier but
    answered later, "22 left" kept 22: two jobs with a reserve of 20 of 100 used 81."""
    first, other = _two(tmp_path)
    assert first.book(0, 20, None, None)
    assert first.book(1, 20, None, None)
    first.land(1, Quota(100, 21, RESET))
    first.land(0, Quota(100, 22, RESET))
    assert other.book(0, 20, None, None)  # 21 - 20: one more call
    assert not other.book(1, 20, None, None)  # not two


def test_a_new_day_starts_from_its_own_word(tmp_path: Path) -> None:
    """After midnight LeadLex's new figure stands, higher though it is."""
    first, other = _two(tmp_path)
    first.land(0, Quota(100, 21, RESET))
    first.land(0, Quota(100, 99, RESET + 86_400))
    assert other.book(50, 20, None, None)  # 99 - 50 - 20 > 0
