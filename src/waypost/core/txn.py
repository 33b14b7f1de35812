"""Consul's `/v1/txn`: KV, node, service and check operations, all or nothing.

One `Txn` change runs its operations in order on one Draft, as Consul's
state store runs them in one memdb transaction (agent/consul/state/txn.go):
each sees what the ones before it wrote; every failing operation adds a
`TxnError`; if any failed, nothing is written (the plan keeps its reads, no
rows) and the errors are the answer. Otherwise the plan is one change
record: one index for the whole transaction.

The answer's values are kept per operation as they were after it, with the
indexes of rows this transaction wrote still 0: `stamp_results` gives them
the index the store gave the change. No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from waypost.core import planner
from waypost.core.changes import (
    Change,
    DeregisterCheck,
    DeregisterNode,
    DeregisterService,
    KVDelete,
    KVPut,
    RegisterCheck,
    RegisterNode,
    RegisterService,
)
from waypost.core.model import Check, Node, Service
from waypost.core.sessions import KVLock, KVUnlock, plan_lock, plan_unlock
from waypost.core.topics import kv_topic
from waypost.exceptions import RequestRejected

if TYPE_CHECKING:
    from waypost.core.planner import Draft

#: agent/txn_endpoint.go maxTxnOps.
MAX_OPS = 64

KV_WRITES = frozenset(
    {"set", "delete", "delete-cas", "delete-tree", "cas", "lock", "unlock"}
)
#: Node, Service and Check verbs (api.NodeGet, ... "delete-cas").
GET = "get"


class KVOp(msgspec.Struct, frozen=True, kw_only=True):
    verb: str
    key: str
    value: bytes | None = None
    flags: int = 0
    #: `Index`: the ModifyIndex a cas, delete-cas or check-index compares.
    index: int = 0
    session: str = ""


class NodeOp(msgspec.Struct, frozen=True, kw_only=True):
    verb: str
    node: Node
    index: int = 0


class ServiceOp(msgspec.Struct, frozen=True, kw_only=True):
    verb: str
    node: str
    service: Service
    index: int = 0


class CheckOp(msgspec.Struct, frozen=True, kw_only=True):
    verb: str
    check: Check
    index: int = 0


TxnOp = KVOp | NodeOp | ServiceOp | CheckOp


class Txn(Change, frozen=True, kw_only=True):
    """`PUT /v1/txn`: `now` decides lock-delays, as the KV endpoint's."""

    ops: tuple[TxnOp, ...]
    now: float = 0.0


class TxnError(msgspec.Struct, frozen=True):
    op_index: int
    what: str


#: (kind, value): "KV", "Node", "Service" or "Check", and the row.
Result = tuple[str, msgspec.Struct]


class TxnAnswer(msgspec.Struct, frozen=True, kw_only=True):
    results: tuple[Result, ...] = ()
    errors: tuple[TxnError, ...] = ()


def is_write(op: TxnOp) -> bool:
    """agent/txn_endpoint.go: whether the op makes the txn a write."""
    if isinstance(op, KVOp):
        return op.verb in KV_WRITES
    return op.verb != GET


class _Failed(Exception):
    """One operation failed: its message is Consul's."""


# ---------------------------------------------------------------- planning


def plan_txn(draft: Draft, change: Txn) -> bool:
    results: list[Result] = []
    errors: list[TxnError] = []
    for i, op in enumerate(change.ops):
        try:
            results += _run(draft, op, change.now)
        except (_Failed, RequestRejected) as failed:
            errors.append(TxnError(i, str(failed)))
    if errors:
        # Refused whole: nothing written; the errors are the answer.
        draft.changed.clear()
        draft.writes.clear()
        draft.topics.clear()
        draft.arm.clear()
        draft.result = TxnAnswer(errors=tuple(errors))
        return False
    draft.result = TxnAnswer(results=tuple(results))
    return True


def _run(draft: Draft, op: TxnOp, now: float) -> list[Result]:
    if isinstance(op, KVOp):
        return _kv(draft, op, now)
    if isinstance(op, NodeOp):
        return _node(draft, op)
    if isinstance(op, ServiceOp):
        return _service(draft, op)
    return _check(draft, op)


