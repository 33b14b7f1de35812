"""ACL objects ⇄ Consul's JSON (agent/structs/acl.go, api/acl.go).

Request bodies are read with `decode.Obj` (Go's case-insensitive decoder);
answers are dicts with Consul's field names, `omitempty` where Consul has it.
Times are RFC 3339 in UTC as Go writes them; hashes are Consul's blake2b-256
over the same fields, base64 as Go encodes []byte.
"""

from __future__ import annotations

import base64
import datetime
import hashlib

import msgspec

from waypost.core.acl.model import (
    AuthMethod,
    BindingRule,
    Grants,
    Link,
    NodeIdentity,
    Policy,
    Role,
    ServiceIdentity,
    TemplatedPolicy,
    Token,
)
from waypost.core.acl.state import AclState
from waypost.durations import format_duration
from waypost.http import decode
from waypost.http.decode import (
    Decoded,
    Obj,
    anything,
    boolean,
    duration,
    list_of,
    string,
)

Json = dict[str, object]

# ---------------------------------------------------------------- decoding

_LINK = Obj("ACLLink", {"ID": string, "Name": string})
_SERVICE_IDENTITY = Obj(
    "ACLServiceIdentity", {"ServiceName": string, "Datacenters": list_of(string)}
)
_NODE_IDENTITY = Obj("ACLNodeIdentity", {"NodeName": string, "Datacenter": string})
_TEMPLATE_VARIABLES = Obj("ACLTemplatedPolicyVariables", {"Name": string})
_TEMPLATED = Obj(
    "ACLTemplatedPolicy",
    {
        "TemplateName": string,
        "TemplateVariables": _TEMPLATE_VARIABLES,
        "Datacenters": list_of(string),
    },
)
_GRANTS = {
    "Policies": list_of(_LINK),
    "Roles": list_of(_LINK),
    "ServiceIdentities": list_of(_SERVICE_IDENTITY),
    "NodeIdentities": list_of(_NODE_IDENTITY),
    "TemplatedPolicies": list_of(_TEMPLATED),
}

TOKEN = Obj(
    "ACLToken",
    {
        "AccessorID": string,
        "SecretID": string,
        "Description": string,
        **_GRANTS,
        "Local": boolean,
        "AuthMethod": string,
        "ExpirationTime": string,
        "ExpirationTTL": duration,
        "CreateTime": anything,
        "Hash": anything,
        "CreateIndex": anything,
        "ModifyIndex": anything,
        "Namespace": string,
        "Partition": string,
        "Legacy": anything,
        "Rules": string,
    },
)
POLICY = Obj(
    "ACLPolicy",
    {
        "ID": string,
        "Name": string,
        "Description": string,
        "Rules": string,
        "Datacenters": list_of(string),
        "Hash": anything,
        "CreateIndex": anything,
        "ModifyIndex": anything,
        "Namespace": string,
        "Partition": string,
    },
)
ROLE = Obj(
    "ACLRole",
    {
        "ID": string,
        "Name": string,
        "Description": string,
        **_GRANTS,
        "Hash": anything,
        "CreateIndex": anything,
        "ModifyIndex": anything,
        "Namespace": string,
        "Partition": string,
    },
)
AUTH_METHOD = Obj(
    "ACLAuthMethod",
    {
        "Name": string,
        "Type": string,
        "DisplayName": string,
        "Description": string,
        "MaxTokenTTL": duration,
        "TokenLocality": string,
        "Config": decode.map_of(anything),
        "NamespaceRules": anything,
        "CreateIndex": anything,
        "ModifyIndex": anything,
        "Namespace": string,
        "Partition": string,
    },
)
BINDING_RULE = Obj(
    "ACLBindingRule",
    {
        "ID": string,
        "Description": string,
        "AuthMethod": string,
        "Selector": string,
        "BindType": string,
        "BindName": string,
        "BindVars": anything,
        "CreateIndex": anything,
        "ModifyIndex": anything,
        "Namespace": string,
        "Partition": string,
    },
)
LOGIN = Obj(
    "ACLLoginParams",
    {"AuthMethod": string, "BearerToken": string, "Meta": decode.map_of(string)},
)
AGENT_TOKEN = Obj("AgentToken", {"Token": string})
BOOTSTRAP = Obj("BootstrapRequest", {"BootstrapSecret": string})
TEMPLATED_PREVIEW = Obj("ACLTemplatedPolicyVariables", {"Name": string})


def grants_from(data: Decoded) -> Grants:
    def links(key: str) -> tuple[Link, ...]:
        return tuple(
            Link(id=str(item.get("ID", "")), name=str(item.get("Name", "")))
            for item in data.get(key, [])  # type: ignore[attr-defined]
        )

    services = tuple(
        ServiceIdentity(
            service_name=str(item.get("ServiceName", "")),
            datacenters=tuple(item.get("Datacenters", [])),
        )
        for item in data.get("ServiceIdentities", [])  # type: ignore[attr-defined]
    )
    nodes = tuple(
        NodeIdentity(
            node_name=str(item.get("NodeName", "")),
            datacenter=str(item.get("Datacenter", "")),
        )
        for item in data.get("NodeIdentities", [])  # type: ignore[attr-defined]
    )
    templated = tuple(
        TemplatedPolicy(
            template_name=str(item.get("TemplateName", "")),
            name=str(item.get("TemplateVariables", {}).get("Name", "")),
            datacenters=tuple(item.get("Datacenters", [])),
        )
        for item in data.get("TemplatedPolicies", [])  # type: ignore[attr-defined]
    )
    return Grants(
        policies=links("Policies"),
        roles=links("Roles"),
        service_identities=services,
        node_identities=nodes,
        templated_policies=templated,
    )


