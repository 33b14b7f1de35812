"""The `?filter=` selectors of each Consul endpoint, as `Schema` constants.

Field lists follow the "Filtering" tables of Consul's API docs (agent/service,
agent/check, catalog, health), checked against the Go structs Consul filters
(`bexpr:"-"` fields left out). Names are exact-case, as in go-bexpr. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from waypost.core.filterexpr import FieldSpec, ListOf, MapOf, Schema

_STRING_MAP = "map[string]string"
_TAGS = "list[string]"

_WEIGHTS: Mapping[str, FieldSpec] = {"Passing": "int", "Warning": "int"}
_SERVICE_ADDRESS: Mapping[str, FieldSpec] = {"Address": "string", "Port": "int"}
_MESH_GATEWAY: Mapping[str, FieldSpec] = {"Mode": "string"}

_UPSTREAM: Mapping[str, FieldSpec] = {
    "Datacenter": "string",
    "DestinationName": "string",
    "DestinationNamespace": "string",
    "DestinationType": "string",
    "LocalBindAddress": "string",
    "LocalBindPort": "int",
    "MeshGateway": _MESH_GATEWAY,
}

_PROXY: Mapping[str, FieldSpec] = {
    "DestinationServiceID": "string",
    "DestinationServiceName": "string",
    "LocalServiceAddress": "string",
    "LocalServicePort": "int",
    "Mode": "string",
    "TransparentProxy": {"OutboundListenerPort": "int"},
    "MeshGateway": _MESH_GATEWAY,
    "Upstreams": ListOf(element=_UPSTREAM),
}

# structs.NodeService / api.AgentService. Consul tags Datacenter, Namespace,
# ContentHash and the Raft indexes `bexpr:"-"`, so they are not selectors.
_NODE_SERVICE: Mapping[str, FieldSpec] = {
    "Address": "string",
    "Connect": {"Native": "bool"},
    "EnableTagOverride": "bool",
    "ID": "string",
    "Kind": "string",
    "Meta": _STRING_MAP,
    "Port": "int",
    "Proxy": _PROXY,
    "Service": "string",
    "TaggedAddresses": MapOf(value=_SERVICE_ADDRESS),
    "Tags": _TAGS,
    "Weights": _WEIGHTS,
}

# structs.Node.
_NODE: Mapping[str, FieldSpec] = {
    "Address": "string",
    "Datacenter": "string",
    "ID": "string",
    "Meta": _STRING_MAP,
    "Node": "string",
    "TaggedAddresses": _STRING_MAP,
}

# structs.HealthCheck. `Type` is missing from the docs tables but is a plain
# field of the struct, so Consul accepts it; Definition is `bexpr:"-"`.
_HEALTH_CHECK: Mapping[str, FieldSpec] = {
    "CheckID": "string",
    "Name": "string",
    "Node": "string",
    "Notes": "string",
    "Output": "string",
    "ServiceID": "string",
    "ServiceName": "string",
    "ServiceTags": _TAGS,
    "Status": "string",
    "Type": "string",
}

# structs.ServiceNode: the node's fields (its Meta named NodeMeta), then the
# service's with a "Service" prefix.
_SERVICE_NODE: Mapping[str, FieldSpec] = {
    "Address": "string",
    "Datacenter": "string",
    "ID": "string",
    "Node": "string",
    "NodeMeta": _STRING_MAP,
    "TaggedAddresses": _STRING_MAP,
    "ServiceAddress": "string",
    "ServiceConnect": {"Native": "bool"},
    "ServiceEnableTagOverride": "bool",
    "ServiceID": "string",
    "ServiceKind": "string",
    "ServiceMeta": _STRING_MAP,
    "ServiceName": "string",
    "ServicePort": "int",
    "ServiceProxy": _PROXY,
    "ServiceTaggedAddresses": MapOf(value=_SERVICE_ADDRESS),
    "ServiceTags": _TAGS,
    "ServiceWeights": _WEIGHTS,
}

# /v1/agent/services: each value of the map, an AgentService.
AGENT_SERVICE_SCHEMA = Schema(_NODE_SERVICE, name="AgentService")

# /v1/agent/checks, /v1/health/checks/:service, /v1/health/node/:node and
# /v1/health/state/:state: each HealthCheck.
HEALTH_CHECK_SCHEMA = Schema(_HEALTH_CHECK, name="HealthCheck")
AGENT_CHECK_SCHEMA = HEALTH_CHECK_SCHEMA

# /v1/agent/members: each member. Differs: Consul takes no ?filter= here; this
# is waypost's extension, with the fields of Consul's api.AgentMember.
AGENT_MEMBER_SCHEMA = Schema(
    {
        "Name": "string",
        "Addr": "string",
        "Port": "uint16",
        "Tags": _STRING_MAP,
        "Status": "int",
        **{
            f"{group}{bound}": "uint8"
            for group in ("Protocol", "Delegate")
            for bound in ("Min", "Max", "Cur")
        },
    },
    name="AgentMember",
)

# /v1/catalog/nodes: each Node.
CATALOG_NODE_SCHEMA = Schema(_NODE, name="Node")

# /v1/catalog/service/:name and /v1/catalog/connect/:name: each ServiceNode.
# /v1/catalog/services filters the same ServiceNodes before grouping them.
CATALOG_SERVICE_SCHEMA = Schema(_SERVICE_NODE, name="ServiceNode")

# /v1/catalog/node-services/:node and /v1/catalog/node/:node: each NodeService
# in "Services"; the selectors are those of /v1/agent/services.
CATALOG_NODE_SERVICE_SCHEMA = AGENT_SERVICE_SCHEMA

# /v1/health/service/:name (and /connect/, /ingress/): each CheckServiceNode;
# `Checks.Status == "passing"` holds when any one check passes.
HEALTH_SERVICE_SCHEMA = Schema(
    {"Node": _NODE, "Service": _NODE_SERVICE, "Checks": ListOf(element=_HEALTH_CHECK)},
    name="CheckServiceNode",
)

# Route pattern -> schema, for the HTTP layer's one lookup.
ENDPOINT_SCHEMAS: Mapping[str, Schema] = {
    "/v1/agent/services": AGENT_SERVICE_SCHEMA,
    "/v1/agent/checks": AGENT_CHECK_SCHEMA,
    "/v1/agent/members": AGENT_MEMBER_SCHEMA,
    "/v1/catalog/nodes": CATALOG_NODE_SCHEMA,
    "/v1/catalog/services": CATALOG_SERVICE_SCHEMA,
    "/v1/catalog/service/{service}": CATALOG_SERVICE_SCHEMA,
    "/v1/catalog/connect/{service}": CATALOG_SERVICE_SCHEMA,
    "/v1/catalog/node/{node}": CATALOG_NODE_SERVICE_SCHEMA,
    "/v1/catalog/node-services/{node}": CATALOG_NODE_SERVICE_SCHEMA,
    "/v1/health/service/{service}": HEALTH_SERVICE_SCHEMA,
    "/v1/health/connect/{service}": HEALTH_SERVICE_SCHEMA,
    "/v1/health/ingress/{service}": HEALTH_SERVICE_SCHEMA,
    "/v1/health/checks/{service}": HEALTH_CHECK_SCHEMA,
    "/v1/health/node/{node}": HEALTH_CHECK_SCHEMA,
    "/v1/health/state/{state}": HEALTH_CHECK_SCHEMA,
}
