"""`Watcher` and `Cache`: discovery kept in memory by blocking queries on a
thread per watcher, for the blocking `Client`.

The policy (index, backoff, staleness) is `cache.WatchState`; this module
runs the loop and makes a blocked query interruptible.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

import httpcore

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
    from waypost.client._sync import Client

logger = logging.getLogger("waypost.client")


class _InterruptibleBackend(httpcore.SyncBackend):
    """Remembers its sockets so `interrupt()` can end a blocked long poll.

    Once interrupted it refuses new connections too, so a watcher stopped
    between two queries cannot start a fresh one and block for minutes.
    """

    def __init__(self) -> None:
        self._streams: list[httpcore.NetworkStream] = []
        self._lock = threading.Lock()
        self._interrupted = False

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: object = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(
            host,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,  # type: ignore[arg-type]
        )
        with self._lock:
            if not self._interrupted:
                self._streams.append(stream)
                return stream
        stream.close()
        raise httpcore.ConnectError("the watcher is stopping")

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            streams, self._streams = self._streams, []
        for stream in streams:
            sock = stream.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)


class Watcher:
    """Keeps one query's latest instance set in memory, fed by blocking
    queries on a thread; see `Client.watch`.

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
        self._backend = _InterruptibleBackend()
        self._http = client._make_http(1, self._backend)
        self._stopping = threading.Event()
        self._answered = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

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
        self, predicate: Callable[[InstanceSet], object], timeout: float
    ) -> InstanceSet:
        """Block until `predicate(set)` is true; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: self.state.has_answer and predicate(self.state.current),
                timeout,
            ):
                raise TimeoutError(f"{self.state.name}: condition not met")
        return self.state.current

    # -- running ------------------------------------------------------------

    def start(self, timeout: float = FIRST_ANSWER_TIMEOUT) -> Self:
        """Start the thread and wait (up to `timeout`) for a first outcome."""
        if self._thread is not None:
            return self
        if self._http.is_closed:  # started again after stop()
            self._backend = _InterruptibleBackend()
            self._http = self.client._make_http(1, self._backend)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"waypost-watch-{self.state.name}", daemon=True
        )
        self._thread.start()
        self._answered.wait(timeout)
        return self

    def stop(self) -> None:
        """Stop the thread, ending its blocked query, and close connections."""
        self._stopping.set()
        self._backend.interrupt()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._http.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        state = self.state
        while not self._stopping.is_set():
            call = state.next_call()
            try:
                answer = self.client._run(call, self._http)
            except Exception as exc:  # the loop's boundary: log, back off
                if self._stopping.is_set():
                    break
                delay, became_stale = state.failed(exc)
                if became_stale:
                    logger.warning(
                        "watch %r: registry unreachable, serving the last set: %s",
                        state.name,
                        exc,
                    )
                    self._publish()
                self._answered.set()
                self._stopping.wait(delay)
                continue
            if self._stopping.is_set():
                break
            if state.succeeded(answer):
                self.balancer.update(answer.instances)
                self._publish()
            self._answered.set()

    def _publish(self) -> None:
        with self._changed:
            self._changed.notify_all()
        if self.on_change is None:
            return
        try:
            self.on_change(self.state.current)
        except Exception:
            logger.exception("watch %r: on_change callback raised", self.state.name)


class Cache:
    """One `Watcher` per query, started on first use; see `Client.cache`.

    The attributes `wait`, `min_backoff` and `max_backoff` are passed to
    watchers started after they are set (see `Client.watch`).
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self.wait = DEFAULT_WATCH_WAIT
        self.min_backoff = DEFAULT_MIN_BACKOFF
        self.max_backoff = DEFAULT_MAX_BACKOFF
        self._watchers: dict[CacheKey, Watcher] = {}
        self._lock = threading.Lock()

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
        return self.watcher(name, passing=passing, tags=tags).instances()

    def close(self) -> None:
        """Stop every watcher."""
        with self._lock:
            watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher.stop()
