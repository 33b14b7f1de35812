"""Gauges read from the registry when scraped: what the catalog holds and
how the brake stands. Nothing here runs on a request's path but a scrape's.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import TYPE_CHECKING

import msgspec

from waypost.core.queries import aggregate_status, local_health_checks

if TYPE_CHECKING:
    from waypost.registry import Registry


class Gauge(msgspec.Struct, frozen=True):
    """One gauge value at scrape time."""

    name: str
    help: str
    value: float
    labels: dict[str, str] = {}
    #: Consul's name for the JSON, "" for ours (the Prometheus name, dotted).
    consul_name: str = ""


STATUSES = ("passing", "warning", "critical", "maintenance")


def gauges(registry: Registry) -> list[Gauge]:
    catalog = registry.catalog
    counts = catalog.counts()
    names = catalog.service_names()
    instances: Tally[str] = Tally()
    for service in catalog.all_services():
        instances[aggregate_status(local_health_checks(catalog, service))] += 1
    checks: Tally[str] = Tally(c.status.value for c in catalog.all_checks())
    brake = registry.brake
    out = [
        Gauge("consul_state_nodes", "Nodes in the catalog.", counts["nodes"],
              consul_name="consul.state.nodes"),
        Gauge("consul_state_services", "Service names in the catalog.", len(names),
              consul_name="consul.state.services"),
        Gauge("consul_state_service_instances", "Service instances in the catalog.",
              counts["services"], consul_name="consul.state.service_instances"),
        Gauge("consul_state_kv_entries", "Keys in the KV store.", counts["kv"],
              consul_name="consul.state.kv_entries"),
        Gauge("waypost_catalog_index", "The catalog's last applied index.",
              catalog.index),
        Gauge("waypost_self_preservation_engaged",
              "1 while the self-preservation brake holds TTL expiry and reaping.",
              1.0 if brake.engaged or brake.held else 0.0),
        Gauge("waypost_self_preservation_engagements",
              "Times the brake engaged since the agent started.", brake.engagements),
        Gauge("waypost_ttl_checks_live", "TTL checks counted by the brake's census.",
              brake.census.live),
        Gauge("waypost_ttl_checks_quiet",
              "TTL checks gone quiet in the brake's last census.", brake.census.quiet),
    ]  # fmt: skip
    out += [
        Gauge(
            "waypost_service_instances",
            "Service instances by aggregated health (Consul's AggregatedStatus).",
            instances[status],
            {"status": status},
        )
        for status in STATUSES
    ]
    out += [
        Gauge("waypost_checks", "Checks by status.", checks[status], {"status": status})
        for status in STATUSES[:3]
    ]
    return out
