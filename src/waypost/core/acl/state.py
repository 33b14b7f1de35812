"""The ACL state in memory: rows by table, lookups, compiled authorizers.

The catalog owns one `AclState` and hands it the ACL tables' rows in
`apply` (and `restore`), so ACL writes take the catalog's one write path.
Secrets are looked up by their SHA-256 and then compared with
`hmac.compare_digest`: the time a lookup takes says nothing about how much
of a guess was right. Authorizers are compiled on first use per token and
all dropped when any ACL row changes (`epoch`). No I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import msgspec

from waypost.core.acl.authorizer import Authorizer
from waypost.core.acl.changes import (
    ACL_AUTH_METHODS,
    ACL_BINDING_RULES,
    ACL_FACTS,
    ACL_POLICIES,
    ACL_ROLES,
    ACL_TOKENS,
)
from waypost.core.acl.model import (
    MANAGEMENT_POLICY_ID,
    AclFact,
    AuthMethod,
    BindingRule,
    Grants,
    Policy,
    Role,
    Token,
)
from waypost.core.acl.rules import (
    Rule,
    node_identity_rules,
    parse_rules,
    service_identity_rules,
    template_rules,
)


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class AclState:
    """Every ACL row, indexed the ways the endpoints and the checks need."""

    def __init__(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.policies: dict[str, Policy] = {}
        self.roles: dict[str, Role] = {}
        self.auth_methods: dict[str, AuthMethod] = {}
        self.binding_rules: dict[str, BindingRule] = {}
        self.facts: dict[str, AclFact] = {}
        self._by_secret: dict[bytes, str] = {}
        self._policy_names: dict[str, str] = {}
        self._role_names: dict[str, str] = {}
        self._authorizers: dict[str, Authorizer] = {}
        #: Bumped by every ACL row applied: answers cached for a token are
        #: valid for one epoch.
        self.epoch = 0
        self.default_allow = True
        self.datacenter = "dc1"

    def configure(self, *, default_allow: bool, datacenter: str) -> None:
        self.default_allow = default_allow
        self.datacenter = datacenter
        self._authorizers.clear()
        self.epoch += 1

    # ------------------------------------------------------------ rows

    def _tables(self) -> dict[str, dict[str, msgspec.Struct]]:
        return {
            ACL_TOKENS: self.tokens,  # type: ignore[dict-item]
            ACL_POLICIES: self.policies,  # type: ignore[dict-item]
            ACL_ROLES: self.roles,  # type: ignore[dict-item]
            ACL_AUTH_METHODS: self.auth_methods,  # type: ignore[dict-item]
            ACL_BINDING_RULES: self.binding_rules,  # type: ignore[dict-item]
            ACL_FACTS: self.facts,  # type: ignore[dict-item]
        }

    def all_rows(self) -> Iterator[tuple[str, str, msgspec.Struct]]:
        for table, rows in self._tables().items():
            for key, value in rows.items():
                yield table, key, value

    def row(self, table: str, key: str) -> msgspec.Struct | None:
        return self._tables()[table].get(key)

    def apply_row(self, table: str, key: str, value: msgspec.Struct | None) -> None:
        rows = self._tables()[table]
        old = rows.get(key)
        if table == ACL_TOKENS:
            if isinstance(old, Token):
                self._by_secret.pop(secret_digest(old.secret_id), None)
            if isinstance(value, Token):
                self._by_secret[secret_digest(value.secret_id)] = key
        elif table == ACL_POLICIES:
            if isinstance(old, Policy):
                self._policy_names.pop(old.name, None)
            if isinstance(value, Policy):
                self._policy_names[value.name] = key
        elif table == ACL_ROLES:
            if isinstance(old, Role):
                self._role_names.pop(old.name, None)
            if isinstance(value, Role):
                self._role_names[value.name] = key
        if value is None:
            rows.pop(key, None)
        else:
            rows[key] = value
        self._authorizers.clear()
        self.epoch += 1

    # ------------------------------------------------------------ lookups

    def token_by_secret(self, secret: str) -> Token | None:
        accessor = self._by_secret.get(secret_digest(secret))
        token = self.tokens.get(accessor) if accessor is not None else None
        if token is None or not hmac.compare_digest(
            token.secret_id.encode("utf-8", "surrogateescape"),
            secret.encode("utf-8", "surrogateescape"),
        ):
            return None
        return token

    def policy_by_name(self, name: str) -> Policy | None:
        found = self._policy_names.get(name)
        return self.policies.get(found) if found is not None else None

    def role_by_name(self, name: str) -> Role | None:
        found = self._role_names.get(name)
        return self.roles.get(found) if found is not None else None

    def is_bootstrapped(self) -> bool:
        return "bootstrapped" in self.facts

    # ------------------------------------------------------------ authorizers

    def authorizer(self, token: Token) -> Authorizer:
        found = self._authorizers.get(token.accessor_id)
        if found is None:
            found = self._compile(token)
            self._authorizers[token.accessor_id] = found
        return found

    def _compile(self, token: Token) -> Authorizer:
        rules: list[Rule] = []
        management = False
        for grants in self._all_grants(token.grants):
            for link in grants.policies:
                policy = self.policies.get(link.id)
                if policy is None or not self._in_datacenter(policy.datacenters):
                    continue
                management = management or policy.id == MANAGEMENT_POLICY_ID
                rules.extend(parse_rules(policy.rules))
            rules.extend(self._synthetic_rules(grants))
        return Authorizer(
            token.accessor_id,
            rules,
            default_allow=self.default_allow,
            allows_all=management,
        )

    def _all_grants(self, grants: Grants) -> Iterator[Grants]:
        yield grants
        for link in grants.roles:
            role = self.roles.get(link.id)
            if role is not None:
                yield role.grants

    def _synthetic_rules(self, grants: Grants) -> Iterator[Rule]:
        for identity in grants.service_identities:
            if self._in_datacenter(identity.datacenters):
                yield from parse_rules(service_identity_rules(identity.service_name))
        for node in grants.node_identities:
            if node.datacenter == self.datacenter:
                yield from parse_rules(node_identity_rules(node.node_name))
        for templated in grants.templated_policies:
            if self._in_datacenter(templated.datacenters):
                yield from parse_rules(
                    template_rules(templated.template_name, templated.name)
                )

    def _in_datacenter(self, datacenters: tuple[str, ...]) -> bool:
        return not datacenters or self.datacenter in datacenters
