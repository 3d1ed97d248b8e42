"""The ONE place where HTTP answers and httpx2 errors become outcomes.

Every attempt ends as an :class:`Attempt`; :func:`classify_response` and
:func:`classify_exception` are the only functions that look at a status code or
an exception type. ``tests/send/test_outcomes.py`` checks that every status from 100
to 599 and every ``httpx2`` request error maps to exactly one type.

    status / exception                      failure type              retryable
    2xx with the merged tags                (ok)
    2xx with a body we cannot read          unexpected_response       yes (ambiguous)
    400, 422                                validation_error          no
    401                                     invalid_key               yes, after fixing the key
    403                                     insufficient_permissions  yes, after fixing the key
    404, 410 with LeadLex's envelope        not_found                 no
    408; ReadTimeout, WriteTimeout          timeout                   yes (ambiguous when sent)
    429, X-RateLimit-Remaining: 0           quota_exhausted           yes
    429 otherwise                           rate_limited              yes
    5xx                                     server_error              yes
    ConnectError, ConnectTimeout, ...       network_error             yes (ambiguous once sent)
    anything else                           unexpected_response       yes

Some failures belong to the whole run, not to one contact: every further call would
meet them. Those attempts also carry a :class:`RunFault` (the dispatcher stops the
run after a few in a row), fixed either by configuration (exit 78) or by time (75):

    TLS certificate not trusted, TLS handshake failed           config
    an answer that is not LeadLex's (HTML, a 404 or 200
    without its envelope, a redirect), a proxy's 407            config
    DNS failure, connection refused or unreachable,
    no connection in time                                       time
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable, Sequence

import httpx2

from bulktag.outcomes import Attempt, FailureType, Quota, RunFault

__all__ = ["classify_response", "parse_quota", "parse_retry_after"]


_DIGITS = re.compile(r"\s*(\d{1,12})\s*$")
# No length limit: a huge Retry-After is kept as given (the dispatcher caps it), not ignored.
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*$")


def _header_int(headers: httpx2.Headers, name: str) -> int | None:
    match = _DIGITS.match(headers.get(name, ""))
    return int(match.group(1)) if match else None


def parse_quota(headers: httpx2.Headers) -> Quota | None:
    """The X-RateLimit-* headers, read defensively: garbage is treated as absent."""
    quota = Quota(
        limit=_header_int(headers, "x-ratelimit-limit"),
        remaining=_header_int(headers, "x-ratelimit-remaining"),
        reset=_header_int(headers, "x-ratelimit-reset"),
    )
    return None if quota == Quota(None, None, None) else quota


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds or as an HTTP date (relative to ``now``, Unix seconds).

    A date in the past means "now" (0); anything unreadable is ``None``.
    """
    if value is None:
        return None
    match = _NUMBER.match(value)
    if match:
        return float(match.group(1))
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _envelope(response: httpx2.Response) -> tuple[str | None, str | None]:
    """``(code, message)`` of LeadLex's error envelope, or ``(None, None)``."""
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):  # deeply nested garbage makes the parser recurse
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return None, None
    message = error.get("message")
    fields = (
        (error.get("details") or {}).get("fields")
        if isinstance(error.get("details"), dict)
        else None
    )
    text = message if isinstance(message, str) else ""
    if isinstance(fields, dict) and fields:
        text += " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
    return error["code"], text


def _describe(response: httpx2.Response) -> str:
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    return f"HTTP {response.status_code} with a {kind} body of {len(response.content)} bytes"


def _merged_tags(response: httpx2.Response) -> list[str] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):  # deeply nested garbage makes the parser recurse
        return None
    data = body.get("data") if isinstance(body, dict) else None
    tags = data.get("tags") if isinstance(data, dict) else None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return None
    return tags