def _kv_result(draft: Draft, key: str, *, value: bool = False) -> list[Result]:
    entry = draft.kv(key)
    if entry is None:
        return []
    if not value:
        entry = msgspec.structs.replace(entry, value=None)
    return [("KV", entry)]


def _kv(draft: Draft, op: KVOp, now: float) -> list[Result]:
    key, verb = op.key, op.verb
    if verb in KV_WRITES and not key and verb != "delete-tree":
        raise _Failed("Must provide key")
    value = op.value or b""
    if verb in ("set", "cas"):
        cas = op.index if verb == "cas" else None
        put = KVPut(key=key, value=value, flags=op.flags, cas=cas)
        if not planner.plan_kv_put(draft, put):
            raise _Failed(f'failed to set key "{key}", index is stale')
        return _kv_result(draft, key)
    if verb == "delete":
        planner.plan_kv_delete(draft, KVDelete(key=key))
        return []
    if verb == "delete-tree":
        planner.plan_kv_delete(draft, KVDelete(key=key, recurse=True))
        return []
    if verb == "delete-cas":
        # kvsDeleteCASTxn: a key already gone counts as deleted.
        old = draft.kv(key)
        if old is not None:
            if old.modify_index != op.index:
                raise _Failed(f'failed to delete key "{key}", index is stale')
            draft.delete_kv(key)
            draft.topics.add(kv_topic(key))
        return []
    if verb == "lock":
        lock = KVLock(key=key, value=value, flags=op.flags, session=op.session, now=now)
        if op.session and draft.catalog.sessions.is_delayed(key, now):
            raise _Failed(f'failed to lock key "{key}" due to lock delay')
        if not plan_lock(draft, lock):
            raise _Failed(f'failed to lock key "{key}", lock is already held')
        return _kv_result(draft, key)
    if verb == "unlock":
        unlock = KVUnlock(key=key, value=value, flags=op.flags, session=op.session)
        if not plan_unlock(draft, unlock):
            raise _Failed(
                f'failed to unlock key "{key}", lock isn\'t held, or is held by'
                " another session"
            )
        return _kv_result(draft, key)
    if verb == "get":
        if draft.kv(key) is None:
            raise _Failed(f'key "{key}" doesn\'t exist')
        return _kv_result(draft, key, value=True)
    if verb == "get-tree":
        results: list[Result] = []
        for name in draft.kv_keys(key):
            results += _kv_result(draft, name, value=True)
        return results
    if verb == "check-index":
        entry = draft.kv(key)
        if entry is None:
            raise _Failed(f'failed to check index, key "{key}" doesn\'t exist')
        if entry.modify_index != op.index:
            raise _Failed(
                f'failed index check for key "{key}", current modify index'
                f" {entry.modify_index} != {op.index}"
            )
        return _kv_result(draft, key)
    if verb == "check-session":
        entry = draft.kv(key)
        if entry is None:
            raise _Failed(f'failed to check session, key "{key}" doesn\'t exist')
        if entry.session != op.session:
            raise _Failed(
                f'failed session check for key "{key}", current session'
                f' "{entry.session}" != "{op.session}"'
            )
        return _kv_result(draft, key)
    if verb == "check-not-exists":
        if draft.kv(key) is not None:
            raise _Failed(f'key "{key}" exists')
        return []
    raise _Failed(f'unknown KV verb "{verb}"')


def _is_stale(existing: msgspec.Struct | None, index: int) -> bool:
    """ensure*CASTxn: 0 only if absent, else only at that ModifyIndex."""
    if existing is None:
        return index != 0
    return int(existing.modify_index) != index  # type: ignore[attr-defined]


