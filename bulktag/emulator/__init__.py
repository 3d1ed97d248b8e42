"""An emulator of the LeadLex API, for tests, demos and benchmarks.

LeadLex cannot be reached from our machines, so every test, the demo and every
benchmark runs against this stand-in. It follows ``docs/emulator.md``: LeadLex's
documented behaviour, plus a stated choice wherever the documentation is silent.

    from bulktag.emulator import Emulator, EmulatorTransport
    emulator = Emulator(plan="org", contacts=generate_contacts(100, seed=1))
    client = httpx2.AsyncClient(transport=EmulatorTransport(emulator), base_url="http://leadlex.test")
"""

from __future__ import annotations

from bulktag.emulator.app import Emulator
from bulktag.emulator.faults import Faults
from bulktag.emulator.model import (
    DEFAULT_KEY,
    PLANS,
    Contact,
    EmulatorClock,
    Key,
    generate_contacts,
    load_contacts,
    parse_key_spec,
)
from bulktag.emulator.server import EmulatorTransport, serve

__all__ = [
    "DEFAULT_KEY",
    "PLANS",
    "Contact",
    "Emulator",
    "EmulatorClock",
    "EmulatorTransport",
    "Faults",
    "Key",
    "generate_contacts",
    "load_contacts",
    "parse_key_spec",
    "serve",
]
