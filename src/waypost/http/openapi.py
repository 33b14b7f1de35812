"""The OpenAPI 3.1 description of the `/v1` routes we serve (documentation too).

Kept true in two ways. Request bodies are not written here: they are read
back from the decoders the handlers use (`decode.Obj` schemas in
`http/decode.py` and `http/acl_wire.py`), so a field added there is
described here. And `tests/http/test_openapi.py` checks that the operations
below are exactly the `/v1` routes and methods of `http/routes.py`: a route
added without a description fails it, naming the route.

Not served under `/v1` (Consul has no such path, and an unknown `/v1` path
is a 404): `waypost openapi` prints it, `build()` returns it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from waypost import __version__
from waypost.core.queries import CHECK_STATES
from waypost.durations import QUERY_DURATION
from waypost.http import acl_wire, decode
from waypost.http.acl import AGENT_TOKEN_KINDS
from waypost.http.messages import UINT64_MAX

JSON = dict[str, object]

# ---------------------------------------------------------------- parameters


def _query(name: str, schema: JSON, description: str) -> JSON:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_STR: JSON = {"type": "string"}
_INT: JSON = {"type": "integer", "minimum": 0}
# An empty value is no value (Consul reads `?index=` as absent).
_UINT64: JSON = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": UINT64_MAX},
        {"type": "string", "maxLength": 0},
    ]
}
# Go's strconv.ParseBool spellings; a bare `?passing` is true too.
_GO_BOOL = [*("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE")]
_GO_BOOL += ["false", "False"]
_BOOL: JSON = {"type": "string", "enum": _GO_BOOL}
_FLAG: JSON = {"type": "string", "enum": ["", *_GO_BOOL]}
_PRESENCE: JSON = {"type": "string", "description": "present: on (any value)"}

PARAMETERS: dict[str, JSON] = {
    "dc": _query("dc", _STR, "Datacenter; any other than the agent's is a 400."),
    "token": _query("token", _STR, "ACL token (also X-Consul-Token, Bearer)."),
    "index": _query(
        "index", _UINT64, "Blocking query: answer once X-Consul-Index passes this."
    ),
    "wait": _query(
        "wait",
        {"type": "string", "pattern": f"^(?:{QUERY_DURATION})?$"},
        "Longest a blocking query waits (Go duration or seconds; at most 10m;"
        " default 5m).",
    ),
    "stale": _query("stale", _PRESENCE, "Any replica may answer."),
    "consistent": _query(
        "consistent", _PRESENCE, "Catch up with every committed write first."
    ),
    "cached": _query("cached", _PRESENCE, "Accepted; every read is from memory."),
    "filter": _query("filter", _STR, "Consul's filter expression."),
    "node-meta": {
        **_query("node-meta", {"type": "array", "items": _STR}, "key:value"),
        "style": "form",
        "explode": True,
    },
    "tag": {
        **_query("tag", {"type": "array", "items": _STR}, "Instances with every tag."),
        "style": "form",
        "explode": True,
    },
    "passing": _query("passing", _FLAG, "Only instances whose checks all pass."),
    "near": _query(
        "near", _STR, "Sort by estimated round-trip time from this node (_agent)."
    ),
    "peer": _query("peer", _STR, "A cluster peer: waypost has none (empty answer)."),
    "ns": _query("ns", _STR, "Enterprise namespace: accepted, not used."),
    "partition": _query("partition", _STR, "Enterprise partition: accepted."),
    "recurse": _query("recurse", _PRESENCE, "Every key under the prefix."),
    "keys": _query("keys", _PRESENCE, "Only the key names under the prefix."),
    "separator": _query("separator", _STR, "With ?keys: cut names after this."),
    "raw": _query("raw", _PRESENCE, "The value itself, as text/plain."),
    "cas": _query("cas", _UINT64, "Check-and-set: write only at this ModifyIndex."),
    "flags": _query("flags", _UINT64, "Opaque uint64 stored with the key."),
    "acquire": _query("acquire", _STR, "Take the key's lock for this session."),
    "release": _query("release", _STR, "Give back the lock this session holds."),
    "note": _query("note", _STR, "The check's output."),
    "enable": {
        **_query("enable", _BOOL, "true: on, false: off."),
        "required": True,
    },
    "reason": _query("reason", _STR, "Why maintenance is on."),
    "replace-existing-checks": _query(
        "replace-existing-checks",
        _STR,
        "Bare or `true`: drop the service's checks not listed (else: keep).",
    ),
    "format": _query("format", _STR, "`text` (health) / `prometheus` (metrics)."),
    "wan": _query("wan", _STR, "Any value: the WAN pool."),
    "loglevel": _query("loglevel", _STR, "trace, debug, info, warn, error."),
    "logjson": _query("logjson", _PRESENCE, "Lines as JSON."),
    "policy": _query("policy", _STR, "Only those linked to this policy ID."),
    "role": _query("role", _STR, "Only those linked to this role ID."),
    "authmethod": _query("authmethod", _STR, "Only those of this auth method."),
    "servicename": _query(
        "servicename", _STR, "Only tokens with this service identity."
    ),
    # issue 15b: events
    "event-name": _query("name", _STR, "Only events of this name."),
    "event-node": _query("node", _STR, "Regexp: the agents' node names."),
    "event-service": _query("service", _STR, "Regexp: the agents' services."),
    "event-tag": _query("tag", _STR, "Regexp: tags of the matched service."),
}

BLOCKING = ("index", "wait", "stale", "consistent", "cached")
READ = ("dc", "token", *BLOCKING)
WRITE = ("dc", "token")
#: ACL endpoints read no `?dc=` (one datacenter holds the ACL objects).
ACL_READ = ("token", *BLOCKING)

# ---------------------------------------------------------------- schemas

_STRINGS: JSON = {"type": "array", "items": _STR}
_STRING_MAP: JSON = {"type": "object", "additionalProperties": _STR}


def _obj(properties: dict[str, JSON], required: Iterable[str] = ()) -> JSON:
    out: JSON = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    return out


def _nullable(schema: JSON) -> JSON:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


_INDEXES = {"CreateIndex": _INT, "ModifyIndex": _INT}
_WEIGHTS = _obj({"Passing": {"type": "integer"}, "Warning": {"type": "integer"}})
_ADDRESS_MAP: JSON = {
    "type": "object",
    "additionalProperties": _obj({"Address": _STR, "Port": {"type": "integer"}}),
}

#: What the agent answers (api/*.go structs), by Consul's names.
RESPONSES: dict[str, JSON] = {
    "Node": _obj(
        {
            "ID": _STR,
            "Node": _STR,
            "Address": _STR,
            "Datacenter": _STR,
            "TaggedAddresses": _nullable(_STRING_MAP),
            "Meta": _nullable(_STRING_MAP),
            **_INDEXES,
        },
        ["Node", "Address"],
    ),
    "AgentService": _obj(
        {
            "ID": _STR,
            "Service": _STR,
            "Kind": _STR,
            "Tags": _nullable(_STRINGS),
            "Meta": _nullable(_STRING_MAP),
            "Port": {"type": "integer"},
            "Address": _STR,
            "SocketPath": _STR,
            "TaggedAddresses": _ADDRESS_MAP,
            "Weights": _WEIGHTS,
            "EnableTagOverride": {"type": "boolean"},
            "Datacenter": _STR,
            "ContentHash": _STR,
        },
        ["ID", "Service"],
    ),
    "NodeService": _obj(
        {
            "ID": _STR,
            "Service": _STR,
            "Kind": _STR,
            "Tags": _nullable(_STRINGS),
            "Address": _STR,
            "TaggedAddresses": _nullable(_ADDRESS_MAP),
            "Meta": _nullable(_STRING_MAP),
            "Port": {"type": "integer"},
            "Weights": _WEIGHTS,
            "EnableTagOverride": {"type": "boolean"},
            "Proxy": {"type": "object"},
            "Connect": {"type": "object"},
            "PeerName": _STR,
            **_INDEXES,
        },
        ["ID", "Service"],
    ),
    "CatalogService": _obj(
        {
            "ID": _STR,
            "Node": _STR,
            "Address": _STR,
            "Datacenter": _STR,
            "TaggedAddresses": _nullable(_STRING_MAP),
            "NodeMeta": _nullable(_STRING_MAP),
            "ServiceKind": _STR,
            "ServiceID": _STR,
            "ServiceName": _STR,
            "ServiceTags": _nullable(_STRINGS),
            "ServiceAddress": _STR,
            "ServiceTaggedAddresses": _nullable(_ADDRESS_MAP),
            "ServiceWeights": _WEIGHTS,
            "ServiceMeta": _nullable(_STRING_MAP),
            "ServicePort": {"type": "integer"},
            "ServiceSocketPath": _STR,
            "ServiceEnableTagOverride": {"type": "boolean"},
            "ServiceProxy": {"type": "object"},
            "ServiceConnect": {"type": "object"},
            "ServicePeerName": _STR,
            **_INDEXES,
        },
        ["Node", "ServiceID", "ServiceName"],
    ),
    "HealthCheck": _obj(
        {
            "Node": _STR,
            "CheckID": _STR,
            "Name": _STR,
            "Status": {"enum": ["passing", "warning", "critical", "maintenance"]},
            "Notes": _STR,
            "Output": _STR,
            "ServiceID": _STR,
            "ServiceName": _STR,
            "ServiceTags": _nullable(_STRINGS),
            "Type": _STR,
            "Interval": _STR,
            "Timeout": _STR,
            "ExposedPort": {"type": "integer"},
            "Definition": {"type": "object"},
            **_INDEXES,
        },
        ["Node", "CheckID", "Status"],
    ),
    "ServiceEntry": _obj(
        {
            "Node": _ref("Node"),
            "Service": _ref("NodeService"),
            "Checks": {"type": "array", "items": _ref("HealthCheck")},
        },
        ["Node", "Service", "Checks"],
    ),
    "AgentServiceChecksInfo": _obj(
        {
            "AggregatedStatus": {
                "enum": ["passing", "warning", "critical", "maintenance"]
            },
            "Service": _nullable(_ref("AgentService")),
            "Checks": _nullable({"type": "array", "items": _ref("HealthCheck")}),
        },
        ["AggregatedStatus"],
    ),
    "Coordinate": _obj(
        {
            "Node": _STR,
            "Segment": _STR,
            "Coord": _obj(
                {
                    "Vec": {"type": "array", "items": {"type": "number"}},
                    "Error": {"type": "number"},
                    "Adjustment": {"type": "number"},
                    "Height": {"type": "number"},
                },
                ["Vec", "Error", "Adjustment", "Height"],
            ),
        },
        ["Node", "Coord"],
    ),
    "UserEvent": _obj(
        {
            "ID": _STR,
            "Name": _STR,
            "Payload": _nullable({"type": "string", "contentEncoding": "base64"}),
            "NodeFilter": _STR,
            "ServiceFilter": _STR,
            "TagFilter": _STR,
            "Version": _INT,
            "LTime": _INT,
        },
        ["ID", "Name", "Payload", "Version", "LTime"],
    ),
    "KVPair": _obj(
        {
            "Key": _STR,
            "Flags": {"type": "integer"},
            "Value": _nullable({"type": "string", "contentEncoding": "base64"}),
            "LockIndex": _INT,
            "Session": _STR,
            **_INDEXES,
        },
        ["Key", "Flags", "Value"],
    ),
    "AgentMember": _obj(
        {
            "Name": _STR,
            "Addr": _STR,
            "Port": {"type": "integer"},
            "Tags": _STRING_MAP,
            "Status": {"type": "integer"},
        },
        ["Name", "Addr"],
    ),
    "ACLLinkOut": _obj({"ID": _STR, "Name": _STR}),
    "ACLTokenOut": _obj(
        {
            "AccessorID": _STR,
            "SecretID": _STR,
            "Description": _STR,
            "Policies": {"type": "array", "items": _ref("ACLLinkOut")},
            "Roles": {"type": "array", "items": _ref("ACLLinkOut")},
            "ServiceIdentities": {"type": "array", "items": {"type": "object"}},
            "NodeIdentities": {"type": "array", "items": {"type": "object"}},
            "TemplatedPolicies": {"type": "array", "items": {"type": "object"}},
            "Local": {"type": "boolean"},
            "AuthMethod": _STR,
            "ExpirationTime": _STR,
            "CreateTime": _STR,
            "Hash": _STR,
            **_INDEXES,
        },
        ["AccessorID", "SecretID"],
    ),
    "ACLPolicyOut": _obj(
        {
            "ID": _STR,
            "Name": _STR,
            "Description": _STR,
            "Rules": _STR,
            "Datacenters": _nullable(_STRINGS),
            "Hash": _STR,
            **_INDEXES,
        },
        ["ID", "Name"],
    ),
    "ACLRoleOut": _obj(
        {
            "ID": _STR,
            "Name": _STR,
            "Description": _STR,
            "Policies": {"type": "array", "items": _ref("ACLLinkOut")},
            "Hash": _STR,
            **_INDEXES,
        },
        ["ID", "Name"],
    ),
    "ACLAuthMethodOut": _obj(
        {
            "Name": _STR,
            "Type": _STR,
            "DisplayName": _STR,
            "Description": _STR,
            "MaxTokenTTL": _STR,
            "TokenLocality": _STR,
            "Config": {"type": "object"},
            **_INDEXES,
        },
        ["Name", "Type"],
    ),
    "ACLBindingRuleOut": _obj(
        {
            "ID": _STR,
            "Description": _STR,
            "AuthMethod": _STR,
            "Selector": _STR,
            "BindType": _STR,
            "BindName": _STR,
            **_INDEXES,
        },
        ["ID", "AuthMethod"],
    ),
    "ACLTemplatedPolicyOut": _obj(
        {"TemplateName": _STR, "Schema": _STR, "Template": _STR, "Description": _STR},
        ["TemplateName"],
    ),
}

_NAME: JSON = {"type": "string", "minLength": 1}
_CHECK_STATUS: JSON = {"enum": ["passing", "warning", "critical"]}

#: Fields a handler refuses to go without, and values it refuses (a 400
#: names them): the decoders know types only.
REQUIRED: dict[str, dict[str, JSON]] = {
    "ServiceDefinition": {"Name": _NAME},
    "CheckDefinition": {"Name": _NAME},
    "RegisterRequest": {"Node": _NAME, "Address": _NAME},
    "DeregisterRequest": {"Node": _NAME},
    "checkUpdate": {"Status": _CHECK_STATUS},
}

#: Path segments with a closed set of values.
PATH_VALUES: dict[str, JSON] = {
    "state": {"enum": sorted(CHECK_STATES)},
    "kind": {"enum": sorted(AGENT_TOKEN_KINDS)},
}


class _BodySchemas:
    """JSON Schema of the decoders' `Obj` trees, one component per Obj name."""

    def __init__(self) -> None:
        self.components: dict[str, JSON] = {}
        self._names: dict[int, str] = {}

    def of(self, converter: object) -> JSON:
        if isinstance(converter, decode.Obj):
            return _ref(self._component(converter))
        if isinstance(converter, decode.ListOf):
            return _nullable({"type": "array", "items": self.of(converter.item)})
        if isinstance(converter, decode.MapOf):
            return _nullable(
                {"type": "object", "additionalProperties": self.of(converter.item)}
            )
        scalar = _SCALARS.get(converter)
        if scalar is None:
            raise TypeError(f"no JSON Schema for the decoder {converter!r}")
        return dict(scalar)

    def _component(self, obj: decode.Obj) -> str:
        known = self._names.get(id(obj))
        if known is not None:
            return known
        name = obj.name
        suffix = 2
        while name in self.components or name in RESPONSES:
            name = f"{obj.name}{suffix}"
            suffix += 1
        self._names[id(obj)] = name
        self.components[name] = {}  # reserved before recursing
        schema: JSON = {
            "type": "object",
            "description": f"Consul's {obj.name}: field names match"
            " case-insensitively, as Go's decoder reads them.",
            "properties": {k: self.of(v) for k, v in obj.fields.items()},
            "additionalProperties": False,
        }
        required = REQUIRED.get(obj.name)
        if required:
            schema["required"] = list(required)
            schema["properties"].update(required)  # type: ignore[attr-defined]
        self.components[name] = schema
        return name


