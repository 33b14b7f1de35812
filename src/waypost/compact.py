"""waypost's compact answer: the format, shared by the agent and the client.

Consul's JSON stays the default and all a Consul client ever sees; waypost's
own client asks for this with `Accept: application/vnd.waypost.compact+msgpack`
(`http/compact.py` negotiates and encodes). It is the same rows re-shaped, as
one msgpack map:

- health: `{"Entries": [...], "Detail": <bytes>}`. An entry is the instance
  in the shape `waypost.client.Instance` decodes straight from (`service_id`,
  `name`, `address` — the node's when the service has none —, `port`,
  `tags`, `meta`, `weights`, `node`, `node_address`, `datacenter`, `status`,
  the worst of its checks', `modify_index`; fields at the Instance's defaults
  left out). Everything else Consul's JSON says is in `Detail`, a nested
  msgpack document a reader skips in one step unless it wants it: each
  node's block once (with its node-level checks), the rest of each
  NodeService, and each entry's own checks, the last two as the first object
  whole and then only what differs from it. What an entry implies is left
  out: a check's `Node`, `ServiceID`, `ServiceName`, `ServiceTags`, a
  `service:<id>` check ID, indexes equal to the service's, tagged addresses
  an agent derives from an IP address.
- catalog: each node's fields (`ID`, `Node`, `Address`, `Datacenter`,
  `TaggedAddresses`, `NodeMeta`) once in `Nodes`; the ServiceNode rows
  without them but `Node`, first whole and then what differs.

`compact_*` turns Consul's rows into it, `expand_*` gives them back (the
tests hold `expand(compact(rows))` equal to the JSON for random catalogs).
Pure: no I/O, no HTTP.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

MEDIA_TYPE = "application/vnd.waypost.compact+msgpack"

JSON = dict[str, object]
_encoder = msgspec.msgpack.Encoder()

# Consul's NodeService fields an entry carries as Instance fields.
_AS_INSTANCE = {"ID", "Service", "Port", "Tags", "Meta", "ModifyIndex"}
_NODE_FIELDS = ("ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta")
_WORST = {"critical": 2, "warning": 1}
_GONE = "-"  # no Consul field is named "-" or "--"
_ABSENT = "--"
_NOTHING = object()  # "implies nothing": the field is kept as it is


# ------------------------------------------------------------ health


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _same(a: object, b: object) -> bool:
    """Equal and of one type (1, 1.0 and True are equal in Python, not on
    the wire)."""
    a, b = _plain(a), _plain(b)
    return type(a) is type(b) and a == b


def _slim(obj: Mapping[str, object], implied: Mapping[str, object]) -> JSON:
    """`obj` without the fields equal to what `implied` says they would be;
    `--` lists the implied fields `obj` lacks."""
    out = dict(obj)
    absent = list(out.pop(_ABSENT, ()))  # type: ignore[call-overload]
    for key, value in implied.items():
        if value is _NOTHING:
            continue
        if key not in out:
            absent.append(key)
        elif _same(out[key], value):
            del out[key]
    if absent:
        out[_ABSENT] = absent
    return out


def _fill(obj: Mapping[str, object], implied: Mapping[str, object]) -> JSON:
    """The inverse of `_slim` (the `--` list is kept for a second pass)."""
    out = dict(obj)
    absent = out.get(_ABSENT, ())
    for key, value in implied.items():
        if value is not _NOTHING and key not in absent:  # type: ignore[operator]
            out.setdefault(key, value)
    return out


def _done(obj: JSON) -> JSON:
    obj.pop(_ABSENT, None)
    return obj


def _delta(rows: Sequence[Mapping[str, object]]) -> JSON:
    """Many similar objects: the first whole, then each one's differences
    from it (`-` lists the keys it lacks)."""
    if not rows:
        return {"First": {}, "Diffs": []}
    first = rows[0]
    diffs = []
    for row in rows:
        diff = {
            k: v for k, v in row.items() if k not in first or not _same(first[k], v)
        }
        gone = [k for k in first if k not in row]
        if gone:
            diff[_GONE] = gone
        diffs.append(diff)
    return {"First": dict(first), "Diffs": diffs}


def _undelta(packed: Mapping[str, Any]) -> list[JSON]:
    first = packed["First"]
    rows = []
    for diff in packed["Diffs"]:
        row = {**first, **diff}
        for key in row.pop(_GONE, ()):
            del row[key]
        rows.append(row)
    return rows


def _worst(checks: Sequence[Mapping[str, object]]) -> str:
    rank = max((_WORST.get(str(c.get("Status")), 0) for c in checks), default=0)
    return ("passing", "warning", "critical")[rank]


def compact_health(rows: Sequence[Mapping[str, object]]) -> JSON:
    """Consul's ServiceEntry rows → the compact shape (module docstring)."""
    nodes: dict[str, JSON] = {}
    blocks: dict[str, JSON] = {}  # entry position → its own node block
    entries, services, counts = [], [], []
    own_checks: list[JSON] = []
    for position, row in enumerate(rows):
        node: JSON = dict(_mapping(row["Node"]))
        service: JSON = dict(_mapping(row["Service"]))
        checks = [_mapping(c) for c in _sequence(row["Checks"])]
        name = str(node["Node"])
        split = 0
        while split < len(checks) and checks[split].get("ServiceID") == "":
            split += 1
        node_implied = _node_check_implied(name)
        block = {
            **node,
            "Checks": [_slim_check(c, node_implied) for c in checks[:split]],
        }
        if nodes.setdefault(name, block) != block:
            blocks[str(position)] = block  # another row saw this node otherwise
        entry = _instance_fields(node, service, checks)
        rest = {k: v for k, v in service.items() if k not in _AS_INSTANCE}
        entries.append(_without_defaults(entry))
        services.append(_slim(_slim(rest, _service_implied(entry)), _tagged(service)))
        implied = _own_check_implied(name, service)
        own_checks += (_slim_check(c, implied) for c in checks[split:])
        counts.append(len(checks) - split)
    detail = {
        "Nodes": list(nodes.values()),
        "NodeBlocks": blocks,
        "Services": _delta(services),
        "Checks": _delta(own_checks),
        "CheckCounts": counts,
    }
    return {"Entries": entries, "Detail": _encoder.encode(detail)}