def parse_time(text: str, field: str) -> float:
    """An RFC 3339 time (Go's time.Time in JSON) as Unix seconds."""
    from waypost.exceptions import InvalidRequest

    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python reads at most microseconds: cut nanoseconds.
    head, dot, rest = value.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f'Request decode failed: {field}: "{text}" is not an RFC 3339 time'
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


# ---------------------------------------------------------------- encoding


def go_time(seconds: float) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _hash(*parts: str) -> str:
    digest = hashlib.blake2b(digest_size=32)
    for part in parts:
        digest.update(part.encode())
    return base64.b64encode(digest.digest()).decode()


def _grant_parts(grants: Grants) -> list[str]:
    parts = [link.id for link in grants.policies]
    parts += [link.id for link in grants.roles]
    for service in grants.service_identities:
        parts += [service.service_name, *service.datacenters]
    for node in grants.node_identities:
        parts += [node.node_name, node.datacenter]
    for templated in grants.templated_policies:
        parts += [templated.template_name, templated.name, *templated.datacenters]
    return parts


def _grants_json(acl: AclState, grants: Grants, out: Json) -> None:
    # Links show the current name of what they point at (Consul resolves
    # them on read); a link to something deleted is dropped.
    policies = [
        {"ID": link.id, "Name": acl.policies[link.id].name}
        for link in grants.policies
        if link.id in acl.policies
    ]
    roles = [
        {"ID": link.id, "Name": acl.roles[link.id].name}
        for link in grants.roles
        if link.id in acl.roles
    ]
    if policies:
        out["Policies"] = policies
    if roles:
        out["Roles"] = roles
    if grants.service_identities:
        out["ServiceIdentities"] = [
            {"ServiceName": s.service_name}
            | ({"Datacenters": list(s.datacenters)} if s.datacenters else {})
            for s in grants.service_identities
        ]
    if grants.node_identities:
        out["NodeIdentities"] = [
            {"NodeName": n.node_name, "Datacenter": n.datacenter}
            for n in grants.node_identities
        ]
    if grants.templated_policies:
        out["TemplatedPolicies"] = [
            {"TemplateName": t.template_name}
            | ({"TemplateVariables": {"name": t.name}} if t.name else {})
            | ({"Datacenters": list(t.datacenters)} if t.datacenters else {})
            for t in grants.templated_policies
        ]


def token_json(acl: AclState, token: Token, *, show_secret: bool = True) -> Json:
    out: Json = {
        "AccessorID": token.accessor_id,
        "SecretID": token.secret_id if show_secret else "<hidden>",
        "Description": token.description,
    }
    _grants_json(acl, token.grants, out)
    out["Local"] = token.local
    if token.auth_method:
        out["AuthMethod"] = token.auth_method
    if token.expiration_time is not None:
        out["ExpirationTime"] = go_time(token.expiration_time)
    out["CreateTime"] = go_time(token.create_time)
    out["Hash"] = _hash(
        token.description,
        "local" if token.local else "global",
        *_grant_parts(token.grants),
    )
    out["CreateIndex"] = token.create_index
    out["ModifyIndex"] = token.modify_index
    return out


def policy_json(policy: Policy, *, stub: bool = False) -> Json:
    out: Json = {
        "ID": policy.id,
        "Name": policy.name,
        "Description": policy.description,
    }
    if not stub:
        out["Rules"] = policy.rules
    if policy.datacenters or stub:
        out["Datacenters"] = list(policy.datacenters) or None
    out["Hash"] = _hash(
        policy.name, policy.description, policy.rules, *policy.datacenters
    )
    out["CreateIndex"] = policy.create_index
    out["ModifyIndex"] = policy.modify_index
    return out


def role_json(acl: AclState, role: Role) -> Json:
    out: Json = {"ID": role.id, "Name": role.name, "Description": role.description}
    _grants_json(acl, role.grants, out)
    out["Hash"] = _hash(role.name, role.description, *_grant_parts(role.grants))
    out["CreateIndex"] = role.create_index
    out["ModifyIndex"] = role.modify_index
    return out


def auth_method_json(method: AuthMethod, *, stub: bool = False) -> Json:
    out: Json = {"Name": method.name, "Type": method.type}
    if method.display_name:
        out["DisplayName"] = method.display_name
    if method.description:
        out["Description"] = method.description
    if method.max_token_ttl:
        out["MaxTokenTTL"] = format_duration(method.max_token_ttl)
    if method.token_locality:
        out["TokenLocality"] = method.token_locality
    if not stub:
        out["Config"] = msgspec.json.decode(method.config)
    out["CreateIndex"] = method.create_index
    out["ModifyIndex"] = method.modify_index
    return out


def binding_rule_json(rule: BindingRule) -> Json:
    return {
        "ID": rule.id,
        "Description": rule.description,
        "AuthMethod": rule.auth_method,
        "Selector": rule.selector,
        "BindType": rule.bind_type,
        "BindName": rule.bind_name,
        "CreateIndex": rule.create_index,
        "ModifyIndex": rule.modify_index,
    }
