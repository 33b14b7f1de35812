"""Read endpoints the dashboard needs beyond Consul's public `/v1`.

- `/v1/internal/ui/services`: one row per service name (Consul's
  ServiceSummary shape, agent/ui_endpoint.go), so the services page holds
  one blocking query for the whole catalog instead of one per service.
- `/v1/internal/ui/nodes`: every node with its services and checks
  (Consul's shape: NodeDump rows).
- `/ui/api/ring`: waypost's own, outside `/v1`: the consistent-hash ring of
  the registry's members drawn as arcs, and each member's share of the
  check duty (cluster mode; one agent owns everything otherwise).

Reads only, through `registry.catalog`; ACL filtering is `http/access.py`'s.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from waypost.core import queries
from waypost.core.catalog import Catalog
from waypost.core.model import Node
from waypost.core.ring import HASH_SPACE, HashRing
from waypost.core.topics import (
    T_CHECKS,
    T_NODES,
    T_SERVICES,
    node_topic,
    service_topic,
)
from waypost.http import wire
from waypost.http.catalog import require_local_datacenter
from waypost.http.messages import Query, Request, Response, json_response
from waypost.http.wire import JSON

if TYPE_CHECKING:
    from waypost.registry import Registry

STATUSES = ("passing", "warning", "critical", "maintenance")
#: The drawing's resolution: arcs are merged into this many steps of the
#: circle (½°); shares are exact arc lengths all the same.
RING_STEPS = 720


async def services(registry: Registry, request: Request) -> Query:
    """Consul's `/v1/internal/ui/services`, plus instance counts by status.

    # differs: `InstancesPassing`, `InstancesWarning`, `InstancesCritical`
    # and `InstancesMaintenance` are waypost's (each instance counted once
    # by its aggregated status, node checks included); Consul's UI ignores
    # unknown fields.
    """
    require_local_datacenter(registry, request)
    catalog = registry.catalog
    datacenter = registry.config.datacenter

    def render() -> Response:
        return json_response(summaries(catalog, datacenter))

    return Query([T_SERVICES, T_NODES, T_CHECKS], render)


#: Each catalog's last rows by service name, with the index of the service's
#: topic they were computed at. Every change to what a row shows (an
#: instance, its checks, its node's checks, the node going away) moves that
#: topic, so a row is recomputed only for the services a change touched:
#: with 10,000 instances a status change costs one service's row, not 10,000
#: instances' (measured in bench/RESULTS.md, "The dashboard at scale").
_ROWS: WeakKeyDictionary[Catalog, dict[str, tuple[int, JSON]]] = WeakKeyDictionary()


def summaries(catalog: Catalog, datacenter: str) -> list[JSON]:
    """Every service name's row, reusing those whose topic did not move."""
    before = _ROWS.get(catalog, {})
    rows: dict[str, tuple[int, JSON]] = {}
    for name in catalog.service_names():
        index = catalog.topic_index(service_topic(name))
        kept = before.get(name)
        rows[name] = (
            kept
            if kept is not None and kept[0] == index
            else (index, summary(catalog, name, datacenter))
        )
    _ROWS[catalog] = rows
    return [row for _, row in rows.values()]


def summary(catalog: Catalog, name: str, datacenter: str) -> JSON:
    """One service name's row: tags, nodes, check and instance counts."""
    entries = catalog.health_entries(name)
    tags: dict[str, None] = {}
    nodes: dict[str, None] = {}
    checks: dict[tuple[str, str], str] = {}
    instances: Counter[str] = Counter()
    kind = ""
    for node, instance, instance_checks in entries:
        tags.update(dict.fromkeys(instance.tags))
        nodes[node.name] = None
        kind = kind or instance.kind
        for check in instance_checks:
            checks[(check.node, check.check_id)] = check.status.value
        instances[queries.aggregate_status(instance_checks)] += 1
    by_status = Counter(checks.values())
    return {
        "Kind": kind,
        "Name": name,
        "Datacenter": datacenter,
        "Tags": sorted(tags),
        "Nodes": sorted(nodes),
        "ExternalSources": [],
        "InstanceCount": len(entries),
        "ChecksPassing": by_status["passing"],
        "ChecksWarning": by_status["warning"],
        "ChecksCritical": by_status["critical"],
        "GatewayConfig": {},
        "TransparentProxy": False,
        "ConnectNative": False,
        "ConnectedWithProxy": False,
        "ConnectedWithGateway": False,
        "PeerName": "",
        **{f"Instances{s.capitalize()}": instances[s] for s in STATUSES},
    }


