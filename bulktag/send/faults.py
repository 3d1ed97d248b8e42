"""HTTP client errors become outcomes: the transport's faults told apart (refused,
unresolved, TLS, timeouts), and a proxy named when the proxy is what fails."""

from __future__ import annotations

import os
import socket
import ssl
import urllib.parse
from collections.abc import Iterator

import httpx2

from bulktag.outcomes import Attempt, FailureType, RunFault

__all__ = ["classify_exception"]


#: httpx2's request errors, most specific first; classification walks the MRO.
#: ``(failure type, ambiguous)``: ambiguous when the request may have reached LeadLex.
EXCEPTION_TYPES: dict[type[BaseException], tuple[FailureType, bool]] = {
    httpx2.ConnectTimeout: (FailureType.NETWORK_ERROR, False),
    httpx2.PoolTimeout: (FailureType.NETWORK_ERROR, False),
    httpx2.ReadTimeout: (FailureType.TIMEOUT, True),
    httpx2.WriteTimeout: (FailureType.TIMEOUT, True),
    httpx2.TimeoutException: (FailureType.TIMEOUT, True),
    httpx2.ConnectError: (FailureType.NETWORK_ERROR, False),
    httpx2.ProxyError: (FailureType.NETWORK_ERROR, False),
    httpx2.UnsupportedProtocol: (FailureType.UNEXPECTED_RESPONSE, False),
    httpx2.LocalProtocolError: (FailureType.UNEXPECTED_RESPONSE, False),
    httpx2.RemoteProtocolError: (FailureType.NETWORK_ERROR, True),
    httpx2.ProtocolError: (FailureType.NETWORK_ERROR, True),
    httpx2.ReadError: (FailureType.NETWORK_ERROR, True),
    httpx2.WriteError: (FailureType.NETWORK_ERROR, True),
    httpx2.CloseError: (FailureType.NETWORK_ERROR, True),
    httpx2.NetworkError: (FailureType.NETWORK_ERROR, True),
    httpx2.TransportError: (FailureType.NETWORK_ERROR, True),
    httpx2.DecodingError: (FailureType.UNEXPECTED_RESPONSE, True),
    httpx2.TooManyRedirects: (FailureType.UNEXPECTED_RESPONSE, False),
    httpx2.RequestError: (FailureType.NETWORK_ERROR, True),
    OSError: (FailureType.NETWORK_ERROR, True),
}


def classify_exception(exc: BaseException) -> Attempt | None:
    """The :class:`Attempt` for a transport error, or ``None`` if it is not one (a bug)."""
    for cls in type(exc).__mro__:
        found = EXCEPTION_TYPES.get(cls)
        if found is not None:
            failure, ambiguous = found
            text = str(exc).replace("\n", " ")
            for secret in _credentials(exc):
                text = text.replace(secret, "***")
            text = text[:200] or type(exc).__name__
            return Attempt(
                failure,
                message=f"{type(exc).__name__}: {text}",
                ambiguous=ambiguous,
                run_fault=_transport_fault(exc, text),
            )
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


_NETWORK_FIX = "check the network and the URL; behind a company proxy, set HTTPS_PROXY"


def _transport_fault(exc: BaseException, text: str) -> RunFault | None:
    """The :class:`RunFault` a transport error shows, if it is one: it is when the
    connection could not be made (TLS, DNS, refused, unreachable) or nothing answered in
    time. A connection dropped after it was made is the contact's to retry. ``text`` is
    the error's message with credentials taken out: nothing else of it is quoted."""
    where = _target(exc)
    proxy = _proxy_in_effect(exc)
    if proxy is not None and not isinstance(exc, httpx2.ProxyError):
        fault = _proxy_fault(exc, text, where, proxy)
        if fault is not None:
            return fault
    for inner in _chain(exc):
        if isinstance(inner, ssl.SSLCertVerificationError):
            why = getattr(inner, "verify_message", None) or getattr(inner, "reason", None)
            return RunFault(
                "config",
                f"TLS certificate of {where} not trusted ({why or 'verify failed'})",
                "set SSL_CERT_FILE to your company's CA bundle, or pass --ca-bundle FILE "
                "(verification is never turned off)",
            )
        if isinstance(inner, ssl.SSLError):
            return RunFault(
                "config",
                f"TLS handshake with {where} failed ({getattr(inner, 'reason', None) or inner})",
                "check that the URL's scheme and port are right; a proxy that inspects TLS "
                "needs its CA in SSL_CERT_FILE or --ca-bundle",
            )
        if isinstance(inner, socket.gaierror):
            return RunFault("time", f"cannot resolve {where} (DNS)", _NETWORK_FIX)
        if isinstance(inner, ConnectionRefusedError):
            return RunFault("time", f"connection to {where} refused", _NETWORK_FIX)
    if isinstance(exc, httpx2.ProxyError):
        if "407" in text:
            return RunFault(
                "config",
                "the proxy asks for credentials (407 Proxy Authentication Required)",
                "put them in HTTPS_PROXY, as http://user:password@proxy:port",
            )
        return RunFault("time", f"the proxy failed to reach {where} ({text})", _NETWORK_FIX)
    if isinstance(exc, httpx2.ConnectTimeout):
        return RunFault("time", f"no connection to {where} within the timeout", _NETWORK_FIX)
    if isinstance(exc, httpx2.ConnectError):
        return RunFault("time", f"cannot connect to {where} ({text})", _NETWORK_FIX)
    return None  # a read timeout or a drop: this call's; the outage rule watches a series


