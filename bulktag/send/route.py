"""Whether the base URL serves LeadLex's routes: after a 404, one check (``GET
/v1/contacts``) that every call meeting a 404 meanwhile waits for, so a wrong URL is told
from a contact LeadLex does not know. And the words for the run-wide faults the dispatcher
stops on: no route at the URL, a key LeadLex refuses.

A 404 before LeadLex has accepted a call of this run may be a wrong base URL (a path
that ends in ``/v1``, another gateway) rather than a missing contact: the URL is then
checked once with a route that must exist (``GET /v1/contacts?per_page=1``, through the
same limiter and budget). A 404 there too stops the run (exit 78), and no contact is
recorded ``not_found``: the contacts tried fail as ``unexpected_response``, retryable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from bulktag.outcomes import Attempt, FailureType

__all__ = ["ROUTE_CHECKS", "Route", "key_refused", "no_route"]


#: Route checks a run makes at most when they tell nothing (an outage, a halt).
ROUTE_CHECKS = 3


class Route:
    """Whether the base URL serves LeadLex's routes; see the module docstring."""

    def __init__(
        self, check: Callable[[], Awaitable[bool | None]], *, proven: bool = False
    ) -> None:
        self._check = check
        self._lock = anyio.Lock()
        self._checks = 0
        #: LeadLex accepted a call at this URL (in this session, or an earlier one of the
        #: run: ``proven``), or the check found it
        self.proven = proven
        self.wrong = False  #: the check found no route there
        self.doubtful = False  #: a 404 is being checked: no other call goes meanwhile
        self._settled = anyio.Event()

    async def settled(self) -> None:
        """Wait while a 404 is being checked (a wrong URL would answer 404 to every call)."""
        while self.doubtful:
            await self._settled.wait()

    async def serves(self) -> bool | None:
        """After a 404: whether the base URL serves LeadLex's routes (checked once; the calls
        that meet a 404 meanwhile wait for that check, not for one each); None when the
        checks could not tell (an outage, the run halted)."""
        if self.proven:
            return True
        self.doubtful = True
        async with self._lock:
            try:
                if not (self.proven or self.wrong) and self._checks < ROUTE_CHECKS:
                    self._checks += 1
                    verdict = await self._check()
                    self.proven = verdict is True
                    self.wrong = verdict is False
            finally:
                self.doubtful = False
                self._settled.set()
                self._settled = anyio.Event()
            return True if self.proven else False if self.wrong else None


def no_route(url: str, attempt: Attempt) -> tuple[str, Attempt]:
    """The run-wide fault of a base URL that serves no LeadLex route, and the failure its
    404 becomes (unexpected_response: retryable once the URL is fixed, never not_found)."""
    message = (
        f"the API URL {url} serves no LeadLex route: adding tags and listing contacts "
        "both answered 404. Check --api-url, $LEADLEX_API_URL or the job's [api] url: "
        "LeadLex's is https://data.leadlex.com/functions/v1/api-gateway (every path "
        "after it starts with /v1/)"
    )
    return message, Attempt(
        FailureType.UNEXPECTED_RESPONSE,
        http_status=attempt.http_status,
        error_code=attempt.error_code,
        message=f"404 at a URL that serves no LeadLex route ({attempt.message[:120]})",
        request_id=attempt.request_id,
    )


def key_refused(key_source: str, attempt: Attempt) -> str:
    """Why the run stopped on a 401 or 403, where the key came from, and what to do."""
    said = f"{attempt.failure}: {attempt.message}"
    if attempt.failure is FailureType.INVALID_KEY:
        return (
            f"LeadLex refused {key_source} ({said}): check that it is this "
            "workspace's key, whole, and neither revoked nor expired"
        )
    return (
        f"{key_source} may not do this ({said}): give the key Write permission in "
        "LeadLex's API settings, or use a key that has it"
    )
