"""The classification boundary: every HTTP status and every httpx2 request error, one type each."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import pytest

from bulktag.outcomes import FailureType, Quota
from bulktag.send.answers import classify_response, parse_quota, parse_retry_after
from bulktag.send.faults import classify_exception

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()
SENT = ("vip", "legal")
SECRET = "wbk_canary_limits_7c3e9a"

Body = Mapping[str, object] | bytes

MERGED: dict[str, object] = {"data": {"contact_id": "c-1", "tags": ["existing", "vip", "legal"]}}
PARTIAL: dict[str, object] = {"data": {"contact_id": "c-1", "tags": ["existing", "vip"]}}
ENVELOPE: dict[str, object] = {"error": {"code": "some_code", "message": "LeadLex says no"}}
HTML = b"<html><body><h1>Bad Gateway</h1></body></html>"
EMPTY = b""


def response(
    status: int, body: Body = EMPTY, headers: Mapping[str, str] | None = None
) -> httpx2.Response:
    """An answer as httpx2 hands it over; JSON bodies get a JSON content type."""
    all_headers = dict(headers or {})
    if isinstance(body, bytes):
        content = body
        all_headers.setdefault("content-type", "text/html")
    else:
        content = json.dumps(body).encode()
        all_headers.setdefault("content-type", "application/json")
    return httpx2.Response(
        status,
        headers=all_headers,
        content=content,
        request=httpx2.Request("POST", "http://x/v1/contacts/c-1/tags"),
    )


def documented(status: int, body: Body) -> tuple[FailureType | None, bool]:
    """The module docstring's table, written out independently: ``(failure, ambiguous)``."""
    if 200 <= status < 300:
        return (None, False) if body is MERGED else (FailureType.UNEXPECTED_RESPONSE, True)
    if status in (400, 422):
        return FailureType.VALIDATION_ERROR, False
    if status == 401:
        return FailureType.INVALID_KEY, False
    if status == 403:
        return FailureType.INSUFFICIENT_PERMISSIONS, False
    if status in (404, 410):
        return (
            FailureType.NOT_FOUND if body is ENVELOPE else FailureType.UNEXPECTED_RESPONSE
        ), False
    if status == 408:
        return FailureType.TIMEOUT, False
    if status == 429:
        return FailureType.RATE_LIMITED, False  # no X-RateLimit-Remaining: 0 in this table
    if 500 <= status < 600:
        return FailureType.SERVER_ERROR, status == 504
    return FailureType.UNEXPECTED_RESPONSE, False


# -- every status ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [MERGED, PARTIAL, ENVELOPE, HTML, EMPTY],
    ids=["merged-tags", "missing-a-tag", "error-envelope", "html", "empty"],
)
def test_every_status_from_100_to_599_maps_to_its_documented_type(body: Body) -> None:
    """Each of the 500 statuses, with this body, gets the failure type of the docstring's table."""
    mismatches = {}
    for status in range(100, 600):
        attempt = classify_response(response(status, body), SENT, NOW)
        got = (attempt.failure, attempt.ambiguous)
        if got != documented(status, body) or attempt.http_status != status:
            mismatches[status] = got
    assert mismatches == {}


def test_a_2xx_with_every_sent_tag_is_ok() -> None:
    """200 and 201 (Part B: either may be the success status) with the merged list: ok."""
    for status in (200, 201):
        attempt = classify_response(response(status, MERGED), SENT, NOW)
        assert attempt.ok
        assert attempt.failure is None
        assert not attempt.ambiguous


def test_a_2xx_that_lacks_a_sent_tag_is_ambiguous_and_says_how_many() -> None:
    """The call may have been applied: unexpected_response, ambiguous, naming the count."""
    attempt = classify_response(response(200, PARTIAL), SENT, NOW)
    assert attempt.failure is FailureType.UNEXPECTED_RESPONSE
    assert attempt.ambiguous
    assert "1 of the 2 tags" in attempt.message


