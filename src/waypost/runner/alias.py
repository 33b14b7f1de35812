"""Alias checks: follow the health of another service instance or node.

Consul's CheckAlias.processChecks (agent/checks/alias.go): critical if any of
the aliased instance's checks (or its node's checks) is critical, warning if
any warns, passing otherwise; critical when the service is not there. Read
from the catalog at the moment of asking; no I/O.
"""

from __future__ import annotations

from waypost.core.catalog import Catalog
from waypost.core.model import SERF_CHECK_ID, Check, HealthStatus
from waypost.core.topics import node_topic, service_topic
from waypost.core.watch import Topic
from waypost.runner.probes import ProbeResult


def alias_node(check: Check) -> str:
    """The node an alias follows: AliasNode, else the check's own node."""
    return check.definition.alias_node or check.node


def alias_topics(catalog: Catalog, check: Check) -> frozenset[Topic]:
    """What an alias reads. An existing instance's topic is touched by its own
    checks and by its node's checks; until it exists, any change on the node
    (its registration among them) may matter."""
    node = alias_node(check)
    service_id = check.definition.alias_service
    service = catalog.node_service(node, service_id) if service_id else None
    if service is not None:
        return frozenset({service_topic(service.name)})
    return frozenset({node_topic(node)})


def alias_result(catalog: Catalog, check: Check) -> ProbeResult:
    definition = check.definition
    node = alias_node(check)
    service_id = definition.alias_service
    local = not definition.alias_node
    health = HealthStatus.PASSING
    message = "No checks found."
    found = False
    relevant = catalog.node_level_checks(node)
    if service_id:
        relevant += catalog.service_checks(node, service_id)
    for other in relevant:
        if (other.node, other.check_id) == (check.node, check.check_id):
            continue
        # The agent's local state never holds serfHealth; a remote node's does.
        if local and other.check_id == SERF_CHECK_ID:
            continue
        matches = other.service_id == service_id
        if other.service_id and not matches:
            continue
        found = found or matches
        if other.status is not HealthStatus.PASSING:
            health = other.status
            message = f'Aliased check "{other.name}" failing: {other.output}'
            if other.status is HealthStatus.CRITICAL:
                break
        elif health is HealthStatus.PASSING:
            message = "All checks passing."
    if not found and catalog.node_service(node, service_id) is None:
        health = HealthStatus.CRITICAL
        message = (
            f"Service {service_id} could not be found on node {definition.alias_node}"
        )
    return ProbeResult(health, message)
