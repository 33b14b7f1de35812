"""Every request the client sends, and how each answer is decoded.

No I/O: each function returns a `Call` (see `_base.py`); `Client` and
`AsyncClient` send it. Consul's PascalCase names appear here because the
registry's `http/wire.py` writes model → JSON and the client reads the
reverse way.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Mapping, Sequence
from urllib.parse import quote

import msgspec

from waypost import compact
from waypost.client._base import (
    Answer,
    Call,
    JSONValue,
    _json,
    _nothing,
    _segment,
    seconds,
)
from waypost.client.model import (
    WEIGHT_META_KEY,
    Instance,
    InstanceSet,
    Member,
    RaftServer,
)
from waypost.core.model import Check, HealthStatus, KVEntry, Weights
from waypost.durations import format_duration
from waypost.exceptions import InvalidRequest, RegistryServerError

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


_CHECK_PATHS = {
    HealthStatus.PASSING: "/v1/agent/check/pass/",
    HealthStatus.WARNING: "/v1/agent/check/warn/",
    HealthStatus.CRITICAL: "/v1/agent/check/fail/",
}


def check_call(check_id: str, status: HealthStatus, note: str = "") -> Call[None]:
    params = [("note", note)] if note else ()
    path = _CHECK_PATHS[status] + _segment(check_id, "check_id")
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

    return Call(
        "GET",
        path,
        params=params,
        decode=_instance_set,
        wait=wait_seconds,
        accept=COMPACT_ACCEPT,
    )


#: The compact answer first, Consul's JSON from a registry that has none.
COMPACT_ACCEPT = compact.MEDIA_TYPE.encode() + b", application/json;q=0.5"
_COMPACT_TYPE = compact.MEDIA_TYPE.encode()


class _CompactHealth(msgspec.Struct):
    """What the client reads of a compact health answer (see waypost/compact.py):
    each entry decodes straight into an Instance; the rest is skipped."""

    Entries: tuple[Instance, ...] = ()


_compact_health = msgspec.msgpack.Decoder(_CompactHealth)


def _instance_set(answer: Answer) -> InstanceSet:
    if answer.content_type.startswith(_COMPACT_TYPE):
        try:
            found = _compact_health.decode(answer.body).Entries
        except msgspec.DecodeError as exc:  # ValidationError included
            raise RegistryServerError(
                f"the registry answered an unreadable compact answer: {exc}"
            ) from exc
        return InstanceSet(instances=found, index=answer.index)
    data = _json(answer)
    rows = data if isinstance(data, list) else []
    found = tuple(decode_instance(row) for row in rows if isinstance(row, dict))
    return InstanceSet(instances=found, index=answer.index)


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


def raft_servers_call() -> Call[list[RaftServer]]:
    def decode(answer: Answer) -> list[RaftServer]:
        servers = _dict(_json(answer)).get("Servers")
        rows = servers if isinstance(servers, list) else []
        return [
            RaftServer(
                id=_str(s.get("ID")),
                node=_str(s.get("Node")),
                address=_str(s.get("Address")),
                leader=s.get("Leader") is True,
                voter=s.get("Voter") is not False,
            )
            for s in (_dict(row) for row in rows)
        ]

    return Call("GET", "/v1/operator/raft/configuration", decode=decode)


def leader_call() -> Call[str]:
    def decode(answer: Answer) -> str:
        return _str(_json(answer))

    return Call("GET", "/v1/status/leader", decode=decode)


# ------------------------------------------------------------------ kv


def _kv_entry(row: Mapping[str, object]) -> KVEntry:
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


# ---------------------------------------------------------------- snapshots


def snapshot_save_call(*, stale: bool = False) -> Call[bytes]:
    """`GET /v1/snapshot`: the archive's bytes (a gzipped tar)."""
    params = [("stale", "")] if stale else []
    return Call("GET", "/v1/snapshot", params=params, decode=_body)


def _body(answer: Answer) -> bytes:
    return answer.body


def snapshot_restore_call(archive: bytes) -> Call[bool]:
    """`PUT /v1/snapshot`: replace the registry's whole state."""
    return Call("PUT", "/v1/snapshot", body=bytes(archive), decode=_accepted)


def _accepted(answer: Answer) -> bool:
    return True  # decode runs only for an accepted status; the body is empty