@pytest.mark.parametrize(
    "content",
    [
        b"not json at all",
        b'{"data": {"tags": "vip,legal"}}',
        b'{"data": {"tags": ["vip", 7]}}',
        b'["vip", "legal"]',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
    ],
    ids=["text", "tags-as-string", "non-string-tag", "bare-list", "invalid-utf8", "deep-nesting"],
)
def test_an_unreadable_2xx_body_is_an_ambiguous_unexpected_response(content: bytes) -> None:
    """Whatever the body, classification returns (never raises) an ambiguous failure."""
    answer = httpx2.Response(200, content=content, request=httpx2.Request("POST", "http://x"))
    attempt = classify_response(answer, SENT, NOW)
    assert attempt.failure is FailureType.UNEXPECTED_RESPONSE
    assert attempt.ambiguous


def test_a_deeply_nested_error_body_is_described_not_raised() -> None:
    """A 500 whose body makes the JSON parser recurse is still a server_error."""
    attempt = classify_response(response(500, b"[" * 100_000), SENT, NOW)
    assert attempt.failure is FailureType.SERVER_ERROR
    assert "100000 bytes" in attempt.message


def test_404_and_410_need_the_envelope_to_be_not_found() -> None:
    """With LeadLex's envelope: not_found (permanent); an HTML 404 is a wrong URL or a proxy."""
    for status in (404, 410):
        found = classify_response(response(status, ENVELOPE), SENT, NOW)
        proxy = classify_response(response(status, HTML), SENT, NOW)
        assert found.failure is FailureType.NOT_FOUND
        assert not found.failure.retryable
        assert proxy.failure is FailureType.UNEXPECTED_RESPONSE
        assert proxy.failure.retryable


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-remaining": "0"}, FailureType.QUOTA_EXHAUSTED),
        ({"x-ratelimit-remaining": " 0 ", "retry-after": "30"}, FailureType.QUOTA_EXHAUSTED),
        (
            {"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "9"},
            FailureType.QUOTA_EXHAUSTED,
        ),
        ({"x-ratelimit-remaining": "999", "retry-after": "60"}, FailureType.RATE_LIMITED),
        ({"retry-after": "60"}, FailureType.RATE_LIMITED),
        ({}, FailureType.RATE_LIMITED),
        ({"x-ratelimit-remaining": "zero"}, FailureType.RATE_LIMITED),
        ({"x-ratelimit-remaining": "-0"}, FailureType.RATE_LIMITED),
    ],
    ids=[
        "remaining-0",
        "remaining-0-with-retry-after",
        "all-headers",
        "per-minute",
        "retry-after-only",
        "no-headers",
        "garbage-remaining",
        "signed-zero",
    ],
)
def test_429_is_the_daily_quota_only_with_remaining_zero(
    headers: dict[str, str], expected: FailureType
) -> None:
    """X-RateLimit-Remaining: 0 means the day is spent; any other 429 is the minute window."""
    attempt = classify_response(response(429, ENVELOPE, headers), SENT, NOW)
    assert attempt.failure is expected
    assert not attempt.ambiguous


def test_a_429_carries_its_retry_after_and_quota() -> None:
    """The dispatcher pauses on retry_after and follows the quota of the same answer."""
    headers = {
        "retry-after": "48",
        "x-ratelimit-limit": "1000",
        "x-ratelimit-remaining": "995",
        "x-ratelimit-reset": "1795737600",
        "x-request-id": "req-42",
    }
    attempt = classify_response(response(429, ENVELOPE, headers), SENT, NOW)
    assert attempt.retry_after == 48.0
    assert attempt.quota == Quota(limit=1000, remaining=995, reset=1795737600)
    assert attempt.request_id == "req-42"
    assert attempt.error_code == "some_code"


def test_a_replayed_answer_is_marked() -> None:
    """Idempotency-Replayed: true (any case) sets replayed; its absence does not."""
    replayed = response(200, MERGED, {"Idempotency-Replayed": "True"})
    assert classify_response(replayed, SENT, NOW).replayed
    assert not classify_response(response(200, MERGED), SENT, NOW).replayed