def classify_response(
    response: httpx2.Response,
    sent_tags: Sequence[str],
    now: float,
    *,
    check: Callable[[httpx2.Response], str | None] | None = None,
) -> Attempt:
    """Turn an answer into an :class:`Attempt`; ``now`` is the wall clock (Unix seconds).

    A 2xx must carry the contact's tags (``data.tags``, every one of ``sent_tags``
    among them), or pass ``check`` (which returns what is wrong, or None).
    """
    status = response.status_code

    def attempt(
        failure: FailureType | None,
        message: str = "",
        *,
        error_code: str | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
        reached: bool = False,
    ) -> Attempt:
        return Attempt(
            failure,
            http_status=status,
            error_code=error_code,
            message=message,
            request_id=response.headers.get("x-request-id"),
            retry_after=retry_after,
            quota=parse_quota(response.headers),
            ambiguous=ambiguous,
            replayed=response.headers.get("idempotency-replayed", "").lower() == "true",
            reached=reached,
            run_fault=None if reached else _foreign_answer(response),
        )

    if 200 <= status < 300 and check is not None:
        problem = check(response)
        if problem is None:
            return attempt(None, reached=True)
        return attempt(FailureType.UNEXPECTED_RESPONSE, problem)
    if 200 <= status < 300:
        merged = _merged_tags(response)
        if merged is None:
            problem = f"{_describe(response)} that is not the merged tag list"
            return attempt(FailureType.UNEXPECTED_RESPONSE, problem, ambiguous=True)
        present = set(merged)
        missing = sum(t not in present for t in sent_tags)
        if missing:
            problem = f"success answer lacks {missing} of the {len(sent_tags)} tags sent"
            return attempt(FailureType.UNEXPECTED_RESPONSE, problem, ambiguous=True, reached=True)
        return attempt(None, reached=True)
    code, message = _envelope(response)
    failure, ambiguous = _status_failure(status, code, response)
    return attempt(
        failure,
        message if message is not None else _describe(response),
        error_code=code,
        retry_after=parse_retry_after(response.headers.get("retry-after"), now),
        ambiguous=ambiguous,
        reached=code is not None,
    )


_JSON_KINDS = ("application/json", "application/problem+json")
_CHECK_URL = (
    "check --api-url / LEADLEX_API_URL: LeadLex's base URL is "
    "https://data.leadlex.com/functions/v1/api-gateway (a path, not just the host)"
)


def _foreign_answer(response: httpx2.Response) -> RunFault | None:
    """A :class:`RunFault` for an answer that is not LeadLex's: HTML or text where LeadLex
    answers JSON, a 404 without its error envelope (a wrong URL), a redirect (a captive
    portal), a proxy asking for credentials. A 5xx or a 429 is not one: LeadLex's own
    gateway and proxies send those without the envelope, and they pass."""
    status = response.status_code
    host = response.request.url.host if _has_request(response) else "the server"
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if status >= 500 or status == 429:
        return None
    if status == 407:
        return RunFault(
            "config",
            "the proxy asks for credentials (407 Proxy Authentication Required)",
            "put them in HTTPS_PROXY, as http://user:password@proxy:port",
        )
    if 300 <= status < 400:
        where = response.headers.get("location", "elsewhere")
        return RunFault(
            "config",
            f"{host} redirects to {where[:120]} ({status}): a captive portal or a sign-in page?",
            f"sign in to the network, or {_CHECK_URL}",
        )
    if status == 404:
        return RunFault(
            "config",
            f"{response.request.url if _has_request(response) else host} is not a LeadLex API "
            "path (404 without LeadLex's error envelope)",
            _CHECK_URL,
        )
    if kind in _JSON_KINDS:
        return None  # LeadLex's kind of answer, damaged on the way: the contact's to retry
    return RunFault(
        "config",
        f"{host} answered {_describe(response)}, not LeadLex's JSON: a captive portal, a proxy "
        "or a wrong URL?",
        f"sign in to the network, or {_CHECK_URL}",
    )


def _has_request(response: httpx2.Response) -> bool:
    try:
        response.request  # noqa: B018  (httpx2 raises when a response has no request)
    except RuntimeError:
        return False
    return True


def _status_failure(
    status: int, code: str | None, response: httpx2.Response
) -> tuple[FailureType, bool]:
    if status in (400, 422):
        return FailureType.VALIDATION_ERROR, False
    if status == 401:
        return FailureType.INVALID_KEY, False
    if status == 403:
        return FailureType.INSUFFICIENT_PERMISSIONS, False
    if status in (404, 410):
        # A 404 without LeadLex's envelope is a wrong URL or a proxy, not a missing contact.
        return (FailureType.NOT_FOUND if code else FailureType.UNEXPECTED_RESPONSE), False
    if status == 408:
        return FailureType.TIMEOUT, False
    if status == 429:
        quota = parse_quota(response.headers)
        spent = quota is not None and quota.remaining == 0
        return (FailureType.QUOTA_EXHAUSTED if spent else FailureType.RATE_LIMITED), False
    if 500 <= status < 600:
        return FailureType.SERVER_ERROR, status == 504
    return FailureType.UNEXPECTED_RESPONSE, False
