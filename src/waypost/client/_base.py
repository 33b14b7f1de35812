"""What the sync and async clients share: settings, `Call`, status mapping.

No I/O: a `Call` says what to send and how to read the answer (`_calls.py`
builds one per endpoint); `Client` and `AsyncClient` only move the bytes.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar
from urllib.parse import quote

import msgspec

from waypost.durations import parse_duration
from waypost.exceptions import (
    InvalidAddress,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RegistryServerError,
    RequestRejected,
    UriTooLong,
)

T = TypeVar("T")

DEFAULT_ADDRESS = "127.0.0.1:8500"
ADDRESS_ENV = ("WAYPOST_HTTP_ADDR", "CONSUL_HTTP_ADDR")
TOKEN_ENV = ("WAYPOST_HTTP_TOKEN", "CONSUL_HTTP_TOKEN")
SSL_ENV = ("WAYPOST_HTTP_SSL", "CONSUL_HTTP_SSL")
SSL_VERIFY_ENV = ("WAYPOST_HTTP_SSL_VERIFY", "CONSUL_HTTP_SSL_VERIFY")
CA_CERT_ENV = ("WAYPOST_CACERT", "CONSUL_CACERT")
CLIENT_CERT_ENV = ("WAYPOST_CLIENT_CERT", "CONSUL_CLIENT_CERT")
CLIENT_KEY_ENV = ("WAYPOST_CLIENT_KEY", "CONSUL_CLIENT_KEY")

#: Seconds a plain request may take; blocking queries add their wait to it.
DEFAULT_TIMEOUT = 10.0


JSONValue = object


# ------------------------------------------------------------------ settings


def every_origin(settings: Settings) -> list[Settings]:
    """The settings for each address, the first one first."""
    return [settings] + [
        msgspec.structs.replace(settings, base_url=base_url, address=address)
        for base_url, address in settings.alternates
    ]


def is_never_sent(error: BaseException, method: str) -> bool:
    """Whether a failed request may go to another agent: it never left
    (connection refused), or it only reads."""
    return method == "GET" or isinstance(error.__cause__, ConnectionRefusedError)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the registry is and how to talk to it (resolved once)."""

    base_url: str
    address: str
    #: Further agents of the same cluster, `(base_url, address)` each: the
    #: client moves to the next when the current one cannot be reached.
    alternates: tuple[tuple[str, str], ...] = ()
    token: str = ""
    verify: bool | str = True
    cert: tuple[str, str] | str | None = None
    timeout: float = DEFAULT_TIMEOUT


def _env(names: Sequence[str], environ: Mapping[str, str]) -> str:
    for name in names:
        value = environ.get(name, "")
        if value:
            return value
    return ""


