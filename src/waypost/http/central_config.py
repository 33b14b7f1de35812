"""`?merge-central-config`: a proxy's or gateway's registration merged with
the proxy-defaults/global and service-defaults entries, as Consul's
configentry.MergeNodeServiceWithCentralConfig (ComputeResolvedServiceConfig
then MergeServiceConfig) does. Typical services are answered as registered,
as in Consul. Upstream-specific central config (UpstreamConfig) is not
merged (difference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from waypost.core.config.changes import kind_topic
from waypost.core.model import Service
from waypost.core.watch import Topic
from waypost.http.config_entries import entry_fields
from waypost.http.connect_wire import CONNECT_PROXY, GATEWAYS

if TYPE_CHECKING:
    from waypost.core.catalog import Catalog
    from waypost.http.messages import Request

TOPICS: list[Topic] = [kind_topic("proxy-defaults"), kind_topic("service-defaults")]


def wanted(request: Request) -> bool:
    return request.has("merge-central-config")


def _fields(catalog: Catalog, kind: str, name: str) -> dict[str, Any]:
    entry = catalog.config.entry(kind, name)
    return entry_fields(entry) if entry is not None else {}


def _fill(target: dict[str, Any], defaults: object) -> None:
    """mergo.Merge: keys the registration lacks come from the defaults."""
    if isinstance(defaults, dict):
        for key, value in defaults.items():
            if target.get(key) in (None, "", 0, False, {}, []):
                target[key] = value


def merged(catalog: Catalog, service: Service) -> Service:
    if service.kind != CONNECT_PROXY and service.kind not in GATEWAYS:
        return service
    name = service.proxy_destination if service.kind == CONNECT_PROXY else service.name
    proxy_defaults = _fields(catalog, "proxy-defaults", "global")
    service_defaults = _fields(catalog, "service-defaults", name)
    if not proxy_defaults and not service_defaults:
        return service
    # ComputeResolvedServiceConfig
    config = dict(proxy_defaults.get("Config") or {})
    if service_defaults.get("Protocol"):
        config["protocol"] = service_defaults["Protocol"]

    def resolved(field: str) -> Any:
        value = service_defaults.get(field)
        return value if value else proxy_defaults.get(field)

    # MergeServiceConfig
    proxy: dict[str, Any] = msgspec.json.decode(service.proxy) if service.proxy else {}
    proxy_config = dict(proxy.get("Config") or {})
    _fill(proxy_config, config)
    if proxy_config:
        proxy["Config"] = proxy_config
    for field in ("Expose", "AccessLogs", "TransparentProxy"):
        value = dict(proxy.get(field) or {})
        _fill(value, resolved(field))
        if value:
            proxy[field] = value
    mesh = dict(proxy.get("MeshGateway") or {})
    if not mesh.get("Mode"):
        mode = (resolved("MeshGateway") or {}).get("Mode")
        if mode:
            mesh["Mode"] = mode
    if mesh:
        proxy["MeshGateway"] = mesh
    for field in ("Mode", "MutualTLSMode"):
        if not proxy.get(field) and resolved(field):
            proxy[field] = resolved(field)
    return msgspec.structs.replace(service, proxy=msgspec.json.encode(proxy))
