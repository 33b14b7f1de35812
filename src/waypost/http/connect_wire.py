"""Connect's control-plane data in a registration: `Kind`, `Proxy`,
`Connect` and `Locality`, decoded into Consul's spelling and validated as
Consul's structs.NodeService.Validate does. Data only: waypost runs no
proxies (README).

Below `Proxy`'s own fields (and an upstream's), values are kept as sent.
"""

from __future__ import annotations

from typing import Any

import msgspec

from waypost.exceptions import InvalidRequest

CONNECT_PROXY = "connect-proxy"
MESH_GATEWAY = "mesh-gateway"
TERMINATING_GATEWAY = "terminating-gateway"
INGRESS_GATEWAY = "ingress-gateway"
API_GATEWAY = "api-gateway"
GATEWAYS = frozenset({MESH_GATEWAY, TERMINATING_GATEWAY, INGRESS_GATEWAY, API_GATEWAY})
KINDS = frozenset({"", CONNECT_PROXY, *GATEWAYS})

#: api.AgentServiceConnectProxyConfig, in its field order.
PROXY_FIELDS = (
    "EnvoyExtensions",
    "DestinationServiceName",
    "DestinationServiceID",
    "LocalServiceAddress",
    "LocalServicePort",
    "LocalServiceSocketPath",
    "Mode",
    "TransparentProxy",
    "MutualTLSMode",
    "Config",
    "Upstreams",
    "MeshGateway",
    "Expose",
    "AccessLogs",
)
#: api.Upstream.
UPSTREAM_FIELDS = (
    "DestinationType",
    "DestinationPartition",
    "DestinationNamespace",
    "DestinationPeer",
    "DestinationName",
    "Datacenter",
    "LocalBindAddress",
    "LocalBindPort",
    "LocalBindSocketPath",
    "LocalBindSocketMode",
    "Config",
    "MeshGateway",
    "CentrallyConfigured",
)
_STRING_FIELDS = frozenset(
    {
        "DestinationServiceName",
        "DestinationServiceID",
        "LocalServiceAddress",
        "LocalServiceSocketPath",
        "Mode",
        "MutualTLSMode",
        "DestinationType",
        "DestinationPartition",
        "DestinationNamespace",
        "DestinationPeer",
        "DestinationName",
        "Datacenter",
        "LocalBindAddress",
        "LocalBindSocketPath",
        "LocalBindSocketMode",
    }
)
_INT_FIELDS = frozenset({"LocalServicePort", "LocalBindPort"})


