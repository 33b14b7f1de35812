"""`/v1/operator/*` (but the raft configuration, in `status.py`) and
`/v1/operator/usage`, as Consul's agent/operator_endpoint*.go answer them.

waypost runs no Raft and no gossip pool: one agent is its own only voter
and leader; in cluster mode the servers are the etcd members, which etcd
manages (a peer is removed with `etcdctl member remove`, not here). The
autopilot configuration is real data: a durable setting, with CAS.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.config import CONSUL_API_VERSION
from waypost.core.config.changes import AUTOPILOT, PutSetting, setting_topic
from waypost.core.config.model import Setting
from waypost.durations import format_duration, parse_duration
from waypost.exceptions import InvalidRequest
from waypost.http import status
from waypost.http.catalog import require_local_datacenter
from waypost.http.decode import decode_json
from waypost.http.messages import Query, Request, Response, json_response

if TYPE_CHECKING:
    from waypost.registry import Registry

# Consul's autopilot defaults (agent/config/default.go).
AUTOPILOT_DEFAULTS: dict[str, Any] = {
    "CleanupDeadServers": True,
    "LastContactThreshold": 0.2,
    "MaxTrailingLogs": 250,
    "MinQuorum": 0,
    "ServerStabilizationTime": 10.0,
    "RedundancyZoneTag": "",
    "DisableUpgradeMigration": False,
    "UpgradeVersionTag": "",
}
_DURATIONS = ("LastContactThreshold", "ServerStabilizationTime")
_BOOLS = ("CleanupDeadServers", "DisableUpgradeMigration")
_INTS = ("MaxTrailingLogs", "MinQuorum")
_STRINGS = ("RedundancyZoneTag", "UpgradeVersionTag")


# ---------------------------------------------------------------- raft


async def raft_peer(registry: Registry, request: Request) -> Response:
    """DELETE: Consul's OperatorRaftPeer. Nothing here is removable."""
    has_id, has_address = request.has("id"), request.has("address")
    if not has_id and not has_address:
        raise InvalidRequest(
            "Must specify either ?id with the server's ID or ?address with"
            " IP:port of peer to remove"
        )
    if has_id and has_address:
        raise InvalidRequest("Must specify only one of ?id or ?address")
    ids, addresses = await _peers(registry)
    if has_address:
        address = request.get("address")
        if address not in addresses:
            raise InvalidRequest(
                f'address "{address}" was not found in the Raft configuration'
            )
    else:
        peer_id = request.get("id")
        if peer_id not in ids:
            raise InvalidRequest(
                f'id "{peer_id}" was not found in the Raft configuration'
            )
    # Difference from Consul: waypost runs no Raft of its own.
    raise InvalidRequest(
        "cannot remove a server: waypost's servers are this agent (single"
        " agent) or etcd's members (cluster mode, `etcdctl member remove`)"
    )


async def _peers(registry: Registry) -> tuple[set[str], set[str]]:
    if registry.cluster is None:
        return {registry.node_id}, {status.raft_address(registry)}
    view = await registry.cluster.etcd_view()
    return {m.id for m in view.members}, {m.peer_address for m in view.members}


async def raft_transfer_leader(registry: Registry, request: Request) -> Response:
    """POST: hashicorp/raft's LeadershipTransfer with no other voter."""
    ids, _ = await _peers(registry)
    peer_id = request.get("id")
    if peer_id and peer_id not in ids:
        raise InvalidRequest(f"cannot find peer: {peer_id}")
    if registry.cluster is None or len(ids) < 2:
        raise InvalidRequest("cannot find peer")
    raise InvalidRequest(
        "leadership is etcd's in cluster mode: use `etcdctl move-leader`"
    )


# ---------------------------------------------------------------- keyring


async def keyring(registry: Registry, request: Request) -> Response:
    """Every keyring operation fails as on a Consul without gossip
    encryption: waypost has no gossip pool to encrypt."""
    if request.method in ("POST", "PUT", "DELETE") and request.body.strip():
        body = decode_json(request.body)
        if not isinstance(body, dict):
            raise InvalidRequest("Request decode failed: body is not an object")
    raise InvalidRequest(
        f"{registry.config.datacenter} (LAN) error: gossip encryption is not"
        " enabled (waypost has no gossip pool)"
    )


# ---------------------------------------------------------------- autopilot


