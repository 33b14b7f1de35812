"""Every table a store persists, with its row type, in load order.

The one list: the SQLite, memory and etcd stores all read it, so a new
table is added here and nowhere else. Load order matters at start-up:
nodes before the services and checks that refer to them.
"""

from __future__ import annotations

import msgspec

from waypost.core.acl.changes import (
    ACL_AUTH_METHODS,
    ACL_BINDING_RULES,
    ACL_FACTS,
    ACL_POLICIES,
    ACL_ROLES,
    ACL_TOKENS,
)
from waypost.core.acl.model import AclFact, AuthMethod, BindingRule, Policy, Role, Token
from waypost.core.changes import CHECKS, KV, NODES, SERVICES
from waypost.core.config.changes import CONFIG_ENTRIES, SETTINGS
from waypost.core.config.model import ConfigEntry, Setting
from waypost.core.coordinates import COORDINATES, NodeCoordinate
from waypost.core.model import Check, KVEntry, Node, Service
from waypost.core.sessions import SESSIONS, Session

TABLES: dict[str, type[msgspec.Struct]] = {
    NODES: Node,
    SERVICES: Service,
    CHECKS: Check,
    KV: KVEntry,
    ACL_POLICIES: Policy,
    ACL_ROLES: Role,
    ACL_AUTH_METHODS: AuthMethod,
    ACL_BINDING_RULES: BindingRule,
    ACL_TOKENS: Token,
    ACL_FACTS: AclFact,
    # config entries and cluster settings (core/config/)
    CONFIG_ENTRIES: ConfigEntry,
    SETTINGS: Setting,
    # Sessions (issue 15): after nodes and checks, which they depend on.
    SESSIONS: Session,
    # Network coordinates (issue 15b): after the nodes they belong to.
    COORDINATES: NodeCoordinate,
}

#: table -> its place in the load order.
LOAD_ORDER: dict[str, int] = {table: i for i, table in enumerate(TABLES)}