def _is_true(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def resolve_settings(
    address: str | None = None,
    *,
    token: str | None = None,
    verify: bool | str | None = None,
    cert: tuple[str, str] | str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Arguments first, then `WAYPOST_*`, then `CONSUL_*`, then defaults.

    `address` is `host:port` or a URL (`https://host:port`); `https` is also
    chosen by `WAYPOST_HTTP_SSL=true` / `CONSUL_HTTP_SSL=true`. Several
    addresses, comma-separated, name agents of one cluster: the first is
    used until it cannot be reached, then the next.
    """
    env = os.environ if environ is None else environ
    raw = address or _env(ADDRESS_ENV, env) or DEFAULT_ADDRESS
    default_scheme = "https" if _is_true(_env(SSL_ENV, env)) else "http"
    # Several agents of one cluster: "h1:8500,h2:8500,h3:8500".
    first, *others = [part.strip() for part in raw.split(",")] if "," in raw else [raw]
    scheme, rest = _parse_address(first, default_scheme)
    alternates = []
    for other in others:
        other_scheme, other_rest = _parse_address(other, default_scheme)
        alternates.append((f"{other_scheme}://{other_rest}", other_rest))
    if verify is None:
        ca = _env(CA_CERT_ENV, env)
        flag = _env(SSL_VERIFY_ENV, env)
        verify = ca or (not flag or _is_true(flag))
    if cert is None:
        client_cert, client_key = _env(CLIENT_CERT_ENV, env), _env(CLIENT_KEY_ENV, env)
        if client_cert:
            cert = (client_cert, client_key) if client_key else client_cert
    return Settings(
        base_url=f"{scheme}://{rest}",
        address=rest,
        alternates=tuple(alternates),
        token=token if token is not None else _env(TOKEN_ENV, env),
        verify=verify,
        cert=cert,
        timeout=timeout,
    )


def _parse_address(raw: str, default_scheme: str) -> tuple[str, str]:
    """`(scheme, host:port)` of an address, or InvalidAddress saying what is wrong.

    Checked here, before any request, so a typo is a clear error of its own
    rather than a connection error.
    """
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = default_scheme, raw
    if scheme.lower() not in ("http", "https"):
        raise InvalidAddress(
            f"invalid registry address {raw!r}: the scheme {scheme!r} is not"
            " supported; use http:// or https://"
        )
    rest = rest.rstrip("/")
    if "[" in rest and "]" not in rest:
        raise InvalidAddress(
            f"invalid registry address {raw!r}: the IPv6 address has no closing ']'"
        )
    problem = _authority_problem(rest.split("/", 1)[0].rpartition("@")[2])
    if problem:
        raise InvalidAddress(f"invalid registry address {raw!r}: {problem}")
    return scheme.lower(), rest


_BAD_HOST_CHARACTERS = frozenset(' \t\n\r<>"{}|\\^`%')


def _authority_problem(authority: str) -> str:
    """What is wrong with `host[:port]`, or "" when nothing is."""
    expected = "; expected HOST:PORT or a URL"
    if authority.startswith("["):
        host, _, after = authority[1:].partition("]")
        if after and not after.startswith(":"):
            return f"unexpected {after!r} after the IPv6 address{expected}"
        has_port, port = bool(after), after[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address{expected}"
    else:
        host, colon, port = authority.partition(":")
        has_port = bool(colon)
        if ":" in port:
            return f"Invalid port: {port!r} (an IPv6 address goes in []){expected}"
        if _BAD_HOST_CHARACTERS.intersection(host):
            return f"Invalid host: {host!r}{expected}"
    if not host:
        return "it has no host"
    if has_port:
        if not port.isdigit():
            return f"Invalid port: {port!r}{expected}"
        if not 0 < int(port) < 65536:
            return f"port {int(port)} is not 1-65535"
    return ""


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """One SSLContext per client, shared by all its connections.

    Built once because loading a CA bundle costs milliseconds and memory.
    `verify=True` trusts the system's CA store (as urllib3 and aiohttp do);
    a path trusts that bundle only; False checks nothing.
    """
    if settings.verify is True:
        context = ssl.create_default_context()
    elif settings.verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=settings.verify)
    if isinstance(settings.cert, tuple):
        context.load_cert_chain(settings.cert[0], settings.cert[1])
    elif settings.cert:
        context.load_cert_chain(settings.cert)
    return context


# ------------------------------------------------------------------ calls


class Answer(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What came back, reduced to what the decoders need."""

    status: int
    body: bytes
    index: int = 0
    content_type: bytes = b""


_STATUS_ERRORS: dict[int, type[RequestRejected]] = {
    400: InvalidRequest,
    403: PermissionDenied,
    404: NotFound,
    413: PayloadTooLarge,
    414: UriTooLong,
}


def raise_for_status(answer: Answer, what: str) -> None:
    """Map a non-2xx answer to the exception tree (the registry's own words)."""
    if answer.status < 400:
        return
    text = answer.body.decode(errors="replace").strip() or f"HTTP {answer.status}"
    if answer.status >= 500:
        raise RegistryServerError(f"{what}: {text}", answer.status)
    error = _STATUS_ERRORS.get(answer.status, RequestRejected)
    raise error(text)


class Call(Generic[T]):
    """One request and how its answer becomes a value.

    Args:
        method, path: what to send; `path` is already quoted.
        params: query parameters, repeatable.
        body: raw body, or None.
        decode: answer → value, called only for an accepted status.
        missing: value for a 404 when a 404 means "absent" (KV get).
        wait: seconds the registry may hold the request (blocking query).
        limit: at most this many seconds, whatever the client's timeout
            (a heartbeat must not outlive its interval).
        accept: the `Accept` header's value, if any (Consul's JSON is the
            default; the compact answer is asked for here, and `decode`
            must read whatever comes back).
    """

    __slots__ = (
        "accept",
        "body",
        "decode",
        "limit",
        "message",
        "method",
        "missing",
        "params",
        "path",
        "wait",
    )

    def __init__(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        decode: Callable[[Answer], T],
        missing: Callable[[Answer], T] | None = None,
        wait: float = 0.0,
        limit: float | None = None,
        accept: bytes = b"",
    ) -> None:
        self.accept = accept
        #: The request's bytes and whom they were built for (`_http11`).
        self.message: tuple[object, bytes] | None = None
        self.method = method
        self.path = path
        self.params = list(params)
        self.body = body
        self.decode = decode
        self.missing = missing
        self.wait = wait
        self.limit = limit

    def timeout(self, settings: Settings) -> float:
        # Consul adds up to wait/16 of jitter; leave room for it and the trip.
        seconds = settings.timeout + self.wait * (1 + 1 / 16)
        return seconds if self.limit is None else min(seconds, self.limit)

    def finish(self, answer: Answer) -> T:
        if answer.status == 404 and self.missing is not None:
            return self.missing(answer)
        raise_for_status(answer, f"{self.method} {self.path}")
        return self.decode(answer)


def _segment(value: str, what: str) -> str:
    if not value:
        raise InvalidRequest(f"{what} must not be empty")
    return _quoted(value)


# Go's url.PathEscape, which Consul's own client uses: a segment keeps
# `:` and `@` (check IDs are `service:<id>`), so the registry has nothing to
# unquote.
_PATH_SAFE = "!$&'()*+:=@"
_needs_no_quoting = re.compile(r"[\w.~!$&'()*+:=@-]*", re.ASCII).fullmatch


def _quoted(value: str) -> str:
    if _needs_no_quoting(value):  # most names and IDs: no work at all
        return value
    return _quote_cached(value)


@functools.lru_cache(maxsize=4096)
def _quote_cached(value: str) -> str:
    return quote(value, safe=_PATH_SAFE)


def _nothing(answer: Answer) -> None:
    return None


def _json(answer: Answer) -> JSONValue:
    if not answer.body:
        return None
    try:
        return msgspec.json.decode(answer.body)
    except msgspec.DecodeError as exc:
        raise RegistryServerError(f"the registry answered invalid JSON: {exc}") from exc


# ------------------------------------------------------------------ durations


def seconds(value: float | str, what: str = "duration") -> float:
    """`10`, `10.0` or Consul's `"10s"` → seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        try:
            result = parse_duration(str(value))
        except ValueError:
            raise InvalidRequest(f"{what}: {value!r} is not a duration") from None
    if result <= 0:
        raise InvalidRequest(f"{what}: {value!r} must be positive")
    return result
