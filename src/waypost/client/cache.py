"""Discovery cache: what a watcher remembers between blocking queries.

`WatchState` is the whole policy, without I/O: which query to send next
(`?index=` of the last answer, never 0, reset when the registry's index goes
backwards), what a new answer changes, how long to back off after a failure
(exponential, full jitter) and when the set is stale. The feeds of
`_async_watch.py` and `_sync_watch.py` (a task or a thread per distinct
query, shared by its watchers) run the loop; `Cache` and `AsyncCache` keep
one watcher per query.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from waypost.client._base import Call
from waypost.client._calls import instances_call
from waypost.client.model import InstanceSet

#: How long the registry may hold a watcher's query (Consul's default is 5m).
DEFAULT_WATCH_WAIT = 300.0
#: First retry delay after a failure, and the most it grows to.
DEFAULT_MIN_BACKOFF = 0.05
DEFAULT_MAX_BACKOFF = 5.0

#: How long starting a watcher waits for its first answer.
FIRST_ANSWER_TIMEOUT = 10.0

CacheKey = tuple[str, bool, tuple[str, ...]]
#: A query and how it is polled: watchers with equal keys share one feed.
FeedKey = tuple[str, bool, tuple[str, ...], float, float, float]
OnChange = Callable[[InstanceSet], None]


def cache_key(name: str, passing: bool, tags: Sequence[str]) -> CacheKey:
    return (name, passing, tuple(sorted(tags)))


class Backoff:
    """Exponential backoff with full jitter (AWS's "Exponential Backoff And
    Jitter"): retries of many watchers spread out instead of arriving in
    waves when a registry comes back."""

    def __init__(
        self,
        minimum: float = DEFAULT_MIN_BACKOFF,
        maximum: float = DEFAULT_MAX_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Seconds to wait before the next try; grows with each failure."""
        ceiling = min(self.maximum, self.minimum * 2**self.failures)
        self.failures += 1
        return self._rng.uniform(self.minimum / 2, max(ceiling, self.minimum))

    def reset(self) -> None:
        self.failures = 0


class WatchState:
    """One watched query: the latest set, the next index, staleness.

    Args:
        name, passing, tags: the query (`/v1/health/service/<name>`).
        wait: how long the registry may hold each query.
        min_backoff, max_backoff: retry delays after failures.
    """

    def __init__(
        self,
        name: str,
        *,
        passing: bool = True,
        tags: Sequence[str] = (),
        wait: float = DEFAULT_WATCH_WAIT,
        min_backoff: float = DEFAULT_MIN_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.passing = passing
        self.tags = tuple(tags)
        self.wait = wait
        self.backoff = Backoff(min_backoff, max_backoff, rng)
        self.current = InstanceSet()
        self.has_answer = False
        self.last_error: Exception | None = None
        self.index = 0

    def feed_key(self) -> FeedKey:
        """Equal for watchers that may share one blocking query."""
        name, passing, tags = cache_key(self.name, self.passing, self.tags)
        backoff = self.backoff
        return (name, passing, tags, self.wait, backoff.minimum, backoff.maximum)

    def next_call(self) -> Call[InstanceSet]:
        """The first query reads at once; the next ones block on the index."""
        return instances_call(
            self.name,
            passing=self.passing,
            tags=self.tags,
            index=self.index or None,
            wait=self.wait if self.index else None,
        )

    def succeeded(self, answer: InstanceSet) -> bool:
        """Take a new answer; True when callers should hear about it."""
        # Consul's rules for blocking-query clients: an index that went
        # backwards (a registry restarted empty, another node) means start
        # over from it, and an index below 1 is treated as 1, or every
        # query would return at once.
        self.index = max(answer.index, 1)
        changed = (
            not self.has_answer
            or self.current.is_stale
            or answer.instances != self.current.instances
        )
        self.current = InstanceSet(instances=answer.instances, index=self.index)
        self.has_answer = True
        self.last_error = None
        self.backoff.reset()
        return changed

    def failed(self, error: Exception) -> tuple[float, bool]:
        """Note a failure; return (seconds to wait, whether staleness began).

        The last known set is kept and served, flagged stale, until the
        registry answers again.
        """
        self.last_error = error
        became_stale = self.has_answer and not self.current.is_stale
        if self.has_answer:
            self.current = InstanceSet(
                instances=self.current.instances,
                index=self.current.index,
                is_stale=True,
                error=str(error),
            )
        # Start over with a plain read: the registry may come back as
        # another process whose index means something else.
        self.index = 0
        return self.backoff.next_delay(), became_stale