def test_the_envelope_message_includes_the_field_details() -> None:
    """details.fields are appended to the message, so the results file says what was wrong."""
    body = {
        "error": {
            "code": "validation_error",
            "message": "Invalid tags",
            "details": {"fields": {"tags": "each tag must be at most 100 characters"}},
        }
    }
    attempt = classify_response(response(400, body), SENT, NOW)
    assert attempt.failure is FailureType.VALIDATION_ERROR
    assert attempt.error_code == "validation_error"
    assert attempt.message == "Invalid tags (tags: each tag must be at most 100 characters)"


def test_a_body_without_the_envelope_is_described_by_type_and_size() -> None:
    """A gateway's HTML 502 gets a message naming the content type and length, not the HTML."""
    attempt = classify_response(response(502, HTML), SENT, NOW)
    assert attempt.error_code is None
    assert attempt.message == f"HTTP 502 with a text/html body of {len(HTML)} bytes"


# -- the properties of each type -------------------------------------------------------

#: (retryable, stops_run) for every failure type, written out.
PROPERTIES = {
    "invalid_input": (False, False),
    "unknown_email": (False, False),
    "ambiguous_email": (False, False),
    "validation_error": (False, False),
    "not_found": (False, False),
    "invalid_key": (True, True),
    "insufficient_permissions": (True, True),
    "rate_limited": (True, False),
    "quota_exhausted": (True, False),
    "server_error": (True, False),
    "network_error": (True, False),
    "timeout": (True, False),
    "unexpected_response": (True, False),
    "not_attempted": (True, False),
}


def test_every_failure_type_has_its_documented_retryable_and_stops_run() -> None:
    """Permanent: invalid_input, unknown_email, ambiguous_email (rejects), validation_error,
    not_found; the run stops on 401 and 403."""
    assert {t.value: (t.retryable, t.stops_run) for t in FailureType} == PROPERTIES


# -- exceptions ------------------------------------------------------------------------


def _request_errors() -> list[type[httpx2.RequestError]]:
    """Every class httpx2 exports that is a RequestError, found by inspection."""
    found = {
        obj
        for _, obj in inspect.getmembers(httpx2, inspect.isclass)
        if issubclass(obj, httpx2.RequestError)
    }
    return sorted(found, key=lambda cls: cls.__name__)


#: The documented classification, by class name; a class not listed here takes the entry of
#: its nearest listed ancestor (e.g. a new TransportError subclass is a network error).
DOCUMENTED_EXCEPTIONS: dict[str, tuple[FailureType, bool]] = {
    "RequestError": (FailureType.NETWORK_ERROR, True),
    "TransportError": (FailureType.NETWORK_ERROR, True),
    "TimeoutException": (FailureType.TIMEOUT, True),
    "ConnectTimeout": (FailureType.NETWORK_ERROR, False),
    "PoolTimeout": (FailureType.NETWORK_ERROR, False),
    "ReadTimeout": (FailureType.TIMEOUT, True),
    "WriteTimeout": (FailureType.TIMEOUT, True),
    "NetworkError": (FailureType.NETWORK_ERROR, True),
    "ConnectError": (FailureType.NETWORK_ERROR, False),
    "ReadError": (FailureType.NETWORK_ERROR, True),
    "WriteError": (FailureType.NETWORK_ERROR, True),
    "CloseError": (FailureType.NETWORK_ERROR, True),
    "ProtocolError": (FailureType.NETWORK_ERROR, True),
    "RemoteProtocolError": (FailureType.NETWORK_ERROR, True),
    "LocalProtocolError": (FailureType.UNEXPECTED_RESPONSE, False),
    "ProxyError": (FailureType.NETWORK_ERROR, False),
    "UnsupportedProtocol": (FailureType.UNEXPECTED_RESPONSE, False),
    "DecodingError": (FailureType.UNEXPECTED_RESPONSE, True),
    "TooManyRedirects": (FailureType.UNEXPECTED_RESPONSE, False),
}


