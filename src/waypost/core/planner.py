"""Turn a `Change` into a `Plan`, validating it whole against the state.

Planning never touches the catalog: it reads through a `Draft`, a small
copy-on-write view holding what this one change has written so far (a
catalog registration upserts a node, then registers a service on it), and
records every key it read and wrote. A refused change raises the 4xx it
deserves (`InvalidRequest`, `NotFound`) and leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable
from sys import intern
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from waypost.core.changes import (
    CHECKS,
    KV,
    NODE_ITEMS,
    NODES,
    SERVICE_CHECKS,
    SERVICES,
    CatalogRegister,
    Change,
    CheckKey,
    DeregisterCheck,
    DeregisterNode,
    DeregisterService,
    DeregisterServices,
    KVDelete,
    KVPut,
    LockKey,
    Plan,
    RegisterCheck,
    RegisterNode,
    RegisterService,
    RegisterServices,
    SetMaintenance,
    UpdateCheck,
    row_key,
)
from waypost.core.coordinates import (
    COORDINATES,
    PLANNERS as _COORDINATE_PLANNERS,
    drop_with_node,
)
from waypost.core.model import (
    NODE_MAINTENANCE_CHECK_ID,
    SERVICE_MAINTENANCE_PREFIX,
    Check,
    HealthStatus,
    KVEntry,
    Node,
    Service,
)
from waypost.core.sessions import (
    SESSIONS,
    invalidate_check,
    invalidate_node,
)
from waypost.core.topics import (
    T_CHECKS,
    T_NODES,
    T_SERVICES,
    kv_topic,
    node_topic,
    service_topic,
)
from waypost.core.watch import Topic
from waypost.exceptions import InvalidRequest, NotFound

if TYPE_CHECKING:
    from waypost.core.catalog import Catalog

# Consul's default maintenance notes, word for word.
NODE_MAINTENANCE_NOTE = (
    "Maintenance mode is enabled for this node, but no reason was provided."
    " This is a default message."
)
SERVICE_MAINTENANCE_NOTE = (
    "Maintenance mode is enabled for this service, but no reason was provided."
    " This is a default message."
)

#: The server's own catalog entry: not a service the agent endpoints manage.
CONSUL_SERVICE_ID = "consul"

_Value = TypeVar("_Value", Node, Service, Check, KVEntry)
_MISSING: Any = object()


def check_key(check: Check) -> LockKey:
    """The key a plan reads and writes for this check's row."""
    return (CHECKS, row_key(check.node, check.check_id))


def unknown_check(check_id: str) -> NotFound:
    return NotFound(
        f'Unknown check ID "{check_id}". Ensure that the check ID is passed,'
        " not the check name."
    )


def unknown_service(service_id: str) -> NotFound:
    return NotFound(
        f'Unknown service ID "{service_id}". Ensure that the service ID is'
        " passed, not the service name."
    )


