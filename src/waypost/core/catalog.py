"""The registry's state: nodes, services, checks and KV, with one index.

Every accepted change gets the next index and returns a `Commit`: the rows a
store must persist and the topics whose readers must be woken. A change is
validated whole before anything is touched, so a rejected change changes
nothing. No I/O; time arrives as `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec

from waypost.core.brake import Brake, Census, Transition
from waypost.core.health import CheckKey, Deadlines
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
from waypost.core.watch import KV_KEY, KV_PREFIX, Topic
from waypost.exceptions import InvalidRequest, NotFound

# Tables a store persists; rows are keyed by these names.
NODES, SERVICES, CHECKS, KV = "nodes", "services", "checks", "kv"

T_SERVICES: Topic = ("services", "")
T_NODES: Topic = ("nodes", "")
T_CHECKS: Topic = ("checks", "")

Row = tuple[str, str, msgspec.Struct | None]  # (table, key, value or delete)

TTL_EXPIRED = "TTL expired"


def service_topic(name: str) -> Topic:
    return ("service", name)


def node_topic(name: str) -> Topic:
    return ("node", name)


def kv_topic(key: str) -> Topic:
    return (KV_KEY, key)


def kv_prefix_topic(prefix: str) -> Topic:
    return (KV_PREFIX, prefix)


def row_key(node: str, item_id: str) -> str:
    return f"{node}\x00{item_id}"


class Commit(msgspec.Struct, kw_only=True):
    """What one applied change produced: durable rows and topics to wake."""

    index: int
    rows: list[Row]
    topics: set[Topic]


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

    # ------------------------------------------------------------ restore

    def restore(self, rows: Iterable[Row], index: int, *, now: float) -> None:
        """Load persisted rows (store start-up); TTL deadlines restart now."""
        for table, _key, value in rows:
            if isinstance(value, Node):
                self.nodes[value.name] = value
            elif isinstance(value, Service):
                self._put_service(value)
            elif isinstance(value, Check):
                self._put_check(value)
                self._arm_check(value, now)
            elif isinstance(value, KVEntry):
                self._kv[value.key] = value
            else:  # pragma: no cover - a store bug, not user input
                raise ValueError(f"unknown row in table {table!r}")
        self.index = self.restored_index = index

    # ------------------------------------------------------------ indexes

    def topic_index(self, topic: Topic) -> int:
        return self._topic_index.get(topic, self.restored_index)

    def query_index(self, topics: Iterable[Topic]) -> int:
        """X-Consul-Index for a query reading these topics: ≥ 1, monotonic."""
        best = 1
        for topic in topics:
            if topic[0] == KV_PREFIX:
                value = self._kv_prefix_index(topic[1])
            else:
                value = self._topic_index.get(topic, self.restored_index)
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

    def _commit(self, rows: list[Row], topics: set[Topic]) -> Commit:
        for topic in topics:
            self._topic_index[topic] = self.index
        return Commit(index=self.index, rows=rows, topics=topics)

    def _next_index(self) -> int:
        self.index += 1
        return self.index

    # ------------------------------------------------------------ nodes

    def upsert_node(self, node: Node) -> Commit | None:
        """Create or update a node; None when nothing differs."""
        old = self.nodes.get(node.name)
        if old is not None and _same(old, node):
            return None
        index = self._next_index()
        node = msgspec.structs.replace(
            node,
            create_index=old.create_index if old else index,
            modify_index=index,
        )
        self.nodes[node.name] = node
        topics = {T_NODES, node_topic(node.name)}
        topics.update(service_topic(s.name) for s in self.node_services(node.name))
        return self._commit([(NODES, node.name, node)], topics)

    def delete_node(self, name: str) -> Commit:
        if name not in self.nodes:
            raise NotFound(f'Unknown node "{name}"')
        self._next_index()
        rows: list[Row] = [(NODES, name, None)]
        topics = {T_NODES, T_CHECKS, node_topic(name)}
        for service in list(self.node_services(name)):
            rows += self._drop_service(service, topics)
        for check in list(self._checks.get(name, {}).values()):
            rows += self._drop_check(check, topics)
        del self.nodes[name]
        return self._commit(rows, topics)

    # ------------------------------------------------------------ services

    def register_service(
        self,
        service: Service,
        checks: list[Check],
        *,
        now: float,
        replace_existing_checks: bool = False,
    ) -> Commit:
        """Register (or replace) one instance with its checks, all or nothing."""
        if service.node not in self.nodes:
            raise NotFound(f'Unknown node "{service.node}"')
        self._validate_new_checks(checks, service)
        checks = [
            msgspec.structs.replace(
                c, service_name=service.name, service_tags=service.tags
            )
            for c in checks
        ]
        old = self._services.get(service.node, {}).get(service.service_id)
        if old is not None and self._is_same_registration(
            old, service, checks, replace_existing_checks
        ):
            # Re-registering what is already there (a client restarting, a
            # heartbeat loop re-asserting itself) must not wake any watcher.
            for check in checks:
                self._arm_check(self._checks[check.node][check.check_id], now)
            return Commit(index=self.index, rows=[], topics=set())
        index = self._next_index()
        topics = {T_SERVICES, node_topic(service.node), service_topic(service.name)}
        rows: list[Row] = []
        if old is not None and old.name != service.name:
            rows += self._drop_service(old, topics)
            old = None
        new = msgspec.structs.replace(
            service,
            create_index=old.create_index if old else index,
            modify_index=index,
        )
        self._put_service(new)
        rows.append((SERVICES, row_key(new.node, new.service_id), new))
        key = (new.node, new.service_id)
        existing = dict(self._service_checks.get(key, {}))
        if replace_existing_checks:
            keep = {c.check_id for c in checks}
            # Consul drops every check left out, maintenance included.
            for check_id, check in existing.items():
                if check_id not in keep:
                    rows += self._drop_check(check, topics)
        for check in checks:
            rows += self._upsert_check(check, topics, now=now)
        # Service tags are echoed in every check of the instance.
        for check in list(self._service_checks.get(key, {}).values()):
            if check.service_tags != new.tags or check.service_name != new.name:
                updated = msgspec.structs.replace(
                    check, service_tags=new.tags, service_name=new.name
                )
                self._put_check(updated)
                rows.append((CHECKS, row_key(updated.node, updated.check_id), updated))
        return self._commit(rows, topics)

    def deregister_service(self, node: str, service_id: str) -> Commit:
        service = self._services.get(node, {}).get(service_id)
        if service is None:
            raise NotFound(
                f'Unknown service ID "{service_id}". Ensure that the service ID is'
                " passed, not the service name."
            )
        self._next_index()
        topics = {T_SERVICES, node_topic(node), service_topic(service.name)}
        rows = self._drop_service(service, topics)
        return self._commit(rows, topics)

    def _is_same_registration(
        self,
        old: Service,
        new: Service,
        checks: list[Check],
        replace_existing_checks: bool,
    ) -> bool:
        if not _same(old, new):
            return False
        node_checks = self._checks.get(new.node, {})
        for check in checks:
            existing = node_checks.get(check.check_id)
            if existing is None or not _same(existing, check):
                return False
        if replace_existing_checks:
            current = set(self._service_checks.get((new.node, new.service_id), {}))
            return current == {c.check_id for c in checks}
        return True

    def _drop_service(self, service: Service, topics: set[Topic]) -> list[Row]:
        key = (service.node, service.service_id)
        rows: list[Row] = []
        for check in list(self._service_checks.get(key, {}).values()):
            rows += self._drop_check(check, topics)
        self._service_checks.pop(key, None)
        del self._services[service.node][service.service_id]
        if not self._services[service.node]:
            del self._services[service.node]
        instances = self._by_name[service.name]
        del instances[key]
        if not instances:
            del self._by_name[service.name]
        topics.update((T_SERVICES, service_topic(service.name)))
        rows.append((SERVICES, row_key(service.node, service.service_id), None))
        return rows

    def _put_service(self, service: Service) -> None:
        self._services.setdefault(service.node, {})[service.service_id] = service
        key = (service.node, service.service_id)
        self._by_name.setdefault(service.name, {})[key] = service

    # ------------------------------------------------------------ checks

    def register_check(self, check: Check, *, now: float) -> Commit:
        """Register (or replace) one check on a node or one of its services."""
        if check.node not in self.nodes:
            raise NotFound(f'Unknown node "{check.node}"')
        service = None
        if check.service_id:
            service = self._services.get(check.node, {}).get(check.service_id)
            if service is None:
                raise NotFound(f'ServiceID "{check.service_id}" does not exist')
            check = msgspec.structs.replace(
                check, service_name=service.name, service_tags=service.tags
            )
        self._validate_new_checks([check], service)
        self._next_index()
        topics: set[Topic] = set()
        rows = self._upsert_check(check, topics, now=now)
        return self._commit(rows, topics)

    def deregister_check(self, node: str, check_id: str) -> Commit:
        check = self._checks.get(node, {}).get(check_id)
        if check is None:
            raise NotFound(
                f'Unknown check ID "{check_id}". Ensure that the check ID is passed,'
                " not the check name."
            )
        self._next_index()
        topics: set[Topic] = set()
        rows = self._drop_check(check, topics)
        return self._commit(rows, topics)

    def update_check(
        self,
        node: str,
        check_id: str,
        status: HealthStatus,
        output: str,
        *,
        now: float,
    ) -> Commit | None:
        """Set a check's status and output; re-arm its TTL.

        Returns a Commit when the status changed; None when only the output
        changed (kept in memory, not persisted, not an index bump) or nothing.
        """
        check = self._checks.get(node, {}).get(check_id)
        if check is None:
            raise NotFound(
                f'Unknown check ID "{check_id}". Ensure that the check ID is passed,'
                " not the check name."
            )
        ttl = self._ttl_of.get((node, check_id))
        if ttl is not None:
            self.ttl.arm((node, check_id), now + ttl)
        if check.status == status:
            if check.output != output:
                self._put_check(msgspec.structs.replace(check, output=output))
                self.output_generation += 1
            return None
        index = self._next_index()
        updated = msgspec.structs.replace(
            check, status=status, output=output, modify_index=index
        )
        self._put_check(updated)
        self._arm_reap(updated, now)
        topics: set[Topic] = set()
        self._check_topics(updated, topics)
        return self._commit([(CHECKS, row_key(node, check_id), updated)], topics)

    def get_check(self, node: str, check_id: str) -> Check | None:
        return self._checks.get(node, {}).get(check_id)

    def _validate_new_checks(
        self, checks: list[Check], service: Service | None
    ) -> None:
        seen: set[str] = set()
        for check in checks:
            if check.check_id in seen:
                raise InvalidRequest(f'Duplicate check ID "{check.check_id}"')
            seen.add(check.check_id)
            existing = self._checks.get(check.node, {}).get(check.check_id)
            if (
                existing is not None
                and service is not None
                and existing.service_id not in ("", service.service_id)
            ):
                raise InvalidRequest(
                    f'Check ID "{check.check_id}" already belongs to service'
                    f' "{existing.service_id}"'
                )

    def _upsert_check(
        self, check: Check, topics: set[Topic], *, now: float
    ) -> list[Row]:
        old = self._checks.get(check.node, {}).get(check.check_id)
        index = self.index
        if old is not None and old.service_id != check.service_id:
            self._drop_check(old, topics)
            old = None
        check = msgspec.structs.replace(
            check,
            create_index=old.create_index if old else index,
            modify_index=index,
        )
        self._put_check(check)
        self._arm_check(check, now)
        self._check_topics(check, topics)
        return [(CHECKS, row_key(check.node, check.check_id), check)]

    def _drop_check(self, check: Check, topics: set[Topic]) -> list[Row]:
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
        ckey = (check.node, check.check_id)
        self.ttl.disarm(ckey)
        self.reap.disarm(ckey)
        self._ttl_of.pop(ckey, None)
        self._check_topics(check, topics)
        return [(CHECKS, row_key(check.node, check.check_id), None)]

    def _put_check(self, check: Check) -> None:
        self._checks.setdefault(check.node, {})[check.check_id] = check
        if check.service_id:
            key = (check.node, check.service_id)
            self._service_checks.setdefault(key, {})[check.check_id] = check

    def _check_topics(self, check: Check, topics: set[Topic]) -> None:
        topics.add(T_CHECKS)
        topics.add(node_topic(check.node))
        if check.service_id:
            topics.add(service_topic(check.service_name))
        else:
            # Node checks decide the health of every instance on the node.
            topics.update(service_topic(s.name) for s in self.node_services(check.node))

    def _arm_check(self, check: Check, now: float) -> None:
        ckey = (check.node, check.check_id)
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
        if check.status is HealthStatus.CRITICAL:
            if ckey not in self.reap:
                self.reap.arm(ckey, now + after)
        else:
            self.reap.disarm(ckey)

    # ------------------------------------------------------------ deadlines

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.ttl.next_deadline(), self.reap.next_deadline())]
        live = [d for d in deadlines if d is not None]
        return min(live) if live else None

    def expire(self, now: float, brake: Brake | None = None) -> list[Commit]:
        """Turn overdue TTL checks critical and reap long-critical services.

        With a `brake`, nothing expires or is reaped while it is engaged.
        """
        if brake is not None and self._is_braking(now, brake):
            return []
        commits: list[Commit] = []
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
            commit = self.update_check(
                node, check_id, HealthStatus.CRITICAL, output, now=now
            )
            # update_check re-armed the TTL; an expired check stays expired
            # until its next heartbeat.
            self.ttl.disarm((node, check_id))
            if commit is not None:
                commits.append(commit)
                expired += 1
        if brake is not None:
            brake.record_expiries(now, expired)
        for node, check_id in self.reap.pop_due(now):
            check = self.get_check(node, check_id)
            if check is None or check.status is not HealthStatus.CRITICAL:
                continue
            if check.service_id in self._services.get(node, {}):
                commits.append(self.deregister_service(node, check.service_id))
        return commits

    def _is_braking(self, now: float, brake: Brake) -> bool:
        """Let the brake assess (when something is due) and say if it holds."""
        deadline = self.next_deadline()
        if brake.wants_census(now, due=deadline is not None and deadline <= now):
            transition = brake.assess(now, self.ttl_census(now, brake))
            if transition is Transition.RELEASED:
                self._grant_grace(now)
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
            live += 1
            if deadline - now < (1.0 - quiet_after) * ttl:
                quiet += 1
        return Census(live=live, quiet=quiet)

    def _grant_grace(self, now: float) -> None:
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

    def kv_put(
        self,
        key: str,
        value: bytes,
        *,
        flags: int | None = None,
        cas: int | None = None,
    ) -> Commit | None:
        """Set a key; with `cas`, only if its ModifyIndex matches (0: absent).

        Returns None when the CAS did not match (Consul answers `false`).
        """
        old = self._kv.get(key)
        if cas is not None and cas != (old.modify_index if old else 0):
            return None
        index = self._next_index()
        entry = KVEntry(
            key=key,
            value=value,
            flags=flags if flags is not None else (old.flags if old else 0),
            lock_index=old.lock_index if old else 0,
            session=old.session if old else "",
            create_index=old.create_index if old else index,
            modify_index=index,
        )
        self._kv[key] = entry
        self._kv_deleted.pop(key, None)
        return self._commit([(KV, key, entry)], {kv_topic(key)})

    def kv_delete(
        self, key: str, *, recurse: bool = False, cas: int | None = None
    ) -> Commit | None:
        """Delete a key (or a prefix); None when the CAS did not match."""
        if cas is not None and not recurse:
            old = self._kv.get(key)
            if old is None or old.modify_index != cas:
                return None
        doomed = [k for k in self._kv if k.startswith(key)] if recurse else [key]
        doomed = [k for k in doomed if k in self._kv]
        index = self._next_index()
        rows: list[Row] = []
        topics: set[Topic] = {kv_topic(key)}
        for k in doomed:
            del self._kv[k]
            self._kv_deleted[k] = index
            rows.append((KV, k, None))
            topics.add(kv_topic(k))
        self._kv_deleted[key] = index
        return self._commit(rows, topics)

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


def _same(old: msgspec.Struct, new: msgspec.Struct) -> bool:
    """Equal apart from the raft-style indexes."""
    strip = {"create_index": 0, "modify_index": 0}
    return msgspec.structs.replace(old, **strip) == msgspec.structs.replace(
        new, **strip
    )
