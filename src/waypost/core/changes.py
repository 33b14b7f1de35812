"""Writes as values: what a client asked for, and what it would write.

A `Change` is one request to change the registry (register a service, update
a check, put a KV key, ...). The planner (`core/planner.py`) validates it whole
against the current state and turns it into a `Plan`: the rows it writes, the
topics whose readers it wakes, and the keys it read and wrote (so a store can
refuse it if something it read changed meanwhile). A store makes a plan
durable and gives it its index: then it is an `Entry`, which is what the
catalog applies, in index order, exactly as it applies rows at start-up.

    Change --plan--> Plan --store.commit--> Entry --catalog.apply--> visible

No I/O; values only.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from waypost.core.model import Check, HealthStatus, Node, Service
from waypost.core.watch import Topic

# Tables a store persists; rows are keyed by these names.
NODES, SERVICES, CHECKS, KV = "nodes", "services", "checks", "kv"

#: (table, key, value), or (table, key, None) to delete.
Row = tuple[str, str, msgspec.Struct | None]

#: A key a plan read or wrote: (table, key). Besides the tables above, two
#: sets have keys of their own, so that a plan that enumerates them conflicts
#: with a plan that adds to them: the checks of one service and the items
#: (services and checks) of one node.
LockKey = tuple[str, str]
SERVICE_CHECKS = "service-checks"
NODE_ITEMS = "node-items"

#: (node, check ID)
CheckKey = tuple[str, str]


def row_key(node: str, item_id: str) -> str:
    return f"{node}\x00{item_id}"


# ---------------------------------------------------------------- changes


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One requested write; planned whole, applied whole or not at all."""


class RegisterNode(Change, frozen=True, kw_only=True):
    node: Node


class RegisterService(Change, frozen=True, kw_only=True):
    """An instance with its checks; `keep_status`: re-registered checks keep
    their current status and output (Consul's agent endpoints)."""

    service: Service
    checks: list[Check] = []
    replace_existing_checks: bool = False
    keep_status: bool = False


class RegisterServices(Change, frozen=True, kw_only=True):
    """Several registrations, all or none: a service and the sidecar proxy
    its `Connect.SidecarService` expands into (Consul's agent)."""

    items: list[RegisterService]


class RegisterCheck(Change, frozen=True, kw_only=True):
    check: Check
    keep_status: bool = False


class CatalogRegister(Change, frozen=True, kw_only=True):
    """`/v1/catalog/register`: a node, optionally a service, and checks."""

    node: Node
    skip_node_update: bool = False
    service: Service | None = None
    checks: list[Check] = []


class DeregisterService(Change, frozen=True, kw_only=True):
    node: str
    service_id: str
    #: The catalog endpoint treats an unknown ID as done; the agent's says 404.
    missing_ok: bool = False


class DeregisterServices(Change, frozen=True, kw_only=True):
    """Several deregistrations, all or none: a service and the sidecar proxy
    registered with it (Consul's agent removes both)."""

    items: list[DeregisterService]


class DeregisterCheck(Change, frozen=True, kw_only=True):
    node: str
    check_id: str
    missing_ok: bool = False


class DeregisterNode(Change, frozen=True, kw_only=True):
    node: str
    missing_ok: bool = False


class UpdateCheck(Change, frozen=True, kw_only=True):
    """A check result, after hysteresis: the one way a status changes."""

    node: str
    check_id: str
    status: HealthStatus
    output: str = ""


class SetMaintenance(Change, frozen=True, kw_only=True):
    """Node maintenance (`service_id` empty) or one service's, on or off."""

    node: str
    service_id: str = ""
    enable: bool = True
    reason: str = ""


class KVPut(Change, frozen=True, kw_only=True):
    key: str
    value: bytes
    flags: int | None = None
    #: Only if the key's ModifyIndex is this (0: only if absent).
    cas: int | None = None


class KVDelete(Change, frozen=True, kw_only=True):
    key: str
    recurse: bool = False
    cas: int | None = None


# ---------------------------------------------------------------- plans


class Plan(msgspec.Struct, kw_only=True):
    """What one change would do, computed against the state it read.

    Row values carry `create_index` (0 for a new row) and `modify_index` 0:
    the store stamps them with the index it gives the change.
    """

    rows: list[Row] = []
    topics: set[Topic] = set()
    reads: set[LockKey] = set()
    writes: set[LockKey] = set()
    #: KV prefixes read whole (a recursive delete): any pending key under one
    #: of them conflicts.
    prefix_reads: list[str] = []
    #: Checks whose TTL (and reap) deadlines start over when this applies;
    #: for a plan without rows (re-registering what is there), at once.
    arm: list[CheckKey] = []
    #: An output-only check update: kept in memory, no index (Consul #3259).
    output: tuple[str, str, str] | None = None
    #: False when a condition did not hold (a KV CAS): Consul answers `false`.
    ok: bool = True
    #: What the change answers besides ok (a `/v1/txn`'s results, errors).
    result: object = None
    #: A snapshot restore: the rows replace the whole state, kept verbatim
    #: (their CreateIndex/ModifyIndex are the snapshot's); the plan read
    #: everything, so any pending write conflicts with it.
    replaces_all: bool = False

    @property
    def is_noop(self) -> bool:
        return not self.rows


class Entry(msgspec.Struct, kw_only=True):
    """A durable change with its index: what the catalog applies."""

    index: int
    rows: list[Row]
    topics: set[Topic]
    arm: list[CheckKey] = []
    #: Cluster mode: the revision of the last delete or rename anywhere. No
    #: query answers an older index (an agent that listed after the delete
    #: never saw its topics, and must agree with one that did).
    floor: int = 0
    #: A snapshot restore: every query's answer may have changed.
    replaces_all: bool = False


def stamp(plan: Plan, index: int) -> Entry:
    """Give a plan's rows their index: ModifyIndex, and CreateIndex if new.

    A restore keeps its rows' indexes; its own index is a floor for every
    query (all of them may answer differently now).
    """
    if plan.replaces_all:
        return Entry(
            index=index,
            rows=list(plan.rows),
            topics=plan.topics,
            floor=index,
            replaces_all=True,
        )
    rows: list[Row] = []
    for table, key, value in plan.rows:
        if value is not None:
            create = value.create_index or index  # type: ignore[attr-defined]
            value = msgspec.structs.replace(
                value, create_index=create, modify_index=index
            )
        rows.append((table, key, value))
    return Entry(index=index, rows=rows, topics=plan.topics, arm=plan.arm)


def all_keys(plan: Plan) -> Iterable[LockKey]:
    yield from plan.reads
    yield from plan.writes