_SCALARS: dict[object, JSON] = {
    decode.string: {"type": ["string", "null"]},
    decode.integer: {"type": ["integer", "null"]},
    decode.boolean: {"type": ["boolean", "null"]},
    decode.duration: {
        "type": ["string", "integer", "null"],
        "description": 'A Go duration ("10s", "1m30s") or nanoseconds.',
    },
    decode.anything: {},
}

# ---------------------------------------------------------------- operations


class Op(NamedTuple):
    """One operation: the route of `routes.py` it describes and how."""

    route: str
    method: str
    path: str
    summary: str
    params: tuple[str, ...] = ()
    #: A decoder (`decode.Obj`), "raw" (bytes kept as they are) or None.
    body: object = None
    #: The 200 answer's JSON Schema; None: an empty text/plain body.
    answer: JSON | None = None
    blocking: bool = False
    #: Other statuses the operation answers with a body of `answer`'s shape.
    also: tuple[int, ...] = ()
    #: The operation may answer text/plain on 200 (`?raw`, `?format=`).
    text: bool = False
    #: Error statuses answered as a JSON string rather than text.
    json_errors: tuple[int, ...] = ()
    #: The 200 answer may be bytes of this media type (a snapshot's gzipped
    #: tar, a PEM bundle).
    media: str = ""
    #: A 404 has no body (a missing key or coordinate, as Consul).
    bare_404: bool = False


