"""Deadlines: TTL expiry and deregister-critical-service-after reaping.

Heartbeats are not writes: a TTL pass only moves a deadline kept here in
memory. No I/O; time arrives as `now` (monotonic seconds).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

CheckKey = tuple[str, str]  # (node, check_id)
K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """A set of keyed deadlines; re-arming a key replaces its deadline.

    A heap with lazy deletion: superseded entries stay in the heap and are
    skipped when popped, so arming is O(log n) and heartbeats stay cheap.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._current: dict[K, tuple[float, int]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, key: K) -> bool:
        return key in self._current

    def arm(self, key: K, deadline: float) -> None:
        self._seq += 1
        self._current[key] = (deadline, self._seq)
        heapq.heappush(self._heap, (deadline, self._seq, key))
        if len(self._heap) > 2 * len(self._current) + 64:
            self._compact()

    def disarm(self, key: K) -> None:
        self._current.pop(key, None)

    def deadline(self, key: K) -> float | None:
        entry = self._current.get(key)
        return entry[0] if entry else None

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None when nothing is armed."""
        while self._heap:
            deadline, seq, key = self._heap[0]
            if self._current.get(key) == (deadline, seq):
                return deadline
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float) -> list[K]:
        """Remove and return every key whose deadline is at or before `now`."""
        due: list[K] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, seq, key = heapq.heappop(self._heap)
            if self._current.get(key) == (deadline, seq):
                del self._current[key]
                due.append(key)
        return due

    def count_due(self, until: float) -> int:
        """How many live deadlines fall at or before `until` (no removal)."""
        return sum(1 for deadline, _ in self._current.values() if deadline <= until)

    def _compact(self) -> None:
        self._heap = [(d, s, k) for k, (d, s) in self._current.items()]
        heapq.heapify(self._heap)
