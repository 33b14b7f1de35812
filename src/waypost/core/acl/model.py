"""ACL objects as frozen values, in Consul's model (agent/structs/acl.go).

Links name policies and roles by ID (the name shown is looked up when the
object is rendered, as Consul does). Times are Unix seconds (wall clock);
`create_index`/`modify_index` are stamped by the store like every row.
"""

from __future__ import annotations

import msgspec

#: Consul's reserved IDs (agent/structs/acl.go).
MANAGEMENT_POLICY_ID = "00000000-0000-0000-0000-000000000001"
MANAGEMENT_POLICY_NAME = "global-management"
MANAGEMENT_POLICY_DESCRIPTION = "Builtin Policy that grants unlimited access"
READ_ONLY_POLICY_ID = "00000000-0000-0000-0000-000000000002"
READ_ONLY_POLICY_NAME = "builtin/global-read-only"
READ_ONLY_POLICY_DESCRIPTION = (
    "Builtin Policy that grants unlimited read-only access to all components"
)
ANONYMOUS_TOKEN_ID = "00000000-0000-0000-0000-000000000002"
ANONYMOUS_SECRET = "anonymous"
ANONYMOUS_DESCRIPTION = "Anonymous Token"
INITIAL_MANAGEMENT_DESCRIPTION = "Initial Management Token"
BOOTSTRAP_DESCRIPTION = "Bootstrap Token (Global Management)"
RESERVED_ID_PREFIX = "00000000-0000-0000-0000-0000000000"


class Link(msgspec.Struct, frozen=True, kw_only=True):
    """A token's or role's link to a policy or role: by ID once stored."""

    id: str = ""
    name: str = ""


class ServiceIdentity(msgspec.Struct, frozen=True, kw_only=True):
    service_name: str
    datacenters: tuple[str, ...] = ()


class NodeIdentity(msgspec.Struct, frozen=True, kw_only=True):
    node_name: str
    datacenter: str


class TemplatedPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """`builtin/service`, `builtin/node` (variable `name`) or `builtin/dns`."""

    template_name: str
    name: str = ""
    datacenters: tuple[str, ...] = ()


class Grants(msgspec.Struct, frozen=True, kw_only=True):
    """What a token or role links to; the token's permissions are their union."""

    policies: tuple[Link, ...] = ()
    roles: tuple[Link, ...] = ()
    service_identities: tuple[ServiceIdentity, ...] = ()
    node_identities: tuple[NodeIdentity, ...] = ()
    templated_policies: tuple[TemplatedPolicy, ...] = ()


class Token(msgspec.Struct, frozen=True, kw_only=True):
    accessor_id: str
    secret_id: str
    description: str = ""
    grants: Grants = Grants()
    local: bool = False
    auth_method: str = ""
    #: Unix seconds; None: never expires.
    expiration_time: float | None = None
    create_time: float = 0.0
    create_index: int = 0
    modify_index: int = 0


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str = ""
    rules: str = ""
    datacenters: tuple[str, ...] = ()
    create_index: int = 0
    modify_index: int = 0


class Role(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str = ""
    #: `roles` is always empty: a role links no roles.
    grants: Grants = Grants()
    create_index: int = 0
    modify_index: int = 0


class AuthMethod(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: str
    display_name: str = ""
    description: str = ""
    max_token_ttl: float = 0.0
    token_locality: str = ""
    #: The method's `Config` object, as JSON text (its keys are the type's).
    config: str = "{}"
    create_index: int = 0
    modify_index: int = 0


class BindingRule(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    auth_method: str
    bind_type: str
    bind_name: str
    description: str = ""
    selector: str = ""
    create_index: int = 0
    modify_index: int = 0


class AclFact(msgspec.Struct, frozen=True, kw_only=True):
    """A named fact of the ACL system: the bootstrap's index, or an agent
    token set through /v1/agent/token (kept when persistence is on)."""

    name: str
    value: str = ""
    create_index: int = 0
    modify_index: int = 0


#: `acl-facts` keys.
BOOTSTRAPPED = "bootstrapped"
AGENT_TOKEN_PREFIX = "agent-token/"