def _list(name: str) -> JSON:
    return {"type": "array", "items": _ref(name)}


def _map(schema: JSON) -> JSON:
    return {"type": "object", "additionalProperties": schema}


_TRUE: JSON = {"type": "boolean"}
_CATALOG_READ = (*READ, "node-meta", "filter", "near", "ns", "partition")
_HEALTH_SERVICE = (*_CATALOG_READ, "tag", "passing", "peer")

OPERATIONS: tuple[Op, ...] = (
    # agent
    Op("/v1/agent/self", "GET", "/v1/agent/self", "This agent's configuration",
       ("token",), answer={"type": "object"}),
    Op("/v1/agent/members", "GET", "/v1/agent/members", "The gossip members",
       ("token", "wan", "filter", "segment"), answer=_list("AgentMember")),
    Op("/v1/agent/services", "GET", "/v1/agent/services",
       "Services registered with this agent", ("token", "filter", "ns"),
       answer=_map(_ref("AgentService"))),
    Op("/v1/agent/service/register", "PUT", "/v1/agent/service/register",
       "Register a service (and its checks) with this agent",
       ("token", "replace-existing-checks", "ns"),
       body=decode.SERVICE_REGISTRATION),
    Op("/v1/agent/service/deregister/", "PUT",
       "/v1/agent/service/deregister/{service_id}", "Deregister a service",
       ("token", "ns")),
    Op("/v1/agent/service/maintenance/", "PUT",
       "/v1/agent/service/maintenance/{service_id}",
       "Turn a service's maintenance on or off", ("token", "enable", "reason")),
    Op("/v1/agent/service/", "GET", "/v1/agent/service/{service_id}",
       "One service registered with this agent", ("token", "ns"),
       answer=_ref("AgentService")),
    Op("/v1/agent/checks", "GET", "/v1/agent/checks",
       "Checks registered with this agent", ("token", "filter", "ns"),
       answer=_map(_ref("HealthCheck"))),
    Op("/v1/agent/check/register", "PUT", "/v1/agent/check/register",
       "Register a check with this agent", ("token", "ns"), body=decode.CHECK),
    Op("/v1/agent/check/deregister/", "PUT",
       "/v1/agent/check/deregister/{check_id}", "Deregister a check",
       ("token", "ns")),
    *(
        Op(f"/v1/agent/check/{verb}/", "PUT", f"/v1/agent/check/{verb}/{{check_id}}",
           f"Set a TTL check to {status}", ("token", "note", "ns"))
        for verb, status in (
            ("pass", "passing"), ("warn", "warning"), ("fail", "critical")
        )
    ),
    Op("/v1/agent/check/update/", "PUT", "/v1/agent/check/update/{check_id}",
       "Set a TTL check's status and output", ("token", "ns"),
       body=decode.CHECK_UPDATE),
    Op("/v1/agent/maintenance", "PUT", "/v1/agent/maintenance",
       "Turn this node's maintenance on or off", ("token", "enable", "reason")),
    Op("/v1/agent/leave", "PUT", "/v1/agent/leave", "Stop this agent", ("token",)),
    Op("/v1/agent/metrics", "GET", "/v1/agent/metrics",
       "Metrics (Consul's JSON, or ?format=prometheus text)", ("token", "format"),
       answer={"type": "object"}, text=True),
    Op("/v1/agent/monitor", "GET", "/v1/agent/monitor",
       "Stream log lines (text/plain, until the client closes)",
       ("token", "loglevel", "logjson"), text=True),
    Op("/v1/agent/health/service/name/", "GET",
       "/v1/agent/health/service/name/{service_name}",
       "Aggregated local health by service name (200, 429 warning, 503"
       " critical, 404 unknown)", ("token", "format", "ns"),
       answer=_list("AgentServiceChecksInfo"), also=(404, 429, 503), text=True),
    Op("/v1/agent/health/service/id/", "GET",
       "/v1/agent/health/service/id/{service_id}",
       "Aggregated local health by service ID (200, 429 warning, 503"
       " critical, 404 unknown)", ("token", "format", "ns"),
       answer=_ref("AgentServiceChecksInfo"), also=(404, 429, 503), text=True),
    Op("/v1/agent/token/", "PUT", "/v1/agent/token/{kind}",
       "Set one of the agent's tokens (default, agent, ...)", ("token",),
       body=acl_wire.AGENT_TOKEN),
    # catalog
    Op("/v1/catalog/register", "PUT", "/v1/catalog/register",
       "Register a node, a service and checks, all or nothing", WRITE,
       body=decode.CATALOG_REGISTER, answer=_TRUE),
    Op("/v1/catalog/deregister", "PUT", "/v1/catalog/deregister",
       "Remove a node, a service or a check", WRITE,
       body=decode.CATALOG_DEREGISTER, answer=_TRUE),
    Op("/v1/catalog/datacenters", "GET", "/v1/catalog/datacenters",
       "Known datacenters", ("token",), answer=_STRINGS),
    Op("/v1/catalog/nodes", "GET", "/v1/catalog/nodes", "Every node",
       _CATALOG_READ, answer=_list("Node"), blocking=True),
    Op("/v1/catalog/services", "GET", "/v1/catalog/services",
       "Every service name with its tags", _CATALOG_READ,
       answer=_map(_STRINGS), blocking=True),
    Op("/v1/catalog/service/", "GET", "/v1/catalog/service/{service}",
       "A service's instances", (*_CATALOG_READ, "tag", "peer"),
       answer=_list("CatalogService"), blocking=True),
    Op("/v1/catalog/node/", "GET", "/v1/catalog/node/{node}",
       "A node and its services (null: no such node)", _CATALOG_READ,
       answer=_nullable(
           _obj({"Node": _ref("Node"), "Services": _map(_ref("NodeService"))})
       ), blocking=True),
    Op("/v1/catalog/node-services/", "GET", "/v1/catalog/node-services/{node}",
       "A node and its services as a list", _CATALOG_READ,
       answer=_obj(
           {
               "Node": _nullable(_ref("Node")),
               "Services": _nullable(_list("NodeService")),
           }
       ), blocking=True),
    # health
    Op("/v1/health/node/", "GET", "/v1/health/node/{node}", "A node's checks",
       _CATALOG_READ, answer=_list("HealthCheck"), blocking=True),
    Op("/v1/health/checks/", "GET", "/v1/health/checks/{service}",
       "A service's checks", _CATALOG_READ, answer=_list("HealthCheck"),
       blocking=True),
    Op("/v1/health/service/", "GET", "/v1/health/service/{service}",
       "A service's instances with their node and checks", _HEALTH_SERVICE,
       answer=_list("ServiceEntry"), blocking=True),
    Op("/v1/health/state/", "GET", "/v1/health/state/{state}",
       "Checks in a state (any, passing, warning, critical)", _CATALOG_READ,
       answer=_list("HealthCheck"), blocking=True),
    # kv
    Op("/v1/kv/", "GET", "/v1/kv/{key}",
       "A key (404: none), every key under it (?recurse), or their names (?keys)",
       (*READ, "recurse", "keys", "separator", "raw", "ns"),
       answer={"anyOf": [_list("KVPair"), _STRINGS]}, blocking=True, text=True,
       bare_404=True),
    Op("/v1/kv/", "PUT", "/v1/kv/{key}",
       "Store the body as the key's value (false: the CAS did not hold)",
       (*WRITE, "cas", "flags", "acquire", "release", "ns"), body="raw",
       answer=_TRUE),
    Op("/v1/kv/", "DELETE", "/v1/kv/{key}", "Delete a key, or a whole prefix",
       (*WRITE, "recurse", "cas", "ns"), answer=_TRUE),
    # status
    Op("/v1/status/leader", "GET", "/v1/status/leader", "The leader's address",
       ("token", "dc"), answer=_STR),
    Op("/v1/status/peers", "GET", "/v1/status/peers", "The Raft peers",
       ("token", "dc"), answer=_STRINGS),
    Op("/v1/operator/raft/configuration", "GET", "/v1/operator/raft/configuration",
       "The Raft configuration", ("token", "dc", "stale"),
       answer=_obj({"Servers": {"type": "array"}, "Index": _INT})),
    # acl
    Op("/v1/acl/bootstrap", "PUT", "/v1/acl/bootstrap",
       "Make the first management token (once)", (), body=acl_wire.BOOTSTRAP,
       answer=_ref("ACLTokenOut")),
    Op("/v1/acl/tokens", "GET", "/v1/acl/tokens", "Tokens",
       (*ACL_READ, "policy", "role", "authmethod", "servicename", "filter"),
       answer=_list("ACLTokenOut"), blocking=True),
    Op("/v1/acl/token", "PUT", "/v1/acl/token", "Create a token", ("token",),
       body=acl_wire.TOKEN, answer=_ref("ACLTokenOut")),
    Op("/v1/acl/token/self", "GET", "/v1/acl/token/self", "The caller's token",
       ("token",), answer=_ref("ACLTokenOut")),
    Op("/v1/acl/token/", "GET", "/v1/acl/token/{accessor_id}", "Read a token",
       ACL_READ, answer=_ref("ACLTokenOut"), blocking=True, json_errors=(403,)),
    Op("/v1/acl/token/", "PUT", "/v1/acl/token/{accessor_id}", "Update a token",
       ("token",), body=acl_wire.TOKEN, answer=_ref("ACLTokenOut")),
    Op("/v1/acl/token/", "PUT", "/v1/acl/token/{accessor_id}/clone",
       "Clone a token", ("token",), body=acl_wire.TOKEN,
       answer=_ref("ACLTokenOut")),
    Op("/v1/acl/token/", "DELETE", "/v1/acl/token/{accessor_id}",
       "Delete a token", ("token",), answer=_TRUE),
    Op("/v1/acl/policies", "GET", "/v1/acl/policies", "Policies", ACL_READ,
       answer=_list("ACLPolicyOut"), blocking=True),
    Op("/v1/acl/policy", "PUT", "/v1/acl/policy", "Create a policy", ("token",),
       body=acl_wire.POLICY, answer=_ref("ACLPolicyOut")),
    Op("/v1/acl/policy/name/", "GET", "/v1/acl/policy/name/{name}",
       "Read a policy by name", ACL_READ, answer=_ref("ACLPolicyOut"), blocking=True,
       json_errors=(404,)),
    Op("/v1/acl/policy/", "GET", "/v1/acl/policy/{id}", "Read a policy", ACL_READ,
       answer=_ref("ACLPolicyOut"), blocking=True, json_errors=(404,)),
    Op("/v1/acl/policy/", "PUT", "/v1/acl/policy/{id}", "Update a policy",
       ("token",), body=acl_wire.POLICY, answer=_ref("ACLPolicyOut")),
    Op("/v1/acl/policy/", "DELETE", "/v1/acl/policy/{id}", "Delete a policy",
       ("token",), answer=_TRUE),
    Op("/v1/acl/roles", "GET", "/v1/acl/roles", "Roles", (*ACL_READ, "policy"),
       answer=_list("ACLRoleOut"), blocking=True),
    Op("/v1/acl/role", "PUT", "/v1/acl/role", "Create a role", ("token",),
       body=acl_wire.ROLE, answer=_ref("ACLRoleOut")),
    Op("/v1/acl/role/name/", "GET", "/v1/acl/role/name/{name}",
       "Read a role by name", ACL_READ, answer=_ref("ACLRoleOut"), blocking=True,
       json_errors=(404,)),
    Op("/v1/acl/role/", "GET", "/v1/acl/role/{id}", "Read a role", ACL_READ,
       answer=_ref("ACLRoleOut"), blocking=True, json_errors=(404,)),
    Op("/v1/acl/role/", "PUT", "/v1/acl/role/{id}", "Update a role", ("token",),
       body=acl_wire.ROLE, answer=_ref("ACLRoleOut")),
    Op("/v1/acl/role/", "DELETE", "/v1/acl/role/{id}", "Delete a role",
       ("token",), answer=_TRUE),
    Op("/v1/acl/auth-methods", "GET", "/v1/acl/auth-methods", "Auth methods",
       ACL_READ, answer=_list("ACLAuthMethodOut"), blocking=True),
    Op("/v1/acl/auth-method", "PUT", "/v1/acl/auth-method",
       "Create an auth method (type jwt)", ("token",), body=acl_wire.AUTH_METHOD,
       answer=_ref("ACLAuthMethodOut")),
    Op("/v1/acl/auth-method/", "GET", "/v1/acl/auth-method/{name}",
       "Read an auth method", ACL_READ, answer=_ref("ACLAuthMethodOut"),
       blocking=True, json_errors=(404,)),
    Op("/v1/acl/auth-method/", "PUT", "/v1/acl/auth-method/{name}",
       "Update an auth method", ("token",), body=acl_wire.AUTH_METHOD,
       answer=_ref("ACLAuthMethodOut")),
    Op("/v1/acl/auth-method/", "DELETE", "/v1/acl/auth-method/{name}",
       "Delete an auth method", ("token",), answer=_TRUE),
    Op("/v1/acl/binding-rules", "GET", "/v1/acl/binding-rules", "Binding rules",
       (*ACL_READ, "authmethod"), answer=_list("ACLBindingRuleOut"), blocking=True),
    Op("/v1/acl/binding-rule", "PUT", "/v1/acl/binding-rule",
       "Create a binding rule", ("token",), body=acl_wire.BINDING_RULE,
       answer=_ref("ACLBindingRuleOut")),
    Op("/v1/acl/binding-rule/", "GET", "/v1/acl/binding-rule/{id}",
       "Read a binding rule", ACL_READ, answer=_ref("ACLBindingRuleOut"),
       blocking=True, json_errors=(404,)),
    Op("/v1/acl/binding-rule/", "PUT", "/v1/acl/binding-rule/{id}",
       "Update a binding rule", ("token",), body=acl_wire.BINDING_RULE,
       answer=_ref("ACLBindingRuleOut")),
    Op("/v1/acl/binding-rule/", "DELETE", "/v1/acl/binding-rule/{id}",
       "Delete a binding rule", ("token",), answer=_TRUE),
    Op("/v1/acl/login", "POST", "/v1/acl/login",
       "Trade a JWT for a token of an auth method", (), body=acl_wire.LOGIN,
       answer=_ref("ACLTokenOut")),
    Op("/v1/acl/logout", "POST", "/v1/acl/logout",
       "Delete the caller's login token", ("token",), answer=_TRUE),
    Op("/v1/acl/templated-policies", "GET", "/v1/acl/templated-policies",
       "Templated policies", ("token",), answer=_map(_ref("ACLTemplatedPolicyOut"))),
    Op("/v1/acl/templated-policy/name/", "GET",
       "/v1/acl/templated-policy/name/{name}", "Read a templated policy",
       ("token",), answer=_ref("ACLTemplatedPolicyOut")),
    Op("/v1/acl/templated-policy/preview/", "POST",
       "/v1/acl/templated-policy/preview/{name}",
       "The policy a templated policy renders", ("token",),
       body=acl_wire.TEMPLATED_PREVIEW, answer=_ref("ACLPolicyOut")),
    # issue 15b: snapshots, events, agent reload, coordinates
    Op("/v1/snapshot", "GET", "/v1/snapshot",
       "The whole state at one index: a gzipped tar (application/x-gzip)",
       ("token", "dc", "stale"), media="application/x-gzip"),
    Op("/v1/snapshot", "PUT", "/v1/snapshot",
       "Replace the whole state with a snapshot archive's", ("token", "dc"),
       body="raw"),
    # the web dashboard's summaries (issue 16; Consul's internal UI paths)
    Op("/v1/internal/ui/services", "GET", "/v1/internal/ui/services",
       "One summary row per service name (Consul's ServiceSummary, plus"
       " Instances{Passing,Warning,Critical,Maintenance})", READ,
       answer={"type": "array", "items": _obj({"Name": _STR, "Tags": _STRINGS,
               "InstanceCount": _INT}, ["Name"])}, blocking=True),
    Op("/v1/internal/ui/nodes", "GET", "/v1/internal/ui/nodes",
       "Every node with its services and checks", READ,
       answer={"type": "array", "items": _obj({"Node": _STR}, ["Node"])},
       blocking=True),
    Op("/v1/coordinate/datacenters", "GET", "/v1/coordinate/datacenters",
       "The datacenter's agent coordinates (Consul: the WAN servers')", ("token",),
       answer={"type": "array", "items": _obj({"Datacenter": _STR, "AreaID": _STR,
               "Coordinates": _list("Coordinate")}, ["Datacenter"])}),
    Op("/v1/coordinate/nodes", "GET", "/v1/coordinate/nodes",
       "Every node's network coordinate", (*READ, "filter"),
       answer=_list("Coordinate"), blocking=True),
    Op("/v1/coordinate/node/", "GET", "/v1/coordinate/node/{node}",
       "One node's network coordinate", READ, answer=_list("Coordinate"),
       blocking=True, bare_404=True),
    Op("/v1/coordinate/update", "PUT", "/v1/coordinate/update",
       "Set a node's network coordinate", WRITE, body="raw", answer=_TRUE),
    Op("/v1/agent/reload", "PUT", "/v1/agent/reload",
       "Re-read the configuration files (services, checks)", ("token",)),
    Op("/v1/event/fire/", "PUT", "/v1/event/fire/{name}",
       "Fire a user event to every agent (the body is its payload)",
       ("token", "dc", "event-node", "event-service", "event-tag"), body="raw",
       answer=_ref("UserEvent")),
    Op("/v1/event/list", "GET", "/v1/event/list",
       "The user events this agent received, oldest first",
       ("token", "event-name", "index", "wait", "event-node", "event-service",
        "event-tag"),
       answer=_list("UserEvent")),
)  # fmt: skip