class Draft:
    """The catalog as this change would leave it, and what the change touched."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.changed: dict[LockKey, Any] = {}
        self.reads: set[LockKey] = set()
        self.writes: set[LockKey] = set()
        self.topics: set[Topic] = set()
        self.arm: list[CheckKey] = []
        self.prefix_reads: list[str] = []
        #: What the change answers besides ok (a `/v1/txn`'s results).
        self.result: object = None

    def plan(self, *, ok: bool = True) -> Plan:
        return Plan(
            rows=[(t, k, v) for (t, k), v in self.changed.items()],
            topics=self.topics,
            reads=self.reads,
            writes=self.writes,
            prefix_reads=self.prefix_reads,
            arm=self.arm,
            ok=ok,
            result=self.result,
        )

    # ------------------------------------------------------------ reads

    # Each read records its key, then looks at this draft's own rows first.

    def node(self, name: str) -> Node | None:
        key = (NODES, name)
        self.reads.add(key)
        found = self.changed.get(key, _MISSING)
        return self.catalog.nodes.get(name) if found is _MISSING else found

    def service(self, node: str, service_id: str) -> Service | None:
        key = (SERVICES, row_key(node, service_id))
        self.reads.add(key)
        found = self.changed.get(key, _MISSING)
        if found is _MISSING:
            return self.catalog.node_service(node, service_id)
        return found  # type: ignore[no-any-return]

    def check(self, node: str, check_id: str) -> Check | None:
        key = (CHECKS, row_key(node, check_id))
        self.reads.add(key)
        found = self.changed.get(key, _MISSING)
        if found is _MISSING:
            return self.catalog.get_check(node, check_id)
        return found  # type: ignore[no-any-return]

    def kv(self, key: str) -> KVEntry | None:
        lock = (KV, key)
        self.reads.add(lock)
        found = self.changed.get(lock, _MISSING)
        return self.catalog.kv_get(key) if found is _MISSING else found

    def _merged(
        self, table: str, base: list[_Value], keep: Callable[[_Value], bool]
    ) -> list[_Value]:
        """`base` with this draft's own rows of `table` laid over it."""
        if not any(t == table for t, _ in self.changed):
            return base
        result = {self._key_of(table, v): v for v in base}
        for (t, key), value in self.changed.items():
            if t != table:
                continue
            if value is not None and keep(value):
                result[key] = value
            else:
                result.pop(key, None)
        return [result[k] for k in sorted(result)]

    @staticmethod
    def _key_of(table: str, value: Any) -> str:
        if table == SERVICES:
            return row_key(value.node, value.service_id)
        return row_key(value.node, value.check_id)

    def service_checks(self, node: str, service_id: str) -> list[Check]:
        self.reads.add((SERVICE_CHECKS, row_key(node, service_id)))
        return self._merged(
            CHECKS,
            self.catalog.service_checks(node, service_id),
            lambda c: c.node == node and c.service_id == service_id,
        )

    def node_services(self, node: str) -> list[Service]:
        self.reads.add((NODE_ITEMS, node))
        return self._merged(
            SERVICES, list(self.catalog.node_services(node)), lambda s: s.node == node
        )

    def node_checks(self, node: str) -> list[Check]:
        self.reads.add((NODE_ITEMS, node))
        return self._merged(
            CHECKS, self.catalog.node_checks(node), lambda c: c.node == node
        )

    def kv_keys(self, prefix: str) -> list[str]:
        self.prefix_reads.append(prefix)
        keys = {e.key for e in self.catalog.kv_list(prefix)}
        for (table, key), value in self.changed.items():
            if table == KV and key.startswith(prefix):
                if value is None:
                    keys.discard(key)
                else:
                    keys.add(key)
        return sorted(keys)

    def row(self, table: str, key: str) -> Any:
        """A row of any other table (the ACL tables), through this draft."""
        lock = (table, key)
        self.reads.add(lock)
        found = self.changed.get(lock, _MISSING)
        if found is not _MISSING:
            return found
        if table in CONFIG_TABLES:
            return self.catalog.config.row(table, key)

        if table == SESSIONS:
            return self.catalog.sessions.get(key)
        if table == COORDINATES:
            return self.catalog.coordinates.get(key)
        return self.catalog.acl.row(table, key)

    # ------------------------------------------------------------ writes

    def put_row(self, table: str, key: str, value: Any) -> None:
        self._set(table, key, value)

    def _set(self, table: str, key: str, value: Any) -> None:
        self.reads.add((table, key))
        self.writes.add((table, key))
        self.changed[(table, key)] = value

    def put_node(self, node: Node) -> None:
        self._set(NODES, node.name, node)

    def delete_node(self, name: str) -> None:
        invalidate_node(self, name)
        drop_with_node(self, name)
        self._set(NODES, name, None)

    def put_service(self, service: Service, *, is_new: bool) -> None:
        if is_new:
            self.writes.add((NODE_ITEMS, service.node))
        self._set(SERVICES, row_key(service.node, service.service_id), service)

    def delete_service(self, service: Service) -> None:
        self.writes.add((NODE_ITEMS, service.node))
        self._set(SERVICES, row_key(service.node, service.service_id), None)

    def put_check(self, check: Check) -> None:
        old = self.check(check.node, check.check_id)
        if old is None:
            self.writes.add((NODE_ITEMS, check.node))
        if old is not None and old.service_id != check.service_id:
            self._service_set_changed(old)
        if old is None or old.service_id != check.service_id:
            self._service_set_changed(check)
        self._set(CHECKS, row_key(check.node, check.check_id), check)
        if check.status is HealthStatus.CRITICAL and old is not None:
            # Consul's ensureCheckTxn: a critical check ends its sessions.
            invalidate_check(self, check.node, check.check_id)

    def delete_check(self, check: Check) -> None:
        self.writes.add((NODE_ITEMS, check.node))
        self._service_set_changed(check)
        self._set(CHECKS, row_key(check.node, check.check_id), None)
        invalidate_check(self, check.node, check.check_id)

    def _service_set_changed(self, check: Check) -> None:
        if check.service_id:
            key = (SERVICE_CHECKS, row_key(check.node, check.service_id))
            self.reads.add(key)
            self.writes.add(key)

    def put_kv(self, entry: KVEntry) -> None:
        self._set(KV, entry.key, entry)

    def delete_kv(self, key: str) -> None:
        self._set(KV, key, None)


