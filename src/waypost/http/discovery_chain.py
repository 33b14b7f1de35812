"""`/v1/discovery-chain/:service`: the compiled discovery chain, as Consul's
discoverychain.Compile builds it from service-router, service-splitter and
service-resolver entries (and the protocol from service-defaults or
proxy-defaults). Served as data: waypost runs no proxies.

Covered: the default chain, routers (L7 protocols only, as Consul), splitters,
resolvers with ConnectTimeout, DefaultSubset, Subsets, Redirect and
Failover (services and subsets in this datacenter). Not covered
(difference): failover to other datacenters, peers or sameness groups,
and LoadBalancer policies beyond echoing them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.core.config.changes import CA_CONFIG, kind_topic
from waypost.durations import format_duration, parse_duration
from waypost.exceptions import InvalidRequest
from waypost.http.catalog import require_local_datacenter, required_tail
from waypost.http.config_entries import entry_fields
from waypost.http.connect_wire import fold
from waypost.http.decode import decode_json
from waypost.http.messages import Query, Request, Response, json_response

if TYPE_CHECKING:
    from waypost.core.catalog import Catalog
    from waypost.registry import Registry

KINDS = (
    "service-router",
    "service-splitter",
    "service-resolver",
    "service-defaults",
    "proxy-defaults",
)
TOPICS = [kind_topic(k) for k in KINDS]
L7 = frozenset({"http", "http2", "grpc"})
DEFAULT_TIMEOUT = 5.0


def _get(data: object, name: str, default: Any = None) -> Any:
    if not isinstance(data, dict):
        return default
    wanted = fold(name)
    for key, value in data.items():
        if fold(str(key)) == wanted:
            return value
    return default


class _Compiler:
    def __init__(
        self,
        catalog: Catalog,
        service: str,
        dc: str,
        overrides: dict[str, Any],
    ) -> None:
        self.catalog = catalog
        self.service = service
        self.dc = dc
        self.overrides = overrides
        self.nodes: dict[str, dict[str, Any]] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.trust_domain = self._trust_domain()
        self.customized = any(overrides.values())
        self.used_entries = False

    def _trust_domain(self) -> str:
        row = self.catalog.config.setting(CA_CONFIG)
        if row is None:
            return "consul"
        return f"{msgspec.json.decode(row.body)['ClusterID']}.consul"

    def entry(self, kind: str, name: str) -> dict[str, Any] | None:
        found = self.catalog.config.entry(kind, name)
        if found is None:
            return None
        if kind in ("service-router", "service-splitter", "service-resolver"):
            self.used_entries = True
        return entry_fields(found)

    def protocol(self, name: str) -> str:
        override = self.overrides.get("OverrideProtocol")
        if override:
            return str(override).lower()
        defaults = self.entry("service-defaults", name) or {}
        if defaults.get("Protocol"):
            return str(defaults["Protocol"])
        proxy = self.entry("proxy-defaults", "global") or {}
        protocol = _get(proxy.get("Config"), "protocol")
        return str(protocol).lower() if protocol else "tcp"

    # ------------------------------------------------------------ nodes

    def target(self, service: str, subset: str = "") -> str:
        prefix = f"{subset}." if subset else ""
        target_id = f"{prefix}{service}.default.default.{self.dc}"
        if target_id not in self.targets:
            resolver = self.entry("service-resolver", service) or {}
            timeout = self._timeout(resolver)
            subsets = _get(resolver, "Subsets") or {}
            sni = f"{prefix}{service}.default.{self.dc}.internal.{self.trust_domain}"
            self.targets[target_id] = {
                "ID": target_id,
                "Service": service,
                "ServiceSubset": subset,
                "Namespace": "default",
                "Partition": "default",
                "Datacenter": self.dc,
                "MeshGateway": self.overrides.get("OverrideMeshGateway") or {},
                "Subset": _get(subsets, subset) or {} if subset else {},
                "ConnectTimeout": format_duration(timeout),
                "SNI": sni,
                "Name": sni,
            }
        return target_id

    def _timeout(self, resolver: dict[str, Any]) -> float:
        override = self.overrides.get("OverrideConnectTimeout")
        raw = override or _get(resolver, "ConnectTimeout")
        if not raw:
            return DEFAULT_TIMEOUT
        if isinstance(raw, int | float):
            return float(raw) / 1e9
        try:
            return parse_duration(str(raw))
        except ValueError:
            return DEFAULT_TIMEOUT

    def resolver(self, service: str, subset: str = "", depth: int = 0) -> str:
        if depth > 8:
            raise InvalidRequest(f"detected circular resolver redirect for {service}")
        resolver = self.entry("service-resolver", service)
        if resolver is not None:
            redirect = _get(resolver, "Redirect")
            target_service = _get(redirect, "Service")
            if target_service and target_service != service:
                return self.resolver(
                    target_service, _get(redirect, "ServiceSubset", ""), depth + 1
                )
            subset = subset or str(_get(resolver, "DefaultSubset", "") or "")
        target = self.target(service, subset)
        name = target
        node_id = f"resolver:{name}"
        if node_id in self.nodes:
            return node_id
        body: dict[str, Any] = {
            "ConnectTimeout": format_duration(self._timeout(resolver or {})),
            "Target": target,
        }
        if resolver is None:
            body = {"Default": True, **body}
        failover = _get(resolver, "Failover") if resolver else None
        if isinstance(failover, dict):
            chosen = _get(failover, subset or "*") or _get(failover, "*")
            if isinstance(chosen, dict):
                services = []
                other = _get(chosen, "Service") or service
                other_subset = _get(chosen, "ServiceSubset", "")
                if other != service or other_subset != subset:
                    services.append(self.target(other, other_subset))
                if services:
                    body["Failover"] = {"Targets": services}
        self.nodes[node_id] = {"Type": "resolver", "Name": name, "Resolver": body}
        return node_id

    def splitter(self, service: str) -> str:
        splitter = self.entry("service-splitter", service)
        if splitter is None:
            return self.resolver(service)
        node_id = f"splitter:{service}.default.default"
        splits = []
        for split in _get(splitter, "Splits") or []:
            other = _get(split, "Service") or service
            subset = _get(split, "ServiceSubset", "")
            weight = _get(split, "Weight", 0)
            next_node = (
                self.resolver(other, subset)
                if other == service or subset
                else self.splitter(other)
            )
            splits.append({"Weight": weight, "NextNode": next_node})
        self.nodes[node_id] = {
            "Type": "splitter",
            "Name": f"{service}.default.default",
            "Splits": splits,
        }
        return node_id

    def router(self, service: str) -> str:
        router = self.entry("service-router", service)
        if router is None:
            return self.splitter(service)
        node_id = f"router:{service}.default.default"
        routes = []
        for route in _get(router, "Routes") or []:
            destination = _get(route, "Destination") or {}
            other = _get(destination, "Service") or service
            subset = _get(destination, "ServiceSubset", "")
            next_node = self.resolver(other, subset) if subset else self.splitter(other)
            routes.append({"Definition": route, "NextNode": next_node})
        catch_all = {
            "Match": {"HTTP": {"PathPrefix": "/"}},
            "Destination": {"Service": service},
        }
        routes.append({"Definition": catch_all, "NextNode": self.splitter(service)})
        self.nodes[node_id] = {
            "Type": "router",
            "Name": f"{service}.default.default",
            "Routes": routes,
        }
        return node_id

    def compile(self) -> dict[str, Any]:
        protocol = self.protocol(self.service)
        is_l7 = protocol in L7
        for kind in ("service-router", "service-splitter"):
            if not is_l7 and self.catalog.config.entry(kind, self.service):
                raise InvalidRequest(
                    f"does not make sense to use a {kind} for a service that is not"
                    f" HTTP, HTTP2 or gRPC (protocol {protocol!r})"
                )
        start = self.router(self.service) if is_l7 else self.resolver(self.service)
        chain: dict[str, Any] = {
            "ServiceName": self.service,
            "Namespace": "default",
            "Partition": "default",
            "Datacenter": self.dc,
        }
        if self.customized:
            digest = hashlib.sha256(msgspec.json.encode(self.overrides)).hexdigest()
            chain["CustomizationHash"] = digest[:8]
        chain.update(
            {
                "Default": not self.used_entries,
                "Protocol": protocol,
                "ServiceMeta": None,
                "StartNode": start,
                "Nodes": self.nodes,
                "Targets": self.targets,
            }
        )
        return chain


def _overrides(request: Request) -> dict[str, Any]:
    if request.method != "POST" or not request.body.strip():
        return {}
    data = decode_json(request.body)
    if not isinstance(data, dict):
        raise InvalidRequest("Request decode failed: body is not a JSON object")
    out: dict[str, Any] = {}
    for name in (
        "OverrideProtocol",
        "OverrideConnectTimeout",
        "OverrideMeshGateway",
        "EvaluateInDatacenter",
    ):
        value = _get(data, name)
        if value is not None:
            out[name] = value
    protocol = out.get("OverrideProtocol")
    if protocol is not None and not isinstance(protocol, str):
        raise InvalidRequest("Request decode failed: OverrideProtocol must be a string")
    timeout = out.get("OverrideConnectTimeout")
    if isinstance(timeout, str):
        try:
            parse_duration(timeout)
        except ValueError:
            raise InvalidRequest(
                f'Request decode failed: time: invalid duration "{timeout}"'
            ) from None
    elif timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float)
    ):
        raise InvalidRequest("Request decode failed: OverrideConnectTimeout")
    mesh = out.get("OverrideMeshGateway")
    if mesh is not None and not isinstance(mesh, dict):
        raise InvalidRequest("Request decode failed: OverrideMeshGateway")
    return out


async def read(registry: Registry, request: Request) -> Response | Query:
    require_local_datacenter(registry, request)
    service = required_tail(request, "service name")
    overrides = _overrides(request)
    dc = request.get("compile-dc") or registry.config.datacenter
    evaluate = overrides.pop("EvaluateInDatacenter", None)
    if evaluate:
        dc = str(evaluate)
    if dc != registry.config.datacenter:
        raise InvalidRequest("No path to datacenter")
    catalog = registry.catalog

    def render() -> Response:
        chain = _Compiler(catalog, service, dc, overrides).compile()
        return json_response({"Chain": chain})

    if request.method == "POST":
        # Its body changes the answer, and the response cache keys on the
        # path and query only: a POST is answered at once, never cached.
        return render()
    return Query(TOPICS, render)
