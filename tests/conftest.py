"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest

from bulktag.emulator import (
    Contact,
    Emulator,
    EmulatorClock,
    EmulatorTransport,
    Key,
    generate_contacts,
)

#: The emulated clock's start in the suite: noon UTC, so midnight is 12 h away.
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()
#: The contact of LeadLex's own documentation example.
SEED_CONTACT = "123e4567-e89b-12d3-a456-426614174000"
#: A canary: if this string shows up in any output, a key leaked.
KEY = "wbk_canary_9f2c1e7d5b3a"
READ_ONLY_KEY = "wbk_readonly_canary_4d1e"
WRITE_ONLY_KEY = "wbk_writeonly_canary_8a2b"


def seed_contact() -> Contact:
    return Contact(
        id=SEED_CONTACT,
        workspace="default",
        full_name="Example Person",
        email="person@example.com",
        phone="",
        job_title="",
        company_name="",
        linkedin_url="",
        tags=["existing-tag"],
        created_at=T0 - 86_400,
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


EmulatorFactory = Callable[..., Emulator]


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
        base_url="http://leadlex.test",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        yield client