def fold(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


_PROXY_LOOKUP = {fold(f): f for f in PROXY_FIELDS}
_UPSTREAM_LOOKUP = {fold(f): f for f in UPSTREAM_FIELDS}


class ConnectData(msgspec.Struct, frozen=True, kw_only=True):
    """What a registration says about Connect, decoded."""

    proxy: dict[str, Any] = {}
    native: bool = False
    #: `Connect.SidecarService`: a registration body of its own, or None.
    sidecar: dict[str, Any] | None = None
    locality: dict[str, str] = {}


def _object(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"Request decode failed: {what}: expected an object")
    return value


def _canonical(
    data: dict[str, Any], lookup: dict[str, str], what: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = lookup.get(fold(str(key)))
        if name is None:
            raise InvalidRequest(
                f"Request decode failed: {what}: unknown field {key!r}"
            )
        if value is None:
            continue
        if name in _STRING_FIELDS and not isinstance(value, str):
            raise InvalidRequest(f"Request decode failed: {what}.{name}: not a string")
        if name in _INT_FIELDS and (
            isinstance(value, bool) or not isinstance(value, int)
        ):
            raise InvalidRequest(
                f"Request decode failed: {what}.{name}: not an integer"
            )
        out[name] = value
    return out


def decode_proxy(value: object) -> dict[str, Any]:
    proxy = _canonical(_object(value, "Proxy"), _PROXY_LOOKUP, "Proxy")
    upstreams = proxy.get("Upstreams")
    if upstreams is not None:
        if not isinstance(upstreams, list):
            raise InvalidRequest(
                "Request decode failed: Proxy.Upstreams: expected a list"
            )
        proxy["Upstreams"] = [
            _canonical(_object(u, "Proxy.Upstreams"), _UPSTREAM_LOOKUP, "Upstream")
            for u in upstreams
        ]
    for name in ("Config", "MeshGateway", "Expose", "TransparentProxy", "AccessLogs"):
        if name in proxy and not isinstance(proxy[name], dict):
            raise InvalidRequest(
                f"Request decode failed: Proxy.{name}: expected an object"
            )
    return proxy


def decode_connect(data: dict[str, Any]) -> ConnectData:
    """The Proxy, Connect and Locality of a decoded registration body."""
    connect = _object(data.get("Connect"), "Connect")
    native: object = False
    sidecar: object = None
    for key, value in connect.items():
        folded = fold(str(key))
        if folded == "native":
            native = value
        elif folded == "sidecarservice":
            sidecar = value
        elif folded == "proxy":  # Consul's long-removed managed proxies
            raise InvalidRequest(
                "Request decode failed: Connect.Proxy: managed proxies are no"
                " longer supported"
            )
        else:
            raise InvalidRequest(
                f"Request decode failed: Connect: unknown field {key!r}"
            )
    if native is None:
        native = False
    if not isinstance(native, bool):
        raise InvalidRequest("Request decode failed: Connect.Native: not a boolean")
    if sidecar is not None and not isinstance(sidecar, dict):
        raise InvalidRequest(
            "Request decode failed: Connect.SidecarService: expected an object"
        )
    locality = _object(data.get("Locality"), "Locality")
    clean_locality: dict[str, str] = {}
    for key, value in locality.items():
        name = {"region": "Region", "zone": "Zone"}.get(fold(str(key)))
        if name is None or not isinstance(value, str):
            raise InvalidRequest(f"Request decode failed: Locality: bad field {key!r}")
        if value:
            clean_locality[name] = value
    return ConnectData(
        proxy=decode_proxy(data.get("Proxy")),
        native=native,
        sidecar=sidecar,
        locality=clean_locality,
    )


def validate(kind: str, port: int, socket_path: str, data: ConnectData) -> None:
    """Consul's structs.NodeService.Validate, the Connect parts."""
    problems: list[str] = []
    if kind not in KINDS:
        raise InvalidRequest(f"Invalid service kind: {kind!r}")
    if kind == CONNECT_PROXY:
        if not data.proxy.get("DestinationServiceName"):
            problems.append(
                "Proxy.DestinationServiceName must be non-empty for Connect proxy"
                " services"
            )
        if port == 0 and not socket_path:
            problems.append(f"Port or SocketPath must be set for a {kind}")
        if data.native:
            problems.append(
                "A Proxy cannot also be Connect Native, only typical services"
            )
        seen: set[str] = set()
        for upstream in data.proxy.get("Upstreams", []):
            name = upstream.get("DestinationName", "")
            if not name:
                problems.append("Upstream destination name cannot be empty")
            address = upstream.get("LocalBindAddress", "")
            bind = f"{address}:{upstream.get('LocalBindPort', 0)}"
            if upstream.get("LocalBindPort") and bind in seen:
                problems.append(f"upstreams cannot contain duplicates of {bind}")
            seen.add(bind)
    elif kind in GATEWAYS:
        if kind == MESH_GATEWAY and port == 0:
            problems.append(f"Port must be non-zero for a {kind}")
        if data.native:
            problems.append(f"A {kind} cannot also be Connect Native")
        if data.sidecar is not None:
            problems.append(f"A {kind} cannot have a sidecar service")
        if data.proxy.get("DestinationServiceName"):
            problems.append(
                f"The Proxy.DestinationServiceName configuration is invalid for a"
                f" {kind}"
            )
    if data.sidecar is not None:
        sidecar_connect = _object(
            {fold(str(k)): v for k, v in data.sidecar.items()}.get("connect"),
            "Connect.SidecarService.Connect",
        )
        if any(fold(str(k)) == "sidecarservice" for k in sidecar_connect):
            problems.append("A SidecarService cannot have a nested SidecarService")
        if any(fold(str(k)) == "id" and v for k, v in data.sidecar.items()):
            problems.append(
                "A SidecarService cannot specify an ID as this is managed by the agent"
            )
    if problems:
        if len(problems) == 1:
            raise InvalidRequest(f"Invalid Service: {problems[0]}")
        listed = "".join(f"\n\t* {p}" for p in problems)
        raise InvalidRequest(
            f"Invalid Service: {len(problems)} errors occurred:{listed}\n\n"
        )


def proxy_bytes(proxy: dict[str, Any]) -> bytes:
    return msgspec.json.encode(proxy) if proxy else b""


def proxy_json(raw: bytes) -> dict[str, Any]:
    """The stored Proxy, with the fields Consul always writes."""
    proxy: dict[str, Any] = msgspec.json.decode(raw) if raw else {}
    out: dict[str, Any] = {}
    for name in PROXY_FIELDS:
        if name in proxy:
            out[name] = proxy[name]
        elif name in ("Mode",):
            out[name] = ""
        elif name in ("MeshGateway", "Expose"):
            out[name] = {}
    return out


#: Consul's agent defaults (connect.sidecar_min_port / sidecar_max_port).
SIDECAR_MIN_PORT, SIDECAR_MAX_PORT = 21000, 21255
SIDECAR_SUFFIX = "-sidecar-proxy"


def sidecar_registration(
    parent: dict[str, Any],
    parent_id: str,
    body: dict[str, Any],
    used_ports: set[int],
    existing_port: int | None,
) -> dict[str, Any]:
    """agent/sidecar_service.go: the sidecar a `Connect.SidecarService` asks
    for, as a registration body (Consul's spelling) the agent registers."""
    sidecar = {_SIDECAR_FIELDS.get(fold(str(k)), str(k)): v for k, v in body.items()}
    name = str(parent.get("Name") or "")
    sidecar["Kind"] = CONNECT_PROXY
    sidecar["ID"] = parent_id + SIDECAR_SUFFIX
    sidecar.setdefault("Name", name + SIDECAR_SUFFIX)
    if not sidecar.get("Name"):
        sidecar["Name"] = name + SIDECAR_SUFFIX
    if not sidecar.get("Tags") and parent.get("Tags"):
        sidecar["Tags"] = parent["Tags"]
    if not sidecar.get("Meta") and parent.get("Meta"):
        sidecar["Meta"] = parent["Meta"]
    proxy = decode_proxy(sidecar.get("Proxy"))
    proxy.setdefault("DestinationServiceName", name)
    proxy.setdefault("DestinationServiceID", parent_id)
    proxy.setdefault("LocalServiceAddress", "127.0.0.1")
    proxy.setdefault("LocalServicePort", int(parent.get("Port") or 0))
    sidecar["Proxy"] = proxy
    if not sidecar.get("Port"):
        sidecar["Port"] = existing_port or _free_port(used_ports)
    if not sidecar.get("Check") and not sidecar.get("Checks"):
        address = proxy["LocalServiceAddress"] or "127.0.0.1"
        sidecar["Checks"] = [
            {
                "Name": "Connect Sidecar Listening",
                "TCP": f"{address}:{sidecar['Port']}",
                "Interval": 10.0,
            },
            {
                "Name": f"Connect Sidecar Aliasing {parent_id}",
                "AliasService": parent_id,
            },
        ]
    return sidecar


_SIDECAR_FIELDS = {
    fold(f): f
    for f in (
        "Name",
        "Tags",
        "Address",
        "TaggedAddresses",
        "Meta",
        "Port",
        "SocketPath",
        "Check",
        "Checks",
        "Weights",
        "EnableTagOverride",
        "Proxy",
        "Connect",
        "Locality",
        "Kind",
        "ID",
    )
}


def _free_port(used: set[int]) -> int:
    for port in range(SIDECAR_MIN_PORT, SIDECAR_MAX_PORT + 1):
        if port not in used:
            return port
    raise InvalidRequest(
        "Invalid SidecarService: no port available in the sidecar range"
        f" ({SIDECAR_MIN_PORT}-{SIDECAR_MAX_PORT})"
    )
