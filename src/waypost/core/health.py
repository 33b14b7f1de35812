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

    A heap holds at most one live entry per key. Moving a deadline *later*
    (every heartbeat does) only updates a dict: the queued entry is moved
    when it reaches the top of the heap. So a check heartbeating every TTL/3
    costs one heap operation per TTL, not one per heartbeat.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._current: dict[K, float] = {}
        # The key's live heap entry: (its deadline, its sequence number).
        self._queued: dict[K, tuple[float, int]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, key: K) -> bool:
        return key in self._current

    def arm(self, key: K, deadline: float) -> None:
        self._current[key] = deadline
        queued = self._queued.get(key)
        if queued is not None and queued[0] <= deadline:
            return  # the queued entry comes up first and is moved then
        self._seq += 1
        self._queued[key] = (deadline, self._seq)
        heapq.heappush(self._heap, (deadline, self._seq, key))
        if len(self._heap) > 2 * len(self._current) + 64:
            self._compact()

    def disarm(self, key: K) -> None:
        self._current.pop(key, None)

    def deadline(self, key: K) -> float | None:
        return self._current.get(key)

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None when nothing is armed."""
        heap = self._heap
        while heap:
            deadline, seq, key = heap[0]
            if self._settle_top(deadline, seq, key):
                return deadline
        return None

    def pop_due(self, now: float) -> list[K]:
        """Remove and return every key whose deadline is at or before `now`."""
        due: list[K] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, seq, key = heap[0]
            if self._settle_top(deadline, seq, key):
                heapq.heappop(heap)
                del self._queued[key]
                del self._current[key]
                due.append(key)
        return due

    def _settle_top(self, deadline: float, seq: int, key: K) -> bool:
        """True if the heap's top entry is exact; else fix it up and say no."""
        heap = self._heap
        queued = self._queued.get(key)
        if queued is None or queued[1] != seq:
            heapq.heappop(heap)  # superseded by a later-pushed entry
            return False
        current = self._current.get(key)
        if current is None:
            heapq.heappop(heap)  # disarmed
            del self._queued[key]
            return False
        if current > deadline:
            # Moved later by heartbeats since it was queued: queue it there.
            self._queued[key] = (current, seq)
            heapq.heapreplace(heap, (current, seq, key))
            return False
        return True

    def count_due(self, until: float) -> int:
        """How many live deadlines fall at or before `until` (no removal)."""
        return sum(1 for deadline in self._current.values() if deadline <= until)

    def _compact(self) -> None:
        self._queued = {}
        self._heap = []
        for key, deadline in self._current.items():
            self._seq += 1
            self._queued[key] = (deadline, self._seq)
            self._heap.append((deadline, self._seq, key))
        heapq.heapify(self._heap)
