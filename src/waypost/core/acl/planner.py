"""Plan ACL changes: validate against the ACL state, in Consul's words
(agent/consul/acl_endpoint.go), and write rows of the ACL tables.

Names are unique per kind: a plan reads and writes a lock key per name, so
two concurrent creates of one name serialize and the second is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.core.acl.changes import (
    ACL_AUTH_METHODS,
    ACL_BINDING_RULES,
    ACL_FACTS,
    ACL_POLICIES,
    ACL_POLICY_NAMES,
    ACL_ROLE_NAMES,
    ACL_ROLES,
    ACL_SECRETS,
    ACL_TOKENS,
    Bootstrap,
    CloneToken,
    DeleteAuthMethod,
    DeleteBindingRule,
    DeletePolicy,
    DeleteRole,
    DeleteToken,
    InitializeAcl,
    SetAclFact,
    SetAuthMethod,
    SetBindingRule,
    SetPolicy,
    SetRole,
    SetToken,
)
from waypost.core.acl.model import (
    ANONYMOUS_DESCRIPTION,
    ANONYMOUS_SECRET,
    ANONYMOUS_TOKEN_ID,
    BOOTSTRAPPED,
    INITIAL_MANAGEMENT_DESCRIPTION,
    MANAGEMENT_POLICY_DESCRIPTION,
    MANAGEMENT_POLICY_ID,
    MANAGEMENT_POLICY_NAME,
    READ_ONLY_POLICY_DESCRIPTION,
    READ_ONLY_POLICY_ID,
    READ_ONLY_POLICY_NAME,
    RESERVED_ID_PREFIX,
    AclFact,
    AuthMethod,
    BindingRule,
    Grants,
    Link,
    Policy,
    Role,
    Token,
)
from waypost.core.acl.rules import (
    MANAGEMENT_RULES,
    READ_ONLY_RULES,
    TEMPLATES,
    parse_rules,
)
from waypost.core.changes import Change
from waypost.core.topics import T_ACL
from waypost.exceptions import InvalidRequest, NotFound, PermissionDenied

if TYPE_CHECKING:
    from waypost.core.acl.state import AclState
    from waypost.core.planner import Draft

POLICY_NAMES = ACL_POLICY_NAMES
ROLE_NAMES = ACL_ROLE_NAMES
SECRETS = ACL_SECRETS

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_POLICY_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,128}$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
_IDENTITY_NAME = re.compile(r"^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$")
_METHOD_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,128}$")

#: Consul's acl.token_min_expiration_ttl and token_max_expiration_ttl defaults.
MIN_EXPIRATION_TTL = 60.0
MAX_EXPIRATION_TTL = 24 * 3600.0
AUTH_METHOD_TYPES = frozenset({"jwt"})
BIND_TYPES = frozenset({"service", "node", "role", "policy", "templated-policy"})


def is_uuid(text: str) -> bool:
    return bool(_UUID.match(text))


def _acl(draft: Draft) -> AclState:
    return draft.catalog.acl


def _touch(draft: Draft) -> None:
    draft.topics.add(T_ACL)


# ---------------------------------------------------------------- grants


def _resolve_grants(draft: Draft, grants: Grants, *, local: bool, owner: str) -> Grants:
    """Links by name become links by ID; identities and templates checked."""
    acl = _acl(draft)
    policies: list[Link] = []
    for link in grants.policies:
        policy = _find(draft, ACL_POLICIES, POLICY_NAMES, link, acl.policy_by_name)
        if policy is None:
            what = f"ID {link.id!r}" if link.id else f"name {link.name!r}"
            raise InvalidRequest(f"No such ACL policy with {what}")
        if all(p.id != policy.id for p in policies):
            policies.append(Link(id=policy.id))
    roles: list[Link] = []
    for link in grants.roles:
        role = _find(draft, ACL_ROLES, ROLE_NAMES, link, acl.role_by_name)
        if role is None:
            what = f"ID {link.id!r}" if link.id else f"name {link.name!r}"
            raise InvalidRequest(f"No such ACL role with {what}")
        if all(r.id != role.id for r in roles):
            roles.append(Link(id=role.id))
    for service in grants.service_identities:
        if not _IDENTITY_NAME.match(service.service_name):
            raise InvalidRequest(
                f"Service identity {service.service_name!r} has an invalid name."
                " Only lowercase alphanumeric characters, '-' and '_' are allowed"
            )
        if local and service.datacenters:
            raise InvalidRequest(
                "Service identity "
                f"{service.service_name!r} cannot specify a list of datacenters"
                " on a local token"
            )
    for node in grants.node_identities:
        if not _IDENTITY_NAME.match(node.node_name):
            raise InvalidRequest(
                f"Node identity has an invalid name: {node.node_name!r}."
                " Only lowercase alphanumeric characters, '-' and '_' are allowed"
            )
        if not node.datacenter:
            raise InvalidRequest(
                f"Node identity is missing the datacenter field on this {owner}"
            )
    for templated in grants.templated_policies:
        template = TEMPLATES.get(templated.template_name)
        if template is None:
            raise InvalidRequest(
                f"no such ACL templated policy with Name {templated.template_name!r}"
            )
        if template.schema and not templated.name:
            raise InvalidRequest(
                f"validation error for templated policy {templated.template_name}:"
                " name is required"
            )
        if templated.name and not _IDENTITY_NAME.match(templated.name):
            raise InvalidRequest(
                f"templated policy {templated.template_name} has an invalid name:"
                f" {templated.name!r}"
            )
    return msgspec.structs.replace(grants, policies=tuple(policies), roles=tuple(roles))


def _find(
    draft: Draft,
    table: str,
    names: str,
    link: Link,
    by_name: Callable[[str], Any],
) -> Any:
    if link.id:
        return draft.row(table, link.id)
    draft.reads.add((names, link.name))
    found = by_name(link.name)
    # A row this very change wrote or deleted wins over the state's.
    return draft.row(table, found.id) if found is not None else None


# ---------------------------------------------------------------- tokens


def _check_new_ids(draft: Draft, token: Token) -> None:
    acl = _acl(draft)
    for label, value in (
        ("AccessorID", token.accessor_id),
        ("SecretID", token.secret_id),
    ):
        if not is_uuid(value) and not (
            label == "SecretID" and value == ANONYMOUS_SECRET
        ):
            raise InvalidRequest(f"Invalid Token: {label} is not a valid UUID")
    if token.accessor_id.lower().startswith(RESERVED_ID_PREFIX):
        raise InvalidRequest(
            f"Invalid Token: UUIDs with the prefix {RESERVED_ID_PREFIX!r} are reserved"
        )
    if draft.row(ACL_TOKENS, token.accessor_id) is not None:
        raise InvalidRequest("Invalid Token: AccessorID is already in use")
    draft.reads.add((SECRETS, token.secret_id))
    draft.writes.add((SECRETS, token.secret_id))
    if acl.token_by_secret(token.secret_id) is not None:
        raise InvalidRequest("Invalid Token: SecretID is already in use")


def _set_token(draft: Draft, change: SetToken) -> None:
    token = change.token
    if change.create:
        _check_new_ids(draft, token)
        expires = token.expiration_time
        if change.expiration_ttl:
            if expires is not None:
                raise InvalidRequest(
                    "Expiration TTL and Expiration Time cannot both be set"
                )
            ttl = change.expiration_ttl
            if not MIN_EXPIRATION_TTL <= ttl <= MAX_EXPIRATION_TTL:
                raise InvalidRequest(
                    "Expiration TTL should be between 1m0s and 24h0m0s"
                )
            expires = token.create_time + ttl
        elif expires is not None and expires < token.create_time:
            raise InvalidRequest("ExpirationTime cannot be in the past")
        token = msgspec.structs.replace(token, expiration_time=expires)
    else:
        old = draft.row(ACL_TOKENS, token.accessor_id)
        if not isinstance(old, Token):
            raise PermissionDenied("ACL not found")
        if change.expiration_ttl:
            raise InvalidRequest("Cannot change expiration time of a token")
        if change.has_secret and token.secret_id != old.secret_id:
            raise InvalidRequest("Changing a token's SecretID is not permitted")
        if token.local != old.local:
            raise InvalidRequest(f"Cannot toggle local mode of {old.accessor_id}")
        if change.has_expiration and token.expiration_time != old.expiration_time:
            raise InvalidRequest(f"Cannot change expiration time of {old.accessor_id}")
        token = msgspec.structs.replace(
            token,
            secret_id=old.secret_id,
            expiration_time=old.expiration_time,
            auth_method=old.auth_method,
            create_time=old.create_time,
            create_index=old.create_index,
        )
    grants = _resolve_grants(draft, token.grants, local=token.local, owner="token")
    draft.put_row(
        ACL_TOKENS, token.accessor_id, msgspec.structs.replace(token, grants=grants)
    )
    _touch(draft)


def _clone_token(draft: Draft, change: CloneToken) -> None:
    old = draft.row(ACL_TOKENS, change.accessor_id)
    if not isinstance(old, Token):
        raise PermissionDenied("ACL not found")
    if old.auth_method:
        raise InvalidRequest("Cannot clone a token created from an auth method")
    clone = msgspec.structs.replace(
        old,
        accessor_id=change.new_accessor_id,
        secret_id=change.new_secret_id,
        description=change.description or old.description,
        create_time=change.now,
        create_index=0,
        modify_index=0,
    )
    _check_new_ids(draft, clone)
    draft.put_row(ACL_TOKENS, clone.accessor_id, clone)
    _touch(draft)


def _delete_token(draft: Draft, change: DeleteToken) -> None:
    if change.accessor_id == ANONYMOUS_TOKEN_ID:
        raise InvalidRequest("Delete operation not permitted on the anonymous token")
    if change.accessor_id == change.caller:
        raise InvalidRequest(
            "Deletion of the request's authorization token is not permitted"
        )
    old = draft.row(ACL_TOKENS, change.accessor_id)
    if old is None:
        return  # Consul: deleting what is not there succeeds
    draft.put_row(ACL_TOKENS, change.accessor_id, None)
    _touch(draft)


def _bootstrap(draft: Draft, change: Bootstrap) -> None:
    fact = draft.row(ACL_FACTS, BOOTSTRAPPED)
    if isinstance(fact, AclFact):
        raise PermissionDenied(
            "Permission denied: ACL bootstrap no longer allowed"
            f" (reset index: {fact.create_index})"
        )
    _check_new_ids(draft, change.token)
    draft.put_row(ACL_TOKENS, change.token.accessor_id, change.token)
    draft.put_row(ACL_FACTS, BOOTSTRAPPED, AclFact(name=BOOTSTRAPPED, value="api"))
    _touch(draft)


def _initialize(draft: Draft, change: InitializeAcl) -> None:
    """Builtins first; rows already there (a restart) are left alone."""
    builtins = (
        Policy(
            id=MANAGEMENT_POLICY_ID,
            name=MANAGEMENT_POLICY_NAME,
            description=MANAGEMENT_POLICY_DESCRIPTION,
            rules=MANAGEMENT_RULES,
        ),
        Policy(
            id=READ_ONLY_POLICY_ID,
            name=READ_ONLY_POLICY_NAME,
            description=READ_ONLY_POLICY_DESCRIPTION,
            rules=READ_ONLY_RULES,
        ),
    )
    for policy in builtins:
        if draft.row(ACL_POLICIES, policy.id) is None:
            draft.put_row(ACL_POLICIES, policy.id, policy)
    if draft.row(ACL_TOKENS, ANONYMOUS_TOKEN_ID) is None:
        draft.put_row(
            ACL_TOKENS,
            ANONYMOUS_TOKEN_ID,
            Token(
                accessor_id=ANONYMOUS_TOKEN_ID,
                secret_id=ANONYMOUS_SECRET,
                description=ANONYMOUS_DESCRIPTION,
                create_time=change.now,
            ),
        )
    secret = change.initial_management
    if secret:
        draft.reads.add((SECRETS, secret))
        draft.writes.add((SECRETS, secret))
    if secret and _acl(draft).token_by_secret(secret) is None:
        draft.put_row(
            ACL_TOKENS,
            change.initial_accessor,
            Token(
                accessor_id=change.initial_accessor,
                secret_id=secret,
                description=INITIAL_MANAGEMENT_DESCRIPTION,
                grants=Grants(policies=(Link(id=MANAGEMENT_POLICY_ID),)),
                create_time=change.now,
            ),
        )
        if draft.row(ACL_FACTS, BOOTSTRAPPED) is None:
            draft.put_row(
                ACL_FACTS, BOOTSTRAPPED, AclFact(name=BOOTSTRAPPED, value="config")
            )
    if draft.changed:
        _touch(draft)


# ---------------------------------------------------------------- policies


def _set_policy(draft: Draft, change: SetPolicy) -> None:
    policy = change.policy
    if not _POLICY_NAME.match(policy.name):
        raise InvalidRequest(f"Invalid Policy: invalid Name {policy.name!r}")
    old = draft.row(ACL_POLICIES, policy.id)
    if change.create:
        if old is not None:
            raise InvalidRequest("Invalid Policy: ID is already in use")
    elif not isinstance(old, Policy):
        raise InvalidRequest(f"Cannot find policy {policy.id}")
    if policy.id == MANAGEMENT_POLICY_ID and isinstance(old, Policy):
        if policy.rules != old.rules:
            raise InvalidRequest(
                "Changing the Rules for the builtin global-management policy"
                " is not permitted"
            )
        if policy.datacenters:
            raise InvalidRequest(
                "Changing the Datacenters of the builtin global-management policy"
                " is not permitted"
            )
    if policy.id == READ_ONLY_POLICY_ID and isinstance(old, Policy):
        raise InvalidRequest(
            "Changing the builtin global-read-only policy is not permitted"
        )
    _claim_name(draft, POLICY_NAMES, policy.name, policy.id, "Policy")
    if isinstance(old, Policy) and old.name != policy.name:
        draft.writes.add((POLICY_NAMES, old.name))
    try:
        parse_rules(policy.rules)
    except InvalidRequest as exc:
        raise InvalidRequest(f"Invalid Policy: failed to parse rules: {exc}") from None
    if isinstance(old, Policy):
        policy = msgspec.structs.replace(policy, create_index=old.create_index)
    draft.put_row(ACL_POLICIES, policy.id, policy)
    _touch(draft)


def _claim_name(draft: Draft, names: str, name: str, owner_id: str, kind: str) -> None:
    acl = _acl(draft)
    draft.reads.add((names, name))
    draft.writes.add((names, name))
    holder = (
        acl.policy_by_name(name) if names == POLICY_NAMES else acl.role_by_name(name)
    )
    if holder is not None and holder.id != owner_id:
        raise InvalidRequest(
            f"Invalid {kind}: A {kind} with Name {name!r} already exists"
        )


def _delete_policy(draft: Draft, change: DeletePolicy) -> None:
    builtin = {
        MANAGEMENT_POLICY_ID: "global-management",
        READ_ONLY_POLICY_ID: "global-read-only",
    }.get(change.policy_id)
    if builtin is not None:
        raise InvalidRequest(
            f"Delete operation not permitted on the builtin {builtin} policy"
        )
    old = draft.row(ACL_POLICIES, change.policy_id)
    if isinstance(old, Policy):
        draft.writes.add((POLICY_NAMES, old.name))
        draft.put_row(ACL_POLICIES, change.policy_id, None)
        _touch(draft)


# ---------------------------------------------------------------- roles


def _set_role(draft: Draft, change: SetRole) -> None:
    role = change.role
    if not _ROLE_NAME.match(role.name):
        raise InvalidRequest(f"Invalid Role: invalid Name {role.name!r}")
    old = draft.row(ACL_ROLES, role.id)
    if change.create:
        if old is not None:
            raise InvalidRequest("Invalid Role: ID is already in use")
    elif not isinstance(old, Role):
        raise InvalidRequest(f"Cannot find role {role.id}")
    _claim_name(draft, ROLE_NAMES, role.name, role.id, "Role")
    if isinstance(old, Role) and old.name != role.name:
        draft.writes.add((ROLE_NAMES, old.name))
    grants = _resolve_grants(draft, role.grants, local=False, owner="role")
    role = msgspec.structs.replace(role, grants=grants)
    if isinstance(old, Role):
        role = msgspec.structs.replace(role, create_index=old.create_index)
    draft.put_row(ACL_ROLES, role.id, role)
    _touch(draft)


def _delete_role(draft: Draft, change: DeleteRole) -> None:
    old = draft.row(ACL_ROLES, change.role_id)
    if isinstance(old, Role):
        draft.writes.add((ROLE_NAMES, old.name))
        draft.put_row(ACL_ROLES, change.role_id, None)
        _touch(draft)


# ---------------------------------------------------------------- auth methods


def _set_auth_method(draft: Draft, change: SetAuthMethod) -> None:
    method = change.method
    if not _METHOD_NAME.match(method.name):
        raise InvalidRequest("Invalid Auth Method: invalid Name")
    if method.type not in AUTH_METHOD_TYPES:
        raise InvalidRequest(
            f"Invalid Auth Method: Type should be one of: {sorted(AUTH_METHOD_TYPES)}"
        )
    if method.token_locality not in ("", "local", "global"):
        raise InvalidRequest(
            f"Invalid Auth Method: invalid TokenLocality {method.token_locality!r}"
        )
    old = draft.row(ACL_AUTH_METHODS, method.name)
    if change.create and old is not None:
        raise InvalidRequest(
            f"Invalid Auth Method: an Auth Method named {method.name!r} exists"
        )
    if not change.create:
        if not isinstance(old, AuthMethod):
            raise InvalidRequest(f"Cannot find auth method {method.name}")
        if old.type != method.type:
            raise InvalidRequest(
                f"the Type of an auth method cannot be changed:"
                f" {old.type!r} -> {method.type!r}"
            )
        method = msgspec.structs.replace(method, create_index=old.create_index)
    draft.put_row(ACL_AUTH_METHODS, method.name, method)
    _touch(draft)


def _delete_auth_method(draft: Draft, change: DeleteAuthMethod) -> None:
    acl = _acl(draft)
    if draft.row(ACL_AUTH_METHODS, change.name) is None:
        return
    draft.put_row(ACL_AUTH_METHODS, change.name, None)
    # Consul deletes the method's binding rules and the tokens it issued.
    for rule in list(acl.binding_rules.values()):
        if rule.auth_method == change.name:
            draft.put_row(ACL_BINDING_RULES, rule.id, None)
    for token in list(acl.tokens.values()):
        if token.auth_method == change.name:
            draft.put_row(ACL_TOKENS, token.accessor_id, None)
    _touch(draft)


def _set_binding_rule(draft: Draft, change: SetBindingRule) -> None:
    rule = change.rule
    old = draft.row(ACL_BINDING_RULES, rule.id)
    if change.create and old is not None:
        raise InvalidRequest("Invalid Binding Rule: ID is already in use")
    if not change.create:
        if not isinstance(old, BindingRule):
            raise InvalidRequest(f"Cannot find binding rule {rule.id}")
        if not rule.auth_method:
            rule = msgspec.structs.replace(rule, auth_method=old.auth_method)
        if old.auth_method != rule.auth_method:
            raise InvalidRequest("the AuthMethod field of a Binding Rule is immutable")
        rule = msgspec.structs.replace(rule, create_index=old.create_index)
    if not rule.auth_method:
        raise InvalidRequest("Invalid Binding Rule: no AuthMethod is set")
    if draft.row(ACL_AUTH_METHODS, rule.auth_method) is None:
        raise InvalidRequest(
            f"Invalid Binding Rule: unknown AuthMethod {rule.auth_method!r}"
        )
    if rule.bind_type not in BIND_TYPES:
        raise InvalidRequest(
            f"Invalid Binding Rule: unknown BindType {rule.bind_type!r}"
        )
    if not rule.bind_name:
        raise InvalidRequest("Invalid Binding Rule: no BindName is set")
    draft.put_row(ACL_BINDING_RULES, rule.id, rule)
    _touch(draft)


def _delete_binding_rule(draft: Draft, change: DeleteBindingRule) -> None:
    if draft.row(ACL_BINDING_RULES, change.rule_id) is not None:
        draft.put_row(ACL_BINDING_RULES, change.rule_id, None)
        _touch(draft)


def _set_fact(draft: Draft, change: SetAclFact) -> None:
    old = draft.row(ACL_FACTS, change.name)
    if isinstance(old, AclFact) and old.value == change.value:
        return
    draft.put_row(ACL_FACTS, change.name, AclFact(name=change.name, value=change.value))


PLANNERS: dict[type[Change], Callable[[Any, Any], bool | None]] = {
    InitializeAcl: _initialize,
    Bootstrap: _bootstrap,
    SetToken: _set_token,
    CloneToken: _clone_token,
    DeleteToken: _delete_token,
    SetPolicy: _set_policy,
    DeletePolicy: _delete_policy,
    SetRole: _set_role,
    DeleteRole: _delete_role,
    SetAuthMethod: _set_auth_method,
    DeleteAuthMethod: _delete_auth_method,
    SetBindingRule: _set_binding_rule,
    DeleteBindingRule: _delete_binding_rule,
    SetAclFact: _set_fact,
}

__all__ = ["PLANNERS", "NotFound", "is_uuid"]