def _autopilot(registry: Registry) -> tuple[dict[str, Any], int, int]:
    found = registry.catalog.config.setting(AUTOPILOT)
    if found is None:
        return dict(AUTOPILOT_DEFAULTS), 0, 0
    return msgspec.json.decode(found.body), found.create_index, found.modify_index


async def autopilot_configuration(
    registry: Registry, request: Request
) -> Response | Query:
    require_local_datacenter(registry, request)
    if request.method == "PUT":
        return await _put_autopilot(registry, request)

    def render() -> Response:
        config, create, modify = _autopilot(registry)
        out: dict[str, Any] = {}
        for name, value in config.items():
            out[name] = format_duration(value) if name in _DURATIONS else value
        out["CreateIndex"] = create
        out["ModifyIndex"] = modify
        return json_response(out)

    return Query([setting_topic(AUTOPILOT)], render)


async def _put_autopilot(registry: Registry, request: Request) -> Response:
    cas: int | None = None
    if request.has("cas"):
        text = request.get("cas")
        if not text.isdigit():
            raise InvalidRequest(
                f'Error parsing cas value: strconv.ParseUint: parsing "{text}":'
                " invalid syntax"
            )
        cas = int(text)
    config = _decode_autopilot(request.body)
    body = msgspec.json.encode(config)
    applied = await registry.apply(
        PutSetting(setting=Setting(key=AUTOPILOT, body=body), cas=cas)
    )
    # Consul answers `true` unless a CAS did not hold.
    return json_response(applied.ok if cas is not None else True)


def _decode_autopilot(raw: bytes) -> dict[str, Any]:
    """api.AutopilotConfiguration: what the body leaves out is zero, as in Go."""
    data = decode_json(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("Error parsing autopilot config: body is not an object")
    folded = {k.lower(): v for k, v in data.items()}
    out: dict[str, Any] = {}
    for name in AUTOPILOT_DEFAULTS:
        value = folded.get(name.lower())
        out[name] = _field(name, value)
    return out


def _field(name: str, value: object) -> Any:
    def bad(what: str) -> InvalidRequest:
        return InvalidRequest(
            f"Error parsing autopilot config: {name}: cannot unmarshal"
            f" {type(value).__name__} into {what}"
        )

    if name in _BOOLS:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise bad("bool")
        return value
    if name in _INTS:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad("uint64")
        return value
    if name in _STRINGS:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise bad("string")
        return value
    # ReadableDuration: a Go duration string, or a number of nanoseconds.
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise bad("ReadableDuration")
    if isinstance(value, int | float):
        return float(value) / 1e9
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            raise InvalidRequest(
                f'Error parsing autopilot config: time: invalid duration "{value}"'
            ) from None
    raise bad("ReadableDuration")


def _stable_since(registry: Registry) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(registry.started_at))


async def _members(registry: Registry) -> list[dict[str, Any]]:
    """Each server: ID, name, address, leader, healthy."""
    if registry.cluster is None:
        return [
            {
                "ID": registry.node_id,
                "Name": registry.config.node,
                "Address": status.raft_address(registry),
                "Leader": True,
                "Healthy": True,
                "LastIndex": registry.catalog.index,
            }
        ]
    view = await registry.cluster.etcd_view()
    has_leader = view.is_current and any(m.is_leader for m in view.members)
    return [
        {
            "ID": m.id,
            "Name": m.name,
            "Address": m.peer_address,
            "Leader": m.is_leader and view.is_current,
            # etcd answered and has a leader: its members serve.
            "Healthy": has_leader,
            "LastIndex": view.raft_index,
        }
        for m in view.members
    ]


def _tolerance(servers: list[dict[str, Any]]) -> int:
    healthy = sum(1 for s in servers if s["Healthy"])
    quorum = len(servers) // 2 + 1
    return max(0, healthy - quorum)


async def autopilot_health(registry: Registry, request: Request) -> Response:
    """api.OperatorHealthReply; 429 when something is unhealthy, as Consul."""
    require_local_datacenter(registry, request)
    servers = await _members(registry)
    since = _stable_since(registry)
    out_servers = [
        {
            "ID": s["ID"],
            "Name": s["Name"],
            "Address": s["Address"],
            "SerfStatus": "alive" if s["Healthy"] else "failed",
            "Version": CONSUL_API_VERSION,
            "Leader": s["Leader"],
            "LastContact": "0s",
            "LastTerm": 1,
            "LastIndex": s["LastIndex"],
            "Healthy": s["Healthy"],
            "Voter": True,
            "StableSince": since,
        }
        for s in servers
    ]
    healthy = bool(servers) and all(s["Healthy"] for s in servers)
    body = {
        "Healthy": healthy,
        "FailureTolerance": _tolerance(servers),
        "Servers": out_servers,
    }
    return json_response(body, 200 if healthy else 429)


