"""Model ⇄ Consul JSON: the only place Consul's PascalCase names are written.

Decoded request dicts (from `decode.py`) become model values with Consul's
defaults and validation; model values become Consul's response shapes.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
from collections.abc import Mapping
from sys import intern

import msgspec

from waypost.core.coordinates import NodeCoordinate
from waypost.core.events import UserEvent
from waypost.core.model import (
    Check,
    CheckDefinition,
    HealthStatus,
    KVEntry,
    Node,
    Service,
    Weights,
    check_type,
)
from waypost.core.vivaldi import Coordinate
from waypost.durations import format_duration
from waypost.exceptions import InvalidRequest
from waypost.http import connect_wire
from waypost.http.decode import Decoded, json_type_name

JSON = dict[str, object]

MAX_META_PAIRS = 64
MAX_META_KEY = 128
MAX_META_VALUE = 512
MAX_WEIGHT = 65535
_META_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

# Consul's structs.NodeService renders these empty structs on every service.
_EMPTY_PROXY: JSON = {"Mode": "", "MeshGateway": {}, "Expose": {}}
_CONNECT_NATIVE: JSON = {"Native": True}


def _proxy(service: Service) -> JSON:
    if not service.proxy:
        return _EMPTY_PROXY
    return connect_wire.proxy_json(service.proxy)


def service_id(value: object, name: str) -> tuple[str, bool]:
    """The service ID as a string, and whether it was sent as a JSON number.

    Deliberate leniency (see README): `python-consul`'s
    `register("web", 8080)` sends 8080 as the ID, not the port. Consul rejects
    that body; we accept a whole number as its string so the seed's example
    runs, and the handler warns. A fractional number is still a decode error.
    """
    if value is None or value == "":
        return name, False
    if isinstance(value, str):
        return value, False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer() and abs(value) < 2**63:
            return str(int(value)), True
        raise InvalidRequest(
            f"Request decode failed: ID: cannot unmarshal number {value} into a string"
        )
    raise InvalidRequest(
        "Request decode failed: ID: cannot unmarshal"
        f" {json_type_name(value)} into a string"
    )


def validate_meta(meta: Mapping[str, str], what: str) -> None:
    """Consul's meta rules: ≤64 pairs, key charset and sizes, no `consul-`.

    Messages are Consul's (`structs.validateMetadata`), prefixed like its
    agent endpoint: `Invalid Service Meta: Couldn't load metadata pair …`.
    """
    prefix = f"Invalid {what.capitalize()} Meta"
    if len(meta) > MAX_META_PAIRS:
        # Consul says "Node metadata" for services too.
        raise InvalidRequest(
            f"{prefix}: Node metadata cannot contain more than {MAX_META_PAIRS}"
            " key/value pairs"
        )
    for key, value in meta.items():
        problem = _meta_pair_problem(key, value)
        if problem:
            raise InvalidRequest(
                f"{prefix}: Couldn't load metadata pair ('{key}', '{value}'): {problem}"
            )


def _meta_pair_problem(key: str, value: str) -> str:
    problem = _meta_key_problem(key)
    if problem:
        return problem
    if len(value) > MAX_META_VALUE:
        return f"Value is too long (limit: {MAX_META_VALUE} characters)"
    return ""


@functools.lru_cache(maxsize=4096)
def _meta_key_problem(key: str) -> str:
    """What is wrong with a meta key (cached: the same keys come every time)."""
    if not key:
        return "Key cannot be blank"
    if not _META_KEY.match(key):
        return "Key contains invalid characters"
    if len(key) > MAX_META_KEY:
        return f"Key is too long (limit: {MAX_META_KEY} characters)"
    if key.startswith("consul-"):
        return "Key prefix 'consul-' is reserved for internal use"
    return ""


def parse_status(value: str, *, default: HealthStatus) -> HealthStatus:
    if not value:
        return default
    try:
        return HealthStatus(value)
    except ValueError:
        raise InvalidRequest(
            f'Invalid check status: "{value}"; must be one of passing, warning,'
            " critical"
        ) from None


def _port(value: object) -> int:
    port = _number(value)
    if not 0 <= port <= 65535:
        raise InvalidRequest(f"Invalid Port {port}: must be between 0 and 65535")
    return port


DEFAULT_WEIGHTS = Weights()


def _weights(data: object) -> Weights:
    """Consul's `structs.ValidateWeights`, with its agent endpoint's prefix."""
    if not isinstance(data, dict) or not data:
        return DEFAULT_WEIGHTS
    passing = int(data.get("Passing", 1))
    warning = int(data.get("Warning", 1))
    if passing < 1:
        raise InvalidRequest("Invalid Weights: Passing must be greater than 0")
    if warning < 0:
        raise InvalidRequest("Invalid Weights: Warning must be greater or equal than 0")
    if passing > MAX_WEIGHT or warning > MAX_WEIGHT:
        raise InvalidRequest(
            f"Invalid Weights: DNS Weight must be between 0 and {MAX_WEIGHT}"
        )
    if passing == DEFAULT_WEIGHTS.passing and warning == DEFAULT_WEIGHTS.warning:
        return DEFAULT_WEIGHTS
    return Weights(passing=passing, warning=warning)


# Model values are never mutated once built, so instances may share these:
# most services have no meta or tagged addresses, and the same few tag lists.
_NO_META: dict[str, str] = {}
_NO_TAGGED: dict[str, dict[str, object]] = {}
_TAG_LISTS: dict[tuple[str, ...], tuple[str, ...]] = {}
_TAG_LISTS_MAX = 10_000


def shared_tags(tags: list[str]) -> tuple[str, ...]:
    """One tuple per distinct tag list (bounded, like the definitions).

    Tuples, because the values that share them are frozen: a shared list
    could be changed through any of them.
    """
    key = tuple(tags)
    found = _TAG_LISTS.get(key)
    if found is None:
        if len(_TAG_LISTS) >= _TAG_LISTS_MAX:
            _TAG_LISTS.clear()
        _TAG_LISTS[key] = found = tuple(intern(t) for t in tags)
    return found


def _tagged_addresses(data: object) -> dict[str, dict[str, object]]:
    if not isinstance(data, dict) or not data:
        return _NO_TAGGED
    return {
        str(k): {"Address": v.get("Address", ""), "Port": v.get("Port", 0)}
        for k, v in data.items()
        if isinstance(v, dict)
    }


def to_service(
    data: Decoded, *, node: str, name_field: str = "Name"
) -> tuple[Service, bool]:
    """A service registration body → Service; also whether ID was a number."""
    name = intern(str(data.get(name_field, "") or ""))
    if not name:
        raise InvalidRequest("Missing service name")
    sid, numeric = service_id(data.get("ID"), name)
    # Names, tags and meta repeat across instances: keep one copy of each.
    meta = {
        intern(k): intern(v)
        for k, v in (data.get("Meta") or {}).items()  # type: ignore[attr-defined]
    } or _NO_META
    validate_meta(meta, "service")
    kind = str(data.get("Kind", "") or "")
    port = _port(data.get("Port", 0) or 0)
    socket_path = str(data.get("SocketPath", "") or "")
    connect = connect_wire.decode_connect(data)
    connect_wire.validate(kind, port, socket_path, connect)
    service = Service(
        node=node,
        service_id=sid,
        name=name,
        tags=shared_tags(data.get("Tags") or []),  # type: ignore[arg-type]
        address=str(data.get("Address", "") or ""),
        port=port,
        meta=meta,
        tagged_addresses=_tagged_addresses(data.get("TaggedAddresses")),
        weights=_weights(data.get("Weights")),
        enable_tag_override=bool(data.get("EnableTagOverride", False)),
        kind=kind,
        socket_path=socket_path,
        proxy=connect_wire.proxy_bytes(connect.proxy),
        proxy_destination=str(connect.proxy.get("DestinationServiceName", "")),
        connect_native=connect.native,
        locality=connect.locality,
    )
    return service, numeric


def to_definition(data: Mapping[str, object]) -> CheckDefinition:
    """The runnable part of a check body, validated like Consul's CheckType."""

    def text(name: str) -> str:
        return str(data.get(name) or "")

    def num(name: str) -> int:
        value = _number(data.get(name))
        if value < 0:
            raise InvalidRequest(f"{name} must be >= 0")
        return value

    def seconds(name: str) -> float | None:
        value = data.get(name)
        return None if value is None else float(value)  # type: ignore[arg-type]

    definition = CheckDefinition(
        ttl=seconds("TTL"),
        interval=seconds("Interval"),
        timeout=seconds("Timeout"),
        http=text("HTTP"),
        method=text("Method"),
        header=dict(data.get("Header") or {}),  # type: ignore[call-overload]
        body=text("Body"),
        tls_server_name=text("TLSServerName"),
        tls_skip_verify=bool(data.get("TLSSkipVerify")),
        disable_redirects=bool(data.get("DisableRedirects")),
        tcp=text("TCP"),
        tcp_use_tls=bool(data.get("TCPUseTLS")),
        udp=text("UDP"),
        grpc=text("GRPC"),
        grpc_use_tls=bool(data.get("GRPCUseTLS")),
        h2ping=text("H2PING"),
        h2ping_use_tls=bool(data.get("H2PingUseTLS")),
        alias_node=text("AliasNode"),
        alias_service=text("AliasService"),
        args=list(data.get("Args") or []),  # type: ignore[call-overload]
        deregister_critical_service_after=seconds("DeregisterCriticalServiceAfter"),
        success_before_passing=num("SuccessBeforePassing"),
        failures_before_warning=num("FailuresBeforeWarning"),
        failures_before_critical=num("FailuresBeforeCritical"),
        output_max_size=num("OutputMaxSize"),
    )
    _validate_definition(definition)
    return _shared(definition)