def _documented_exception(cls: type[BaseException]) -> tuple[FailureType, bool]:
    return next(
        DOCUMENTED_EXCEPTIONS[c.__name__]
        for c in cls.__mro__
        if c.__name__ in DOCUMENTED_EXCEPTIONS
    )


def test_inspection_finds_httpx2_request_errors() -> None:
    """The discovery below is not vacuous: it finds at least every documented class."""
    names = {cls.__name__ for cls in _request_errors()}
    assert set(DOCUMENTED_EXCEPTIONS) <= names


@pytest.mark.parametrize("cls", _request_errors(), ids=lambda cls: cls.__name__)
def test_every_httpx2_request_error_maps_to_one_type(cls: type[httpx2.RequestError]) -> None:
    """Each exported RequestError subclass gets its failure type and ambiguity."""
    attempt = classify_exception(cls("boom"))
    assert attempt is not None
    assert (attempt.failure, attempt.ambiguous) == _documented_exception(cls)
    assert attempt.message == f"{cls.__name__}: boom"
    assert attempt.http_status is None


@pytest.mark.parametrize(
    ("cls", "ambiguous"),
    [
        (httpx2.ConnectError, False),
        (httpx2.ConnectTimeout, False),
        (httpx2.PoolTimeout, False),
        (httpx2.ReadTimeout, True),
        (httpx2.RemoteProtocolError, True),
        (httpx2.ReadError, True),
    ],
)
def test_only_errors_after_sending_are_ambiguous(
    cls: type[httpx2.RequestError], ambiguous: bool
) -> None:
    """Nothing was sent before a connection or a pool slot existed; afterwards it may have been."""
    attempt = classify_exception(cls("boom"))
    assert attempt is not None
    assert attempt.ambiguous is ambiguous


def test_a_plain_oserror_is_a_network_error() -> None:
    """An OSError escaping the transport (and its subclasses) is a network error."""
    for exc in (OSError("no route"), ConnectionResetError(104, "reset by peer")):
        attempt = classify_exception(exc)
        assert attempt is not None
        assert attempt.failure is FailureType.NETWORK_ERROR


def test_a_non_transport_exception_is_not_classified() -> None:
    """A bug must surface: ValueError, KeyError, HTTPStatusError and InvalidURL give None."""
    request = httpx2.Request("POST", "http://x")
    status_error = httpx2.HTTPStatusError(
        "500", request=request, response=httpx2.Response(500, request=request)
    )
    for exc in (ValueError("bug"), KeyError("k"), status_error, httpx2.InvalidURL("x")):
        assert classify_exception(exc) is None


def test_a_long_multiline_message_is_one_bounded_line() -> None:
    """The message goes into one results cell: newlines removed, text cut at 200 characters."""
    attempt = classify_exception(httpx2.ReadError("first\nsecond " + "x" * 500))
    assert attempt is not None
    assert "\n" not in attempt.message
    assert attempt.message.startswith("ReadError: first second x")
    assert len(attempt.message) == len("ReadError: ") + 200


def test_an_empty_message_names_the_class() -> None:
    """An exception without text still says what happened."""
    attempt = classify_exception(httpx2.ConnectError(""))
    assert attempt is not None
    assert attempt.message == "ConnectError: ConnectError"


