"""`/v1/catalog/*`: nodes and services of the whole datacenter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.core.catalog import (
    T_NODES,
    T_SERVICES,
    Commit,
    node_topic,
    service_topic,
)
from waypost.core.model import Check, Node, Service
from waypost.exceptions import InvalidRequest
from waypost.http import decode, filtering, limits, wire
from waypost.http.messages import Query, Request, Response, json_response
from waypost.http.wire import JSON

if TYPE_CHECKING:
    from waypost.server import Agent


# ---------------------------------------------------------------- writes


async def register(agent: Agent, request: Request) -> Response:
    """Register a node, optionally a service and checks, all or nothing."""
    data = decode.decode_body(request.body, decode.CATALOG_REGISTER)
    limits.check_lengths(data)
    require_local_datacenter(agent, request, str(data.get("Datacenter") or ""))
    node_name = str(data.get("Node") or "")
    address = str(data.get("Address") or "")
    if not node_name or not address:
        raise InvalidRequest("Must provide node and address")
    catalog = agent.catalog
    meta = dict(data.get("NodeMeta") or {})  # type: ignore[call-overload]
    wire.validate_meta(meta, "node")
    existing = catalog.nodes.get(node_name)
    node = Node(
        name=node_name,
        node_id=str(data.get("ID") or (existing.node_id if existing else "")),
        address=address,
        datacenter=agent.config.datacenter,
        tagged_addresses=dict(data.get("TaggedAddresses") or {}),  # type: ignore[call-overload]
        meta=meta,
    )
    service = None
    body = data.get("Service")
    if isinstance(body, dict) and body:
        _check_catalog_service(body)
        service, _ = wire.to_service(body, node=node_name, name_field="Service")
    checks = _catalog_checks(agent, data, node_name, service)
    # Everything is validated; now apply, then persist as one batch.
    now = agent.now()
    commits: list[Commit | None] = []
    if existing is None or not data.get("SkipNodeUpdate"):
        commits.append(catalog.upsert_node(node))
    own = [c for c in checks if service and c.service_id == service.service_id]
    if service is not None:
        commits.append(catalog.register_service(service, own, now=now))
    commits.extend(catalog.register_check(c, now=now) for c in checks if c not in own)
    await agent.persist(_merge(commits))
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


def _catalog_checks(
    agent: Agent, data: decode.Decoded, node: str, service: Service | None
) -> list[Check]:
    bodies: list[dict[str, object]] = []
    if isinstance(data.get("Check"), dict) and data["Check"]:
        bodies.append(data["Check"])  # type: ignore[arg-type]
    bodies.extend(b for b in data.get("Checks") or [] if b)  # type: ignore[attr-defined]
    checks = []
    for body in bodies:
        check_id = str(body.get("CheckID") or body.get("Name") or "")
        if not check_id:
            raise InvalidRequest("Must provide a CheckID or Name for every check")
        service_id = str(body.get("ServiceID") or "")
        if service_id and not (
            (service and service.service_id == service_id)
            or agent.catalog.node_service(node, service_id)
        ):
            raise InvalidRequest(
                f'Unknown service ID "{service_id}" for check "{check_id}"'
            )
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
                service_id=service_id,
                definition=definition,
            )
        )
    return checks


def _merge(commits: list[Commit | None]) -> Commit | None:
    real = [c for c in commits if c is not None]
    if not real:
        return None
    merged = Commit(index=real[-1].index, rows=[], topics=set())
    for commit in real:
        merged.rows.extend(commit.rows)
        merged.topics |= commit.topics
    return merged


async def deregister(agent: Agent, request: Request) -> Response:
    """Remove a service, a check, or a whole node; unknown ones are a no-op."""
    data = decode.decode_body(request.body, decode.CATALOG_DEREGISTER)
    require_local_datacenter(agent, request, str(data.get("Datacenter") or ""))
    node = str(data.get("Node") or "")
    if not node:
        raise InvalidRequest("Must provide node")
    catalog = agent.catalog
    service_id = str(data.get("ServiceID") or "")
    check_id = str(data.get("CheckID") or "")
    commit = None
    if service_id:
        if catalog.node_service(node, service_id) is not None:
            commit = catalog.deregister_service(node, service_id)
    elif check_id:
        if catalog.get_check(node, check_id) is not None:
            commit = catalog.deregister_check(node, check_id)
    elif node in catalog.nodes:
        commit = catalog.delete_node(node)
    await agent.persist(commit)
    return json_response(True)


# ---------------------------------------------------------------- reads


async def datacenters(agent: Agent, request: Request) -> Response:
    return json_response([agent.config.datacenter])


def require_local_datacenter(agent: Agent, request: Request, body_dc: str = "") -> None:
    """`?dc=` (or a body's Datacenter) naming another datacenter is refused.

    Consul forwards to that datacenter and, knowing none, fails with
    "No path to datacenter" (structs.ErrNoDCPath) as a 500. waypost has one
    datacenter; the caller named a wrong one, so it answers 400 with the same
    words rather than pretend the query ran there.
    """
    for dc in (request.get("dc"), body_dc):
        if dc and dc != agent.config.datacenter:
            raise InvalidRequest("No path to datacenter")


def is_peer_query(request: Request) -> bool:
    """`?peer=`: waypost has no cluster peerings, so a peer has no instances."""
    return bool(request.get("peer"))


def wanted_tags(request: Request) -> list[str]:
    """`?tag=` (repeatable), lower-cased; blank ones ignored, as Consul does."""
    return [tag.lower() for tag in request.get_all("tag") if tag]


def has_tags(service: Service, wanted: list[str]) -> bool:
    """Every wanted tag is on the service, ignoring case.

    Consul's state store `serviceTagsFilter` compares lower-cased tags, so
    `?tag=Primary` finds an instance tagged `primary`.
    """
    if not wanted:
        return True
    present = {tag.lower() for tag in service.tags}
    return all(tag in present for tag in wanted)


def required_tail(request: Request, what: str) -> str:
    """The name in the path; Consul answers 400 `Missing <what>` without one."""
    if not request.tail:
        raise InvalidRequest(f"Missing {what}")
    return request.tail


def node_meta_matches(request: Request, meta: dict[str, str]) -> bool:
    """`?node-meta=key:value` (repeatable): every key must have its value.

    Consul's parseMetaFilter and parseMetaPair (agent/http.go): a pair
    without a colon is the key with an empty value (200, not a 400), and a
    later pair for the same key replaces an earlier one.
    """
    pairs = request.get_all("node-meta")
    filters = dict(pair.partition(":")[::2] for pair in pairs) if pairs else {}
    return all(meta.get(key) == value for key, value in filters.items())


async def nodes(agent: Agent, request: Request) -> Query:
    require_local_datacenter(agent, request)

    def render() -> Response:
        items = [
            wire.node_json(n)
            for name, n in sorted(agent.catalog.nodes.items())
            if node_meta_matches(request, n.meta)
        ]
        return json_response(filtering.apply(request, items))

    return Query([T_NODES], render)


async def services(agent: Agent, request: Request) -> Query:
    require_local_datacenter(agent, request)

    def render() -> Response:
        catalog = agent.catalog
        if not request.has("node-meta") and not request.has("filter"):
            return json_response(catalog.service_names())
        result: dict[str, list[str]] = {}
        for name in catalog.service_names():
            rows = [
                wire.catalog_service_json(catalog.nodes[s.node], s)
                for s in catalog.service_instances(name)
                if s.node in catalog.nodes
                and node_meta_matches(request, catalog.nodes[s.node].meta)
            ]
            rows = filtering.apply(request, rows)
            if rows:
                tags = sorted({t for r in rows for t in r["ServiceTags"]})  # type: ignore[attr-defined]
                result[name] = tags
        return json_response(result)

    return Query([T_SERVICES, T_NODES], render)


async def service(agent: Agent, request: Request) -> Query:
    require_local_datacenter(agent, request)
    name = required_tail(request, "service name")
    tags = wanted_tags(request)
    peer = is_peer_query(request)

    def render() -> Response:
        catalog = agent.catalog
        rows = []
        for s in [] if peer else catalog.service_instances(name):
            node = catalog.nodes.get(s.node)
            if node is None or not node_meta_matches(request, node.meta):
                continue
            if not has_tags(s, tags):
                continue
            rows.append(wire.catalog_service_json(node, s))
        return json_response(filtering.apply(request, rows))

    return Query([service_topic(name)], render)


async def node(agent: Agent, request: Request) -> Query:
    require_local_datacenter(agent, request)
    name = required_tail(request, "node name")

    def render() -> Response:
        found = agent.catalog.nodes.get(name)
        if found is None:
            return json_response(None)
        items = _filtered_node_services(agent, request, name)
        return json_response(
            {"Node": wire.node_json(found), "Services": {i["ID"]: i for i in items}}
        )

    return Query([node_topic(name)], render)


async def node_services(agent: Agent, request: Request) -> Query:
    require_local_datacenter(agent, request)
    name = required_tail(request, "node name")

    def render() -> Response:
        found = agent.catalog.nodes.get(name)
        if found is None:
            # Consul returns &out.NodeServices, a zero NodeServiceList for an
            # unknown node: an object of nulls, never a bare null.
            return json_response({"Node": None, "Services": None})
        items = _filtered_node_services(agent, request, name)
        return json_response({"Node": wire.node_json(found), "Services": items})

    return Query([node_topic(name)], render)


def _filtered_node_services(agent: Agent, request: Request, name: str) -> list[JSON]:
    items = [wire.node_service_json(s) for s in agent.catalog.node_services(name)]
    return filtering.apply(request, items)