def _node(draft: Draft, op: NodeOp) -> list[Result]:
    name, verb = op.node.name, op.verb
    if verb == GET:
        found = draft.node(name)
        if found is None:
            raise _Failed(f'node "{name}" doesn\'t exist')
        return [("Node", found)]
    if verb in ("set", "cas"):
        if verb == "cas" and _is_stale(draft.node(name), op.index):
            raise _Failed(f'failed to set node "{name}", index is stale')
        planner.plan_register_node(draft, RegisterNode(node=op.node))
        found = draft.node(name)
        return [("Node", found)] if found is not None else []
    if verb == "delete-cas":
        found = draft.node(name)
        if found is None or found.modify_index != op.index:
            raise _Failed(f'failed to delete node "{name}", index is stale')
    elif verb != "delete":
        raise _Failed(f'unknown Node verb "{verb}"')
    planner.plan_deregister_node(draft, DeregisterNode(node=name, missing_ok=True))
    return []


def _service(draft: Draft, op: ServiceOp) -> list[Result]:
    node, sid, verb = op.node, op.service.service_id, op.verb
    if verb == GET:
        found = draft.service(node, sid)
        if found is None:
            raise _Failed(f'service "{sid}" on node "{node}" doesn\'t exist')
        return [("Service", found)]
    if verb in ("set", "cas"):
        if verb == "cas" and _is_stale(draft.service(node, sid), op.index):
            raise _Failed(
                f'failed to set service "{sid}" on node "{node}", index is stale'
            )
        if draft.node(node) is None:
            raise _Failed("Missing node registration")
        service = msgspec.structs.replace(op.service, node=node)
        planner.plan_register_service(draft, RegisterService(service=service))
        found = draft.service(node, sid)
        return [("Service", found)] if found is not None else []
    if verb == "delete-cas":
        found = draft.service(node, sid)
        if found is None or found.modify_index != op.index:
            raise _Failed(
                f'failed to delete service "{sid}" on node "{node}", index is stale'
            )
    elif verb != "delete":
        raise _Failed(f'unknown Service verb "{verb}"')
    planner.plan_deregister_service(
        draft, DeregisterService(node=node, service_id=sid, missing_ok=True)
    )
    return []


def _check(draft: Draft, op: CheckOp) -> list[Result]:
    check, verb = op.check, op.verb
    node, check_id = check.node, check.check_id
    if verb == GET:
        found = draft.check(node, check_id)
        if found is None:
            raise _Failed(f'check "{check_id}" on node "{node}" doesn\'t exist')
        return [("Check", found)]
    if verb in ("set", "cas"):
        if verb == "cas" and _is_stale(draft.check(node, check_id), op.index):
            raise _Failed(
                f'failed to set check "{check_id}" on node "{node}", index is stale'
            )
        if draft.node(node) is None:
            raise _Failed("Missing node registration")
        planner.plan_register_check(draft, RegisterCheck(check=check))
        found = draft.check(node, check_id)
        return [("Check", found)] if found is not None else []
    if verb == "delete-cas":
        found = draft.check(node, check_id)
        if found is None or found.modify_index != op.index:
            raise _Failed(
                f'failed to delete check "{check_id}" on node "{node}", index is stale'
            )
    elif verb != "delete":
        raise _Failed(f'unknown Check verb "{verb}"')
    planner.plan_deregister_check(
        draft, DeregisterCheck(node=node, check_id=check_id, missing_ok=True)
    )
    return []


def stamp_results(answer: TxnAnswer, index: int | None) -> TxnAnswer:
    """Rows this transaction wrote carry its index, as Consul's do."""
    if index is None:
        return answer
    stamped: list[Result] = []
    for kind, value in answer.results:
        if value.modify_index == 0:  # type: ignore[attr-defined]
            create = value.create_index or index  # type: ignore[attr-defined]
            value = msgspec.structs.replace(
                value, create_index=create, modify_index=index
            )
        stamped.append((kind, value))
    return TxnAnswer(results=tuple(stamped))


planner.register(Txn, plan_txn)

__all__ = [
    "MAX_OPS",
    "CheckOp",
    "KVOp",
    "NodeOp",
    "ServiceOp",
    "Txn",
    "TxnAnswer",
    "TxnError",
    "is_write",
    "stamp_results",
]
