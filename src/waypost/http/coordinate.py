"""`/v1/coordinate/*` and `?near=`: Vivaldi coordinates, as Consul serves them.

Consul's agent/coordinate_endpoint.go: `datacenters` lists each
datacenter's server coordinates (waypost: its one datacenter and the
agents' nodes, those with a `serfHealth` check), `nodes` every node's,
`node/:node` one node's (404 when it has none), `update` writes one
(Coordinate.Update; a node the catalog does not have is dropped, as
Consul drops it). `?near=<node>|_agent` sorts catalog and health answers
by estimated round-trip time from that node (agent/consul/rtt.go): nodes
without a coordinate last, the answer as it was when the source has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.core.coordinates import T_COORDINATES, UpdateCoordinates, validate
from waypost.core.model import SERF_CHECK_ID
from waypost.core.vivaldi import Coordinate
from waypost.exceptions import InvalidRequest
from waypost.http import filtering, wire
from waypost.http.catalog import require_local_datacenter, required_tail
from waypost.http.decode import decode_json
from waypost.http.messages import (
    Query,
    Request,
    Response,
    json_response,
    text_response,
)

if TYPE_CHECKING:
    from waypost.registry import Registry

AREA_WAN = "WAN"


async def datacenters(registry: Registry, request: Request) -> Response:
    catalog = registry.catalog
    agents = [
        entry
        for name, entry in sorted(catalog.coordinates.items())
        if catalog.get_check(name, SERF_CHECK_ID) is not None
    ]
    return json_response(
        [
            {
                "Datacenter": registry.config.datacenter,
                "AreaID": AREA_WAN,
                "Coordinates": [wire.coordinate_json(e) for e in agents],
            }
        ]
    )


async def nodes(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    catalog = registry.catalog

    def render() -> Response:
        rows = [wire.coordinate_json(e) for _, e in sorted(catalog.coordinates.items())]
        return json_response(filtering.apply(request, rows))

    return Query([T_COORDINATES], render)


async def node(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    name = required_tail(request, "node name")
    catalog = registry.catalog

    def render() -> Response:
        entry = catalog.coordinates.get(name)
        if entry is None:
            return text_response("", 404)  # Consul: 404, no body
        return json_response([wire.coordinate_json(entry)])

    return Query([T_COORDINATES], render)


async def update(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    node, coord = _decode_update(request.body)
    validate(coord)
    await registry.apply(UpdateCoordinates(items=((node, coord),)))
    return json_response(True)


def _decode_update(body: bytes) -> tuple[str, Coordinate]:
    """Consul's CoordinateUpdateRequest: Node, Segment, Coord (Go's
    case-insensitive field names)."""
    data = decode_json(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("Request decode failed: the body is not a JSON object")
    fields = {str(k).lower(): v for k, v in data.items()}
    node = fields.get("node")
    if not isinstance(node, str) or not node:
        raise InvalidRequest("Missing node name")
    raw = fields.get("coord")
    if not isinstance(raw, dict):
        raise InvalidRequest("Missing Coord")
    coord = {str(k).lower(): v for k, v in raw.items()}
    vec = coord.get("vec")
    if not isinstance(vec, list) or not all(_is_number(x) for x in vec):
        raise InvalidRequest("Coord.Vec: must be a list of numbers")
    numbers = {}
    for name in ("error", "adjustment", "height"):
        value = coord.get(name, 0)
        if not _is_number(value):
            raise InvalidRequest(f"Coord.{name.title()}: must be a number")
        numbers[name] = float(value)
    return node, Coordinate(vec=tuple(float(x) for x in vec), **numbers)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
