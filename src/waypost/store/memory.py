"""A store that keeps nothing: `--dev` mode and tests of the layers above."""

from __future__ import annotations

from collections.abc import Awaitable

from waypost.core.changes import Entry, LockKey, Plan, Row, stamp
from waypost.store.base import HEALTHY, Deliver, StoreHealth


class MemoryStore:
    """Commits at once (every change is delivered before `commit` returns);
    everything is gone when the process ends."""

    description = "memory (dev mode: nothing is written)"

    def __init__(self) -> None:
        self._index = 0
        self._deliver: Deliver | None = None

    def load(self) -> tuple[list[Row], int]:
        return [], self._index

    async def open(self) -> None:
        return None

    async def sync(self) -> None:
        return None  # one writer: the catalog has every commit

    def health(self) -> StoreHealth:
        return HEALTHY

    def bind(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def conflict(self, plan: Plan) -> Awaitable[None] | None:
        return None  # nothing is ever pending

    def is_pending(self, key: LockKey) -> bool:
        return False

    async def commit(self, plan: Plan) -> Entry:
        return self.commit_now(plan)

    def commit_now(self, plan: Plan) -> Entry:
        """The synchronous commit (nothing to wait for)."""
        self._index += 1
        entry = stamp(plan, self._index)
        if self._deliver is not None:
            self._deliver(entry)
        return entry

    async def close(self) -> None:
        return None
