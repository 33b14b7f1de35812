"""The values the registry holds: nodes, service instances, checks, KV entries.

Frozen msgspec Structs, snake_case inside; Consul's PascalCase names live only in
`http/wire.py`. No I/O. `gc=False`: these values never form reference cycles,
and keeping 100,000s of them out of the cyclic GC keeps its pauses short.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class HealthStatus(StrEnum):
    """A check's state, with Consul's strings as values."""

    # A check that answered well (or a TTL refreshed in time); counts as healthy.
    PASSING = "passing"
    # Degraded but serving; `?passing` drops it, weights use Weights.Warning.
    WARNING = "warning"
    # Failed, expired or never yet run; the default for a new check.
    CRITICAL = "critical"


class Weights(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How much traffic an instance gets when passing / warning (Consul's)."""

    passing: int = 1
    warning: int = 1


class Node(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A machine that hosts service instances (the agent's own, or external)."""

    name: str
    node_id: str = ""
    address: str = ""
    datacenter: str = "dc1"
    tagged_addresses: dict[str, str] = {}
    meta: dict[str, str] = {}
    create_index: int = 0
    modify_index: int = 0


class Service(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One registered instance of a service on a node."""

    node: str
    service_id: str
    name: str
    tags: tuple[str, ...] = ()
    address: str = ""
    port: int = 0
    meta: dict[str, str] = {}
    tagged_addresses: dict[str, dict[str, object]] = {}
    weights: Weights = Weights()
    #: Registered through the agent: Consul's agent adds lan/wan_ipv4 (or
    #: _ipv6) tagged addresses from an IP Address. Derived when encoding, not
    #: stored: they would be a third of an instance's memory.
    agent_tagged_defaults: bool = False
    enable_tag_override: bool = False
    kind: str = ""
    socket_path: str = ""
    #: Connect's control-plane data, kept as data (waypost runs no proxies):
    #: the Proxy object as JSON in Consul's spelling, its destination (what
    #: /v1/catalog/connect selects on), Connect.Native, and Locality.
    proxy: bytes = b""
    proxy_destination: str = ""
    connect_native: bool = False
    locality: dict[str, str] = {}
    create_index: int = 0
    modify_index: int = 0


class CheckDefinition(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How a check is run: what the runner needs, and what the API echoes.

    Identical definitions (every `{"TTL": "10s"}`) are shared, not copied:
    see `http.wire.to_definition`.
    """

    ttl: float | None = None
    interval: float | None = None
    timeout: float | None = None
    http: str = ""
    method: str = ""
    header: dict[str, list[str]] = {}
    body: str = ""
    tls_server_name: str = ""
    tls_skip_verify: bool = False
    disable_redirects: bool = False
    tcp: str = ""
    tcp_use_tls: bool = False
    udp: str = ""
    grpc: str = ""
    grpc_use_tls: bool = False
    h2ping: str = ""
    h2ping_use_tls: bool = False
    alias_node: str = ""
    alias_service: str = ""
    args: list[str] = []
    deregister_critical_service_after: float | None = None
    success_before_passing: int = 0
    failures_before_warning: int = 0
    failures_before_critical: int = 0
    output_max_size: int = 0


class Check(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A health check on a node, or on one service instance of that node."""

    node: str
    check_id: str
    name: str = ""
    status: HealthStatus = HealthStatus.CRITICAL
    notes: str = ""
    output: str = ""
    service_id: str = ""
    service_name: str = ""
    service_tags: tuple[str, ...] = ()
    type: str = ""
    definition: CheckDefinition = CheckDefinition()
    create_index: int = 0
    modify_index: int = 0

    @property
    def is_passing(self) -> bool:
        return self.status is HealthStatus.PASSING


class KVEntry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One key of the KV store; `value` is raw bytes (base64 on the wire)."""

    key: str
    value: bytes | None = None
    flags: int = 0
    lock_index: int = 0
    session: str = ""
    create_index: int = 0
    modify_index: int = 0


def check_type(definition: CheckDefinition) -> str:
    """Consul's `Type` string for a check, from what it was given."""
    if definition.ttl is not None:
        return "ttl"
    for kind in ("http", "tcp", "udp", "grpc", "h2ping"):
        if getattr(definition, kind):
            return kind
    if definition.alias_service or definition.alias_node:
        return "alias"
    if definition.args:
        return "script"
    return ""


SERF_CHECK_ID = "serfHealth"
NODE_MAINTENANCE_CHECK_ID = "_node_maintenance"
SERVICE_MAINTENANCE_PREFIX = "_service_maintenance:"
