"""Which instances and checks a query returns: shared by every transport.

HTTP's `/v1/health/service`, `/v1/catalog/service`, the agent's local health
and (next) DNS answer from these functions, so `?passing`, tags, node meta,
the panic threshold and aggregated status mean the same everywhere. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from waypost.core.brake import is_panicking, panic_header, panic_threshold
from waypost.core.catalog import Catalog
from waypost.core.model import (
    NODE_MAINTENANCE_CHECK_ID,
    SERF_CHECK_ID,
    SERVICE_MAINTENANCE_PREFIX,
    Check,
    HealthStatus,
    Node,
    Service,
)

#: Consul's ServiceEntry: the node, the instance, node checks + instance checks.
ServiceEntry = tuple[Node, Service, list[Check]]

#: `?state=` values of /v1/health/state.
CHECK_STATES = frozenset({"any", "passing", "warning", "critical"})


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """What a discovery query asks for besides the service name."""

    #: Every tag must be present, ignoring case (Consul's serviceTagsFilter).
    tags: Sequence[str] = ()
    #: `key:value` pairs that the node's meta must all match.
    node_meta: Sequence[str] = ()
    #: Only instances whose every check (node checks included) passes.
    passing: bool = False


class HealthAnswer(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[ServiceEntry]
    #: Set when too few passed and every instance is answered (panic mode).
    panic: str | None = None


def normalized_tags(tags: Iterable[str]) -> list[str]:
    """Lower-cased, blank ones dropped, as Consul reads `?tag=`."""
    return [tag.lower() for tag in tags if tag]


def has_tags(service: Service, wanted: Sequence[str]) -> bool:
    """Every (lower-cased) wanted tag is on the service, ignoring case."""
    if not wanted:
        return True
    present = {tag.lower() for tag in service.tags}
    return all(tag in present for tag in wanted)


def node_meta_matches(pairs: Sequence[str], meta: dict[str, str]) -> bool:
    """`?node-meta=key:value` (repeatable): every key must have its value.

    Consul's parseMetaFilter and parseMetaPair (agent/http.go): a pair
    without a colon is the key with an empty value (200, not a 400), and a
    later pair for the same key replaces an earlier one.
    """
    if not pairs:
        return True
    filters = dict(pair.partition(":")[::2] for pair in pairs)
    return all(meta.get(key) == value for key, value in filters.items())


def is_passing(checks: Iterable[Check]) -> bool:
    return all(c.status is HealthStatus.PASSING for c in checks)


def health_service(
    catalog: Catalog, name: str, selection: Selection, *, panic_default: float
) -> HealthAnswer:
    """`/v1/health/service/:name` (and DNS): entries in instance order.

    With `passing`, an instance is dropped if any of its checks or its node's
    checks is not passing, unless fewer than the panic threshold pass: then
    every instance is answered and `panic` says why.
    """
    tags = normalized_tags(selection.tags)
    found = [
        entry
        for entry in catalog.health_entries(name)
        if has_tags(entry[1], tags)
        and node_meta_matches(selection.node_meta, entry[0].meta)
    ]
    return _passing(found, selection, panic_default)


def catalog_service(
    catalog: Catalog, name: str, selection: Selection
) -> list[tuple[Node, Service]]:
    """`/v1/catalog/service/:name`: instances, health ignored."""
    tags = normalized_tags(selection.tags)
    rows = []
    for service in catalog.service_instances(name):
        node = catalog.nodes.get(service.node)
        if node is None or not node_meta_matches(selection.node_meta, node.meta):
            continue
        if has_tags(service, tags):
            rows.append((node, service))
    return rows


def checks_in_state(
    catalog: Catalog, state: str, node_meta: Sequence[str] = ()
) -> list[Check]:
    """`/v1/health/state/:state`: every check in that state (or any)."""
    return [
        c
        for c in catalog.all_checks()
        if (state == "any" or c.status.value == state)
        and c.node in catalog.nodes
        and node_meta_matches(node_meta, catalog.nodes[c.node].meta)
    ]


def service_checks(
    catalog: Catalog, name: str, node_meta: Sequence[str] = ()
) -> list[Check]:
    """`/v1/health/checks/:service`: the checks of every instance."""
    return [
        c
        for c in catalog.checks_of_service_name(name)
        if c.node in catalog.nodes
        and node_meta_matches(node_meta, catalog.nodes[c.node].meta)
    ]


# ---------------------------------------------------------------- agent health

#: Worst first, as Consul's AgentHealthServiceBy* compare them.
AGGREGATE_ORDER = ("passing", "warning", "critical", "maintenance")


def is_maintenance(check: Check) -> bool:
    return check.check_id == NODE_MAINTENANCE_CHECK_ID or check.check_id.startswith(
        SERVICE_MAINTENANCE_PREFIX
    )


def aggregate_status(checks: Iterable[Check]) -> str:
    """Consul's AggregatedStatus: maintenance > critical > warning > passing."""
    checks = list(checks)
    if any(is_maintenance(c) for c in checks):
        return "maintenance"
    statuses = {c.status for c in checks}
    for status in (HealthStatus.CRITICAL, HealthStatus.WARNING):
        if status in statuses:
            return status.value
    return "passing"


