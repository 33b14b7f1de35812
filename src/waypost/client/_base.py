"""Everything the sync and async clients share: settings, calls, decoding.

No I/O: a `Call` says what to send and how to read the answer; `Client` and
`AsyncClient` only move the bytes. Consul's PascalCase names appear here
only because the registry's own `http/wire.py` writes model → JSON, and the
client needs the reverse direction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from waypost.client.model import Instance, InstanceSet, Member
from waypost.core.model import Check, HealthStatus, KVEntry, Weights
from waypost.exceptions import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RegistryConnectError,
    RegistryServerError,
    RequestRejected,
)
from waypost.http.durations import format_duration, parse_duration

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
#: Meta key an instance's weight may be read from (`"0"` drains it).
WEIGHT_META_KEY = "weight"

JSONValue = object


# ------------------------------------------------------------------ settings


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the registry is and how to talk to it (resolved once)."""

    base_url: str
    address: str
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
    chosen by `WAYPOST_HTTP_SSL=true` / `CONSUL_HTTP_SSL=true`.
    """
    env = os.environ if environ is None else environ
    raw = address or _env(ADDRESS_ENV, env) or DEFAULT_ADDRESS
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = ("https" if _is_true(_env(SSL_ENV, env)) else "http"), raw
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"address {raw!r}: scheme must be http or https")
    rest = rest.rstrip("/")
    if not rest:
        raise InvalidRequest(f"address {raw!r} has no host")
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
        token=token if token is not None else _env(TOKEN_ENV, env),
        verify=verify,
        cert=cert,
        timeout=timeout,
    )


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """One SSLContext per client, shared by all its connection pools.

    Built once because loading a CA bundle costs milliseconds and memory,
    and each watcher has a pool of its own. httpx 0.28 deprecates
    `verify=<path>` and `cert=`, so a CA file and a client certificate go
    into the context here.
    """
    if settings.verify is True:
        context = httpx.create_ssl_context()
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


def httpx_options(settings: Settings) -> dict[str, object]:
    """Keyword arguments shared by `httpx.Client` and `httpx.AsyncClient`."""
    headers = {"X-Consul-Token": settings.token} if settings.token else {}
    return {
        "base_url": settings.base_url,
        "headers": headers,
        "timeout": settings.timeout,
        "trust_env": False,
    }


def transport_options(
    context: ssl.SSLContext, max_connections: int
) -> dict[str, object]:
    """Keyword arguments for `httpx.HTTPTransport` / `AsyncHTTPTransport`."""
    return {
        "verify": context,
        "trust_env": False,
        "limits": httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
        ),
    }


@contextlib.contextmanager
def mapped_transport_errors(settings: Settings) -> Iterator[None]:
    """httpx's transport errors → `RegistryConnectError`, cause kept."""
    try:
        yield
    except httpx.TransportError as exc:
        raise RegistryConnectError(
            f"cannot reach the registry at {settings.address}: "
            f"{type(exc).__name__}: {exc or 'no answer'}"
        ) from exc


# ------------------------------------------------------------------ calls


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """What came back, reduced to what the decoders need."""

    status: int
    body: bytes
    index: int = 0


