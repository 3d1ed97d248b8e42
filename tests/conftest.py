"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bulktag.emulator import (
    Emulator,
    EmulatorClock,
    EmulatorTransport,
    Key,
    generate_contacts,
)
from tests.constants import (
    API_URL,
    KEY,
    READ_ONLY_KEY,
    T0,
    WRITE_ONLY_KEY,
    seed_contact,
)
from tests.world import EmulatorFactory, World, new_world


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the user's quota store (child processes inherit this)."""
    monkeypatch.setenv("BULKTAG_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def make_emulator() -> EmulatorFactory:
    """Build an emulator on a frozen clock at T0, with the seed contact and 20 generated ones."""

    def make(**overrides: Any) -> Emulator:
        options: dict[str, Any] = {
            "plan": "pro",
            "keys": [
                Key(KEY, "default", frozenset({"read", "write"})),
                Key(READ_ONLY_KEY, "default", frozenset({"read"})),
                Key(WRITE_ONLY_KEY, "default", frozenset({"write"})),
            ],
            "contacts": [seed_contact(), *generate_contacts(20, seed=1)],
        }
        options.update(overrides)
        if "clock" not in options:
            clock = EmulatorClock(start=T0)
            clock.freeze(True)
            options["clock"] = clock
        return Emulator(**options)

    return make


@pytest.fixture
def emulator(make_emulator: EmulatorFactory) -> Emulator:
    return make_emulator()


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the in-process emulator, authenticated with the canary key."""
    async with httpx2.AsyncClient(
        transport=EmulatorTransport(emulator),
        base_url=API_URL,
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        yield client


@pytest.fixture
def make_world(tmp_path: Path) -> Callable[..., World]:
    """A world on a fresh virtual clock; emulator options as keyword arguments."""

    def make(contacts: int = 60, **options: Any) -> World:
        return new_world(tmp_path, contacts, **options)

    return make


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()
