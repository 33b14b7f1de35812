"""Alias checks read from the catalog: Consul's CheckAlias.processChecks."""

from __future__ import annotations

from tests.core.support import Driven
from waypost.core.catalog import Catalog, node_topic, service_topic
from waypost.core.model import Check, CheckDefinition, HealthStatus, Node, Service
from waypost.runner.alias import alias_result, alias_topics
from waypost.runner.probes import ProbeResult

NODE = "n1"
P, W, C = HealthStatus.PASSING, HealthStatus.WARNING, HealthStatus.CRITICAL


def catalog_with(
    *statuses: HealthStatus, node_check: HealthStatus | None = None
) -> Catalog:
    """Instance "db" (service "database") with one check per status."""
    catalog = Driven()
    catalog.upsert_node(Node(name=NODE, address="127.0.0.1"))
    checks = [
        Check(
            node=NODE,
            check_id=f"db:{i}",
            name=f"db {i}",
            status=status,
            output=f"out{i}",
            service_id="db",
        )
        for i, status in enumerate(statuses)
    ]
    service = Service(node=NODE, service_id="db", name="database")
    catalog.register_service(service, checks, now=0.0)
    if node_check is not None:
        disk = Check(node=NODE, check_id="disk", name="disk", status=node_check)
        catalog.register_check(disk, now=0.0)
    return catalog


def alias(service: str = "db", node: str = "") -> Check:
    definition = CheckDefinition(alias_service=service, alias_node=node)
    return Check(node=NODE, check_id="sidecar", definition=definition)


def test_alias_passes_when_every_check_of_the_instance_passes() -> None:
    result = alias_result(catalog_with(P, P), alias())
    assert result == ProbeResult(P, "All checks passing.")


def test_alias_takes_the_worst_status_with_the_failing_check_output() -> None:
    result = alias_result(catalog_with(P, W), alias())
    assert result == ProbeResult(W, 'Aliased check "db 1" failing: out1')
    assert alias_result(catalog_with(W, C), alias()).status is C


def test_node_level_checks_count_for_the_alias() -> None:
    result = alias_result(catalog_with(P, node_check=C), alias())
    assert result.status is C and "disk" in result.output


def test_alias_of_a_missing_service_is_critical() -> None:
    result = alias_result(catalog_with(P), alias("nope"))
    assert result.status is C and "could not be found" in result.output


def test_alias_follows_the_instance_topic_once_it_exists() -> None:
    catalog = catalog_with(P)
    assert alias_topics(catalog, alias()) == {service_topic("database")}
    assert alias_topics(catalog, alias("nope")) == {node_topic(NODE)}