# ---- operator, usage, config entries (issue 15)
_ENTRY: JSON = _obj({"Kind": _STR, "Name": _STR, **_INDEXES}, ["Kind", "Name"])
PARAMETERS.update(
    {
        "id": _query("id", _STR, "A Raft server's ID."),
        "address": _query("address", _STR, "A Raft server's IP:port."),
        "global": _query("global", _PRESENCE, "Every datacenter (there is one)."),
        "relay-factor": _query("relay-factor", _INT, "Gossip relay factor."),
        "local-only": _query("local-only", _FLAG, "This agent's keyring only."),
        "source": _query("source", _STR, "An intention's source service."),
        "destination": _query("destination", _STR, "Its destination service."),
        "source-type": _query("source-type", _STR, "consul (the only type)."),
        "by": _query("by", _STR, "source or destination."),
        "name": {
            **_query("name", {"type": "array", "items": _STR}, "Names to match."),
            "style": "form",
            "explode": True,
        },
        "pem": _query("pem", _FLAG, "Answer the roots as a PEM bundle."),
        "compile-dc": _query("compile-dc", _STR, "Datacenter to compile in."),
        "prune": _query("prune", _FLAG, "Also forget the member."),
        "merge-central-config": _query(
            "merge-central-config",
            _PRESENCE,
            "Merge service-defaults and proxy-defaults into proxies and gateways.",
        ),
    }
)
OPERATIONS += (
    Op("/v1/operator/raft/peer", "DELETE", "/v1/operator/raft/peer",
       "Remove a Raft peer (waypost: always refused, 400)",
       (*WRITE, "id", "address")),
    Op("/v1/operator/raft/transfer-leader", "POST",
       "/v1/operator/raft/transfer-leader",
       "Transfer Raft leadership (waypost: no other peer, 400)", (*WRITE, "id"),
       answer=_TRUE),
    *(
        Op("/v1/operator/keyring", method, "/v1/operator/keyring",
           "Gossip keyring (waypost has no gossip pool: 400)",
           (*WRITE, "relay-factor", *(("local-only",) if method == "GET" else ())),
           body=None if method == "GET" else decode.anything,
           answer={"type": "array"})
        for method in ("GET", "POST", "PUT", "DELETE")
    ),
    Op("/v1/operator/autopilot/configuration", "GET",
       "/v1/operator/autopilot/configuration", "The autopilot configuration",
       READ, answer={"type": "object"}, blocking=True),
    Op("/v1/operator/autopilot/configuration", "PUT",
       "/v1/operator/autopilot/configuration",
       "Replace the autopilot configuration (?cas)", (*WRITE, "cas"),
       body=decode.anything, answer=_TRUE),
    Op("/v1/operator/autopilot/health", "GET", "/v1/operator/autopilot/health",
       "The servers' health (429 if unhealthy)", ("token", "dc", "stale"),
       answer={"type": "object"}, also=(429,)),
    Op("/v1/operator/autopilot/state", "GET", "/v1/operator/autopilot/state",
       "Autopilot's view of the servers", ("token", "dc", "stale"),
       answer={"type": "object"}),
    Op("/v1/operator/usage", "GET", "/v1/operator/usage",
       "Service, instance and node counts per datacenter",
       ("token", "dc", "stale", "global"), answer={"type": "object"}),
    Op("/v1/config", "PUT", "/v1/config",
       "Create or replace a config entry (?cas)", (*WRITE, "cas"),
       body=decode.anything, answer=_TRUE),
    Op("/v1/config/", "GET", "/v1/config/{kind}", "Config entries of one kind",
       (*READ, "filter"), answer={"type": "array", "items": _ENTRY},
       blocking=True),
    Op("/v1/config/", "GET", "/v1/config/{kind}/{name}", "One config entry",
       READ, answer=_ENTRY, blocking=True),
    Op("/v1/config/", "DELETE", "/v1/config/{kind}/{name}",
       "Delete a config entry (?cas: answers whether it did)", (*WRITE, "cas"),
       answer={"anyOf": [_TRUE, {"type": "object"}]}),
    Op("/v1/catalog/connect/", "GET", "/v1/catalog/connect/{service}",
       "Instances serving a service over Connect (its proxies; itself if native)",
       (*_CATALOG_READ, "tag", "peer", "merge-central-config"),
       answer=_list("CatalogService"), blocking=True),
    Op("/v1/health/connect/", "GET", "/v1/health/connect/{service}",
       "Health of the instances serving a service over Connect",
       (*_HEALTH_SERVICE, "merge-central-config"),
       answer={"type": "array"}, blocking=True),
    Op("/v1/health/ingress/", "GET", "/v1/health/ingress/{service}",
       "Health of the ingress gateways routing to a service",
       (*_HEALTH_SERVICE,), answer={"type": "array"}, blocking=True),
    Op("/v1/catalog/gateway-services/", "GET",
       "/v1/catalog/gateway-services/{gateway}",
       "The services a gateway's config entry fronts", (*READ, "filter"),
       answer={"type": "array"}, blocking=True),
    Op("/v1/connect/intentions", "GET", "/v1/connect/intentions",
       "Every intention (from service-intentions entries)", (*READ, "filter"),
       answer={"type": "array"}, blocking=True),
    Op("/v1/connect/intentions", "POST", "/v1/connect/intentions",
       "Create an intention with a legacy ID (deprecated in Consul)", WRITE,
       body=decode.anything, answer=_obj({"ID": _STR})),
    *(
        Op("/v1/connect/intentions/exact", method, "/v1/connect/intentions/exact",
           summary, (*(READ if method == "GET" else WRITE), "source", "destination"),
           body=decode.anything if method == "PUT" else None,
           answer=_TRUE if method != "GET" else {"type": "object"},
           blocking=method == "GET")
        for method, summary in (
            ("GET", "One intention, by source and destination"),
            ("PUT", "Create or replace an intention"),
            ("DELETE", "Delete an intention"),
        )
    ),
    Op("/v1/connect/intentions/check", "GET", "/v1/connect/intentions/check",
       "Whether a connection would be allowed",
       (*READ, "source", "destination", "source-type"),
       answer=_obj({"Allowed": _TRUE}), blocking=True),
    Op("/v1/connect/intentions/match", "GET", "/v1/connect/intentions/match",
       "Intentions matching names, by source or destination",
       (*READ, "by", "name"), answer={"type": "object"}, blocking=True),
    *(
        Op("/v1/connect/intentions/", method, "/v1/connect/intentions/{id}",
           f"{summary} an intention by legacy ID (deprecated in Consul)",
           READ if method == "GET" else WRITE,
           body=decode.anything if method == "PUT" else None,
           answer={"type": "object"} if method == "GET" else _TRUE,
           blocking=method == "GET")
        for method, summary in (("GET", "Read"), ("PUT", "Replace"),
                                ("DELETE", "Delete"))
    ),
    *(
        Op(route, "GET", route, "The Connect CA's roots (?pem: a PEM bundle)",
           (*READ, "pem"), answer={"type": "object"}, blocking=True,
           media="application/pem-certificate-chain")
        for route in ("/v1/connect/ca/roots", "/v1/agent/connect/ca/roots")
    ),
    Op("/v1/connect/ca/configuration", "GET", "/v1/connect/ca/configuration",
       "The CA configuration", READ, answer={"type": "object"}, blocking=True),
    Op("/v1/connect/ca/configuration", "PUT", "/v1/connect/ca/configuration",
       "Change the CA configuration (the consul provider; rotates the root on"
       " a new key type)", WRITE, body=decode.anything),
    Op("/v1/agent/connect/ca/leaf/", "GET", "/v1/agent/connect/ca/leaf/{service}",
       "A leaf certificate for a service, signed by the active root",
       ("token",), answer={"type": "object"}),
    Op("/v1/discovery-chain/", "GET", "/v1/discovery-chain/{service}",
       "The compiled discovery chain", (*READ, "compile-dc"),
       answer=_obj({"Chain": {"type": "object"}}), blocking=True),
    Op("/v1/discovery-chain/", "POST", "/v1/discovery-chain/{service}",
       "The compiled discovery chain, with overrides", ("token", "compile-dc"),
       body=decode.anything, answer=_obj({"Chain": {"type": "object"}})),
    Op("/v1/agent/force-leave/", "PUT", "/v1/agent/force-leave/{node}",
       "Force a member out (waypost: no gossip pool, always 400)",
       (*WRITE, "prune", "wan")),
    Op("/v1/agent/connect/authorize", "POST", "/v1/agent/connect/authorize",
       "Would a client certificate be allowed to the target (intentions)",
       ("token",), body=decode.anything,
       answer=_obj({"Authorized": _TRUE, "Reason": _STR})),
    Op("/v1/agent/version", "GET", "/v1/agent/version",
       "The Consul version this agent speaks", (),
       answer=_obj({"SHA": _STR, "BuildDate": _STR, "HumanVersion": _STR,
                    "FIPS": _STR})),
)  # fmt: skip