async def autopilot_state(registry: Registry, request: Request) -> Response:
    """api.AutopilotState (CE fields)."""
    require_local_datacenter(registry, request)
    servers = await _members(registry)
    since = _stable_since(registry)
    leader = next((s["ID"] for s in servers if s["Leader"]), "")
    tolerance = _tolerance(servers)
    body = {
        "Healthy": bool(servers) and all(s["Healthy"] for s in servers),
        "FailureTolerance": tolerance,
        "OptimisticFailureTolerance": tolerance,
        "Servers": {
            s["ID"]: {
                "ID": s["ID"],
                "Name": s["Name"],
                "Address": s["Address"],
                "NodeStatus": "alive" if s["Healthy"] else "failed",
                "Version": CONSUL_API_VERSION,
                "LastContact": "0s",
                "LastTerm": 1,
                "LastIndex": s["LastIndex"],
                "Healthy": s["Healthy"],
                "StableSince": since,
                "Status": "leader" if s["Leader"] else "voter",
                "Meta": {},
                "NodeType": "voter",
            }
            for s in servers
        },
        "Leader": leader,
        "Voters": [s["ID"] for s in servers],
    }
    return json_response(body)


# ---------------------------------------------------------------- usage

#: api.ServiceKind values ConnectServiceInstances counts (structs.Usage).
CONNECT_KINDS = (
    "api-gateway",
    "connect-native",
    "connect-proxy",
    "ingress-gateway",
    "mesh-gateway",
    "terminating-gateway",
)


async def usage(registry: Registry, request: Request) -> Response:
    """structs.Usage: per datacenter, service and instance counts."""
    require_local_datacenter(registry, request)
    catalog = registry.catalog
    instances = 0
    names: set[str] = set()
    connect = dict.fromkeys(CONNECT_KINDS, 0)
    billable = 0
    for service in catalog.all_services():
        instances += 1
        names.add(service.name)
        kind = service.kind
        if kind in connect:
            connect[kind] += 1
        elif service.connect_native:
            connect["connect-native"] += 1
        if (
            kind
            not in (
                "connect-proxy",
                "mesh-gateway",
                "ingress-gateway",
                "terminating-gateway",
                "api-gateway",
            )
            and service.name != "consul"
        ):
            billable += 1
    stale = request.flag("stale")
    body = {
        "Usage": {
            registry.config.datacenter: {
                "Services": len(names),
                "ServiceInstances": instances,
                "ConnectServiceInstances": connect,
                "BillableServiceInstances": billable,
                "Nodes": len(catalog.nodes),
            }
        },
        "Index": catalog.index,
        "LastContact": 0,
        "KnownLeader": True,
        "ConsistencyLevel": "stale" if stale else "default",
        "NotModified": False,
        "Backend": 0,
        "ResultsFilteredByACLs": False,
    }
    return json_response(body)


# ---------------------------------------------------------------- force-leave


async def force_leave(registry: Registry, request: Request) -> Response:
    """PUT /v1/agent/force-leave/:node (`?prune`, `?wan`). waypost has no
    gossip pool to force a member out of: a node never seen is Consul's
    error; a known one is refused, saying where membership lives."""
    node = request.tail
    if not node:
        raise InvalidRequest("Missing node name")
    request.flag("prune")  # Consul's ParseBool errors for a bad value
    known = node in registry.catalog.nodes or node == registry.config.node
    if not known:
        raise InvalidRequest(f"agent: No node found with name '{node}'")
    raise InvalidRequest(
        f"cannot force-leave {node!r}: waypost has no gossip pool (in cluster"
        " mode a stopped agent leaves when its etcd lease expires; deregister"
        " a catalog node with /v1/catalog/deregister)"
    )


# ---------------------------------------------------------------- version


async def version(registry: Registry, request: Request) -> Response:
    """GET /v1/agent/version: Consul's version.Info, the Consul API version
    waypost speaks, and waypost's own in `Revision`-like `SHA`."""
    from waypost import __version__

    return json_response(
        {
            "SHA": f"waypost-{__version__}",
            "BuildDate": "",
            "HumanVersion": CONSUL_API_VERSION,
            "FIPS": "",
        }
    )