def _raised_through_a_client(error: type[httpx2.RequestError], text: str) -> httpx2.RequestError:
    """Send a request with the secret in Authorization; the transport raises ``error(text)``."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise error(text.format(authorization=request.headers["authorization"]))

    with httpx2.Client(
        transport=httpx2.MockTransport(handler),
        headers={"Authorization": f"Bearer {SECRET}"},
    ) as client:
        try:
            client.post("http://leadlex.test/v1/contacts/c-1/tags", json={"tags": ["vip"]})
        except error as exc:
            return exc
    raise AssertionError("the transport did not raise")


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (httpx2.ConnectError, "[Errno 111] Connection refused"),
        (httpx2.ReadTimeout, "timed out"),
        # h11 quotes an illegal header value in its error, Authorization included.
        (httpx2.LocalProtocolError, "Illegal header value b'{authorization}\\x00'"),
        (httpx2.ProxyError, "proxy refused {authorization}"),
    ],
    ids=["connect", "read-timeout", "h11-illegal-header", "proxy-echo"],
)
def test_the_message_never_contains_the_authorization_header(
    error: type[httpx2.RequestError], text: str
) -> None:
    """Whatever the transport's error says, the key does not reach the results file."""
    exc = _raised_through_a_client(error, text)
    attempt = classify_exception(exc)
    assert attempt is not None
    assert attempt.failure is not None
    assert SECRET not in attempt.message
    assert SECRET not in repr(attempt)
    assert attempt.message.startswith(f"{error.__name__}: ")


# -- headers ---------------------------------------------------------------------------


def test_parse_quota_reads_all_three_headers() -> None:
    """Limit, remaining and reset, as integers."""
    headers = httpx2.Headers(
        {
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "995",
            "X-RateLimit-Reset": "1795737600",
        }
    )
    assert parse_quota(headers) == Quota(limit=1000, remaining=995, reset=1795737600)


def test_parse_quota_without_headers_is_none() -> None:
    """No X-RateLimit-* header at all: no quota information."""
    assert parse_quota(httpx2.Headers({"content-type": "application/json"})) is None


@pytest.mark.parametrize("garbage", ["abc", "-1", "1e3", "99999999999999999999", "", "1.5", "0x10"])
def test_parse_quota_treats_garbage_as_absent(garbage: str) -> None:
    """A value that is not a plain non-negative integer of at most 12 digits is ignored."""
    only_garbage = httpx2.Headers({"x-ratelimit-remaining": garbage})
    assert parse_quota(only_garbage) is None
    mixed = httpx2.Headers(
        {"x-ratelimit-limit": "1000", "x-ratelimit-remaining": garbage, "x-ratelimit-reset": "77"}
    )
    assert parse_quota(mixed) == Quota(limit=1000, remaining=None, reset=77)


def test_parse_quota_keeps_what_a_partial_set_says() -> None:
    """Only Remaining: the other parts are None, and padding is tolerated."""
    assert parse_quota(httpx2.Headers({"x-ratelimit-remaining": " 7 "})) == Quota(None, 7, None)
    assert parse_quota(httpx2.Headers({"x-ratelimit-reset": "0"})) == Quota(None, None, 0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), (" 5 ", 5.0), ("1.5", 1.5), ("0", 0.0)],
)
def test_parse_retry_after_reads_seconds(value: str, seconds: float) -> None:
    """Delta-seconds, padded or fractional."""
    assert parse_retry_after(value, NOW) == seconds


def test_parse_retry_after_reads_an_http_date_relative_to_now() -> None:
    """An HTTP date 90 s ahead is 90 s; one in the past means now (0)."""
    future = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    past = format_datetime(datetime.fromtimestamp(NOW - 3600, UTC), usegmt=True)
    assert parse_retry_after(future, NOW) == 90.0
    assert parse_retry_after(past, NOW) == 0.0


@pytest.mark.parametrize(
    "value", ["abc", "-1", "1e3", "", "soon", "Wed, 21 Oct 2015 07:28:00", "inf", "nan"]
)
def test_parse_retry_after_garbage_is_none(value: str) -> None:
    """Unreadable values (and a date without a time zone) are treated as absent."""
    assert parse_retry_after(value, NOW) is None


def test_parse_retry_after_of_nothing_is_none() -> None:
    """No header, no value."""
    assert parse_retry_after(None, NOW) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("86400000", 86_400_000.0),
        ("999999999999", 999_999_999_999.0),
        ("99999999999999999999", 1e20),
    ],
)
def test_parse_retry_after_keeps_absurdly_large_values(value: str, seconds: float) -> None:
    """The server asked for a very long wait: kept as given, so --max-wait halts the run."""
    assert parse_retry_after(value, NOW) == seconds