# Instance fields left out when they hold the Instance's defaults.
_DEFAULTS: dict[str, object] = {
    "tags": [],
    "meta": {},
    "weights": {"passing": 1, "warning": 1},
    "status": "passing",
}


def _without_defaults(entry: JSON) -> JSON:
    return {
        k: v
        for k, v in entry.items()
        if k not in _DEFAULTS or not _same(v, _DEFAULTS[k])
    }


def _with_defaults(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {**_DEFAULTS, **entry}


def _service_implied(entry: Mapping[str, Any]) -> JSON:
    weights = entry["weights"]
    return {
        "Address": entry["address"],
        "CreateIndex": entry["modify_index"],
        "Weights": {"Passing": weights["passing"], "Warning": weights["warning"]},
    }


def _tagged(service: Mapping[str, object]) -> JSON:
    """The tagged addresses an agent derives from an IP service address."""
    address, port = service.get("Address"), service.get("Port")
    version = _ip_version(address) if isinstance(address, str) else None
    if version is None:
        return {"TaggedAddresses": _NOTHING}
    value = {"Address": address, "Port": port}
    return {"TaggedAddresses": {f"lan_ipv{version}": value, f"wan_ipv{version}": value}}


@functools.lru_cache(maxsize=4096)
def _ip_version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def _node_check_implied(node: str) -> JSON:
    return {"Node": node, "ServiceID": "", "ServiceName": "", "ServiceTags": []}


def _own_check_implied(node: str, service: Mapping[str, object]) -> JSON:
    return {
        "Node": node,
        "ServiceID": service.get("ID"),
        "ServiceName": service.get("Service"),
        "ServiceTags": service.get("Tags"),
        "CheckID": f"service:{service.get('ID')}",
        "CreateIndex": service.get("CreateIndex", _NOTHING),
    }


def _slim_check(check: Mapping[str, object], implied: JSON) -> JSON:
    # A check unchanged since it was made has ModifyIndex == CreateIndex.
    modified = {"ModifyIndex": check.get("CreateIndex", _NOTHING)}
    return _slim(_slim(check, modified), implied)


def _full_check(check: Mapping[str, object], implied: JSON) -> JSON:
    out = _fill(check, implied)
    return _done(_fill(out, {"ModifyIndex": out.get("CreateIndex", _NOTHING)}))


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _sequence(value: object) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a JSON array, got {type(value).__name__}")
    return value


def _instance_fields(
    node: Mapping[str, object],
    service: Mapping[str, object],
    checks: Sequence[Mapping[str, object]],
) -> JSON:
    weights = service.get("Weights")
    passing: object = 1
    warning: object = 1
    if isinstance(weights, Mapping):
        passing = weights.get("Passing", 1)
        warning = weights.get("Warning", 1)
    return {
        "service_id": service.get("ID"),
        "name": service.get("Service"),
        "address": service.get("Address") or node.get("Address"),
        "port": service.get("Port"),
        "tags": service.get("Tags"),
        "meta": service.get("Meta"),
        "weights": {"passing": passing, "warning": warning},
        "node": node.get("Node"),
        "node_address": node.get("Address"),
        "datacenter": node.get("Datacenter"),
        "status": _worst(checks),
        "modify_index": service.get("ModifyIndex"),
    }


def expand_health(data: bytes | Mapping[str, object]) -> list[JSON]:
    """The compact health answer → Consul's ServiceEntry rows."""
    decoded: Any = msgspec.msgpack.decode(data) if isinstance(data, bytes) else data
    detail = msgspec.msgpack.decode(decoded["Detail"])
    nodes = {str(n["Node"]): n for n in detail["Nodes"]}
    services = _undelta(detail["Services"])
    own_checks = iter(_undelta(detail["Checks"]))
    rows: list[JSON] = []
    for position, compact in enumerate(decoded["Entries"]):
        entry = _with_defaults(compact)
        block = dict(detail["NodeBlocks"].get(str(position)) or nodes[entry["node"]])
        name = block["Node"]
        node_implied = _node_check_implied(name)
        node_checks = [_full_check(c, node_implied) for c in block.pop("Checks")]
        service = {
            "ID": entry["service_id"],
            "Service": entry["name"],
            "Port": entry["port"],
            "Tags": entry["tags"],
            "Meta": entry["meta"],
            "ModifyIndex": entry["modify_index"],
            **_fill(services[position], _service_implied(entry)),
        }
        service = _done(_fill(service, _tagged(service)))
        implied = _own_check_implied(name, service)
        own = [
            _full_check(next(own_checks), implied)
            for _ in range(detail["CheckCounts"][position])
        ]
        rows.append({"Node": block, "Service": service, "Checks": node_checks + own})
    return rows


# ------------------------------------------------------------ catalog


def compact_catalog(rows: Sequence[Mapping[str, object]]) -> JSON:
    """Consul's ServiceNode rows → the compact shape (module docstring)."""
    nodes: dict[str, JSON] = {}
    blocks: dict[str, JSON] = {}
    entries = []
    for position, row in enumerate(rows):
        node = {k: row[k] for k in _NODE_FIELDS if k in row}
        if nodes.setdefault(str(row["Node"]), node) != node:
            blocks[str(position)] = node
        entry = {k: v for k, v in row.items() if k not in _NODE_FIELDS}
        entry["Node"] = row["Node"]
        entries.append(entry)
    return {
        "Nodes": list(nodes.values()),
        "NodeBlocks": blocks,
        "Entries": _delta(entries),
    }


def expand_catalog(data: bytes | Mapping[str, object]) -> list[JSON]:
    """The compact catalog answer → Consul's ServiceNode rows."""
    decoded: Any = msgspec.msgpack.decode(data) if isinstance(data, bytes) else data
    nodes = {str(n["Node"]): n for n in decoded["Nodes"]}
    rows: list[JSON] = []
    for position, entry in enumerate(_undelta(decoded["Entries"])):
        block = decoded["NodeBlocks"].get(str(position)) or nodes[str(entry["Node"])]
        rows.append({**block, **entry})
    return rows
