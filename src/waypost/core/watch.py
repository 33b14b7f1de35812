"""Who waits on what: wake only the waiters whose data changed.

A waiter is a non-blocking callable registered under the topics its query
reads. Consul wakes every blocking query on a table change (hashicorp/consul
#1244, #3890); here a change to service `a` never wakes a watcher of `b`.
No I/O, no asyncio: the HTTP layer wraps futures into callables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

Topic = tuple[str, str]
Key = TypeVar("Key", str, Topic)
Waiter = Callable[[], None]

KV_PREFIX = "kv-prefix"
KV_KEY = "kv"


class Watchers:
    """Waiters keyed by topic; KV prefix waiters matched by key prefix."""

    def __init__(self) -> None:
        self._by_topic: dict[Topic, set[Waiter]] = {}
        self._by_prefix: dict[str, set[Waiter]] = {}

    def __len__(self) -> int:
        return sum(map(len, self._by_topic.values())) + sum(
            map(len, self._by_prefix.values())
        )

    def add(self, topics: Iterable[Topic], waiter: Waiter) -> None:
        for kind, name in topics:
            table = self._by_prefix if kind == KV_PREFIX else None
            if table is not None:
                table.setdefault(name, set()).add(waiter)
            else:
                self._by_topic.setdefault((kind, name), set()).add(waiter)

    def discard(self, topics: Iterable[Topic], waiter: Waiter) -> None:
        for kind, name in topics:
            if kind == KV_PREFIX:
                _discard(self._by_prefix, name, waiter)
            else:
                _discard(self._by_topic, (kind, name), waiter)

    def notify(self, topics: Iterable[Topic]) -> int:
        """Wake every waiter of these topics once; returns how many woke."""
        woken: set[Waiter] = set()
        for topic in topics:
            waiters = self._by_topic.pop(topic, None)
            if waiters:
                woken |= waiters
            if topic[0] == KV_KEY and self._by_prefix:
                key = topic[1]
                for prefix in [p for p in self._by_prefix if key.startswith(p)]:
                    woken |= self._by_prefix.pop(prefix)
        for waiter in woken:
            waiter()
        return len(woken)

    def notify_all(self) -> None:
        """Wake everyone (shutdown): blocking queries answer at once."""
        woken = set().union(*self._by_topic.values(), *self._by_prefix.values())
        self._by_topic.clear()
        self._by_prefix.clear()
        for waiter in woken:
            waiter()


def _discard(table: dict[Key, set[Waiter]], key: Key, waiter: Waiter) -> None:
    waiters = table.get(key)
    if waiters is not None:
        waiters.discard(waiter)
        if not waiters:
            del table[key]
