# Generated from _async_watch.py by scripts/unasync.py: do not edit.
"""`Watcher` and `Cache`: discovery kept in memory by blocking
queries, one feed per distinct query.

A feed (`Feed`) is one blocking-query loop on a connection of its own;
every watcher of the same query on one client subscribes to it, so a
thousand watchers of one service cost one request and one decode per change.
Each watcher keeps its own balancer and `on_change`. The policy (index,
backoff, staleness) is `cache.WatchState`; this module runs the loop.
`scripts/unasync.py` writes `_sync_watch.py` from `_async_watch.py`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from waypost.client._sync_io import Background, Condition, Event, Lock
from waypost.client.balancers import Balancer, RoundRobin
from waypost.client.cache import (
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MIN_BACKOFF,
    DEFAULT_WATCH_WAIT,
    FIRST_ANSWER_TIMEOUT,
    CacheKey,
    FeedKey,
    OnChange,
    WatchState,
    cache_key,
)
from waypost.client.model import Instance, InstanceSet
from waypost.exceptions import RegistryConnectError

if TYPE_CHECKING:
    from waypost.client._sync import Client

logger = logging.getLogger("waypost.client")


class Feed:
    """One blocking-query loop, shared by the watchers of one query.

    Runs while it has subscribers. Each new answer reaches every subscriber
    (`Watcher._deliver`) in the feed's thread, then wakes `wait_for`.
    """

    def __init__(self, client: Client, state: WatchState) -> None:
        self.client = client
        self.state = state
        self.watchers: list[Watcher] = []
        #: Bumped by each published set; watchers skip what they have seen.
        self.version = 0
        self.answered = Event()
        self.changed = Condition()
        self._stopping = Event()
        self._pool = client._long_poll_pool()
        self._task: Background | None = None

    def start(self) -> None:
        self._task = Background(self._run, name=f"waypost-watch-{self.state.name}")

    def stop(self) -> None:
        """End the loop, its blocked query included, at once."""
        self._stopping.set()
        self._pool.interrupt()
        if self._task is not None:
            self._task.stop()
            self._task = None

    def _run(self) -> None:
        state = self.state
        while not self._stopping.is_set():
            call = state.next_call()
            try:
                answer = self.client._run(call, self._pool)
            except Exception as exc:  # the loop's boundary: log, back off
                if self._stopping.is_set():
                    break
                self._follow_fail_over(exc)
                delay, became_stale = state.failed(exc)
                if became_stale:
                    logger.warning(
                        "watch %r: registry unreachable, serving the last set: %s",
                        state.name,
                        exc,
                    )
                    self._publish(is_fresh=False)
                self.answered.set()
                self._stopping.wait(delay)
                continue
            if self._stopping.is_set():
                break
            if state.succeeded(answer):
                self._publish(is_fresh=True)
            self.answered.set()

    def _follow_fail_over(self, error: Exception) -> None:
        """Several addresses: poll the next agent once this one is gone."""
        if isinstance(error, RegistryConnectError):
            self.client._fail_over(self._pool.origin)
        if self._pool.origin is not self.client._origin:
            self._pool.interrupt()
            self._pool = self.client._long_poll_pool()

    def _publish(self, *, is_fresh: bool) -> None:
        self.version += 1
        version, current = self.version, self.state.current
        for watcher in list(self.watchers):
            watcher._deliver(version, current, is_fresh=is_fresh)
        self.changed.notify_all()


class Feeds:
    """A client's feeds, one per distinct query; a feed ends with its last
    watcher."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._feeds: dict[FeedKey, Feed] = {}
        self._lock = threading.Lock()

    def subscribe(self, watcher: Watcher) -> Feed:
        """The running feed of the watcher's query, started if needed."""
        key = watcher.state.feed_key()
        with self._lock:
            feed = self._feeds.get(key)
            if feed is None:
                feed = self._feeds[key] = Feed(self._client, watcher.state)
                feed.start()
            feed.watchers.append(watcher)
        return feed

    def unsubscribe(self, watcher: Watcher, feed: Feed) -> None:
        """Drop the watcher; stop the feed if it was the last one."""
        with self._lock:
            if watcher in feed.watchers:
                feed.watchers.remove(watcher)
            if feed.watchers:
                return
            key = feed.state.feed_key()
            if self._feeds.get(key) is feed:
                del self._feeds[key]
        feed.stop()

    def close(self) -> None:
        """Stop every feed."""
        with self._lock:
            feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.stop()


