"""Connect's read endpoints, served as data (waypost runs no proxies):
`/v1/catalog/connect/:service`, `/v1/health/connect/:service`,
`/v1/health/ingress/:service`, `/v1/catalog/gateway-services/:gateway`.

Which instances serve a service over Connect is Consul's rule
(ConnectServiceNodes: its `connect-proxy` instances, and itself when
`Connect.Native`); which services a gateway fronts comes from its
ingress-gateway or terminating-gateway config entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waypost.core import queries
from waypost.core.config.changes import kind_topic
from waypost.core.topics import T_SERVICES, service_topic
from waypost.core.watch import Topic
from waypost.http import central_config, compact, filtering, wire
from waypost.http.catalog import (
    is_peer_query,
    require_local_datacenter,
    required_tail,
)
from waypost.http.config_entries import entry_fields
from waypost.http.connect_wire import INGRESS_GATEWAY, TERMINATING_GATEWAY, fold
from waypost.http.health import PANIC_HEADER, _passing_flag
from waypost.http.messages import Query, Request, Response, json_response

if TYPE_CHECKING:
    from waypost.core.catalog import Catalog
    from waypost.registry import Registry

GATEWAY_KINDS = (INGRESS_GATEWAY, TERMINATING_GATEWAY)


def _topics(registry: Registry, name: str, request: Request) -> list[Topic]:
    # A proxy registered for `name` is a new service: T_SERVICES wakes on it.
    names = queries.connect_names(registry.catalog, name)
    topics = [T_SERVICES, *(service_topic(n) for n in names)]
    if central_config.wanted(request):
        topics += central_config.TOPICS
    return topics


def _selection(request: Request, *, passing: bool = False) -> queries.Selection:
    return queries.Selection(
        tags=request.get_all("tag"),
        node_meta=request.get_all("node-meta"),
        passing=_passing_flag(request) if passing else False,
    )


async def catalog_connect(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    name = required_tail(request, "service name")
    selection = _selection(request)
    peer = is_peer_query(request)

    def render() -> Response:
        found = (
            [] if peer else queries.connect_catalog(registry.catalog, name, selection)
        )
        if central_config.wanted(request):
            catalog = registry.catalog
            found = [(n, central_config.merged(catalog, s)) for n, s in found]
        rows = [wire.catalog_service_json(node, s) for node, s in found]
        return json_response(filtering.apply(request, rows))

    return Query(_topics(registry, name, request), render)


def _health_rows(
    answer: queries.HealthAnswer, merge: Catalog | None = None
) -> list[dict[str, Any]]:
    return [
        {
            "Node": wire.node_json(node),
            "Service": wire.node_service_json(
                central_config.merged(merge, instance) if merge else instance
            ),
            "Checks": [wire.check_json(c) for c in checks],
        }
        for node, instance, checks in answer.entries
    ]


def _health_answer(
    request: Request, answer: queries.HealthAnswer, catalog: Catalog
) -> Response:
    headers: list[tuple[bytes, bytes]] = []
    if answer.panic is not None:
        headers.append((PANIC_HEADER, answer.panic.encode()))
    merge = catalog if central_config.wanted(request) else None
    rows = filtering.apply(request, _health_rows(answer, merge))
    return compact.health_response(request, rows, headers)


async def health_connect(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    name = required_tail(request, "service name")
    selection = _selection(request, passing=True)
    peer = is_peer_query(request)
    panic_default = registry.config.panic_threshold

    def render() -> Response:
        if peer:
            return json_response(filtering.apply(request, []))
        answer = queries.connect_health(
            registry.catalog, name, selection, panic_default=panic_default
        )
        return _health_answer(request, answer, registry.catalog)

    return Query(_topics(registry, name, request), render)


async def health_ingress(registry: Registry, request: Request) -> Query:
    """The ingress gateways whose config entry routes to the service."""
    require_local_datacenter(registry, request)
    name = required_tail(request, "service name")
    selection = _selection(request, passing=True)
    panic_default = registry.config.panic_threshold

    def render() -> Response:
        gateways = [
            entry.name
            for entry in registry.catalog.config.entries(INGRESS_GATEWAY)
            if any(
                row["Service"]["Name"] == name
                for row in gateway_services(registry.catalog, entry.name)
            )
        ]
        answer = queries.gateway_health(
            registry.catalog,
            gateways,
            INGRESS_GATEWAY,
            selection,
            panic_default=panic_default,
        )
        return _health_answer(request, answer, registry.catalog)

    topics = [T_SERVICES, kind_topic(INGRESS_GATEWAY)]
    gateways = registry.catalog.config.entries(INGRESS_GATEWAY)
    topics += [service_topic(entry.name) for entry in gateways]
    return Query(topics, render)


async def catalog_gateway_services(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    gateway = required_tail(request, "gateway name")

    def render() -> Response:
        rows = gateway_services(registry.catalog, gateway)
        return json_response(filtering.apply(request, rows))

    topics = [T_SERVICES, *(kind_topic(kind) for kind in GATEWAY_KINDS)]
    return Query(topics, render)


# ---------------------------------------------------------------- gateways


def _get(data: object, name: str, default: Any = None) -> Any:
    """A field of an entry's nested object, however the writer spelled it."""
    if not isinstance(data, dict):
        return default
    wanted = fold(name)
    for key, value in data.items():
        if fold(str(key)) == wanted:
            return value
    return default


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _typical_services(catalog: Catalog) -> list[str]:
    """What a `*` in a gateway entry stands for: every typical service."""
    return sorted(
        name
        for name, instances in (
            (n, catalog.service_instances(n)) for n in catalog.service_names()
        )
        if name != "consul" and any(not s.kind for s in instances)
    )