#: Distinct definitions seen recently, by their msgpack bytes. Bounded: when
#: full it starts again, which only costs later duplicates their sharing.
_DEFINITIONS: dict[bytes, CheckDefinition] = {}
_DEFINITIONS_MAX = 10_000
_definition_key = msgspec.msgpack.Encoder().encode


def _shared(definition: CheckDefinition) -> CheckDefinition:
    """One object per distinct definition: 10,000 `TTL 10s` checks share one."""
    key = _definition_key(definition)
    found = _DEFINITIONS.get(key)
    if found is None:
        if len(_DEFINITIONS) >= _DEFINITIONS_MAX:
            _DEFINITIONS.clear()
        _DEFINITIONS[key] = found = definition
    return found


def _validate_definition(d: CheckDefinition) -> None:
    kind = check_type(d)
    if d.ttl is not None and d.ttl <= 0:
        raise InvalidRequest("Invalid check: TTL must be > 0 for TTL checks")
    needs_interval = kind in {"http", "tcp", "udp", "grpc", "h2ping", "script"}
    if needs_interval and (d.interval is None or d.interval <= 0):
        raise InvalidRequest(f"Invalid check: {_INTERVAL_REQUIRED}")
    if d.timeout is not None and d.timeout < 0:
        raise InvalidRequest("Invalid check: Timeout must be >= 0")
    if d.http and not re.match(r"^https?://", d.http):
        raise InvalidRequest(f'Invalid check: HTTP "{d.http}" is not an http(s) URL')