class Watcher:
    """Keeps one query's latest instance set in memory, fed by blocking
    queries in the background; see `Client.watch`.

    When the registry is unreachable it keeps serving the last set it had,
    with `is_stale` set, and retries with backoff and jitter.
    """

    def __init__(
        self,
        client: Client,
        state: WatchState,
        *,
        balancer: Balancer | None = None,
        on_change: OnChange | None = None,
    ) -> None:
        self.client = client
        self.state = state
        self.balancer = balancer if balancer is not None else RoundRobin()
        self.balancer.service = state.name  # named when nothing can be picked
        self.on_change = on_change
        self._feed: Feed | None = None
        self._seen = 0
        self._delivering = threading.Lock()

    # -- reading ------------------------------------------------------------

    def instances(self) -> InstanceSet:
        """The latest set (stale-flagged while the registry is unreachable).

        Raises:
            RegistryUnavailable: no answer ever came, so there is nothing
                to serve.
        """
        state = self.state
        if not state.has_answer and state.last_error is not None:
            raise state.last_error
        return state.current

    @property
    def is_stale(self) -> bool:
        return self.state.current.is_stale

    def pick(self, key: str | None = None) -> Instance:
        """One instance from the balancer (see `Balancer.pick`)."""
        return self.balancer.pick(key)

    @contextlib.contextmanager
    def acquire(self, key: str | None = None) -> Iterator[Instance]:
        """Pick, and count the request in flight until the block ends."""
        with self.balancer.acquire(key) as instance:
            yield instance

    def wait_for(
        self,
        predicate: Callable[[InstanceSet], object],
        timeout: float,
    ) -> InstanceSet:
        """Wait until `predicate(set)` is true; TimeoutError otherwise."""
        feed = self._feed
        if feed is None:
            raise RuntimeError(f"watch {self.state.name!r}: start it first")
        if not feed.changed.wait_for(
            lambda: self.state.has_answer and predicate(self.state.current), timeout
        ):
            raise TimeoutError(f"{self.state.name}: condition not met")
        return self.state.current

    # -- running ------------------------------------------------------------

    def start(
        self,
        timeout: float = FIRST_ANSWER_TIMEOUT,
    ) -> Self:
        """Join the query's feed and wait (up to `timeout`) for a first outcome."""
        if self._feed is not None:
            return self
        feed = self.client._feeds.subscribe(self)
        self._feed, self.state = feed, feed.state
        if feed.state.has_answer:  # a feed that ran before this watcher came
            self._deliver(feed.version, feed.state.current, is_fresh=True)
        feed.answered.wait(timeout)
        return self

    def stop(self) -> None:
        """Leave the feed; the last watcher to leave ends its blocked query."""
        feed, self._feed = self._feed, None
        if feed is not None:
            self.client._feeds.unsubscribe(self, feed)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _deliver(self, version: int, current: InstanceSet, *, is_fresh: bool) -> None:
        """Feed this watcher's balancer and callback, once per version."""
        with self._delivering:
            if version <= self._seen:
                return
            self._seen = version
            if is_fresh:
                self.balancer.update(current.instances)
            if self.on_change is None:
                return
            try:
                self.on_change(current)
            except Exception:
                logger.exception("watch %r: on_change callback raised", self.state.name)


class Cache:
    """One `Watcher` per query, started on first use.

    The attributes `wait`, `min_backoff` and `max_backoff` are passed to
    watchers started after they are set (see `Client.watch`).
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self.wait = DEFAULT_WATCH_WAIT
        self.min_backoff = DEFAULT_MIN_BACKOFF
        self.max_backoff = DEFAULT_MAX_BACKOFF
        self._watchers: dict[CacheKey, Watcher] = {}
        self._lock = Lock()

    def watcher(
        self, name: str, *, passing: bool = True, tags: Sequence[str] = ()
    ) -> Watcher:
        """The running watcher for this query, started if needed."""
        key = cache_key(name, passing, tags)
        with self._lock:
            watcher = self._watchers.get(key)
            if watcher is None:
                watcher = self._client.watch(
                    name,
                    passing=passing,
                    tags=tags,
                    wait=self.wait,
                    min_backoff=self.min_backoff,
                    max_backoff=self.max_backoff,
                )
                self._watchers[key] = watcher
                watcher.start()
        return watcher

    def instances(
        self, name: str, *, passing: bool = True, tags: Sequence[str] = ()
    ) -> InstanceSet:
        """The query's latest set; stale-flagged while cut off.

        Raises:
            RegistryUnavailable: the registry never answered this query.
        """
        watcher = self.watcher(name, passing=passing, tags=tags)
        return watcher.instances()

    def close(self) -> None:
        """Stop every watcher."""
        with self._lock:
            watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher.stop()