def gateway_services(catalog: Catalog, gateway: str) -> list[dict[str, Any]]:
    """structs.GatewayService rows of one gateway, from its config entry."""
    rows: list[dict[str, Any]] = []
    ingress = catalog.config.entry(INGRESS_GATEWAY, gateway)
    if ingress is not None:
        fields = entry_fields(ingress)
        for listener in _list(fields.get("Listeners")):
            port = _get(listener, "Port", 0)
            protocol = _get(listener, "Protocol", "") or "tcp"
            for service in _list(_get(listener, "Services")):
                name = _get(service, "Name", "")
                if not isinstance(name, str) or not name:
                    continue
                names = _typical_services(catalog) if name == "*" else [name]
                for each in names:
                    row: dict[str, Any] = {
                        "Gateway": {"Name": gateway},
                        "Service": {"Name": each},
                        "GatewayKind": INGRESS_GATEWAY,
                        "Port": port,
                        "Protocol": protocol,
                    }
                    hosts = _get(service, "Hosts")
                    if hosts:
                        row["Hosts"] = hosts
                    if name == "*":
                        row["FromWildcard"] = True
                    row["CreateIndex"] = ingress.create_index
                    row["ModifyIndex"] = ingress.modify_index
                    rows.append(row)
    terminating = catalog.config.entry(TERMINATING_GATEWAY, gateway)
    if terminating is not None:
        fields = entry_fields(terminating)
        for service in _list(fields.get("Services")):
            name = _get(service, "Name", "")
            if not isinstance(name, str) or not name:
                continue
            names = _typical_services(catalog) if name == "*" else [name]
            for each in names:
                row = {
                    "Gateway": {"Name": gateway},
                    "Service": {"Name": each},
                    "GatewayKind": TERMINATING_GATEWAY,
                }
                for field in ("CAFile", "CertFile", "KeyFile", "SNI"):
                    value = _get(service, field, "")
                    if value:
                        row[field] = value
                if name == "*":
                    row["FromWildcard"] = True
                row["CreateIndex"] = terminating.create_index
                row["ModifyIndex"] = terminating.modify_index
                rows.append(row)
    return rows
