"""`/v1/health/*`: instances with their checks, filtered by health."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.core import queries
from waypost.core.topics import T_CHECKS, node_topic, service_topic
from waypost.exceptions import InvalidRequest
from waypost.http import central_config, compact, decode, filtering, near, wire
from waypost.http.catalog import (
    is_peer_query,
    require_local_datacenter,
    required_tail,
)
from waypost.http.messages import Query, Request, Response, json_response

if TYPE_CHECKING:
    from waypost.registry import Registry

PANIC_HEADER = b"x-waypost-panic"


async def service(registry: Registry, request: Request) -> Query:
    """ServiceEntry list; `?passing` drops an instance if any check is not
    passing, its node's checks (serfHealth, maintenance) included."""
    require_local_datacenter(registry, request)
    name = required_tail(request, "service name")
    selection = queries.Selection(
        tags=request.get_all("tag"),
        node_meta=request.get_all("node-meta"),
        passing=_passing_flag(request),
    )
    peer = is_peer_query(request)
    catalog = registry.catalog
    panic_default = registry.config.panic_threshold
    merge = central_config.wanted(request)

    def render() -> Response:
        if peer:
            return json_response(filtering.apply(request, []))
        answer = queries.health_service(
            catalog, name, selection, panic_default=panic_default
        )
        headers: list[tuple[bytes, bytes]] = []
        if answer.panic is not None:
            headers.append((PANIC_HEADER, answer.panic.encode()))
        rows = [
            {
                "Node": wire.node_json(node),
                "Service": wire.node_service_json(
                    central_config.merged(catalog, instance) if merge else instance
                ),
                "Checks": [wire.check_json(c) for c in checks],
            }
            for node, instance, checks in answer.entries
        ]
        rows = near.sort_near(registry, request, rows, near.by_entry_node)
        rows = filtering.apply(request, rows)
        return compact.health_response(request, rows, headers)

    topics = [service_topic(name), *near.near_topics(request)]
    return Query(topics + central_config.TOPICS if merge else topics, render)


def _passing_flag(request: Request) -> bool:
    """Consul's getBoolQueryParam: bare `?passing` is true, else ParseBool."""
    if not request.has("passing"):
        return False
    raw = request.get("passing")
    value = True if raw == "" else decode.parse_bool(raw)
    if value is None:
        raise InvalidRequest("Invalid value for ?passing")
    return value


async def checks(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    name = required_tail(request, "service name")

    node_meta = request.get_all("node-meta")

    def render() -> Response:
        rows = [
            wire.check_json(c)
            for c in queries.service_checks(registry.catalog, name, node_meta)
        ]
        rows = near.sort_near(registry, request, rows, near.by_node)
        return json_response(filtering.apply(request, rows))

    return Query([service_topic(name), *near.near_topics(request)], render)


async def node(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    name = required_tail(request, "node name")

    def render() -> Response:
        rows = [wire.check_json(c) for c in registry.catalog.node_checks(name)]
        return json_response(filtering.apply(request, rows))

    return Query([node_topic(name)], render)


async def state(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    wanted = required_tail(request, "check state")
    if wanted not in queries.CHECK_STATES:
        # Deliberate difference: Consul answers an empty list for a state it
        # does not know; a typo there silently hides every check, so 400.
        raise InvalidRequest(
            f'Unknown check state "{wanted}": must be any, passing, warning or critical'
        )

    node_meta = request.get_all("node-meta")

    def render() -> Response:
        rows = [
            wire.check_json(c)
            for c in queries.checks_in_state(registry.catalog, wanted, node_meta)
        ]
        rows = near.sort_near(registry, request, rows, near.by_node)
        return json_response(filtering.apply(request, rows))

    return Query([T_CHECKS, *near.near_topics(request)], render)