_INTERVAL_REQUIRED = (
    "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
)
_INTERVAL_KINDS = ("Args", "HTTP", "TCP", "UDP", "GRPC", "H2PING", "OSService")


def is_empty_check(data: Mapping[str, object]) -> bool:
    """Consul's `CheckType.Empty()`: a check body with nothing set is ignored."""
    return not any(value not in (None, "", 0, False, [], {}) for value in data.values())


def validate_check_type(data: Mapping[str, object]) -> None:
    """Consul's `CheckType.Validate()` for a check the agent will run.

    Agent registrations only: a catalog check is a status record, never run.
    Messages are Consul's (agent/structs/check_type.go), prefixed
    `Invalid check: ` like its agent endpoints.
    """
    ttl = _seconds(data.get("TTL"))
    interval = _seconds(data.get("Interval"))
    runs_on_interval = any(data.get(name) for name in _INTERVAL_KINDS)
    is_alias = bool(data.get("AliasNode") or data.get("AliasService"))
    problem = ""
    if interval > 0 and ttl > 0:
        problem = "Interval and TTL cannot both be specified"
    elif runs_on_interval and interval <= 0:
        problem = _INTERVAL_REQUIRED
    elif runs_on_interval and is_alias:
        problem = "Interval cannot be set for Alias checks"
    elif is_alias and ttl > 0:
        problem = "TTL must be not be set for Alias checks"
    elif not runs_on_interval and not is_alias and ttl <= 0:
        problem = "TTL must be > 0 for TTL checks"
    elif _number(data.get("OutputMaxSize")) < 0:
        problem = "MaxOutputMaxSize must be positive"
    if problem:
        raise InvalidRequest(f"Invalid check: {problem}")