# Sessions (issue 15); the body is read back from http/session.py's decoder.
from waypost.http import session as _session, txn as _txn  # noqa: E402

_SCALARS[_session.lock_delay_field] = {
    "anyOf": [_STR, {"type": "number"}],
    "description": "Go duration, or nanoseconds (under 1000: seconds)",
}
_SCALARS[_txn.base64_field] = {"type": "string", "contentEncoding": "base64"}
_SESSIONS: JSON = {"type": "array", "items": {"type": "object"}}
OPERATIONS += (
    Op("/v1/session/create", "PUT", "/v1/session/create", "Create a session",
       WRITE, body=_session.SESSION, answer=_obj({"ID": _STR})),
    Op("/v1/session/destroy/", "PUT", "/v1/session/destroy/{session_id}",
       "Destroy a session (its locks released or deleted)", WRITE,
       answer=_TRUE),
    Op("/v1/session/renew/", "PUT", "/v1/session/renew/{session_id}",
       "Restart a session's TTL", WRITE, answer=_SESSIONS),
    Op("/v1/session/info/", "GET", "/v1/session/info/{session_id}",
       "One session (an empty list if none)", READ, answer=_SESSIONS,
       blocking=True),
    Op("/v1/session/node/", "GET", "/v1/session/node/{node}",
       "The sessions of a node", READ, answer=_SESSIONS, blocking=True),
    Op("/v1/session/list", "GET", "/v1/session/list", "Every session", READ,
       answer=_SESSIONS, blocking=True),
    Op("/v1/txn", "PUT", "/v1/txn",
       "KV, node, service and check operations, all or nothing (409: Errors)",
       WRITE, body=_txn.TXN, answer=_obj({"Results": {}, "Errors": {}}),
       also=(409,)),
)  # fmt: skip

