"""Policy rules: Consul's HCL (or JSON) parsed into flat `Rule`s.

Consul parses rules with HashiCorp's HCL v1 (`hcl.Decode` in acl/policy.go);
pyhcl is a parser of that same HCL v1 grammar, JSON included, so rules that
Consul accepts parse here the same way. The synthetic policies of service
and node identities and the templated policies (`builtin/service`,
`builtin/node`, `builtin/dns`) are Consul's texts (agent/structs/
acltemplatedpolicy/policies/ce). No I/O.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from hcl.api import isHcl  # type: ignore[import-untyped]
from hcl.parser import HclParser  # type: ignore[import-untyped]

from waypost.exceptions import InvalidRequest

# Access levels, ordered so that merging rules is max(): Consul's
# takesPrecedenceOver says deny > write > list > read.
READ, LIST, WRITE, DENY = 1, 2, 3, 4
LEVELS = {"read": READ, "list": LIST, "write": WRITE, "deny": DENY}
LEVEL_NAMES = {READ: "read", LIST: "list", WRITE: "write", DENY: "deny"}

#: Rule blocks with a name (`service "web" {...}`) and their `_prefix` twins.
NAMED = ("agent", "event", "key", "node", "query", "service", "session")
#: Rules that are one value (`operator = "read"`).
GLOBAL = ("acl", "keyring", "mesh", "operator", "peering")


class Rule(msgspec.Struct, frozen=True):
    resource: str
    segment: str
    is_prefix: bool
    level: int


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Parse and validate rules; raise InvalidRequest in Consul's words."""
    if not text.strip():
        return ()
    return _parse(text)


@functools.cache
def _parser() -> Any:
    # pyhcl's `loads` builds its LALR tables on every call (~100 ms here);
    # one parser, built once, parses a policy in ~2 ms.
    return HclParser()


def _load(text: str) -> Any:
    if isHcl(text):
        return _parser().parse(text)
    return msgspec.json.decode(text)  # a JSON policy, as pyhcl's `loads`


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> tuple[Rule, ...]:
    try:
        tree = _load(text)
    except Exception as exc:  # pyhcl raises ValueError and ply's own errors
        raise InvalidRequest(f"Failed to parse ACL rules: {exc}") from None
    if not isinstance(tree, dict):
        raise InvalidRequest("Failed to parse ACL rules: not an object")
    rules: list[Rule] = []
    for key, body in tree.items():
        resource, is_prefix = _resource(key)
        if resource in GLOBAL:
            rules.append(Rule(resource, "", False, _level(key, body, lists=False)))
            continue
        for segment, block in _blocks(key, body):
            policy = block.get("policy") if isinstance(block, dict) else None
            level = _level(key, policy, lists=resource == "key")
            rules.append(Rule(resource, segment, is_prefix, level))
    return tuple(rules)


def _resource(key: str) -> tuple[str, bool]:
    base, is_prefix = (key[:-7], True) if key.endswith("_prefix") else (key, False)
    if (base in NAMED) or (key in GLOBAL):
        return base, is_prefix
    raise InvalidRequest(f"Failed to parse ACL rules: unknown rule {key!r}")


