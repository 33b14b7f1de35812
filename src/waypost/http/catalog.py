"""`/v1/catalog/*`: nodes and services of the whole datacenter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.core import queries
from waypost.core.changes import (
    CatalogRegister,
    Change,
    DeregisterCheck,
    DeregisterNode,
    DeregisterService,
)
from waypost.core.model import Check, Node
from waypost.core.topics import T_NODES, T_SERVICES, node_topic, service_topic
from waypost.exceptions import InvalidRequest
from waypost.http import central_config, compact, decode, filtering, limits, near, wire
from waypost.http.messages import Query, Request, Response, json_response
from waypost.http.wire import JSON

if TYPE_CHECKING:
    from waypost.registry import Registry


# ---------------------------------------------------------------- writes


async def register(registry: Registry, request: Request) -> Response:
    """Register a node, optionally a service and checks, all or nothing."""
    data = decode.decode_body(request.body, decode.CATALOG_REGISTER)
    limits.check_lengths(data)
    require_local_datacenter(registry, request, str(data.get("Datacenter") or ""))
    node_name = str(data.get("Node") or "")
    address = str(data.get("Address") or "")
    if not node_name or not address:
        raise InvalidRequest("Must provide node and address")
    meta = dict(data.get("NodeMeta") or {})  # type: ignore[call-overload]
    wire.validate_meta(meta, "node")
    node = Node(
        name=node_name,
        node_id=str(data.get("ID") or ""),
        address=address,
        datacenter=registry.config.datacenter,
        tagged_addresses=dict(data.get("TaggedAddresses") or {}),  # type: ignore[call-overload]
        meta=meta,
    )
    service = None
    body = data.get("Service")
    if isinstance(body, dict) and body:
        _check_catalog_service(body)
        service, _ = wire.to_service(body, node=node_name, name_field="Service")
    await registry.apply(
        CatalogRegister(
            node=node,
            skip_node_update=bool(data.get("SkipNodeUpdate")),
            service=service,
            checks=_catalog_checks(data, node_name),
        )
    )
    return json_response(True)


def _check_catalog_service(body: decode.Decoded) -> None:
    """Consul's servicePreApply (agent/consul/catalog_endpoint.go) checks.

    Consul answers these with a 500 from its RPC layer; the caller is at
    fault, so waypost answers 400 with the same words.
    """
    if body.get("ID") not in (None, "") and not body.get("Service"):
        raise InvalidRequest("Must provide service name with ID")
    if wire.is_any_address(str(body.get("Address") or "")):
        raise InvalidRequest("Invalid service address")


def _catalog_checks(data: decode.Decoded, node: str) -> list[Check]:
    bodies: list[dict[str, object]] = []
    if isinstance(data.get("Check"), dict) and data["Check"]:
        bodies.append(data["Check"])  # type: ignore[arg-type]
    bodies.extend(b for b in data.get("Checks") or [] if b)  # type: ignore[attr-defined]
    checks = []
    for body in bodies:
        check_id = str(body.get("CheckID") or body.get("Name") or "")
        if not check_id:
            raise InvalidRequest("Must provide a CheckID or Name for every check")
        definition = wire.to_definition(
            {
                **(body.get("Definition") or {}),  # type: ignore[dict-item]
                **{k: body[k] for k in ("Interval", "Timeout") if body.get(k)},
            }
        )
        checks.append(
            wire.to_check(
                {**body, "Status": body.get("Status") or "critical"},
                node=node,
                check_id=check_id,
                default_name=check_id,
                service_id=str(body.get("ServiceID") or ""),
                definition=definition,
            )
        )
    return checks


async def deregister(registry: Registry, request: Request) -> Response:
    """Remove a service, a check, or a whole node; unknown ones are a no-op."""
    data = decode.decode_body(request.body, decode.CATALOG_DEREGISTER)
    require_local_datacenter(registry, request, str(data.get("Datacenter") or ""))
    node = str(data.get("Node") or "")
    if not node:
        raise InvalidRequest("Must provide node")
    service_id = str(data.get("ServiceID") or "")
    check_id = str(data.get("CheckID") or "")
    change: Change
    if service_id:
        change = DeregisterService(node=node, service_id=service_id, missing_ok=True)
    elif check_id:
        change = DeregisterCheck(node=node, check_id=check_id, missing_ok=True)
    else:
        change = DeregisterNode(node=node, missing_ok=True)
    await registry.apply(change)
    return json_response(True)


# ---------------------------------------------------------------- reads


async def datacenters(registry: Registry, request: Request) -> Response:
    return json_response([registry.config.datacenter])


def require_local_datacenter(
    registry: Registry, request: Request, body_dc: str = ""
) -> None:
    """`?dc=` (or a body's Datacenter) naming another datacenter is refused.

    Consul forwards to that datacenter and, knowing none, fails with
    "No path to datacenter" (structs.ErrNoDCPath) as a 500. waypost has one
    datacenter; the caller named a wrong one, so it answers 400 with the same
    words rather than pretend the query ran there.
    """
    for dc in (request.get("dc"), body_dc):
        if dc and dc != registry.config.datacenter:
            raise InvalidRequest("No path to datacenter")


def is_peer_query(request: Request) -> bool:
    """`?peer=`: waypost has no cluster peerings, so a peer has no instances."""
    return bool(request.get("peer"))


def required_tail(request: Request, what: str) -> str:
    """The name in the path; Consul answers 400 `Missing <what>` without one."""
    if not request.tail:
        raise InvalidRequest(f"Missing {what}")
    return request.tail


async def nodes(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)

    def render() -> Response:
        items = [
            wire.node_json(n)
            for name, n in sorted(registry.catalog.nodes.items())
            if queries.node_meta_matches(request.get_all("node-meta"), n.meta)
        ]
        items = near.sort_near(registry, request, items, near.by_node)
        return json_response(filtering.apply(request, items))

    return Query([T_NODES, *near.near_topics(request)], render)


async def services(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)

    def render() -> Response:
        catalog = registry.catalog
        if not request.has("node-meta") and not request.has("filter"):
            return json_response(catalog.service_names())
        result: dict[str, list[str]] = {}
        for name in catalog.service_names():
            rows = [
                wire.catalog_service_json(catalog.nodes[s.node], s)
                for s in catalog.service_instances(name)
                if s.node in catalog.nodes
                and queries.node_meta_matches(
                    request.get_all("node-meta"), catalog.nodes[s.node].meta
                )
            ]
            rows = filtering.apply(request, rows)
            if rows:
                tags = sorted({t for r in rows for t in r["ServiceTags"]})  # type: ignore[attr-defined]
                result[name] = tags
        return json_response(result)

    return Query([T_SERVICES, T_NODES], render)


async def service(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    name = required_tail(request, "service name")
    selection = queries.Selection(
        tags=request.get_all("tag"), node_meta=request.get_all("node-meta")
    )
    peer = is_peer_query(request)

    merge = central_config.wanted(request)

    def render() -> Response:
        found = (
            [] if peer else queries.catalog_service(registry.catalog, name, selection)
        )
        if merge:
            catalog = registry.catalog
            found = [(n, central_config.merged(catalog, s)) for n, s in found]
        rows = [wire.catalog_service_json(node, s) for node, s in found]
        rows = near.sort_near(registry, request, rows, near.by_node)
        return compact.catalog_response(request, filtering.apply(request, rows))

    topics = [service_topic(name), *near.near_topics(request)]
    return Query(topics + central_config.TOPICS if merge else topics, render)


async def node(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    name = required_tail(request, "node name")

    def render() -> Response:
        found = registry.catalog.nodes.get(name)
        if found is None:
            return json_response(None)
        items = _filtered_node_services(registry, request, name)
        return json_response(
            {"Node": wire.node_json(found), "Services": {i["ID"]: i for i in items}}
        )

    return Query([node_topic(name)], render)


async def node_services(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    name = required_tail(request, "node name")

    def render() -> Response:
        found = registry.catalog.nodes.get(name)
        if found is None:
            # Consul returns &out.NodeServices, a zero NodeServiceList for an
            # unknown node: an object of nulls, never a bare null.
            return json_response({"Node": None, "Services": None})
        items = _filtered_node_services(registry, request, name)
        return json_response({"Node": wire.node_json(found), "Services": items})

    return Query([node_topic(name)], render)


def _filtered_node_services(
    registry: Registry, request: Request, name: str
) -> list[JSON]:
    items = [wire.node_service_json(s) for s in registry.catalog.node_services(name)]
    return filtering.apply(request, items)
