"""`/v1/health/*`: instances with their checks, filtered by health."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.core.catalog import T_CHECKS, node_topic, service_topic
from waypost.core.model import HealthStatus
from waypost.exceptions import InvalidRequest
from waypost.http import filtering, wire
from waypost.http.agent import _schema
from waypost.http.catalog import node_meta_matches
from waypost.http.messages import Query, Request, Response, json_response

if TYPE_CHECKING:
    from waypost.server import Agent

_STATES = {"any", "passing", "warning", "critical"}


async def service(agent: Agent, request: Request) -> Query:
    """ServiceEntry list; `?passing` drops an instance if any check is not
    passing, its node's checks (serfHealth, maintenance) included."""
    name = request.tail
    tags = request.get_all("tag")
    passing = request.flag("passing")

    def render() -> Response:
        rows = []
        for node, instance, checks in agent.catalog.health_entries(name):
            if tags and not all(t in instance.tags for t in tags):
                continue
            if passing and any(c.status is not HealthStatus.PASSING for c in checks):
                continue
            if not node_meta_matches(request, node.meta):
                continue
            rows.append(
                {
                    "Node": wire.node_json(node),
                    "Service": wire.node_service_json(instance),
                    "Checks": [wire.check_json(c) for c in checks],
                }
            )
        return json_response(filtering.apply(request, rows, _schema("SERVICE_ENTRY")))

    return Query([service_topic(name)], render)


async def checks(agent: Agent, request: Request) -> Query:
    name = request.tail

    def render() -> Response:
        catalog = agent.catalog
        rows = [
            wire.check_json(c)
            for c in catalog.checks_of_service_name(name)
            if c.node in catalog.nodes
            and node_meta_matches(request, catalog.nodes[c.node].meta)
        ]
        return json_response(filtering.apply(request, rows, _schema("HEALTH_CHECK")))

    return Query([service_topic(name)], render)


async def node(agent: Agent, request: Request) -> Query:
    name = request.tail

    def render() -> Response:
        rows = [wire.check_json(c) for c in agent.catalog.node_checks(name)]
        return json_response(filtering.apply(request, rows, _schema("HEALTH_CHECK")))

    return Query([node_topic(name)], render)


async def state(agent: Agent, request: Request) -> Query:
    wanted = request.tail
    if wanted not in _STATES:
        raise InvalidRequest(f'Unknown check state "{wanted}"')

    def render() -> Response:
        catalog = agent.catalog
        rows = [
            wire.check_json(c)
            for c in catalog.all_checks()
            if (wanted == "any" or c.status.value == wanted)
            and c.node in catalog.nodes
            and node_meta_matches(request, catalog.nodes[c.node].meta)
        ]
        return json_response(filtering.apply(request, rows, _schema("HEALTH_CHECK")))

    return Query([T_CHECKS], render)
