"""The registry's state in memory: nodes, services, checks and KV, one index.

The catalog changes in one way only: `apply(entry)`, an `Entry` of rows a
store has made durable, in index order (start-up's `restore` applies the
same rows). Planning a change (`core/planner.py`) only reads it. Besides
rows it keeps what is not durable by design: TTL and reap deadlines, and
output-only check updates. No I/O; time arrives as `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

import msgspec

from waypost.core.acl.changes import ACL_TABLES
from waypost.core.acl.state import AclState
from waypost.core.brake import Brake, Census, Transition
from waypost.core.changes import (
    CHECKS,
    KV,
    NODES,
    SERVICES,
    Change,
    CheckKey,
    DeregisterService,
    Entry,
    Row,
    UpdateCheck,
    row_key,
)
from waypost.core.config.changes import CONFIG_TABLES
from waypost.core.config.state import ConfigState
from waypost.core.coordinates import COORDINATES, NodeCoordinate
from waypost.core.health import Deadlines
from waypost.core.model import (
    NODE_MAINTENANCE_CHECK_ID,
    SERF_CHECK_ID,
    SERVICE_MAINTENANCE_PREFIX,
    Check,
    HealthStatus,
    KVEntry,
    Node,
    Service,
)
from waypost.core.sessions import SESSIONS, DestroySession, Session, SessionState
from waypost.core.topics import (
    T_CHECKS,
    T_NODES,
    T_SERVICES,
    kv_prefix_topic,
    kv_topic,
    node_topic,
    service_topic,
)
from waypost.core.watch import KV_KEY, KV_PREFIX, Topic

__all__ = [
    "CHECKS",
    "KV",
    "NODES",
    "SERVICES",
    "TTL_EXPIRED",
    "T_CHECKS",
    "T_NODES",
    "T_SERVICES",
    "Catalog",
    "Row",
    "kv_prefix_topic",
    "kv_topic",
    "node_topic",
    "row_key",
    "service_topic",
]

TTL_EXPIRED = "TTL expired"


class Ownership(Protocol):
    """Which checks this agent keeps deadlines for (cluster mode).

    Without one, the catalog owns every check (one agent). With one, TTL
    expiry and reaping run only for owned checks, and the brake counts only
    local ones: checks whose heartbeats arrive at this agent.
    """

    def owns(self, node: str, check_id: str) -> bool: ...

    def is_local(self, node: str) -> bool: ...


class Catalog:
    """All registry state in memory; every read query and every change.

    `restored_index` is the floor for topics never seen since start, so an
    index returned for a query never goes backwards across a restart.
    """

    def __init__(self) -> None:
        self.index = 0
        self.restored_index = 0
        # Bumped by output-only check changes, which keep the index (Consul
        # #3259): response caches validate on (index, output_generation).
        self.output_generation = 0
        self.nodes: dict[str, Node] = {}
        self._services: dict[str, dict[str, Service]] = {}
        self._by_name: dict[str, dict[tuple[str, str], Service]] = {}
        self._checks: dict[str, dict[str, Check]] = {}
        self._service_checks: dict[tuple[str, str], dict[str, Check]] = {}
        self._kv: dict[str, KVEntry] = {}
        self._kv_deleted: dict[str, int] = {}
        self._topic_index: dict[Topic, int] = {}
        self.ttl: Deadlines[CheckKey] = Deadlines()
        self.reap: Deadlines[CheckKey] = Deadlines()
        # Per check: how long a TTL lasts and after how long critical it reaps.
        self._ttl_of: dict[tuple[str, str], float] = {}
        #: The ACL system's rows (tokens, policies, ...), applied like the rest.
        self.acl = AclState()
        self.config = ConfigState()
        #: None: every check is this agent's (one agent, no cluster).
        self.ownership: Ownership | None = None
        #: Sessions, the locks they hold, their TTL timers and lock-delays.
        self.sessions = SessionState()
        #: Network coordinates by node (`/v1/coordinate/*`, `?near=`).
        self.coordinates: dict[str, NodeCoordinate] = {}

    # ------------------------------------------------------------ applying

    def restore(self, rows: Iterable[Row], index: int, *, now: float) -> None:
        """Load persisted rows (store start-up); TTL deadlines restart now."""
        for table, key, value in rows:
            self._apply_row(table, key, value, now, arm=True)
        self.sessions.finish(None)
        self.index = max(self.index, index)
        self.restored_index = max(self.restored_index, index)

    def apply(self, entry: Entry, *, now: float) -> None:
        """Apply one durable change: its rows, its index, its topics."""
        arm = set(entry.arm) if entry.arm else ()
        for table, key, value in entry.rows:
            is_armed = table == CHECKS and value is not None
            self._apply_row(
                table,
                key,
                value,
                now,
                arm=is_armed and (value.node, value.check_id) in arm,  # type: ignore[union-attr]
                index=entry.index,
            )
        self.sessions.finish(now)
        if entry.index > self.index:
            self.index = entry.index
        if entry.floor > self.restored_index:
            self.restored_index = entry.floor
        for topic in entry.topics:
            self._topic_index[topic] = entry.index
            if topic[0] == KV_KEY and topic[1] not in self._kv:
                self._kv_deleted[topic[1]] = entry.index

    def _apply_row(
        self,
        table: str,
        key: str,
        value: msgspec.Struct | None,
        now: float,
        *,
        arm: bool,
        index: int = 0,
    ) -> None:
        if table == NODES:
            if value is None:
                self.nodes.pop(key, None)
            else:
                self.nodes[key] = value  # type: ignore[assignment]
        elif table == SERVICES:
            node, _, service_id = key.partition("\x00")
            old = self._services.get(node, {}).get(service_id)
            if old is not None:
                self._forget_service(old)
            if value is not None:
                self._put_service(value)  # type: ignore[arg-type]
        elif table == CHECKS:
            node, _, check_id = key.partition("\x00")
            old_check = self._checks.get(node, {}).get(check_id)
            if old_check is not None:
                self._forget_check(old_check)
            if value is None:
                ckey = (node, check_id)
                self.ttl.disarm(ckey)
                self.reap.disarm(ckey)
                self._ttl_of.pop(ckey, None)
                return
            check: Check = value  # type: ignore[assignment]
            self._put_check(check)
            if arm or old_check is None or old_check.definition != check.definition:
                self._arm_check(check, now)
            else:
                self._arm_reap(check, now)
        elif table == KV:
            self.sessions.kv_changed(key, self._kv.get(key), value)  # type: ignore[arg-type]
            if value is None:
                self._kv.pop(key, None)
                self._kv_deleted[key] = index
            else:
                self._kv[key] = value  # type: ignore[assignment]
                self._kv_deleted.pop(key, None)
        elif table in ACL_TABLES:
            self.acl.apply_row(table, key, value)
        elif table in CONFIG_TABLES:
            self.config.apply_row(table, key, value)
        elif table == COORDINATES:
            if value is None:
                self.coordinates.pop(key, None)
            else:
                self.coordinates[key] = value  # type: ignore[assignment]
        elif table == SESSIONS:
            owned = value is not None and self._owns_session(value)  # type: ignore[arg-type]
            self.sessions.apply_row(key, value, now, owned=owned)  # type: ignore[arg-type]
        else:  # pragma: no cover - a store bug, not user input
            raise ValueError(f"unknown row in table {table!r}")

    def _put_service(self, service: Service) -> None:
        self._services.setdefault(service.node, {})[service.service_id] = service
        key = (service.node, service.service_id)
        self._by_name.setdefault(service.name, {})[key] = service

    def _forget_service(self, service: Service) -> None:
        key = (service.node, service.service_id)
        services = self._services[service.node]
        del services[service.service_id]
        if not services:
            del self._services[service.node]
        instances = self._by_name[service.name]
        del instances[key]
        if not instances:
            del self._by_name[service.name]

    def _put_check(self, check: Check) -> None:
        self._checks.setdefault(check.node, {})[check.check_id] = check
        if check.service_id:
            key = (check.node, check.service_id)
            self._service_checks.setdefault(key, {})[check.check_id] = check

    def _forget_check(self, check: Check) -> None:
        node_checks = self._checks[check.node]
        del node_checks[check.check_id]
        if not node_checks:
            del self._checks[check.node]
        if check.service_id:
            key = (check.node, check.service_id)
            checks = self._service_checks.get(key)
            if checks is not None:
                checks.pop(check.check_id, None)
                if not checks:
                    del self._service_checks[key]

    # ------------------------------------------------------------ indexes

    def topic_index(self, topic: Topic) -> int:
        return max(self._topic_index.get(topic, 0), self.restored_index)

    def query_index(self, topics: Iterable[Topic]) -> int:
        """X-Consul-Index for a query reading these topics: ≥ 1, monotonic."""
        best = 1
        for topic in topics:
            if topic[0] == KV_PREFIX:
                value = self._kv_prefix_index(topic[1])
            else:
                value = self._topic_index.get(topic, 0)
                if value < self.restored_index:
                    value = self.restored_index
            if value > best:
                best = value
        return best

    def _kv_prefix_index(self, prefix: str) -> int:
        best = self.restored_index
        for key, entry in self._kv.items():
            if entry.modify_index > best and key.startswith(prefix):
                best = entry.modify_index
        for key, index in self._kv_deleted.items():
            if index > best and key.startswith(prefix):
                best = index
        return best

    # ------------------------------------------------------------ not durable

    def set_output(self, node: str, check_id: str, output: str) -> None:
        """An output-only update: memory only, no index (Consul #3259)."""
        check = self.get_check(node, check_id)
        if check is not None and check.output != output:
            self._put_check(msgspec.structs.replace(check, output=output))
            self.output_generation += 1

    def touch(self, key: CheckKey, now: float) -> None:
        """A heartbeat: the check's TTL starts over (no write, no index)."""
        ttl = self._ttl_of.get(key)
        if ttl is not None:
            self.ttl.arm(key, now + ttl)

    def arm(self, keys: Iterable[CheckKey], now: float) -> None:
        """Start these checks' deadlines over (a re-registration)."""
        for node, check_id in keys:
            check = self.get_check(node, check_id)
            if check is not None:
                self._arm_check(check, now)

    def get_check(self, node: str, check_id: str) -> Check | None:
        return self._checks.get(node, {}).get(check_id)

    def _arm_check(self, check: Check, now: float) -> None:
        ckey = (check.node, check.check_id)
        if self.ownership is not None and not self.ownership.owns(*ckey):
            self._disarm(ckey)
            return
        ttl = check.definition.ttl
        if ttl is not None:
            self._ttl_of[ckey] = ttl
            self.ttl.arm(ckey, now + ttl)
        elif ckey in self._ttl_of:
            # Re-registered as another kind of check: its old TTL must not
            # keep expiring it.
            del self._ttl_of[ckey]
            self.ttl.disarm(ckey)
        self._arm_reap(check, now)

    def _arm_reap(self, check: Check, now: float) -> None:
        after = check.definition.deregister_critical_service_after
        if after is None or not check.service_id:
            return
        ckey = (check.node, check.check_id)
        if self.ownership is not None and not self.ownership.owns(*ckey):
            return
        if check.status is HealthStatus.CRITICAL:
            if ckey not in self.reap:
                self.reap.arm(ckey, now + after)
        else:
            self.reap.disarm(ckey)

    def _owns_session(self, session: Session) -> bool:
        """Whose TTL timer: the agent of the session's node (cluster mode)."""
        return self.ownership is None or self.ownership.owns(session.node, session.id)

    def _disarm(self, ckey: CheckKey) -> None:
        if self._ttl_of.pop(ckey, None) is not None:
            self.ttl.disarm(ckey)
        self.reap.disarm(ckey)

    def reassign(self, now: float) -> None:
        """Ownership changed (an agent joined or left): arm the checks that
        became this agent's with full periods, drop the others' deadlines."""
        for check in list(self.all_checks()):
            ckey = (check.node, check.check_id)
            owned = self.ownership is None or self.ownership.owns(*ckey)
            armed = ckey in self._ttl_of or ckey in self.reap
            if owned and not armed:
                self._arm_check(check, now)
            elif not owned and armed:
                self._disarm(ckey)
        for session in self.sessions.all():
            owned = self._owns_session(session)
            if owned != (session.id in self.sessions.ttl):
                self.sessions.arm(session, now, owned=owned)

    # ------------------------------------------------------------ deadlines

    def next_deadline(self) -> float | None:
        live = [
            d
            for d in (
                self.ttl.next_deadline(),
                self.reap.next_deadline(),
                self.sessions.ttl.next_deadline(),
            )
            if d is not None
        ]
        return min(live) if live else None

    def due(self, now: float, brake: Brake | None = None) -> list[Change]:
        """The changes the clock asks for: expired TTLs, long-critical reaps.

        Takes the due deadlines off their heaps (an expired check stays
        expired until its next heartbeat). With a `brake`, nothing is due
        while it is engaged.
        """
        if brake is not None and (brake.held or self._is_braking(now, brake)):
            return []
        changes: list[Change] = []
        expired = 0
        for node, check_id in self.ttl.pop_due(now):
            check = self.get_check(node, check_id)
            if check is None:
                continue
            # Consul's getExpiredOutput: keep the last output after the reason.
            output = (
                f"{TTL_EXPIRED} (last output before timeout follows): {check.output}"
                if check.output
                else TTL_EXPIRED
            )
            if check.status is not HealthStatus.CRITICAL and self._is_local(node):
                expired += 1
            changes.append(
                UpdateCheck(
                    node=node,
                    check_id=check_id,
                    status=HealthStatus.CRITICAL,
                    output=output,
                )
            )
        if brake is not None:
            brake.record_expiries(now, expired)
        for node, check_id in self.reap.pop_due(now):
            check = self.get_check(node, check_id)
            if check is None or check.status is not HealthStatus.CRITICAL:
                continue
            if check.service_id in self._services.get(node, {}):
                changes.append(
                    DeregisterService(
                        node=node, service_id=check.service_id, missing_ok=True
                    )
                )
        # Consul's session TTL timers (session_ttl.go): destroyed when due.
        for session_id in self.sessions.ttl.pop_due(now):
            if session_id in self.sessions.sessions:
                changes.append(DestroySession(session_id=session_id))
        return changes

    def _is_braking(self, now: float, brake: Brake) -> bool:
        """Let the brake assess (when something is due) and say if it holds."""
        deadline = self.next_deadline()
        if brake.wants_census(now, due=deadline is not None and deadline <= now):
            transition = brake.assess(now, self.ttl_census(now, brake))
            if transition is Transition.RELEASED:
                self.grant_grace(now)
        return brake.engaged

    def ttl_census(self, now: float, brake: Brake) -> Census:
        """Live (armed, not critical) TTL checks, and how many went quiet."""
        quiet_after = brake.settings.quiet_after
        live = quiet = 0
        for (node, check_id), ttl in self._ttl_of.items():
            deadline = self.ttl.deadline((node, check_id))
            if deadline is None:
                continue
            check = self.get_check(node, check_id)
            if check is None or check.status is HealthStatus.CRITICAL:
                continue
            if not self._is_local(node):
                continue
            live += 1
            if deadline - now < (1.0 - quiet_after) * ttl:
                quiet += 1
        return Census(live=live, quiet=quiet)

    def _is_local(self, node: str) -> bool:
        return self.ownership is None or self.ownership.is_local(node)

    def grant_grace(self, now: float) -> None:
        """After the brake: overdue TTLs and reaps restart their full period."""
        for key, ttl in self._ttl_of.items():
            deadline = self.ttl.deadline(key)
            if deadline is not None and deadline <= now:
                self.ttl.arm(key, now + ttl)
        for node, check_id in self.reap.pop_due(now):
            check = self.get_check(node, check_id)
            if check is not None:
                after = check.definition.deregister_critical_service_after or 0.0
                self.reap.arm((node, check_id), now + after)

    # ------------------------------------------------------------ KV

    def kv_get(self, key: str) -> KVEntry | None:
        return self._kv.get(key)

    def kv_list(self, prefix: str) -> list[KVEntry]:
        return [self._kv[k] for k in sorted(self._kv) if k.startswith(prefix)]

    # ------------------------------------------------------------ reads

    def service_names(self) -> dict[str, list[str]]:
        """Every service name with the union of its instances' tags."""
        result: dict[str, list[str]] = {}
        for name in sorted(self._by_name):
            tags: dict[str, None] = {}
            for service in self._by_name[name].values():
                tags.update(dict.fromkeys(service.tags))
            result[name] = sorted(tags)
        return result

    def service_instances(self, name: str) -> list[Service]:
        instances = self._by_name.get(name)
        if not instances:
            return []
        return [instances[k] for k in sorted(instances)]

    def node_services(self, node: str) -> Iterator[Service]:
        services = self._services.get(node)
        if services:
            yield from (services[k] for k in sorted(services))

    def node_service(self, node: str, service_id: str) -> Service | None:
        return self._services.get(node, {}).get(service_id)

    def node_checks(self, node: str) -> list[Check]:
        """Every check on a node (node-level and service-level), by ID."""
        checks = self._checks.get(node)
        if not checks:
            return []
        return [checks[k] for k in sorted(checks)]

    def node_level_checks(self, node: str) -> list[Check]:
        return [c for c in self.node_checks(node) if not c.service_id]

    def service_checks(self, node: str, service_id: str) -> list[Check]:
        checks = self._service_checks.get((node, service_id))
        if not checks:
            return []
        return [checks[k] for k in sorted(checks)]

    def checks_of_service_name(self, name: str) -> list[Check]:
        result: list[Check] = []
        for service in self.service_instances(name):
            result += self.service_checks(service.node, service.service_id)
        return result

    def all_services(self) -> Iterator[Service]:
        for node in sorted(self._services):
            services = self._services[node]
            yield from (services[k] for k in sorted(services))

    def all_checks(self) -> Iterator[Check]:
        for node in sorted(self._checks):
            checks = self._checks[node]
            yield from (checks[k] for k in sorted(checks))

    def health_entries(self, name: str) -> list[tuple[Node, Service, list[Check]]]:
        """Consul's ServiceEntry: node, instance, node checks + instance checks."""
        entries = []
        node_level: dict[str, list[Check]] = {}
        for service in self.service_instances(name):
            node = self.nodes.get(service.node)
            if node is None:
                continue
            if service.node not in node_level:
                node_level[service.node] = self.node_level_checks(service.node)
            checks = node_level[service.node] + self.service_checks(
                service.node, service.service_id
            )
            entries.append((node, service, checks))
        return entries

    # ------------------------------------------------------------ snapshots

    #: The tables `rows()` yields; a guard test keeps it equal to
    #: `core/tables.TABLES`, so a new table cannot be left out of snapshots.
    DUMPED_TABLES = frozenset(
        {
            NODES,
            SERVICES,
            CHECKS,
            KV,
            SESSIONS,
            COORDINATES,
            *ACL_TABLES,
            *CONFIG_TABLES,
        }
    )

    def rows(self) -> Iterator[Row]:
        """Every durable row, table by table: the state at `self.index`
        (a snapshot). Check outputs are the latest, as reads show them."""
        for name in sorted(self.nodes):
            yield NODES, name, self.nodes[name]
        for service in self.all_services():
            yield SERVICES, row_key(service.node, service.service_id), service
        for check in self.all_checks():
            yield CHECKS, row_key(check.node, check.check_id), check
        for key in sorted(self._kv):
            yield KV, key, self._kv[key]
        yield from self.acl.all_rows()
        yield from self.config.all_rows()
        for session in self.sessions.all():
            yield SESSIONS, session.id, session
        for name in sorted(self.coordinates):
            yield COORDINATES, name, self.coordinates[name]

    def counts(self) -> dict[str, int]:
        return {
            "nodes": len(self.nodes),
            "services": sum(map(len, self._services.values())),
            "checks": sum(map(len, self._checks.values())),
            "kv": len(self._kv),
        }


def is_maintenance_check(check_id: str) -> bool:
    return check_id == NODE_MAINTENANCE_CHECK_ID or check_id.startswith(
        SERVICE_MAINTENANCE_PREFIX
    )


def is_serf_check(check_id: str) -> bool:
    return check_id == SERF_CHECK_ID