# ---------------------------------------------------------------- planning


def plan(catalog: Catalog, change: Change) -> Plan:
    """Validate `change` against `catalog` and say what it would write."""
    if isinstance(change, UpdateCheck):
        return plan_update_check(catalog, change)
    planner = _PLANNERS.get(type(change))
    if planner is None:  # pragma: no cover - a programming error
        raise TypeError(f"no planner for {type(change).__name__}")
    draft = Draft(catalog)
    ok = planner(draft, change)
    return draft.plan(ok=ok is not False)


def plan_update_check(catalog: Catalog, change: UpdateCheck) -> Plan:
    """The heartbeat path: a status change is a row; output alone is not."""
    check = catalog.get_check(change.node, change.check_id)
    if check is None:
        raise unknown_check(change.check_id)
    key = (CHECKS, row_key(change.node, change.check_id))
    if check.status == change.status:
        output = None
        if check.output != change.output:
            output = (change.node, change.check_id, change.output)
        return Plan(reads={key}, output=output)
    draft = Draft(catalog)
    updated = msgspec.structs.replace(check, status=change.status, output=change.output)
    draft.put_check(updated)
    _check_topics(draft, updated)
    return draft.plan()


def _same(old: msgspec.Struct, new: msgspec.Struct) -> bool:
    """Equal apart from the raft-style indexes."""
    strip = {"create_index": 0, "modify_index": 0}
    return msgspec.structs.replace(old, **strip) == msgspec.structs.replace(
        new, **strip
    )


def _check_topics(draft: Draft, check: Check) -> None:
    draft.topics.add(T_CHECKS)
    draft.topics.add(node_topic(check.node))
    if check.service_id:
        draft.topics.add(service_topic(check.service_name))
    else:
        # Node checks decide the health of every instance on the node.
        draft.topics.update(
            service_topic(s.name) for s in draft.node_services(check.node)
        )


def _upsert_node(draft: Draft, node: Node) -> None:
    old = draft.node(node.name)
    if old is not None and _same(old, node):
        return
    draft.put_node(
        msgspec.structs.replace(
            node, create_index=old.create_index if old else 0, modify_index=0
        )
    )
    draft.topics.update((T_NODES, node_topic(node.name)))
    draft.topics.update(service_topic(s.name) for s in draft.node_services(node.name))


def _register_node(draft: Draft, change: RegisterNode) -> None:
    _upsert_node(draft, change.node)


def _validate_new_checks(
    draft: Draft, checks: list[Check], service: Service | None
) -> None:
    seen: set[str] = set()
    for check in checks:
        if check.check_id in seen:
            raise InvalidRequest(f'Duplicate check ID "{check.check_id}"')
        seen.add(check.check_id)
        existing = draft.check(check.node, check.check_id)
        if (
            existing is not None
            and service is not None
            and existing.service_id not in ("", service.service_id)
        ):
            raise InvalidRequest(
                f'Check ID "{check.check_id}" already belongs to service'
                f' "{existing.service_id}"'
            )


def _preserving_status(draft: Draft, check: Check) -> Check:
    """A re-registered check keeps its current status and output.

    Consul restores both from its snapshot of the check, even when the new
    registration gives a Status (agent.go addServiceInternal: "Restore the
    fields from the snapshot"; addCheckLocked: "snapshot the current state of
    the health check to avoid potential flapping"), so a client re-asserting
    its registration never flaps its instance to critical.
    """
    existing = draft.check(check.node, check.check_id)
    if existing is None:
        return check
    return msgspec.structs.replace(
        check, status=existing.status, output=existing.output
    )


def _upsert_check(draft: Draft, check: Check) -> None:
    old = draft.check(check.node, check.check_id)
    if old is not None and old.service_id != check.service_id:
        _check_topics(draft, old)
    if old is not None or check.create_index or check.modify_index:
        check = msgspec.structs.replace(
            check, create_index=old.create_index if old else 0, modify_index=0
        )
    draft.put_check(check)
    draft.arm.append((check.node, check.check_id))
    _check_topics(draft, check)


def _drop_check(draft: Draft, check: Check) -> None:
    draft.delete_check(check)
    _check_topics(draft, check)


def _drop_service(draft: Draft, service: Service) -> None:
    for check in draft.service_checks(service.node, service.service_id):
        _drop_check(draft, check)
    draft.delete_service(service)
    draft.topics.update(
        (T_SERVICES, node_topic(service.node), service_topic(service.name))
    )