_STATUS_ERRORS: dict[int, type[RequestRejected]] = {
    400: InvalidRequest,
    403: PermissionDenied,
    404: NotFound,
    413: PayloadTooLarge,
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
    """

    __slots__ = (
        "body",
        "decode",
        "limit",
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
    ) -> None:
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


def answer_from(response: httpx.Response) -> Answer:
    raw = response.headers.get("x-consul-index", "")
    return Answer(
        status=response.status_code,
        body=response.content,
        index=int(raw) if raw.isdigit() else 0,
    )


def _segment(value: str, what: str) -> str:
    if not value:
        raise InvalidRequest(f"{what} must not be empty")
    return quote(value, safe="")


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


# ------------------------------------------------------------------ registration


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """What a service instance registers as, with its TTL check."""

    name: str
    service_id: str
    port: int
    address: str = ""
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = {}
    weight: int | None = None
    ttl: float | None = 10.0
    deregister_after: float | None = None

    @property
    def check_id(self) -> str:
        """Consul's default ID for a service's only check."""
        return f"service:{self.service_id}"

    @property
    def heartbeat_interval(self) -> float:
        """TTL/3: two heartbeats may be lost before the check expires."""
        return (self.ttl or 30.0) / 3


def default_service_id(name: str, port: int) -> str:
    """`<name>-<host>-<port>`: stable across restarts of the same process."""
    return f"{name}-{socket.gethostname()}-{port}"


def make_registration(
    name: str,
    *,
    port: int,
    address: str = "",
    service_id: str | None = None,
    tags: Sequence[str] = (),
    meta: Mapping[str, str] | None = None,
    weight: int | None = None,
    ttl: float | str | None = "10s",
    deregister_after: float | str | None = None,
) -> Registration:
    """Validate the arguments of `register()` into a Registration."""
    if not name:
        raise InvalidRequest("name must not be empty")
    if not 0 <= port <= 65535:
        raise InvalidRequest(f"port {port} must be between 0 and 65535")
    if weight is not None and (isinstance(weight, bool) or weight < 0):
        raise InvalidRequest(f"weight {weight!r} must be an int >= 0")
    if isinstance(tags, str):
        raise InvalidRequest("tags must be a list of strings, not one string")
    return Registration(
        name=name,
        service_id=service_id or default_service_id(name, port),
        port=port,
        address=address,
        tags=tuple(tags),
        meta=dict(meta or {}),
        weight=weight,
        ttl=None if ttl is None else seconds(ttl, "ttl"),
        deregister_after=(
            None
            if deregister_after is None
            else seconds(deregister_after, "deregister_after")
        ),
    )


def registration_body(registration: Registration) -> bytes:
    """`PUT /v1/agent/service/register` body; the TTL check starts passing."""
    meta = dict(registration.meta)
    body: dict[str, JSONValue] = {
        "ID": registration.service_id,
        "Name": registration.name,
        "Port": registration.port,
        "Tags": list(registration.tags),
    }
    if registration.address:
        body["Address"] = registration.address
    if registration.weight is not None:
        # Consul's Weights.Passing must be >= 1, so 0 (drain) lives in Meta.
        meta[WEIGHT_META_KEY] = str(registration.weight)
        body["Weights"] = {"Passing": max(registration.weight, 1), "Warning": 1}
    if meta:
        body["Meta"] = meta
    if registration.ttl is not None:
        check: dict[str, JSONValue] = {
            "CheckID": registration.check_id,
            "Name": f"Service '{registration.name}' heartbeat",
            "TTL": format_duration(registration.ttl),
            "Status": "passing",
        }
        if registration.deregister_after is not None:
            check["DeregisterCriticalServiceAfter"] = format_duration(
                registration.deregister_after
            )
        body["Check"] = check
    return msgspec.json.encode(body)


def register_call(registration: Registration) -> Call[None]:
    return Call(
        "PUT",
        "/v1/agent/service/register",
        body=registration_body(registration),
        decode=_nothing,
    )


def deregister_call(service_id: str) -> Call[None]:
    path = "/v1/agent/service/deregister/" + _segment(service_id, "service_id")
    return Call("PUT", path, decode=_nothing)


def check_call(check_id: str, status: HealthStatus, note: str = "") -> Call[None]:
    verb = {"passing": "pass", "warning": "warn", "critical": "fail"}[status.value]
    params = [("note", note)] if note else []
    path = f"/v1/agent/check/{verb}/" + _segment(check_id, "check_id")
    return Call("PUT", path, params=params, decode=_nothing)


def maintenance_call(
    *, enable: bool, reason: str = "", service_id: str | None = None
) -> Call[None]:
    params = [("enable", "true" if enable else "false")]
    if reason:
        params.append(("reason", reason))
    if service_id is None:
        return Call("PUT", "/v1/agent/maintenance", params=params, decode=_nothing)
    path = "/v1/agent/service/maintenance/" + _segment(service_id, "service_id")
    return Call("PUT", path, params=params, decode=_nothing)


# ------------------------------------------------------------------ reads


def services_call() -> Call[dict[str, list[str]]]:
    def decode(answer: Answer) -> dict[str, list[str]]:
        data = _json(answer)
        if not isinstance(data, dict):
            return {}
        return {str(k): [str(t) for t in v or []] for k, v in data.items()}

    return Call("GET", "/v1/catalog/services", decode=decode)


def instances_call(
    name: str,
    *,
    passing: bool = False,
    tags: Sequence[str] = (),
    index: int | None = None,
    wait: float | str | None = None,
) -> Call[InstanceSet]:
    """`GET /v1/health/service/<name>`, blocking when `index` is given."""
    if isinstance(tags, str):
        raise InvalidRequest("tags must be a list of strings, not one string")
    params: list[tuple[str, str]] = [("tag", tag) for tag in tags]
    if passing:
        params.append(("passing", "1"))
    wait_seconds = 0.0
    if index is not None and index > 0:
        params.append(("index", str(index)))
        if wait is not None:
            wait_seconds = seconds(wait, "wait")
            params.append(("wait", format_duration(wait_seconds)))
        else:
            wait_seconds = 300.0  # the registry's default, as Consul's
    path = "/v1/health/service/" + _segment(name, "service name")

    def decode(answer: Answer) -> InstanceSet:
        data = _json(answer)
        rows = data if isinstance(data, list) else []
        found = tuple(decode_instance(row) for row in rows if isinstance(row, dict))
        return InstanceSet(instances=found, index=answer.index)

    return Call("GET", path, params=params, decode=decode, wait=wait_seconds)


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def aggregate_status(statuses: Sequence[str]) -> HealthStatus:
    """The worst of the statuses: critical > warning > passing."""
    for status in (HealthStatus.CRITICAL, HealthStatus.WARNING):
        if status.value in statuses:
            return status
    return HealthStatus.PASSING


def decode_instance(row: Mapping[str, object]) -> Instance:
    """A Consul ServiceEntry (`Node`, `Service`, `Checks`) → Instance."""
    node = _dict(row.get("Node"))
    service = _dict(row.get("Service"))
    checks = row.get("Checks")
    statuses = [
        _str(_dict(check).get("Status"))
        for check in (checks if isinstance(checks, list) else [])
    ]
    weights = _dict(service.get("Weights"))
    raw_tags = service.get("Tags")
    raw_meta = _dict(service.get("Meta"))
    return Instance(
        service_id=_str(service.get("ID")),
        name=_str(service.get("Service")),
        address=_str(service.get("Address")) or _str(node.get("Address")),
        port=_int(service.get("Port")),
        tags=tuple(str(t) for t in raw_tags) if isinstance(raw_tags, list) else (),
        meta={str(k): str(v) for k, v in raw_meta.items()},
        weights=Weights(
            passing=_int(weights.get("Passing"), 1),
            warning=_int(weights.get("Warning"), 1),
        ),
        node=_str(node.get("Node")),
        node_address=_str(node.get("Address")),
        datacenter=_str(node.get("Datacenter")),
        status=aggregate_status(statuses),
        modify_index=_int(service.get("ModifyIndex")),
    )


def members_call() -> Call[list[Member]]:
    def decode(answer: Answer) -> list[Member]:
        data = _json(answer)
        rows = data if isinstance(data, list) else []
        return [
            Member(
                name=_str(m.get("Name")),
                address=_str(m.get("Addr")),
                port=_int(m.get("Port")),
                status=_int(m.get("Status")),
                datacenter=_str(_dict(m.get("Tags")).get("dc")),
                build=_str(_dict(m.get("Tags")).get("build")),
            )
            for m in (_dict(row) for row in rows)
        ]

    return Call("GET", "/v1/agent/members", decode=decode)


def checks_call() -> Call[list[Check]]:
    """`GET /v1/agent/checks`: this agent's checks, maintenance included."""

    def decode(answer: Answer) -> list[Check]:
        data = _dict(_json(answer))
        checks = []
        for raw in data.values():
            row = _dict(raw)
            try:
                status = HealthStatus(_str(row.get("Status")))
            except ValueError:
                status = HealthStatus.CRITICAL
            checks.append(
                Check(
                    node=_str(row.get("Node")),
                    check_id=_str(row.get("CheckID")),
                    name=_str(row.get("Name")),
                    status=status,
                    notes=_str(row.get("Notes")),
                    output=_str(row.get("Output")),
                    service_id=_str(row.get("ServiceID")),
                    service_name=_str(row.get("ServiceName")),
                    type=_str(row.get("Type")),
                )
            )
        return sorted(checks, key=lambda c: c.check_id)

    return Call("GET", "/v1/agent/checks", decode=decode)


def leader_call() -> Call[str]:
    def decode(answer: Answer) -> str:
        return _str(_json(answer))

    return Call("GET", "/v1/status/leader", decode=decode)


# ------------------------------------------------------------------ kv


def _kv_entry(row: Mapping[str, object]) -> KVEntry:
    import base64

    raw = row.get("Value")
    return KVEntry(
        key=_str(row.get("Key")),
        value=base64.b64decode(raw) if isinstance(raw, str) else None,
        flags=_int(row.get("Flags")),
        lock_index=_int(row.get("LockIndex")),
        session=_str(row.get("Session")),
        create_index=_int(row.get("CreateIndex")),
        modify_index=_int(row.get("ModifyIndex")),
    )


def _kv_path(key: str) -> str:
    if not key:
        raise InvalidRequest("key must not be empty")
    return "/v1/kv/" + quote(key, safe="/")


def kv_get_call(key: str) -> Call[KVEntry | None]:
    def decode(answer: Answer) -> KVEntry | None:
        data = _json(answer)
        rows = data if isinstance(data, list) else []
        return _kv_entry(_dict(rows[0])) if rows else None

    return Call("GET", _kv_path(key), decode=decode, missing=lambda _: None)


def kv_list_call(prefix: str) -> Call[list[KVEntry]]:
    def decode(answer: Answer) -> list[KVEntry]:
        data = _json(answer)
        rows = data if isinstance(data, list) else []
        return [_kv_entry(_dict(row)) for row in rows]

    path = "/v1/kv/" + quote(prefix, safe="/")
    return Call("GET", path, params=[("recurse", "")], decode=decode, missing=_empty)


def _empty(answer: Answer) -> list[KVEntry]:
    return []


def _true(answer: Answer) -> bool:
    return _json(answer) is True


def kv_put_call(
    key: str, value: bytes | str, *, flags: int = 0, cas: int | None = None
) -> Call[bool]:
    params = [("flags", str(flags))] if flags else []
    if cas is not None:
        params.append(("cas", str(cas)))
    data = value.encode() if isinstance(value, str) else bytes(value)
    return Call("PUT", _kv_path(key), params=params, body=data, decode=_true)


def kv_delete_call(
    key: str, *, recurse: bool = False, cas: int | None = None
) -> Call[bool]:
    params = [("recurse", "")] if recurse else []
    if cas is not None:
        params.append(("cas", str(cas)))
    path = "/v1/kv/" + quote(key, safe="/") if recurse else _kv_path(key)
    return Call("DELETE", path, params=params, decode=_true)


# ------------------------------------------------------------------ heartbeats

logger = logging.getLogger("waypost.client")

HeartbeatFailure = Callable[["Registration", Exception], None]


class HeartbeatState:
    """A registration's life between heartbeats: counts, logging, callbacks.

    The twins send; this decides what the outcome means. A 404 to the TTL
    pass means the registry lost the check (restart, reaped, deregistered
    by hand): register again. Any other failure is reported, and the next
    heartbeat tries again.

    Args:
        registration: what to register and heartbeat.
        on_failure: called with (registration, error) after each failed
            heartbeat, on the heartbeat thread or task; must not block.
    """

    def __init__(
        self, registration: Registration, on_failure: HeartbeatFailure | None = None
    ) -> None:
        self.registration = registration
        self.on_failure = on_failure
        self.beats = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.reregistrations = 0
        self.last_error: Exception | None = None

    def pass_call(self) -> Call[None]:
        call = check_call(self.registration.check_id, HealthStatus.PASSING)
        call.limit = self.registration.heartbeat_interval
        return call

    def register_call(self) -> Call[None]:
        call = register_call(self.registration)
        call.limit = self.registration.heartbeat_interval
        return call

    def lost(self) -> None:
        self.reregistrations += 1
        logger.warning(
            "registry lost service %r (check %r unknown); registering again",
            self.registration.service_id,
            self.registration.check_id,
        )

    def succeeded(self) -> None:
        if self.consecutive_failures:
            logger.info(
                "heartbeat of %r works again after %d failure(s)",
                self.registration.service_id,
                self.consecutive_failures,
            )
        self.beats += 1
        self.consecutive_failures = 0

    def failed(self, error: Exception) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = error
        logger.warning(
            "heartbeat of %r failed (%d in a row): %s",
            self.registration.service_id,
            self.consecutive_failures,
            error,
        )
        if self.on_failure is None:
            return
        try:
            self.on_failure(self.registration, error)
        except Exception:  # a broken callback must not stop the heartbeats
            logger.exception("on_heartbeat_failure callback raised")
