"""`/v1/health/*`: instances with their checks, filtered by health."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.core.brake import is_panicking, panic_header, panic_threshold
from waypost.core.catalog import T_CHECKS, node_topic, service_topic
from waypost.core.model import HealthStatus
from waypost.exceptions import InvalidRequest
from waypost.http import decode, filtering, wire
from waypost.http.catalog import (
    has_tags,
    is_peer_query,
    node_meta_matches,
    require_local_datacenter,
    required_tail,
    wanted_tags,
)
from waypost.http.messages import Query, Request, Response, json_response

if TYPE_CHECKING:
    from waypost.server import Agent

_STATES = {"any", "passing", "warning", "critical"}
PANIC_HEADER = b"x-waypost-panic"


async def service(agent: Agent, request: Request) -> Query:
    """ServiceEntry list; `?passing` drops an instance if any check is not
    passing, its node's checks (serfHealth, maintenance) included."""
    require_local_datacenter(agent, request)
    name = required_tail(request, "service name")
    tags = wanted_tags(request)
    passing = _passing_flag(request)
    entries = agent.catalog.health_entries

    def render() -> Response:
        found = [
            (node, instance, checks)
            for node, instance, checks in (
                [] if is_peer_query(request) else entries(name)
            )
            if has_tags(instance, tags) and node_meta_matches(request, node.meta)
        ]
        kept = [
            entry
            for entry in found
            if not passing or all(c.status is HealthStatus.PASSING for c in entry[2])
        ]
        headers: list[tuple[bytes, bytes]] = []
        if passing:  # waypost's panic threshold: too few pass, so answer them all
            metas = [instance.meta for _, instance, _ in found]
            threshold = panic_threshold(metas, agent.config.panic_threshold)
            if is_panicking(len(kept), len(found), threshold):
                note = panic_header(len(kept), len(found), threshold)
                headers.append((PANIC_HEADER, note.encode()))
                kept = found
        rows = [
            {
                "Node": wire.node_json(node),
                "Service": wire.node_service_json(instance),
                "Checks": [wire.check_json(c) for c in checks],
            }
            for node, instance, checks in kept
        ]
        rows = filtering.apply(request, rows)
        return json_response(rows, headers=headers)

    return Query([service_topic(name)], render)


def _passing_flag(request: Request) -> bool:
    """Consul's getBoolQueryParam: bare `?passing` is true, else ParseBool."""
    if not request.has("passing"):
        return False
    raw = request.get("passing")
    value = True if raw == "" else decode.parse_bool(raw)
    if value is None:
        raise InvalidRequest("Invalid value for ?passing")
    return value


async def checks(agent: Agent, request: Request) -> Query:
    require_local_datacenter(agent, request)
    name = required_tail(request, "service name")

    def render() -> Response:
        catalog = agent.catalog
        rows = [
            wire.check_json(c)
            for c in catalog.checks_of_service_name(name)
            if c.node in catalog.nodes
            and node_meta_matches(request, catalog.nodes[c.node].meta)
        ]
        return json_response(filtering.apply(request, rows))

    return Query([service_topic(name)], render)


async def node(agent: Agent, request: Request) -> Query:
    require_local_datacenter(agent, request)
    name = required_tail(request, "node name")

    def render() -> Response:
        rows = [wire.check_json(c) for c in agent.catalog.node_checks(name)]
        return json_response(filtering.apply(request, rows))

    return Query([node_topic(name)], render)


async def state(agent: Agent, request: Request) -> Query:
    require_local_datacenter(agent, request)
    wanted = required_tail(request, "check state")
    if wanted not in _STATES:
        # Deliberate difference: Consul answers an empty list for a state it
        # does not know; a typo there silently hides every check, so 400.
        raise InvalidRequest(
            f'Unknown check state "{wanted}": must be any, passing, warning or critical'
        )

    def render() -> Response:
        catalog = agent.catalog
        rows = [
            wire.check_json(c)
            for c in catalog.all_checks()
            if (wanted == "any" or c.status.value == wanted)
            and c.node in catalog.nodes
            and node_meta_matches(request, catalog.nodes[c.node].meta)
        ]
        return json_response(filtering.apply(request, rows))

    return Query([T_CHECKS], render)