def worst_status(statuses: Iterable[str]) -> str:
    return max(statuses, key=AGGREGATE_ORDER.index)


def local_health_checks(catalog: Catalog, service: Service) -> list[Check]:
    """Consul's ChecksForService(id, true): the instance's checks and its
    node's own (maintenance), not the leader's serfHealth."""
    node_checks = [
        c
        for c in catalog.node_level_checks(service.node)
        if c.check_id != SERF_CHECK_ID
    ]
    return node_checks + catalog.service_checks(service.node, service.service_id)


# ---------------------------------------------------------------- Connect

CONNECT_PROXY = "connect-proxy"


def is_connect_for(service: Service, name: str) -> bool:
    """Consul's ConnectServiceNodes: a proxy for `name`, or `name` itself
    when it is Connect-native."""
    if service.kind == CONNECT_PROXY:
        return service.proxy_destination == name
    return service.connect_native and service.name == name


def connect_names(catalog: Catalog, name: str) -> list[str]:
    """The service names whose instances serve `name` over Connect."""
    names = {
        s.name
        for s in catalog.all_services()
        if s.kind == CONNECT_PROXY and s.proxy_destination == name
    }
    names.add(name)
    return sorted(names)


def connect_health(
    catalog: Catalog, name: str, selection: Selection, *, panic_default: float
) -> HealthAnswer:
    """`/v1/health/connect/:name`: health entries of its proxies (and of
    itself if native), `?passing` as `/v1/health/service`."""
    tags = normalized_tags(selection.tags)
    found = [
        entry
        for candidate in connect_names(catalog, name)
        for entry in catalog.health_entries(candidate)
        if is_connect_for(entry[1], name)
        and has_tags(entry[1], tags)
        and node_meta_matches(selection.node_meta, entry[0].meta)
    ]
    return _passing(found, selection, panic_default)


def gateway_health(
    catalog: Catalog,
    gateways: Sequence[str],
    kind: str,
    selection: Selection,
    *,
    panic_default: float,
) -> HealthAnswer:
    """Health entries of the instances of these gateways (of this kind)."""
    tags = normalized_tags(selection.tags)
    found = [
        entry
        for gateway in sorted(set(gateways))
        for entry in catalog.health_entries(gateway)
        if entry[1].kind == kind
        and has_tags(entry[1], tags)
        and node_meta_matches(selection.node_meta, entry[0].meta)
    ]
    return _passing(found, selection, panic_default)


def _passing(
    found: list[tuple[Node, Service, list[Check]]],
    selection: Selection,
    panic_default: float,
) -> HealthAnswer:
    if not selection.passing:
        return HealthAnswer(entries=found)
    kept = [entry for entry in found if is_passing(entry[2])]
    threshold = panic_threshold([entry[1].meta for entry in found], panic_default)
    if is_panicking(len(kept), len(found), threshold):
        return HealthAnswer(
            entries=found, panic=panic_header(len(kept), len(found), threshold)
        )
    return HealthAnswer(entries=kept)


def connect_catalog(
    catalog: Catalog, name: str, selection: Selection
) -> list[tuple[Node, Service]]:
    """`/v1/catalog/connect/:name`: its proxies' instances (and its own if
    native), health ignored."""
    rows = []
    for candidate in connect_names(catalog, name):
        for node, service in catalog_service(catalog, candidate, selection):
            if is_connect_for(service, name):
                rows.append((node, service))
    return rows
