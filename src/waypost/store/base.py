"""The Store protocol: what the registry needs from durability.

A store decides the order of changes and gives each its index. `commit(plan)`
stamps the plan's rows with that index, makes them durable, hands the
resulting `Entry` to the registry's `deliver` callback (which applies it to
the catalog), in index order, and only then returns. So readers never see a
change that is not durable, and a failed commit leaves memory equal to disk.

A plan was computed against the catalog as the registry saw it. If a change
that is committed but not yet delivered wrote a key the plan read, the plan
is stale: `conflict(plan)` (and `commit`) say so with an awaitable that
settles when that write has been delivered or has failed; the registry then
plans again. The embedded stores track such writes in memory
(`PendingWrites`); an etcd store would express the same condition as a
transaction comparing the revisions the plan read.

Stores know nothing of HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from waypost.core.changes import KV, Entry, LockKey, Plan, Row

Deliver = Callable[[Entry], None]


class Conflict(Exception):
    """The plan read something a pending change writes: plan again later."""

    def __init__(self, settled: Awaitable[None]) -> None:
        super().__init__("the change conflicts with one being committed")
        self.settled = settled


class StoreHealth(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the store can commit now, as Consul's read headers say it."""

    #: X-Consul-KnownLeader: the store reached a quorum recently.
    known_leader: bool = True
    #: X-Consul-LastContact, in seconds: how stale the replica may be.
    last_contact: float = 0.0


HEALTHY = StoreHealth()


class Store(Protocol):
    """Durability for the catalog: ordered, indexed, delivered when durable."""

    #: Shown in the start-up line, e.g. "sqlite:/var/lib/waypost/state.db".
    description: str

    async def open(self) -> None:
        """Connect and read what `load` returns (a cluster store); the
        embedded stores did that in their constructor."""
        ...

    def load(self) -> tuple[list[Row], int]:
        """Every persisted row and the index of the last commit."""
        ...

    def bind(self, deliver: Deliver) -> None:
        """Where committed entries go, in index order (before `commit` returns)."""
        ...

    def conflict(self, plan: Plan) -> Awaitable[None] | None:
        """If a pending write makes `plan` stale: what to await before replanning."""
        ...

    def is_pending(self, key: LockKey) -> bool:
        """Whether a committed change that writes `key` is not yet delivered
        (then a reader of `key` must wait for it)."""
        ...

    async def commit(self, plan: Plan) -> Entry:
        """Index, persist and deliver one plan; raise `Conflict` if it is stale,
        `StoreUnavailable` if it could not be made durable (nothing applied)."""
        ...

    async def sync(self) -> None:
        """Return once the catalog holds every change committed before the
        call (`?consistent`); the embedded stores always do."""
        ...

    def health(self) -> StoreHealth:
        """Can writes be made durable now, and how stale are reads."""
        ...

    async def close(self) -> None:
        """Finish pending commits, then release the files."""
        ...


class PendingWrites:
    """Keys written by changes that are committed but not yet delivered.

    At most one pending change writes a key: a plan that reads a pending key
    waits (every plan reads what it writes), so the order of indexes is the
    order in which each key changed.
    """

    def __init__(self) -> None:
        self._keys: dict[LockKey, int] = {}
        # One future per waiter: the HTTP protocol starts handlers inline,
        # and two inline coroutines must not yield the same future.
        self._settled: dict[LockKey, list[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def is_pending(self, key: LockKey) -> bool:
        return key in self._keys

    def conflict(self, plan: Plan) -> asyncio.Future[None] | None:
        keys = self._keys
        if not keys:
            return None
        if plan.replaces_all:  # a restore read everything
            return self._future(next(iter(keys)))
        # Every row a plan writes it has read (it needs the old value), so
        # reads cover row writes. The two set keys are different: adding to
        # a node's items does not conflict with another addition, only with
        # a plan that enumerated them (and so read the key).
        for key in plan.reads:
            if key in keys:
                return self._future(key)
        for prefix in plan.prefix_reads:
            for key in keys:
                if key[0] == KV and key[1].startswith(prefix):
                    return self._future(key)
        return None

    def _future(self, key: LockKey) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settled.setdefault(key, []).append(future)
        return future

    def add(self, plan: Plan, index: int) -> None:
        for key in plan.writes:
            self._keys[key] = index

    def release(self, plan: Plan) -> None:
        for key in plan.writes:
            self._keys.pop(key, None)
            for future in self._settled.pop(key, ()):
                if not future.done():
                    future.set_result(None)
