"""The dispatcher's gates (the health's turn, the daily budget, the rate limiter) give
back every place they lend, on every path: a call answered, a 403 that stops the run, a
quota spent mid-run, a halt while workers wait, a retry given up on --retry-time, and
calls other than add-tags. A place left behind is a deadlock (the health's turn) or an
overspend or a stall (the budget, the limiter): each path ends with (0, 0, 0) held.

Before, each path gave its places back by hand, and the two "after an answer" paths
differed: a 403 on an add-tags call threw LeadLex's quota figure away, on another call
it kept it. One rule now (:class:`bulktag.send.dispatch.Slot`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2

from bulktag.clock import SourceClock
from bulktag.config import DispatchSettings
from bulktag.emulator import EmulatorTransport, Key
from bulktag.outcomes import ContactOutcome, Halt
from bulktag.send.client import LeadLexClient
from bulktag.send.dispatch import Dispatcher, PlannedContact
from tests.constants import API_URL, KEY, T0
from tests.world import World, new_world


def _run(
    world: World, settings: DispatchSettings, *, stop_after: int | None = None
) -> tuple[Dispatcher, list[ContactOutcome]]:
    """The dispatcher over every contact of ``world``, on its virtual clock; each path
    must end with no place held, and so must a call other than add-tags after it."""
    clock = SourceClock(world.clock.current_time, T0)
    recorded: list[ContactOutcome] = []
    found: list[Dispatcher] = []

    async def main() -> None:
        http = httpx2.AsyncClient(
            transport=EmulatorTransport(world.emulator),
            base_url=API_URL,
            headers={"Authorization": f"Bearer {KEY}"},
        )
        client = LeadLexClient(http, clock)
        dispatcher = Dispatcher(client, settings, clock, run_id="r", seed=1)
        found.append(dispatcher)

        async def record(outcome: ContactOutcome) -> None:
            recorded.append(outcome)
            if stop_after is not None and len(recorded) == stop_after:
                dispatcher.stop(Halt.SIGNAL, "stopped by the test")

        async def contacts() -> AsyncIterator[PlannedContact]:
            for seq, contact in enumerate(world.contact_ids):
                yield PlannedContact(seq, contact, ("vip",))

        async with http:
            await dispatcher.run(contacts(), record)  # type: ignore[arg-type]
            assert dispatcher.gates_held() == (0, 0, 0)
            await dispatcher.call("get_contact", lambda: client.get_contact(world.contact_ids[0]))
            assert dispatcher.gates_held() == (0, 0, 0)

    anyio.run(main, backend="trio", backend_options={"clock": world.clock})
    return found[0], recorded


def _world(tmp_path: Path, contacts: int, **options: Any) -> World:
    return new_world(tmp_path, contacts, **options)


FAST: dict[str, Any] = {"rate_per_minute": None, "concurrency": 4}


def test_every_answer_gives_its_places_back(tmp_path: Path) -> None:
    dispatcher, recorded = _run(_world(tmp_path, 30), DispatchSettings(**FAST))
    assert len(recorded) == 30
    assert dispatcher.halt is None


def test_a_403_stops_the_run_and_keeps_leadlexs_quota_figure(tmp_path: Path) -> None:
    world = _world(tmp_path, 30, keys=[Key(KEY, "default", frozenset({"read"}))])
    dispatcher, _recorded = _run(world, DispatchSettings(**FAST))
    assert dispatcher.halt is Halt.KEY_REJECTED
    # the 403's quota headers were LeadLex's figure, kept as for any other answer
    assert dispatcher.statistics().quota_remaining is not None


def test_a_quota_spent_mid_run(tmp_path: Path) -> None:
    dispatcher, recorded = _run(_world(tmp_path, 30, per_day=7), DispatchSettings(**FAST))
    assert dispatcher.halt is Halt.QUOTA
    assert len(recorded) <= 7


def test_a_halt_while_workers_wait(tmp_path: Path) -> None:
    settings = DispatchSettings(**FAST | {"rate_per_minute": 60.0})
    dispatcher, recorded = _run(_world(tmp_path, 30), settings, stop_after=3)
    assert dispatcher.halt is Halt.SIGNAL
    assert len(recorded) < 30


def test_a_retry_given_up_on_retry_time(tmp_path: Path) -> None:
    """LeadLex allows 2 calls a minute, --retry-time is 5 s: a contact answered 429 waits
    for the limiter's pause (Retry-After), and the slot it then takes goes unused."""
    settings = DispatchSettings(**FAST | {"retry_time": 5.0, "concurrency": 2})
    _dispatcher, recorded = _run(_world(tmp_path, 6, per_minute=2), settings)
    assert any(o.attempts and o.error_type is not None for o in recorded)