def _seconds(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _number(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def tagged_addresses(service: Service) -> dict[str, dict[str, object]]:
    """The service's tagged addresses as Consul shows them.

    For agent registrations, Consul's `Agent.addServiceInternal` fills
    lan/wan_ipv4 (or _ipv6) from an IP Address, never over a tagged address
    the caller gave; derived here rather than stored with every instance.
    """
    if not service.agent_tagged_defaults:
        return service.tagged_addresses
    version = _ip_version(service.address)
    if version is None:
        return service.tagged_addresses
    suffix = f"ipv{version}"
    tagged = dict(service.tagged_addresses)
    for key in (f"lan_{suffix}", f"wan_{suffix}"):
        tagged.setdefault(key, {"Address": service.address, "Port": service.port})
    return tagged


@functools.lru_cache(maxsize=4096)
def _ip_version(address: str) -> int | None:
    """4 or 6 for an IP address, None for a name (cached: addresses repeat)."""
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def is_any_address(address: str) -> bool:
    """Consul's `ipaddr.IsAny`: 0.0.0.0, :: and [::] are not service addresses."""
    return address in ("0.0.0.0", "::", "[::]")


def to_check(
    data: Mapping[str, object],
    *,
    node: str,
    check_id: str,
    default_name: str,
    service_id: str = "",
    status_default: HealthStatus = HealthStatus.CRITICAL,
    definition: CheckDefinition | None = None,
) -> Check:
    """A check body → Check; `definition` when the body nests it (catalog)."""
    definition = definition if definition is not None else to_definition(data)
    kind = str(data.get("Type") or "") or check_type(definition)
    if not kind and definition == CheckDefinition() and "Status" not in data:
        raise InvalidRequest(
            "Invalid check: one of Args, HTTP, TCP, UDP, GRPC, H2PING, TTL or"
            " AliasService must be set"
        )
    return Check(
        node=node,
        check_id=check_id,
        name=str(data.get("Name") or "") or default_name,
        status=parse_status(str(data.get("Status") or ""), default=status_default),
        notes=str(data.get("Notes") or ""),
        output=str(data.get("Output") or ""),
        service_id=service_id,
        type=kind,
        definition=definition,
    )


# --------------------------------------------------------------- encoding


def node_json(node: Node) -> JSON:
    return {
        "ID": node.node_id,
        "Node": node.name,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": node.tagged_addresses,
        "Meta": node.meta,
        "CreateIndex": node.create_index,
        "ModifyIndex": node.modify_index,
    }


def agent_service_json(service: Service, datacenter: str) -> JSON:
    """`/v1/agent/services` and `/v1/agent/service/:id` (api.AgentService)."""
    out: JSON = {"ID": service.service_id, "Service": service.name}
    if service.kind:
        out["Kind"] = service.kind
    out.update(
        {
            "Tags": service.tags,
            "Meta": service.meta,
            "Port": service.port,
            "Address": service.address,
        }
    )
    if service.socket_path:
        out["SocketPath"] = service.socket_path
    tagged = tagged_addresses(service)
    if tagged:
        out["TaggedAddresses"] = tagged
    out.update(
        {
            "Weights": _weights_json(service.weights),
            "EnableTagOverride": service.enable_tag_override,
        }
    )
    # api.AgentService: Proxy for proxies and gateways, Connect when set.
    if service.kind:
        out["Proxy"] = connect_wire.proxy_json(service.proxy)
    if service.connect_native:
        out["Connect"] = {"Native": True}
    if service.locality:
        out["Locality"] = service.locality
    out["Datacenter"] = datacenter
    return out


def node_service_json(service: Service) -> JSON:
    """A service as Consul's structs.NodeService (health and catalog/node)."""
    out: JSON = {"ID": service.service_id, "Service": service.name}
    if service.kind:
        out["Kind"] = service.kind
    out.update(
        {
            "Tags": service.tags,
            "Address": service.address,
        }
    )
    tagged = tagged_addresses(service)
    if tagged:
        out["TaggedAddresses"] = tagged
    out.update(
        {
            "Meta": service.meta,
            "Port": service.port,
        }
    )
    if service.socket_path:
        out["SocketPath"] = service.socket_path
    out.update(
        {
            "Weights": _weights_json(service.weights),
            "EnableTagOverride": service.enable_tag_override,
            "Proxy": _proxy(service),
            "Connect": _CONNECT_NATIVE if service.connect_native else {},
            "PeerName": "",
        }
    )
    if service.locality:
        out["Locality"] = service.locality
    out["CreateIndex"] = service.create_index
    out["ModifyIndex"] = service.modify_index
    return out


def catalog_service_json(node: Node, service: Service) -> JSON:
    """`/v1/catalog/service/:name` rows (structs.ServiceNode)."""
    return {
        "ID": node.node_id,
        "Node": node.name,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": node.tagged_addresses,
        "NodeMeta": node.meta,
        "ServiceKind": service.kind,
        "ServiceID": service.service_id,
        "ServiceName": service.name,
        "ServiceTags": service.tags,
        "ServiceAddress": service.address,
        "ServiceTaggedAddresses": tagged_addresses(service) or None,
        "ServiceWeights": _weights_json(service.weights),
        "ServiceMeta": service.meta,
        "ServicePort": service.port,
        "ServiceSocketPath": service.socket_path,
        "ServiceEnableTagOverride": service.enable_tag_override,
        "ServiceProxy": _proxy(service),
        "ServiceConnect": _CONNECT_NATIVE if service.connect_native else {},
        "ServicePeerName": "",
        "CreateIndex": service.create_index,
        "ModifyIndex": service.modify_index,
    }


def check_json(check: Check) -> JSON:
    """Consul's structs.HealthCheck."""
    d = check.definition
    return {
        "Node": check.node,
        "CheckID": check.check_id,
        "Name": check.name,
        "Status": check.status.value,
        "Notes": check.notes,
        "Output": check.output,
        "ServiceID": check.service_id,
        "ServiceName": check.service_name,
        "ServiceTags": check.service_tags,
        "Type": check.type,
        "Interval": format_duration(d.interval) if d.interval else "",
        "Timeout": format_duration(d.timeout) if d.timeout else "",
        "ExposedPort": 0,
        "Definition": definition_json(d),
        "CreateIndex": check.create_index,
        "ModifyIndex": check.modify_index,
    }


def definition_json(d: CheckDefinition) -> JSON:
    """HealthCheckDefinition: Consul omits empty fields here."""
    out: JSON = {}
    for name, value in (
        ("HTTP", d.http),
        ("TLSServerName", d.tls_server_name),
        ("TLSSkipVerify", d.tls_skip_verify),
        ("Header", d.header),
        ("Method", d.method),
        ("Body", d.body),
        ("DisableRedirects", d.disable_redirects),
        ("TCP", d.tcp),
        ("TCPUseTLS", d.tcp_use_tls),
        ("UDP", d.udp),
        ("H2PING", d.h2ping),
        ("H2PingUseTLS", d.h2ping_use_tls),
        ("GRPC", d.grpc),
        ("GRPCUseTLS", d.grpc_use_tls),
        ("AliasNode", d.alias_node),
        ("AliasService", d.alias_service),
        ("ScriptArgs", d.args),
        ("OutputMaxSize", d.output_max_size),
    ):
        if value:
            out[name] = value
    for name, seconds in (
        ("Interval", d.interval),
        ("Timeout", d.timeout),
        ("TTL", d.ttl),
        ("DeregisterCriticalServiceAfter", d.deregister_critical_service_after),
    ):
        if seconds:
            out[name] = format_duration(seconds)
    return out


def kv_json(entry: KVEntry) -> JSON:
    return {
        "LockIndex": entry.lock_index,
        "Key": entry.key,
        "Flags": entry.flags,
        "Value": base64.b64encode(entry.value).decode() if entry.value else None,
        "CreateIndex": entry.create_index,
        "ModifyIndex": entry.modify_index,
        **({"Session": entry.session} if entry.session else {}),
    }


def _weights_json(weights: Weights) -> JSON:
    return {"Passing": weights.passing, "Warning": weights.warning}


# ---------------------------------------------------------------- events


def event_json(event: UserEvent) -> JSON:
    """Consul's UserEvent as its HTTP API shows it (Payload base64, or null)."""
    return {
        "ID": event.id,
        "Name": event.name,
        "Payload": base64.b64encode(event.payload).decode()
        if event.payload is not None
        else None,
        "NodeFilter": event.node_filter,
        "ServiceFilter": event.service_filter,
        "TagFilter": event.tag_filter,
        "Version": event.version,
        "LTime": event.ltime,
    }


# ---------------------------------------------------------------- coordinates


def coord_json(coord: Coordinate) -> JSON:
    """serf's Coordinate as Consul's API shows it."""
    return {
        "Vec": list(coord.vec),
        "Error": coord.error,
        "Adjustment": coord.adjustment,
        "Height": coord.height,
    }


def coordinate_json(entry: NodeCoordinate) -> JSON:
    """Consul's structs.Coordinate (Partition is Enterprise's: left out)."""
    return {
        "Node": entry.node,
        "Segment": entry.segment,
        "Coord": coord_json(entry.coord),
    }
