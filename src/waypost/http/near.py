"""`?near=`: catalog and health answers sorted by estimated round-trip time.

Consul's agent/consul/rtt.go: from the coordinate of the node `?near=`
names (`_agent`: this agent's node), nearest first by Vivaldi distance;
nodes without a coordinate last, in their order; when the source node has
no coordinate, the answer as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from waypost.core.coordinates import T_COORDINATES
from waypost.core.vivaldi import distance
from waypost.core.watch import Topic
from waypost.http.messages import Request

if TYPE_CHECKING:
    from waypost.registry import Registry


def near_topics(request: Request) -> list[Topic]:
    """A `?near=` answer changes with coordinates too."""
    return [T_COORDINATES] if request.get("near") else []


def sort_near(
    registry: Registry,
    request: Request,
    rows: list[Any],
    node_of: Callable[[Any], str],
) -> list[Any]:
    """Rows by estimated RTT from `?near=`'s node; stable."""
    near = request.get("near")
    if not near:
        return rows
    origin = registry.config.node if near == "_agent" else near
    coordinates = registry.catalog.coordinates
    source = coordinates.get(origin)
    if source is None:
        return rows

    def key(row: Any) -> tuple[int, float]:
        found = coordinates.get(node_of(row))
        if found is None:
            return (1, 0.0)
        return (0, distance(source.coord, found.coord))

    return sorted(rows, key=key)


def by_node(row: Any) -> str:
    """A catalog row's or a check's node."""
    return str(row.get("Node", ""))


def by_entry_node(row: Any) -> str:
    """A health ServiceEntry's node."""
    return str((row.get("Node") or {}).get("Node", ""))