# ---------------------------------------------------------------- the document

#: Statuses any operation may answer, with a text/plain message.
ERRORS: dict[int, str] = {
    400: "Bad input: the message says what was wrong; nothing changed",
    401: "An ACL endpoint while ACLs are off (`ACL support disabled`)",
    403: "The token may not do this (Consul's `Permission denied` words)",
    404: "No such object, or not a path we serve",
    405: "The path is served, not with this method (Allow lists the methods)",
    408: "Headers or body arrived too slowly",
    413: "Body larger than --http-max-body-bytes (KV values: 512 KiB)",
    414: "Request target longer than --http-max-url-bytes",
    429: "Too many connections from this client",
    431: "Request line and headers over --http-max-header-bytes / count",
    503: "The store could not make the write durable; nothing changed",
}

_HEADERS: dict[str, JSON] = {
    "X-Consul-Index": {
        "description": "The index of the answer (blocking queries wait on it)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "X-Consul-KnownLeader": {
        "description": "false when the store is out of reach",
        "schema": {"enum": ["true", "false"]},
    },
    "X-Consul-LastContact": {
        "description": "Milliseconds since the store was last reached",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "X-Consul-Effective-Consistency": {
        "description": "leader, stale or consistent",
        "schema": {"enum": ["leader", "stale", "consistent"]},
    },
}
_FILTERED: JSON = {
    "description": "true: the token may not read part of the answer",
    "schema": {"enum": ["true"]},
}

_TEXT: JSON = {"text/plain": {"schema": _STR}}


def _success(op: Op) -> JSON:
    content: JSON = {}
    if op.answer is not None:
        content["application/json"] = {"schema": op.answer}
    if op.media:
        content[op.media] = {"schema": {"format": "binary"}}
    elif op.text or op.answer is None:
        content["text/plain"] = {"schema": _STR}
    headers: JSON = {"X-Consul-Results-Filtered-By-ACLs": _FILTERED}
    if op.blocking:
        headers.update(_HEADERS)
    if op.route == "/v1/agent/service/" and op.method == "GET":
        headers["X-Consul-ContentHash"] = {"schema": _STR}
    return {"description": "OK", "headers": headers, "content": content}


def _operation(op: Op, bodies: _BodySchemas) -> JSON:
    parameters: list[JSON] = [
        {"$ref": f"#/components/parameters/{name}"} for name in op.params
    ]
    for name in _path_names(op.path):
        schema = PATH_VALUES.get(name, _NAME)
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": schema}
        )
    out: JSON = {
        "summary": op.summary,
        "operationId": _operation_id(op),
        "tags": [op.route.split("/")[2]],
        "parameters": parameters,
    }
    if op.body == "raw":
        out["requestBody"] = {
            "content": {"application/octet-stream": {"schema": {"format": "binary"}}}
        }
    elif op.body is not None:
        schema = bodies.of(op.body)
        if isinstance(op.body, decode.Obj) and op.body.name not in REQUIRED:
            schema = _nullable(schema)  # Go decodes `null` into a struct as {}
        out["requestBody"] = {"content": {"application/json": {"schema": schema}}}
    responses: JSON = {"200": _success(op)}
    for status in op.also:
        if status not in ERRORS and op.answer is not None:
            responses[str(status)] = {
                "description": "See the summary",
                "content": {"application/json": {"schema": op.answer}},
            }
    for status, description in ERRORS.items():
        content: JSON = dict(_TEXT)
        if status in op.also and op.answer is not None:
            content["application/json"] = {"schema": op.answer}
        if status in op.json_errors:
            content = {**content, "application/json": {"schema": _STR}}
        if status == 404 and op.bare_404:
            content = {}
        responses[str(status)] = {"description": description, "content": content}
    out["responses"] = responses
    return out


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation_id(op: Op) -> str:
    words = [w for w in op.path.replace("{", "").replace("}", "").split("/") if w]
    return op.method.lower() + "".join(w.title().replace("-", "") for w in words[1:])


