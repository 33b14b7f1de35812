"""`/v1/acl/*` and `/v1/agent/token/*` (agent/acl_endpoint.go).

Who may call what is decided before a handler runs, in `http/access.py`;
these handlers decode, build a change (IDs, secrets and times are made
here: the planner is pure), apply it, and render. The token a request
carries is `request.caller`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from waypost.core.acl import jwt as acl_jwt
from waypost.core.acl.changes import (
    Bootstrap,
    CloneToken,
    DeleteAuthMethod,
    DeleteBindingRule,
    DeletePolicy,
    DeleteRole,
    DeleteToken,
    SetAclFact,
    SetAuthMethod,
    SetBindingRule,
    SetPolicy,
    SetRole,
    SetToken,
)
from waypost.core.acl.model import (
    AGENT_TOKEN_PREFIX,
    BOOTSTRAP_DESCRIPTION,
    MANAGEMENT_POLICY_ID,
    AuthMethod,
    BindingRule,
    Grants,
    Link,
    Policy,
    Role,
    Token,
)
from waypost.core.acl.planner import is_uuid
from waypost.core.acl.rules import TEMPLATES, synthetic_id, template_rules
from waypost.core.topics import T_ACL
from waypost.exceptions import InvalidRequest, NotFound, PermissionDenied
from waypost.http import acl_wire as wire
from waypost.http.decode import decode_body
from waypost.http.messages import (
    Query,
    Request,
    Response,
    empty_response,
    json_response,
)

if TYPE_CHECKING:
    from waypost.core.acl.state import AclState
    from waypost.registry import Registry

ACL_NOT_FOUND = "ACL not found"

#: /v1/agent/token/<kind>: Consul's names, old and new, and the key kept.
AGENT_TOKEN_KINDS = {
    "default": "default",
    "acl_token": "default",
    "agent": "agent",
    "acl_agent_token": "agent",
    "agent_recovery": "agent_recovery",
    "agent_master": "agent_recovery",
    "acl_agent_master_token": "agent_recovery",
    "replication": "replication",
    "acl_replication_token": "replication",
    "config_file_service_registration": "config_file_service_registration",
    "dns": "dns",
    "dns_token": "dns",
}


def _acl(registry: Registry) -> AclState:
    return registry.catalog.acl


def _new_id() -> str:
    return str(uuid.uuid4())


def _caller_accessor(request: Request) -> str:
    return request.caller.accessor_id if request.caller is not None else ""


def _can_write_acl(request: Request) -> bool:
    authz = request.authorizer
    return authz is None or authz.allows("acl", "", 3)


def _query(registry: Registry, render: object) -> Query:
    return Query([T_ACL], render)  # type: ignore[arg-type]


def _require_uuid(value: str, what: str) -> None:
    if not is_uuid(value):
        raise InvalidRequest(f"{what} {value!r} is not a valid UUID")


# ---------------------------------------------------------------- bootstrap


async def bootstrap(registry: Registry, request: Request) -> Response:
    data = decode_body(request.body, wire.BOOTSTRAP)
    now = time.time()
    token = Token(
        accessor_id=_new_id(),
        secret_id=str(data.get("BootstrapSecret", "")) or _new_id(),
        description=BOOTSTRAP_DESCRIPTION,
        grants=Grants(policies=(Link(id=MANAGEMENT_POLICY_ID),)),
        create_time=now,
    )
    await registry.apply(Bootstrap(token=token))
    stored = _acl(registry).tokens[token.accessor_id]
    body = wire.token_json(_acl(registry), stored)
    # Consul's aclBootstrapResponse: the legacy `ID` (the secret) first.
    return json_response({"ID": stored.secret_id, **body})


# ---------------------------------------------------------------- tokens


async def token_list(registry: Registry, request: Request) -> Query:
    policy = request.get("policy")
    role = request.get("role")
    method = request.get("authmethod")
    service = request.get("servicename")
    show = _can_write_acl(request)

    def render() -> Response:
        acl = _acl(registry)
        tokens = sorted(acl.tokens.values(), key=lambda t: t.accessor_id)
        if policy:
            tokens = [
                t for t in tokens if any(p.id == policy for p in t.grants.policies)
            ]
        if role:
            tokens = [t for t in tokens if any(r.id == role for r in t.grants.roles)]
        if method:
            tokens = [t for t in tokens if t.auth_method == method]
        if service:
            tokens = [
                t
                for t in tokens
                if any(s.service_name == service for s in t.grants.service_identities)
            ]
        return json_response(
            [wire.token_json(acl, t, show_secret=show) for t in tokens]
        )

    return _query(registry, render)


async def token_self(registry: Registry, request: Request) -> Response:
    token = request.caller
    # Consul reads the token the request sent; none sent is none found.
    if token is None or request.caller_is_default:
        raise PermissionDenied(ACL_NOT_FOUND)
    return json_response(wire.token_json(_acl(registry), token))


async def token_create(registry: Registry, request: Request) -> Response:
    return await _token_write(registry, request, "", create=True)


async def token_crud(registry: Registry, request: Request) -> Response | Query:
    tail = request.tail
    if request.method == "PUT" and tail.endswith("/clone"):
        return await _token_clone(registry, request, tail[: -len("/clone")])
    if not tail:
        raise InvalidRequest("Missing token ID")
    if request.method == "GET":
        return _token_read(registry, request, tail)
    if request.method == "PUT":
        return await _token_write(registry, request, tail, create=False)
    await registry.apply(
        DeleteToken(accessor_id=tail, caller=_caller_accessor(request))
    )
    return json_response(True)


def _token_read(registry: Registry, request: Request, accessor: str) -> Query:
    if _acl(registry).tokens.get(accessor) is None:
        raise PermissionDenied(ACL_NOT_FOUND)
    show = _can_write_acl(request)

    def render() -> Response:
        acl = _acl(registry)
        token = acl.tokens.get(accessor)
        if token is None:
            return json_response(ACL_NOT_FOUND, 403)
        return json_response(wire.token_json(acl, token, show_secret=show))

    return _query(registry, render)


async def _token_write(
    registry: Registry, request: Request, accessor: str, *, create: bool
) -> Response:
    data = decode_body(request.body, wire.TOKEN)
    body_accessor = str(data.get("AccessorID", ""))
    if not create:
        if body_accessor and body_accessor != accessor:
            raise InvalidRequest("Token Accessor ID in URL and payload do not match")
        body_accessor = accessor
    expiration = data.get("ExpirationTime")
    now = time.time()
    token = Token(
        accessor_id=body_accessor or _new_id(),
        secret_id=str(data.get("SecretID", "")) or _new_id(),
        description=str(data.get("Description", "")),
        grants=wire.grants_from(data),
        local=bool(data.get("Local", False)),
        expiration_time=(
            wire.parse_time(str(expiration), "ExpirationTime") if expiration else None
        ),
        create_time=now,
    )
    ttl = data.get("ExpirationTTL")
    await registry.apply(
        SetToken(
            token=token,
            create=create,
            expiration_ttl=float(ttl) if isinstance(ttl, int | float) else 0.0,
            has_secret=bool(data.get("SecretID")),
            has_expiration=bool(expiration),
        )
    )
    acl = _acl(registry)
    return json_response(wire.token_json(acl, acl.tokens[token.accessor_id]))


async def _token_clone(registry: Registry, request: Request, accessor: str) -> Response:
    data = decode_body(request.body, wire.TOKEN)
    new_accessor = _new_id()
    await registry.apply(
        CloneToken(
            accessor_id=accessor,
            new_accessor_id=new_accessor,
            new_secret_id=_new_id(),
            description=str(data.get("Description", "")),
            now=time.time(),
        )
    )
    acl = _acl(registry)
    return json_response(wire.token_json(acl, acl.tokens[new_accessor]))


# ---------------------------------------------------------------- policies


async def policy_list(registry: Registry, request: Request) -> Query:
    def render() -> Response:
        policies = sorted(_acl(registry).policies.values(), key=lambda p: p.id)
        return json_response([wire.policy_json(p, stub=True) for p in policies])

    return _query(registry, render)


async def policy_create(registry: Registry, request: Request) -> Response:
    return await _policy_write(registry, request, "", create=True)


async def policy_crud(registry: Registry, request: Request) -> Response | Query:
    policy_id = request.tail
    if not policy_id and request.method != "PUT":
        raise InvalidRequest("Missing policy ID")
    if request.method == "GET":
        _require_uuid(policy_id, "Policy ID")
        return _read_one(registry, lambda acl: acl.policies.get(policy_id), "policy")
    if request.method == "PUT":
        return await _policy_write(registry, request, policy_id, create=False)
    _require_uuid(policy_id, "Policy ID")
    await registry.apply(DeletePolicy(policy_id=policy_id))
    return json_response(True)


async def policy_by_name(registry: Registry, request: Request) -> Query:
    name = request.tail
    if not name:
        raise InvalidRequest("Missing policy Name")
    return _read_one(registry, lambda acl: acl.policy_by_name(name), "policy")


def _read_one(registry: Registry, find: object, kind: str) -> Query:
    def render() -> Response:
        acl = _acl(registry)
        found = find(acl)  # type: ignore[operator]
        if found is None:
            # Consul answers a missing policy, role, auth method or binding
            # rule with 404 (py-consul reads it as None).
            return json_response(f"ACL {kind} not found", 404)
        if isinstance(found, Policy):
            return json_response(wire.policy_json(found))
        if isinstance(found, Role):
            return json_response(wire.role_json(acl, found))
        if isinstance(found, AuthMethod):
            return json_response(wire.auth_method_json(found))
        return json_response(wire.binding_rule_json(found))

    return _query(registry, render)


async def _policy_write(
    registry: Registry, request: Request, policy_id: str, *, create: bool
) -> Response:
    data = decode_body(request.body, wire.POLICY)
    body_id = str(data.get("ID", ""))
    if create and body_id:
        raise InvalidRequest("Cannot specify the ID when creating a new policy")
    if not create:
        if body_id and body_id != policy_id:
            raise InvalidRequest("Policy ID in URL and payload do not match")
        _require_uuid(policy_id, "Policy ID")
    policy = Policy(
        id=policy_id or _new_id(),
        name=str(data.get("Name", "")),
        description=str(data.get("Description", "")),
        rules=str(data.get("Rules", "")),
        datacenters=tuple(data.get("Datacenters", [])),  # type: ignore[arg-type]
    )
    await registry.apply(SetPolicy(policy=policy, create=create))
    return json_response(wire.policy_json(_acl(registry).policies[policy.id]))


# ---------------------------------------------------------------- roles


async def role_list(registry: Registry, request: Request) -> Query:
    policy = request.get("policy")

    def render() -> Response:
        acl = _acl(registry)
        roles = sorted(acl.roles.values(), key=lambda r: r.id)
        if policy:
            roles = [r for r in roles if any(p.id == policy for p in r.grants.policies)]
        return json_response([wire.role_json(acl, r) for r in roles])

    return _query(registry, render)


async def role_create(registry: Registry, request: Request) -> Response:
    return await _role_write(registry, request, "", create=True)


async def role_crud(registry: Registry, request: Request) -> Response | Query:
    role_id = request.tail
    if not role_id and request.method != "PUT":
        raise InvalidRequest("Missing role ID")
    if request.method == "GET":
        _require_uuid(role_id, "Role ID")
        return _read_one(registry, lambda acl: acl.roles.get(role_id), "role")
    if request.method == "PUT":
        return await _role_write(registry, request, role_id, create=False)
    _require_uuid(role_id, "Role ID")
    await registry.apply(DeleteRole(role_id=role_id))
    return json_response(True)


async def role_by_name(registry: Registry, request: Request) -> Query:
    name = request.tail
    if not name:
        raise InvalidRequest("Missing role Name")
    return _read_one(registry, lambda acl: acl.role_by_name(name), "role")


async def _role_write(
    registry: Registry, request: Request, role_id: str, *, create: bool
) -> Response:
    data = decode_body(request.body, wire.ROLE)
    body_id = str(data.get("ID", ""))
    if create and body_id:
        raise InvalidRequest("Cannot specify the ID when creating a new role")
    if not create:
        if body_id and body_id != role_id:
            raise InvalidRequest("Role ID in URL and payload do not match")
        _require_uuid(role_id, "Role ID")
    grants = wire.grants_from(data)
    if grants.roles:
        raise InvalidRequest("Request decode failed: Roles: unknown field in ACLRole")
    role = Role(
        id=role_id or _new_id(),
        name=str(data.get("Name", "")),
        description=str(data.get("Description", "")),
        grants=grants,
    )
    await registry.apply(SetRole(role=role, create=create))
    acl = _acl(registry)
    return json_response(wire.role_json(acl, acl.roles[role.id]))


# ---------------------------------------------------------------- auth methods


async def auth_method_list(registry: Registry, request: Request) -> Query:
    def render() -> Response:
        methods = sorted(_acl(registry).auth_methods.values(), key=lambda m: m.name)
        return json_response([wire.auth_method_json(m, stub=True) for m in methods])

    return _query(registry, render)


async def auth_method_create(registry: Registry, request: Request) -> Response:
    return await _auth_method_write(registry, request, "", create=True)


async def auth_method_crud(registry: Registry, request: Request) -> Response | Query:
    name = request.tail
    if not name and request.method != "PUT":
        raise InvalidRequest("Missing auth method name")
    if request.method == "GET":
        return _read_one(
            registry, lambda acl: acl.auth_methods.get(name), "auth method"
        )
    if request.method == "PUT":
        return await _auth_method_write(registry, request, name, create=False)
    await registry.apply(DeleteAuthMethod(name=name))
    return json_response(True)


async def _auth_method_write(
    registry: Registry, request: Request, name: str, *, create: bool
) -> Response:
    data = decode_body(request.body, wire.AUTH_METHOD)
    body_name = str(data.get("Name", ""))
    if not create:
        if body_name and body_name != name:
            raise InvalidRequest("Auth Method Name in URL and payload do not match")
        body_name = name
    config = data.get("Config") or {}
    method_type = str(data.get("Type", ""))
    if method_type == "jwt":
        acl_jwt.validate_config(config)  # type: ignore[arg-type]
    max_ttl = data.get("MaxTokenTTL")
    method = AuthMethod(
        name=body_name,
        type=method_type,
        display_name=str(data.get("DisplayName", "")),
        description=str(data.get("Description", "")),
        max_token_ttl=float(max_ttl) if isinstance(max_ttl, int | float) else 0.0,
        token_locality=str(data.get("TokenLocality", "")),
        config=msgspec.json.encode(config).decode(),
    )
    await registry.apply(SetAuthMethod(method=method, create=create))
    return json_response(wire.auth_method_json(_acl(registry).auth_methods[body_name]))


# ---------------------------------------------------------------- binding rules


async def binding_rule_list(registry: Registry, request: Request) -> Query:
    method = request.get("authmethod")

    def render() -> Response:
        rules = sorted(_acl(registry).binding_rules.values(), key=lambda r: r.id)
        if method:
            rules = [r for r in rules if r.auth_method == method]
        return json_response([wire.binding_rule_json(r) for r in rules])

    return _query(registry, render)


async def binding_rule_create(registry: Registry, request: Request) -> Response:
    return await _binding_rule_write(registry, request, "", create=True)


async def binding_rule_crud(registry: Registry, request: Request) -> Response | Query:
    rule_id = request.tail
    if not rule_id and request.method != "PUT":
        raise InvalidRequest("Missing binding rule ID")
    if request.method == "GET":
        _require_uuid(rule_id, "Binding Rule ID")
        return _read_one(
            registry, lambda acl: acl.binding_rules.get(rule_id), "binding rule"
        )
    if request.method == "PUT":
        return await _binding_rule_write(registry, request, rule_id, create=False)
    _require_uuid(rule_id, "Binding Rule ID")
    await registry.apply(DeleteBindingRule(rule_id=rule_id))
    return json_response(True)


async def _binding_rule_write(
    registry: Registry, request: Request, rule_id: str, *, create: bool
) -> Response:
    data = decode_body(request.body, wire.BINDING_RULE)
    body_id = str(data.get("ID", ""))
    if create and body_id:
        raise InvalidRequest("Cannot specify the ID when creating a new binding rule")
    if not create:
        if body_id and body_id != rule_id:
            raise InvalidRequest("BindingRule ID in URL and payload do not match")
        _require_uuid(rule_id, "Binding Rule ID")
    selector = str(data.get("Selector", ""))
    if selector:
        acl_jwt.validate_selector(selector)
    rule = BindingRule(
        id=rule_id or _new_id(),
        auth_method=str(data.get("AuthMethod", "")),
        bind_type=str(data.get("BindType", "")),
        bind_name=str(data.get("BindName", "")),
        description=str(data.get("Description", "")),
        selector=selector,
    )
    await registry.apply(SetBindingRule(rule=rule, create=create))
    return json_response(wire.binding_rule_json(_acl(registry).binding_rules[rule.id]))


# ---------------------------------------------------------------- login


async def login(registry: Registry, request: Request) -> Response:
    data = decode_body(request.body, wire.LOGIN)
    acl = _acl(registry)
    method = acl.auth_methods.get(str(data.get("AuthMethod", "")))
    if method is None:
        raise PermissionDenied(ACL_NOT_FOUND)
    config = msgspec.json.decode(method.config)
    jwks = await _read_jwks(config)
    now = time.time()
    identity = acl_jwt.verify(
        str(data.get("BearerToken", "")), config, jwks=jwks, now=now
    )
    rules = [r for r in acl.binding_rules.values() if r.auth_method == method.name]
    grants = acl_jwt.bind(rules, identity, datacenter=registry.config.datacenter)
    grants = Grants(
        roles=tuple(
            Link(name=link.name)
            for link in grants.roles
            if acl.role_by_name(link.name) is not None
        ),
        policies=tuple(
            Link(name=link.name)
            for link in grants.policies
            if acl.policy_by_name(link.name) is not None
        ),
        service_identities=grants.service_identities,
        node_identities=grants.node_identities,
        templated_policies=grants.templated_policies,
    )
    if grants == Grants():
        raise PermissionDenied("Permission denied")
    meta = data.get("Meta") or {}
    token = Token(
        accessor_id=_new_id(),
        secret_id=_new_id(),
        description="token created via login"
        + (f": {msgspec.json.encode(meta).decode()}" if meta else ""),
        grants=grants,
        local=method.token_locality != "global",
        auth_method=method.name,
        create_time=now,
        expiration_time=now + method.max_token_ttl if method.max_token_ttl else None,
    )
    token = msgspec.structs.replace(token)
    await registry.apply(SetToken(token=token, create=True))
    return json_response(wire.token_json(acl, acl.tokens[token.accessor_id]))


async def _read_jwks(config: dict[str, object]) -> bytes | None:
    url = str(config.get("JWKSURL") or "")
    if not url:
        return None
    path = Path(url.removeprefix("file://"))
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise PermissionDenied(
            f"Permission denied: could not read the JWKS file: {exc.strerror}"
        ) from None


async def logout(registry: Registry, request: Request) -> Response:
    token = request.caller
    if token is None or request.caller_is_default:
        raise PermissionDenied(ACL_NOT_FOUND)
    if not token.auth_method:
        raise PermissionDenied("Permission denied")
    await registry.apply(DeleteToken(accessor_id=token.accessor_id))
    return json_response(True)


# ---------------------------------------------------------------- templates


def _template_json(name: str) -> dict[str, object]:
    template = TEMPLATES[name]
    return {
        "TemplateName": template.name,
        "Schema": template.schema,
        "Template": template.template,
        "Description": template.description,
    }


async def templated_policy_list(registry: Registry, request: Request) -> Response:
    return json_response({name: _template_json(name) for name in sorted(TEMPLATES)})


async def templated_policy_read(registry: Registry, request: Request) -> Response:
    if request.tail not in TEMPLATES:
        raise NotFound(f"Invalid templated policy Name: {request.tail}")
    return json_response(_template_json(request.tail))


async def templated_policy_preview(registry: Registry, request: Request) -> Response:
    name = request.tail
    template = TEMPLATES.get(name)
    if template is None:
        raise NotFound(f"Invalid templated policy Name: {name}")
    data = decode_body(request.body, wire.TEMPLATED_PREVIEW)
    variable = str(data.get("Name", ""))
    if template.schema and not variable:
        raise InvalidRequest(
            f"validation error for templated policy {name}: name is required"
        )
    rules = template_rules(name, variable)
    policy_id = synthetic_id(rules)
    return json_response(
        {
            "ID": policy_id,
            "Name": f"synthetic-policy-{policy_id}",
            "Description": f"synthetic policy generated from templated policy: {name}",
            "Rules": rules,
            "Hash": None,
            "CreateIndex": 0,
            "ModifyIndex": 0,
        }
    )


# ---------------------------------------------------------------- agent tokens


async def agent_token(registry: Registry, request: Request) -> Response:
    kind = AGENT_TOKEN_KINDS.get(request.tail)
    data = decode_body(request.body, wire.AGENT_TOKEN)
    if kind is None:
        raise NotFound(f"Token {request.tail!r} is unknown")
    secret = str(data.get("Token", ""))
    registry.set_agent_token(kind, secret)
    if registry.config.acl.enable_token_persistence:
        await registry.apply(SetAclFact(name=AGENT_TOKEN_PREFIX + kind, value=secret))
    # The empty 200 of every other agent write (text/plain, no body).
    return empty_response()
