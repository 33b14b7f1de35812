"""A catalog driven synchronously through change records, for core tests.

What `Registry.apply` does over a `MemoryStore`, without asyncio: plan the
change, give it the next index, apply it. The methods keep the old names of
the operations so tests read as what they prove.
"""

from __future__ import annotations

from typing import Any

from waypost.core.brake import Brake
from waypost.core.catalog import Catalog
from waypost.core.changes import (
    Change,
    DeregisterService,
    Entry,
    KVDelete,
    KVPut,
    RegisterCheck,
    RegisterNode,
    RegisterService,
    UpdateCheck,
    stamp,
)
from waypost.core.model import Check, HealthStatus, Node, Service
from waypost.core.planner import plan


class Driven:
    """A Catalog whose every change goes plan → index → apply."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog()
        self.entries: list[Entry] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.catalog, name)

    def apply(self, change: Change, *, now: float = 0.0) -> Entry | None:
        """The entry the change became, or None when it wrote nothing
        (a CAS that failed, a re-registration, an output-only update)."""
        planned = plan(self.catalog, change)
        if planned.is_noop:
            if planned.output is not None:
                self.catalog.set_output(*planned.output)
            self.catalog.arm(planned.arm, now)
            return None
        entry = stamp(planned, self.catalog.index + 1)
        self.catalog.apply(entry, now=now)
        self.entries.append(entry)
        return entry

    def upsert_node(self, node: Node) -> Entry | None:
        return self.apply(RegisterNode(node=node))

    def register_service(
        self, service: Service, checks: list[Check], *, now: float
    ) -> Entry | None:
        return self.apply(RegisterService(service=service, checks=checks), now=now)

    def register_check(self, check: Check, *, now: float) -> Entry | None:
        return self.apply(RegisterCheck(check=check), now=now)

    def deregister_service(self, node: str, service_id: str) -> Entry | None:
        return self.apply(DeregisterService(node=node, service_id=service_id))

    def update_check(
        self, node: str, check_id: str, status: HealthStatus, output: str, *, now: float
    ) -> Entry | None:
        """A TTL update: the heartbeat restarts the TTL, then the status."""
        self.catalog.touch((node, check_id), now)
        return self.apply(
            UpdateCheck(node=node, check_id=check_id, status=status, output=output),
            now=now,
        )

    def kv_put(self, key: str, value: bytes, *, cas: int | None = None) -> Entry | None:
        return self.apply(KVPut(key=key, value=value, cas=cas))

    def kv_delete(self, key: str, *, recurse: bool = False) -> Entry | None:
        return self.apply(KVDelete(key=key, recurse=recurse))

    def expire(self, now: float, brake: Brake | None = None) -> list[Entry]:
        """Apply what the clock asks for; the entries that changed something."""
        entries = []
        for change in self.catalog.due(now, brake):
            entry = self.apply(change, now=now)
            if entry is not None:
                entries.append(entry)
        return entries