def route_of(path: str) -> str:
    """The route-table path an OpenAPI path is served by (`{...}` is a tail)."""
    cut = path.find("{")
    return path if cut < 0 else path[:cut]


#: Parameters referenced but not yet in PARAMETERS are described plainly.
_EXTRA: dict[str, JSON] = {
    "segment": _query("segment", _STR, "Enterprise network segment: accepted."),
}


def build(datacenter: str = "dc1") -> JSON:
    """The whole OpenAPI document, as a JSON-ready dict.

    Args:
        datacenter: the agent's datacenter, the one value `?dc=` may name.
    """
    bodies = _BodySchemas()
    paths: dict[str, JSON] = {}
    for op in OPERATIONS:
        item = paths.setdefault(op.path, {})
        item[op.method.lower()] = _operation(op, bodies)
    used = sorted({name for op in OPERATIONS for name in op.params})
    parameters = {name: PARAMETERS.get(name) or _EXTRA[name] for name in used}
    if "dc" in parameters:
        dc = {**parameters["dc"], "schema": {"enum": ["", datacenter]}}
        parameters["dc"] = dc
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "waypost: Consul's /v1 HTTP API",
            "version": __version__,
            "description": "What a waypost agent serves under /v1, in Consul's"
            " wire format. Every error answer is text/plain; request field"
            " names match case-insensitively. Generated by `waypost openapi`.",
        },
        "servers": [{"url": "http://127.0.0.1:8500"}],
        "components": {
            "parameters": parameters,
            "schemas": {**RESPONSES, **bodies.components},
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Consul-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{}, {"token": []}, {"bearer": []}],
        "paths": paths,
    }


__all__ = ["OPERATIONS", "Op", "build", "route_of"]
