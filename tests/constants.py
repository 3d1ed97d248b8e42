"""Constants and sample objects shared by the suite."""

from __future__ import annotations

from datetime import UTC, datetime

from bulktag.emulator import Contact

#: The base URL of the in-process emulator: LeadLex's, with its gateway prefix, on a test host.
API_URL = "https://leadlex.test/functions/v1/api-gateway"
#: The emulator's control API, at the root of the same host (not a LeadLex path).
CONTROL = "https://leadlex.test/_emulator"
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