def _is_same_registration(
    draft: Draft, old: Service, new: Service, checks: list[Check], replace: bool
) -> bool:
    if not _same(old, new):
        return False
    for check in checks:
        existing = draft.check(check.node, check.check_id)
        if existing is None or not _same(existing, check):
            return False
    if replace:
        current = {c.check_id for c in draft.service_checks(new.node, new.service_id)}
        return current == {c.check_id for c in checks}
    return True


def _register_service(draft: Draft, change: RegisterService) -> None:
    service = change.service
    if draft.node(service.node) is None:
        raise NotFound(f'Unknown node "{service.node}"')
    _validate_new_checks(draft, change.checks, service)
    checks = [
        msgspec.structs.replace(c, service_name=service.name, service_tags=service.tags)
        for c in change.checks
    ]
    if change.keep_status:
        checks = [_preserving_status(draft, c) for c in checks]
    old = draft.service(service.node, service.service_id)
    if old is not None and _is_same_registration(
        draft, old, service, checks, change.replace_existing_checks
    ):
        # Re-registering what is already there (a client restarting, a
        # heartbeat loop re-asserting itself) must not wake any watcher;
        # its TTLs start over.
        draft.arm.extend((c.node, c.check_id) for c in checks)
        return
    draft.topics.update(
        (T_SERVICES, node_topic(service.node), service_topic(service.name))
    )
    if old is not None and old.name != service.name:
        _drop_service(draft, old)
        old = None
    if old is not None or service.create_index or service.modify_index:
        service = msgspec.structs.replace(
            service, create_index=old.create_index if old else 0, modify_index=0
        )
    draft.put_service(service, is_new=old is None)
    if old is not None and change.replace_existing_checks:
        keep = {c.check_id for c in checks}
        # Consul drops every check left out, maintenance included.
        for check in draft.service_checks(service.node, service.service_id):
            if check.check_id not in keep:
                _drop_check(draft, check)
    for check in checks:
        _upsert_check(draft, check)
    if old is None:
        return  # its checks are the ones just written, with its tags
    # Service tags are echoed in every check of the instance.
    for check in draft.service_checks(service.node, service.service_id):
        if check.service_tags != service.tags or check.service_name != service.name:
            draft.put_check(
                msgspec.structs.replace(
                    check, service_tags=service.tags, service_name=service.name
                )
            )


def _register_check(draft: Draft, change: RegisterCheck) -> None:
    check = change.check
    if draft.node(check.node) is None:
        raise NotFound(f'Unknown node "{check.node}"')
    service = None
    if check.service_id:
        service = draft.service(check.node, check.service_id)
        if service is None:
            raise NotFound(f'ServiceID "{check.service_id}" does not exist')
        check = msgspec.structs.replace(
            check, service_name=service.name, service_tags=service.tags
        )
    _validate_new_checks(draft, [check], service)
    if change.keep_status:
        check = _preserving_status(draft, check)
    _upsert_check(draft, check)


def _catalog_register(draft: Draft, change: CatalogRegister) -> None:
    node = change.node
    existing = draft.node(node.name)
    if existing is not None and not node.node_id:
        node = msgspec.structs.replace(node, node_id=existing.node_id)
    if existing is None or not change.skip_node_update:
        _upsert_node(draft, node)
    service = change.service
    for check in change.checks:
        if check.service_id and not (
            (service is not None and service.service_id == check.service_id)
            or draft.service(node.name, check.service_id) is not None
        ):
            raise InvalidRequest(
                f'Unknown service ID "{check.service_id}" for check "{check.check_id}"'
            )
    own = [c for c in change.checks if service and c.service_id == service.service_id]
    if service is not None:
        _register_service(draft, RegisterService(service=service, checks=own))
    for check in change.checks:
        if check not in own:
            _register_check(draft, RegisterCheck(check=check))


def _deregister_service(draft: Draft, change: DeregisterService) -> None:
    service = draft.service(change.node, change.service_id)
    if service is None:
        if change.missing_ok:
            return
        raise unknown_service(change.service_id)
    _drop_service(draft, service)


def _deregister_check(draft: Draft, change: DeregisterCheck) -> None:
    check = draft.check(change.node, change.check_id)
    if check is None:
        if change.missing_ok:
            return
        raise unknown_check(change.check_id)
    _drop_check(draft, check)


def _deregister_node(draft: Draft, change: DeregisterNode) -> None:
    if draft.node(change.node) is None:
        if change.missing_ok:
            return
        raise NotFound(f'Unknown node "{change.node}"')
    draft.topics.update((T_NODES, T_CHECKS, node_topic(change.node)))
    for service in draft.node_services(change.node):
        _drop_service(draft, service)
    for check in draft.node_checks(change.node):
        _drop_check(draft, check)
    draft.delete_node(change.node)


