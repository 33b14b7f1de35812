"""`AsyncWatcher` and `AsyncCache`: discovery kept in memory by blocking
queries, one task and one lean connection (`_longpoll.py`) per watcher.

The policy (index, backoff, staleness) is `cache.WatchState`; this module
runs the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from waypost.client._longpoll import LongPoll
from waypost.client.balancers import Balancer, RoundRobin
from waypost.client.cache import (
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MIN_BACKOFF,
    DEFAULT_WATCH_WAIT,
    FIRST_ANSWER_TIMEOUT,
    CacheKey,
    OnChange,
    WatchState,
    cache_key,
)
from waypost.client.model import Instance, InstanceSet

if TYPE_CHECKING:
    from waypost.client._async import AsyncClient

logger = logging.getLogger("waypost.client")


class AsyncWatcher:
    """Keeps one query's latest instance set in memory, fed by blocking
    queries in a task; see `AsyncClient.watch`.

    When the registry is unreachable it keeps serving the last set it had,
    with `is_stale` set, and retries with backoff and jitter.
    """

    def __init__(
        self,
        client: AsyncClient,
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
        self._task: asyncio.Task[None] | None = None
        # A connection of its own, without httpx: see _longpoll.py.
        self._poll = LongPoll(client.settings, client._ssl_context)
        self._answered = asyncio.Event()
        self._changed = asyncio.Condition()

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

    @contextlib.asynccontextmanager
    async def acquire(self, key: str | None = None) -> AsyncIterator[Instance]:
        """Pick, and count the request in flight until the block ends."""
        with self.balancer.acquire(key) as instance:
            yield instance

    async def wait_for(
        self,
        predicate: Callable[[InstanceSet], object],
        timeout: float,  # noqa: ASYNC109 - the sync twin's signature
    ) -> InstanceSet:
        """Wait until `predicate(set)` is true; TimeoutError otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: self.state.has_answer and predicate(self.state.current)
            )
        return self.state.current

    # -- running ------------------------------------------------------------

    async def start(
        self,
        timeout: float = FIRST_ANSWER_TIMEOUT,  # noqa: ASYNC109 - the sync twin's
    ) -> Self:
        """Start the task and wait (up to `timeout`) for a first outcome."""
        if self._task is not None:
            return self
        self._task = asyncio.create_task(
            self._run(), name=f"waypost-watch-{self.state.name}"
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._answered.wait()
        return self

    async def stop(self) -> None:
        """Cancel the task, ending its blocked query."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._poll.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        state = self.state
        while True:
            call = state.next_call()
            try:
                answer = await self._poll.send(call)
            except Exception as exc:  # the loop's boundary: log, back off
                delay, became_stale = state.failed(exc)
                if became_stale:
                    logger.warning(
                        "watch %r: registry unreachable, serving the last set: %s",
                        state.name,
                        exc,
                    )
                    await self._publish()
                self._answered.set()
                await asyncio.sleep(delay)
                continue
            if state.succeeded(answer):
                self.balancer.update(answer.instances)
                await self._publish()
            self._answered.set()

    async def _publish(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        if self.on_change is None:
            return
        try:
            self.on_change(self.state.current)
        except Exception:
            logger.exception("watch %r: on_change callback raised", self.state.name)


class AsyncCache:
    """One `AsyncWatcher` per query, started on first use.

    The attributes `wait`, `min_backoff` and `max_backoff` are passed to
    watchers started after they are set (see `AsyncClient.watch`).
    """

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.wait = DEFAULT_WATCH_WAIT
        self.min_backoff = DEFAULT_MIN_BACKOFF
        self.max_backoff = DEFAULT_MAX_BACKOFF
        self._watchers: dict[CacheKey, AsyncWatcher] = {}
        self._lock = asyncio.Lock()

    async def watcher(
        self, name: str, *, passing: bool = True, tags: Sequence[str] = ()
    ) -> AsyncWatcher:
        """The running watcher for this query, started if needed."""
        key = cache_key(name, passing, tags)
        async with self._lock:
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
                await watcher.start()
        return watcher

    async def instances(
        self, name: str, *, passing: bool = True, tags: Sequence[str] = ()
    ) -> InstanceSet:
        """The query's latest set; stale-flagged while cut off.

        Raises:
            RegistryUnavailable: the registry never answered this query.
        """
        watcher = await self.watcher(name, passing=passing, tags=tags)
        return watcher.instances()

    async def aclose(self) -> None:
        """Stop every watcher."""
        watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            await watcher.stop()