def _blocks(key: str, body: Any) -> list[tuple[str, Any]]:
    # HCL gives {"name": {...}}; several blocks of one kind can arrive as a
    # list of such objects (JSON arrays, repeated HCL blocks).
    parts = body if isinstance(body, list) else [body]
    found: list[tuple[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            raise InvalidRequest(f"Failed to parse ACL rules: {key} must be a block")
        found.extend((str(name), block) for name, block in part.items())
    return found


def _level(key: str, value: Any, *, lists: bool) -> int:
    level = LEVELS.get(value) if isinstance(value, str) else None
    if level is None or (level == LIST and not lists):
        # Consul: `Invalid service policy: &acl.ServicePolicy{...}`; the Go
        # struct dump is not worth copying, the words are.
        raise InvalidRequest(f"Invalid {key} policy: {value!r}")
    return level


# ---------------------------------------------------------------- synthetic

MANAGEMENT_RULES = """
acl = "write"
agent_prefix "" {
\tpolicy = "write"
}
event_prefix "" {
\tpolicy = "write"
}
key_prefix "" {
\tpolicy = "write"
}
keyring = "write"
node_prefix "" {
\tpolicy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
\tpolicy = "write"
}
service_prefix "" {
\tpolicy = "write"
\tintentions = "write"
}
session_prefix "" {
\tpolicy = "write"
}"""

READ_ONLY_RULES = MANAGEMENT_RULES.replace('"write"', '"read"')

# Consul's templates, verbatim (Go's text/template variable `{{.Name}}`).
_SERVICE_TEMPLATE = """
service "{{.Name}}" {
\tpolicy = "write"
}
service "{{.Name}}-sidecar-proxy" {
\tpolicy = "write"
}
service_prefix "" {
\tpolicy = "read"
}
node_prefix "" {
\tpolicy = "read"
}"""

_NODE_TEMPLATE = """
node "{{.Name}}" {
\tpolicy = "write"
}
service_prefix "" {
\tpolicy = "read"
}"""

_DNS_TEMPLATE = """
node_prefix "" {
\tpolicy = "read"
}
service_prefix "" {
\tpolicy = "read"
}
query_prefix "" {
\tpolicy = "read"
}"""

# Consul's ACLTemplatedPolicyIdentitiesSchema, as it serves it.
IDENTITY_SCHEMA = (
    '{\n\t\t"type": "object",\n\t\t"properties": {\n\t\t\t"name": { "type":'
    ' "string", "$ref": "#/definitions/min-length-one" }\n\t\t},\n\t\t'
    '"required": ["name"],\n\t\t"definitions": {\n\t\t\t"min-length-one":'
    ' {\n\t\t\t\t\t"type": "string",\n\t\t\t\t\t"minLength": 1\n\t\t\t}\n\t\t}\n\t}'
)


class Template(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    id: str
    schema: str
    template: str
    description: str


TEMPLATES: dict[str, Template] = {
    "builtin/service": Template(
        name="builtin/service",
        id="00000000-0000-0000-0000-000000000003",
        schema=IDENTITY_SCHEMA,
        template=_SERVICE_TEMPLATE,
        description="Gives the token or role permissions to register a service"
        " and discover services in the Consul catalog. It also gives the"
        " specified service's sidecar proxy the permission to discover and"
        " route traffic to other services.",
    ),
    "builtin/node": Template(
        name="builtin/node",
        id="00000000-0000-0000-0000-000000000004",
        schema=IDENTITY_SCHEMA,
        template=_NODE_TEMPLATE,
        description="Gives the token or role permissions for a register an"
        " agent/node into the catalog. A node is typically a consul agent but"
        " can also be a physical server, cloud instance or a container.",
    ),
    "builtin/dns": Template(
        name="builtin/dns",
        id="00000000-0000-0000-0000-000000000005",
        schema="",
        template=_DNS_TEMPLATE,
        description="Gives the token or role permissions for the Consul DNS to"
        " query services in the network.",
    ),
}


def template_rules(template_name: str, name: str) -> str:
    """A templated policy's rules; names were validated before they got here
    (Consul interpolates without escaping for the same reason)."""
    template = TEMPLATES.get(template_name)
    if template is None:
        raise InvalidRequest(
            f"no such ACL templated policy with Name {template_name!r}"
        )
    return template.template.replace("{{.Name}}", name)


def service_identity_rules(name: str) -> str:
    return _SERVICE_TEMPLATE.replace("{{.Name}}", name)


def node_identity_rules(name: str) -> str:
    return _NODE_TEMPLATE.replace("{{.Name}}", name)


# FNV-1a 128's offset basis: Consul names synthetic policies with Go's
# `fnv.New128a().Sum([]byte(rules))`, which appends the hash of nothing to
# the rules' bytes; the same ID comes out here.
_FNV128A_EMPTY = "6c62272e07bb014262b821756295c58d"


def synthetic_id(rules: str) -> str:
    return rules.encode().hex() + _FNV128A_EMPTY