async def nodes(registry: Registry, request: Request) -> Query:
    """Consul's `/v1/internal/ui/nodes`: nodes with their services and checks.

    # differs: `Services` rows carry ID, Service, Tags, Address and Port
    # only (Consul's carry the whole NodeService).
    """
    require_local_datacenter(registry, request)
    catalog = registry.catalog

    def render() -> Response:
        return json_response(node_rows(catalog))

    return Query([T_NODES, T_SERVICES, T_CHECKS], render)


_NODE_ROWS: WeakKeyDictionary[Catalog, dict[str, tuple[int, JSON]]] = (
    WeakKeyDictionary()
)


def node_rows(catalog: Catalog) -> list[JSON]:
    """Every node's row, reusing those whose node topic did not move (a
    node's topic moves with its services and checks, as `summaries`)."""
    before = _NODE_ROWS.get(catalog, {})
    rows: dict[str, tuple[int, JSON]] = {}
    for name, node in sorted(catalog.nodes.items()):
        index = catalog.topic_index(node_topic(name))
        kept = before.get(name)
        if kept is None or kept[0] != index:
            kept = (index, _node_row(catalog, node))
        rows[name] = kept
    _NODE_ROWS[catalog] = rows
    return [row for _, row in rows.values()]


def _node_row(catalog: Catalog, node: Node) -> JSON:
    return {
        **wire.node_json(node),
        "Services": [
            {
                "ID": s.service_id,
                "Service": s.name,
                "Tags": s.tags,
                "Address": s.address,
                "Port": s.port,
            }
            for s in catalog.node_services(node.name)
        ],
        "Checks": [wire.check_json(c) for c in catalog.node_checks(node.name)],
    }


async def ring(registry: Registry, request: Request) -> Response:
    """The registry's members on the hash ring and who owns which checks.

    `Arcs` are `[start, end, member]` in turns (0–1) clockwise from the top,
    merged to `RING_STEPS` steps; `Shares` are each member's exact fraction
    of the key space; `Checks` counts the checks each member runs or times.
    """
    cluster = registry.cluster
    catalog = registry.catalog
    this = registry.config.node
    if cluster is None:
        members, alive, hash_ring = [this], {this}, None
    else:
        hash_ring = cluster.ring
        members = list(hash_ring.nodes)
        alive = set(cluster.live)
    duty: Counter[str] = Counter()
    for check in catalog.all_checks():
        if check.node in alive:
            duty[check.node] += 1
        elif hash_ring is not None and len(hash_ring):
            duty[hash_ring.get(f"{check.node}\x00{check.check_id}")] += 1
        else:
            duty[this] += 1
    if hash_ring is None or not len(hash_ring):
        arcs: list[list[object]] = [[0.0, 1.0, this]]
        shares = {this: 1.0}
        points = 0
    else:
        arcs = _drawn_arcs(hash_ring)
        stats = hash_ring.statistics()
        shares, points = stats.shares, stats.points
    return json_response(
        {
            "Mode": "cluster" if cluster is not None else "single",
            "Self": this,
            "Members": [
                {
                    "Name": name,
                    "Alive": name in alive,
                    "Share": round(shares.get(name, 0.0), 6),
                    "Checks": duty.get(name, 0),
                }
                for name in sorted(set(members) | set(duty))
            ],
            "Points": points,
            "Arcs": arcs,
        }
    )


def _drawn_arcs(hash_ring: HashRing) -> list[list[object]]:
    """The ring's arcs at `RING_STEPS` resolution: each step goes to the
    member owning most of it; neighbours with the same owner merge."""
    step = HASH_SPACE / RING_STEPS
    owned: list[Counter[str]] = [Counter() for _ in range(RING_STEPS)]
    for start, end, node in hash_ring.arcs():
        first, last = int(start // step), int((end - 1) // step)
        for index in range(first, min(last, RING_STEPS - 1) + 1):
            low = max(start, index * step)
            high = min(end, (index + 1) * step)
            owned[index][node] += int(high - low)
    arcs: list[list[object]] = []
    for index, counts in enumerate(owned):
        owner = counts.most_common(1)[0][0] if counts else ""
        if arcs and arcs[-1][2] == owner:
            arcs[-1][1] = round((index + 1) / RING_STEPS, 6)
        else:
            arcs.append(
                [
                    round(index / RING_STEPS, 6),
                    round((index + 1) / RING_STEPS, 6),
                    owner,
                ]
            )
    return arcs