#: The variables a proxy is read from, by the URL's scheme, in the order httpx2 reads them.
_PROXY_VARIABLES = {
    "https": ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"),
    "http": ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"),
}


def _proxy_in_effect(exc: BaseException) -> tuple[str, str] | None:
    """The proxy the failed request went through (``host:port``, the variable naming it),
    from the environment as httpx2 reads it; None when it went direct."""
    if not isinstance(exc, httpx2.RequestError):
        return None
    try:
        url = exc.request.url
    except RuntimeError:
        return None
    if _bypassed(url.host):
        return None
    for variable in _PROXY_VARIABLES.get(url.scheme, ()):
        value = os.environ.get(variable)
        if value:
            parsed = urllib.parse.urlsplit(value if "://" in value else f"http://{value}")
            host = parsed.hostname or value
            return (f"{host}:{parsed.port}" if parsed.port else host), f"${variable}"
    return None


def _bypassed(host: str) -> bool:
    """Whether ``NO_PROXY`` sends ``host`` direct (``*``, the host, or a domain of it)."""
    listed = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    for entry in (e.strip().lower().lstrip(".") for e in listed.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def _proxy_fault(
    exc: BaseException, text: str, where: str, proxy: tuple[str, str]
) -> RunFault | None:
    """A connection that could not be made while a proxy is in effect: the proxy's fault
    (a connection that reached the proxy and failed beyond it is an httpx2 ProxyError)."""
    name, variable = proxy
    fix = (
        f"check that the proxy runs and that {variable} names it (host and port); if this "
        f"network needs no proxy, unset {variable} (NO_PROXY lists hosts that go direct)"
    )
    for inner in _chain(exc):
        if isinstance(inner, socket.gaierror):
            return RunFault("time", f"cannot resolve the proxy {name} ({variable})", fix)
        if isinstance(inner, ConnectionRefusedError):
            return RunFault(
                "time", f"the proxy {name} ({variable}) refused the connection to {where}", fix
            )
    if isinstance(exc, httpx2.ConnectTimeout):
        return RunFault("time", f"no connection to the proxy {name} ({variable}) in time", fix)
    if isinstance(exc, httpx2.ConnectError):
        return RunFault(
            "time", f"cannot connect to the proxy {name} ({variable}) for {where} ({text})", fix
        )
    return None


def _target(exc: BaseException) -> str:
    """``host:port`` of the request an httpx2 error belongs to."""
    if isinstance(exc, httpx2.RequestError):
        try:
            url = exc.request.url
        except RuntimeError:  # no request attached
            return "the server"
        return f"{url.host}:{url.port}" if url.port else str(url.host)
    return "the server"


def _credentials(exc: BaseException) -> list[str]:
    """The credentials of the request an httpx2 error belongs to, to keep out of its message.

    Transport errors may quote header values (h11: "Illegal header value b'Bearer ...'").
    """
    if not isinstance(exc, httpx2.HTTPError):
        return []
    try:
        request = exc.request
    except RuntimeError:  # no request attached
        return []
    values = [request.headers.get(name, "") for name in ("authorization", "proxy-authorization")]
    return [part for value in values for part in (value, value.partition(" ")[2]) if part]
