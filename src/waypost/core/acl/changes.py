"""ACL writes as change records, planned like every other write.

Handlers give a change everything that is not a function of the state:
new IDs and secrets (random), the wall-clock time. The planner
(`core/acl/planner.py`) validates it against the ACL state, resolves
policy and role names to IDs, and writes rows of the tables below.
"""

from __future__ import annotations

from waypost.core.acl.model import AuthMethod, BindingRule, Policy, Role, Token
from waypost.core.changes import Change

# Tables a store persists for the ACL system (`core/tables.py` lists all).
ACL_TOKENS = "acl-tokens"
ACL_POLICIES = "acl-policies"
ACL_ROLES = "acl-roles"
ACL_AUTH_METHODS = "acl-auth-methods"
ACL_BINDING_RULES = "acl-binding-rules"
ACL_FACTS = "acl-facts"

ACL_TABLES = frozenset(
    {
        ACL_TOKENS,
        ACL_POLICIES,
        ACL_ROLES,
        ACL_AUTH_METHODS,
        ACL_BINDING_RULES,
        ACL_FACTS,
    }
)


#: Lock keys, not tables: a plan reads and writes one per name (and secret)
#: it claims, so that two concurrent claims of one name serialize. A store
#: never persists them.
ACL_POLICY_NAMES = "acl-policy-names"
ACL_ROLE_NAMES = "acl-role-names"
ACL_SECRETS = "acl-secrets"
ACL_LOCKS = frozenset({ACL_POLICY_NAMES, ACL_ROLE_NAMES, ACL_SECRETS})


class InitializeAcl(Change, frozen=True, kw_only=True):
    """Start-up: the builtin policies, the anonymous token and, when given,
    the initial management token (which bootstraps the system, as Consul's
    `acl.tokens.initial_management` does). Writes only what is missing."""

    now: float
    initial_management: str = ""
    initial_accessor: str = ""


class Bootstrap(Change, frozen=True, kw_only=True):
    """`PUT /v1/acl/bootstrap`: one management token, once."""

    token: Token


class SetToken(Change, frozen=True, kw_only=True):
    """Create (`create`) or replace a token. Links may name policies and
    roles by ID or by name; the planner stores IDs.

    `expiration_ttl`: seconds from `token.create_time` (create only).
    `caller`: the accessor of the token making the request.
    """

    token: Token
    create: bool
    expiration_ttl: float = 0.0
    #: Update: which fields the body carried (the rest are kept).
    has_secret: bool = True
    has_expiration: bool = False


class CloneToken(Change, frozen=True, kw_only=True):
    accessor_id: str
    new_accessor_id: str
    new_secret_id: str
    description: str
    now: float


class DeleteToken(Change, frozen=True, kw_only=True):
    accessor_id: str
    #: The accessor of the token making the request: it may not delete itself.
    caller: str = ""


class SetPolicy(Change, frozen=True, kw_only=True):
    policy: Policy
    create: bool


class DeletePolicy(Change, frozen=True, kw_only=True):
    policy_id: str


class SetRole(Change, frozen=True, kw_only=True):
    role: Role
    create: bool


class DeleteRole(Change, frozen=True, kw_only=True):
    role_id: str


class SetAuthMethod(Change, frozen=True, kw_only=True):
    method: AuthMethod
    create: bool


class DeleteAuthMethod(Change, frozen=True, kw_only=True):
    """Deletes the method, its binding rules and the tokens it issued."""

    name: str


class SetBindingRule(Change, frozen=True, kw_only=True):
    rule: BindingRule
    create: bool


class DeleteBindingRule(Change, frozen=True, kw_only=True):
    rule_id: str


class SetAclFact(Change, frozen=True, kw_only=True):
    """An agent token set through /v1/agent/token (persistence on)."""

    name: str
    value: str