def _set_maintenance(draft: Draft, change: SetMaintenance) -> None:
    """Consul's Agent(Service|Node)Maintenance: enabling twice keeps the first
    reason; disabling what is off is fine."""
    node = change.node
    if change.service_id:
        found = draft.service(node, change.service_id)
        if found is None or found.service_id == CONSUL_SERVICE_ID:
            raise NotFound(f'No service registered with ID "{change.service_id}"')
        check = Check(
            node=node,
            check_id=SERVICE_MAINTENANCE_PREFIX + change.service_id,
            name="Service Maintenance Mode",
            notes=change.reason or SERVICE_MAINTENANCE_NOTE,
            status=HealthStatus.CRITICAL,
            service_id=change.service_id,
            type="maintenance",
        )
    else:
        check = Check(
            node=node,
            check_id=NODE_MAINTENANCE_CHECK_ID,
            name="Node Maintenance Mode",
            notes=change.reason or NODE_MAINTENANCE_NOTE,
            status=HealthStatus.CRITICAL,
            type="maintenance",
        )
    existing = draft.check(node, check.check_id)
    if change.enable and existing is None:
        _register_check(draft, RegisterCheck(check=check))
    elif not change.enable and existing is not None:
        _drop_check(draft, existing)


def _kv_put(draft: Draft, change: KVPut) -> bool:
    old = draft.kv(change.key)
    if change.cas is not None and change.cas != (old.modify_index if old else 0):
        return False
    draft.put_kv(
        KVEntry(
            key=intern(change.key) if len(change.key) < 64 else change.key,
            value=change.value,
            flags=change.flags
            if change.flags is not None
            else (old.flags if old else 0),
            lock_index=old.lock_index if old else 0,
            session=old.session if old else "",
            create_index=old.create_index if old else 0,
        )
    )
    draft.topics.add(kv_topic(change.key))
    return True


def _kv_delete(draft: Draft, change: KVDelete) -> bool:
    if change.recurse:
        doomed = draft.kv_keys(change.key)
    else:
        old = draft.kv(change.key)
        if change.cas is not None and (old is None or old.modify_index != change.cas):
            return False
        doomed = [change.key] if old is not None else []
    for key in doomed:
        draft.delete_kv(key)
        draft.topics.add(kv_topic(key))
    if doomed:
        draft.topics.add(kv_topic(change.key))
    return True


def _deregister_services(draft: Draft, change: DeregisterServices) -> None:
    for item in change.items:
        _deregister_service(draft, item)


def _register_services(draft: Draft, change: RegisterServices) -> None:
    for item in change.items:
        _register_service(draft, item)


_PLANNERS: dict[type[Change], Callable[[Draft, Any], bool | None]] = {
    RegisterNode: _register_node,
    RegisterService: _register_service,
    RegisterServices: _register_services,
    DeregisterServices: _deregister_services,
    RegisterCheck: _register_check,
    CatalogRegister: _catalog_register,
    DeregisterService: _deregister_service,
    DeregisterCheck: _deregister_check,
    DeregisterNode: _deregister_node,
    SetMaintenance: _set_maintenance,
    KVPut: _kv_put,
    KVDelete: _kv_delete,
}

# The ACL changes plan against the ACL state through the same Draft.
from waypost.core.acl.planner import PLANNERS as _ACL_PLANNERS  # noqa: E402

_PLANNERS.update(_ACL_PLANNERS)

# Config entries and settings (core/config/) likewise.
from waypost.core.config.changes import CONFIG_TABLES  # noqa: E402
from waypost.core.config.planner import PLANNERS as _CONFIG_PLANNERS  # noqa: E402

_PLANNERS.update(_CONFIG_PLANNERS)

# Sessions and locks (issue 15).
from waypost.core.sessions import PLANNERS as _SESSION_PLANNERS  # noqa: E402

_PLANNERS.update(_SESSION_PLANNERS)


# Network coordinates (issue 15b).
_PLANNERS.update(_COORDINATE_PLANNERS)


# Other modules' planners register themselves (`core/txn.py`); the txn
# planner runs these, on its one Draft.
def register(kind: type[Change], planner: Callable[[Draft, Any], bool | None]) -> None:
    _PLANNERS[kind] = planner


plan_kv_put = _kv_put
plan_kv_delete = _kv_delete
plan_register_node = _register_node
plan_register_service = _register_service
plan_register_check = _register_check
plan_deregister_node = _deregister_node
plan_deregister_service = _deregister_service
plan_deregister_check = _deregister_check
