"""Rows that arrive from elsewhere: who they wake, and how a state differs.

An agent in cluster mode applies entries written by other agents: it sees
their rows (from the etcd watch), not their plans. `topics_of` computes the
topics a plan would have named, from the rows and the catalog as it is
*before* they apply (a deleted row's topics are those of its old value).
`diff` turns a whole new state (a relist after etcd compacted the revision
the watch wanted) into the rows that change the catalog into it, so blocking
queries see one change and not an error.

No I/O; values in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from waypost.core.acl.changes import ACL_TABLES
from waypost.core.catalog import Catalog
from waypost.core.changes import CHECKS, KV, NODES, SERVICES, Row
from waypost.core.config.changes import (
    CONFIG_ENTRIES,
    CONFIG_TABLES,
    kind_topic,
    setting_topic,
)
from waypost.core.coordinates import COORDINATES, T_COORDINATES
from waypost.core.model import Check, Service
from waypost.core.sessions import SESSIONS, T_SESSIONS
from waypost.core.tables import LOAD_ORDER
from waypost.core.topics import (
    T_ACL,
    T_CHECKS,
    T_NODES,
    T_SERVICES,
    kv_topic,
    node_topic,
    service_topic,
)
from waypost.core.watch import Topic


def topics_of(catalog: Catalog, rows: Iterable[Row]) -> set[Topic]:
    """Every topic whose readers `rows` would change, as the planner names them.

    Call before the rows are applied: deletions are described by the values
    they remove. Services added by the same rows count as on their node.
    """
    rows = list(rows)
    topics: set[Topic] = set()
    # Node-level checks and node data reach every instance on the node,
    # including instances these rows add.
    new_services: dict[str, set[str]] = {}
    for table, _key, value in rows:
        if table == SERVICES and isinstance(value, Service):
            new_services.setdefault(value.node, set()).add(value.name)

    def services_on(node: str) -> set[Topic]:
        names = {s.name for s in catalog.node_services(node)}
        names |= new_services.get(node, set())
        return {service_topic(name) for name in names}

    for table, key, value in rows:
        if table == KV:
            topics.add(kv_topic(key))
        elif table in ACL_TABLES:
            topics.add(T_ACL)
        elif table in CONFIG_TABLES:
            topics.add(
                kind_topic(key.partition("/")[0])
                if table == CONFIG_ENTRIES
                else setting_topic(key)
            )
        elif table == SESSIONS:
            topics.add(T_SESSIONS)
        elif table == COORDINATES:
            topics.add(T_COORDINATES)
        elif table == NODES:
            name = key
            topics.update((T_NODES, node_topic(name)))
            topics |= services_on(name)
            if value is None:
                topics.add(T_CHECKS)
        elif table == SERVICES:
            node, _, service_id = key.partition("\x00")
            old = catalog.node_service(node, service_id)
            topics.update((T_SERVICES, node_topic(node)))
            for service in (old, value):
                if isinstance(service, Service):
                    topics.add(service_topic(service.name))
        elif table == CHECKS:
            node, _, check_id = key.partition("\x00")
            for check in (catalog.get_check(node, check_id), value):
                if isinstance(check, Check):
                    topics.update((T_CHECKS, node_topic(check.node)))
                    if check.service_id:
                        topics.add(service_topic(check.service_name))
                    else:
                        topics |= services_on(check.node)
    return topics


def current_rows(catalog: Catalog) -> dict[tuple[str, str], object]:
    """Every durable row the catalog holds, keyed by (table, key)."""
    rows: dict[tuple[str, str], object] = {}
    for name, node in catalog.nodes.items():
        rows[(NODES, name)] = node
    for service in catalog.all_services():
        rows[(SERVICES, f"{service.node}\x00{service.service_id}")] = service
    for check in catalog.all_checks():
        rows[(CHECKS, f"{check.node}\x00{check.check_id}")] = check
    for entry in catalog.kv_list(""):
        rows[(KV, entry.key)] = entry
    for table, key, value in catalog.acl.all_rows():
        rows[(table, key)] = value
    for table, key, value in catalog.config.all_rows():
        rows[(table, key)] = value
    for session in catalog.sessions.all():
        rows[(SESSIONS, session.id)] = session
    return rows


def diff(catalog: Catalog, rows: Iterable[Row]) -> list[Row]:
    """The rows that turn `catalog` into exactly the state `rows` describe.

    Check output kept only in memory (an output-only update) is not a
    difference: the indexes decide equality, and an equal check keeps it.
    """
    wanted: dict[tuple[str, str], msgspec.Struct] = {}
    for table, key, value in rows:
        if value is not None:
            wanted[(table, key)] = value
    have = current_rows(catalog)
    changed: list[Row] = []
    for (table, key), new in wanted.items():
        old = have.get((table, key))
        if old is None or not _same_row(old, new):
            changed.append((table, key, new))
    for table, key in have:
        if (table, key) not in wanted:
            changed.append((table, key, None))
    # Puts of nodes before their services and checks; deletes after.
    changed.sort(key=lambda row: (row[2] is None, LOAD_ORDER[row[0]]))
    return changed


def _same_row(old: object, new: object) -> bool:
    if isinstance(old, Check) and isinstance(new, Check):
        # The same write (same ModifyIndex) is the same row, whatever output
        # this agent kept in memory since.
        return (
            old.modify_index == new.modify_index
            and old.create_index == new.create_index
            and old.status == new.status
        )
    return old == new
