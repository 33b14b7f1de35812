"""Network coordinates as rows: Consul's `Coordinates` table.

One row per node (Consul keys them by node and network segment; waypost
has one segment, ""). Written through the one write path by
`UpdateCoordinates` (Consul's Coordinate.Update, which agents batch): an
update for a node the catalog does not have is dropped silently, as
Consul's CoordinateBatchUpdate drops it; a node's coordinate goes with the
node. No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.core.changes import Change
from waypost.core.vivaldi import DEFAULT_CONFIG, Coordinate
from waypost.core.watch import Topic
from waypost.exceptions import InvalidRequest

if TYPE_CHECKING:
    from waypost.core.planner import Draft

COORDINATES = "coordinates"
#: What `/v1/coordinate/*` and `?near=` answers read.
T_COORDINATES: Topic = ("coordinates", "")


class NodeCoordinate(msgspec.Struct, frozen=True, kw_only=True):
    """A node's Vivaldi coordinate, as Consul's structs.Coordinate."""

    node: str
    segment: str = ""
    coord: Coordinate
    create_index: int = 0
    modify_index: int = 0


class UpdateCoordinates(Change, frozen=True, kw_only=True):
    """Consul's CoordinateUpdateRequest, one or many (an agent's batch)."""

    items: tuple[tuple[str, Coordinate], ...]


def validate(coord: Coordinate) -> None:
    """Consul's Coordinate.Update refusals, as a 400."""
    if len(coord.vec) != DEFAULT_CONFIG.dimensionality:
        raise InvalidRequest(
            "rpc error making call: coordinate dimensionality does not match"
            f" (want {DEFAULT_CONFIG.dimensionality}, got {len(coord.vec)})"
        )
    if not all(
        math.isfinite(x)
        for x in (*coord.vec, coord.error, coord.adjustment, coord.height)
    ):
        raise InvalidRequest("rpc error making call: invalid coordinate")


def _update(draft: Draft, change: UpdateCoordinates) -> None:
    for node, coord in change.items:
        if draft.node(node) is None:
            continue  # Consul: silently dropped, the node is unknown
        old = draft.row(COORDINATES, node)
        if isinstance(old, NodeCoordinate) and old.coord == coord:
            continue
        created = old.create_index if isinstance(old, NodeCoordinate) else 0
        draft.put_row(
            COORDINATES,
            node,
            NodeCoordinate(node=node, coord=coord, create_index=created),
        )
        draft.topics.add(T_COORDINATES)


def drop_with_node(draft: Draft, node: str) -> None:
    """A deregistered node takes its coordinate with it (Consul's
    deleteNodeTxn deletes the node's coordinates)."""
    if draft.row(COORDINATES, node) is not None:
        draft.put_row(COORDINATES, node, None)
        draft.topics.add(T_COORDINATES)


PLANNERS: dict[type[Change], Callable[[Draft, Any], bool | None]] = {
    UpdateCoordinates: _update,
}
