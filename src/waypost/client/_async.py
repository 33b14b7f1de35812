"""`AsyncClient`: the waypost (and Consul) HTTP API, for asyncio; heartbeats
and watchers run as tasks.

Only I/O lives here; what to send and what answers mean is in `_base.py`,
`_calls.py` and `cache.py`, shared by both clients. Every task has an owner
(a registration or a watch feed) that stops it. `scripts/unasync.py`
writes `_sync.py` from `_async.py`: edit `_async.py`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar

from waypost.client import _base, _calls
from waypost.client._async_io import (
    SIGTERM_EXIT_CODE,
    Background,
    Event,
    TerminationGuard,
)
from waypost.client._async_transport import AsyncConnectionPool
from waypost.client._async_watch import AsyncCache, AsyncFeeds, AsyncWatcher
from waypost.client._base import Call
from waypost.client._calls import Registration
from waypost.client._heartbeat import HeartbeatFailure, HeartbeatState
from waypost.client._http11 import Origin, request_message
from waypost.client.balancers import Balancer
from waypost.client.cache import (
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MIN_BACKOFF,
    DEFAULT_WATCH_WAIT,
    OnChange,
    WatchState,
)
from waypost.client.model import InstanceSet, Member, RaftServer
from waypost.core.model import Check, HealthStatus, KVEntry
from waypost.exceptions import (
    InvalidRequest,
    NotFound,
    RegistryConnectError,
    RegistryUnavailable,
    WaypostError,
)

T = TypeVar("T")
logger = logging.getLogger("waypost.client")


class AsyncClient:
    """The waypost (and Consul) HTTP API, for asyncio.

    The blocking and the asyncio client have the same methods with the same
    arguments, but for the one that closes the client (here `aclose()`).

    Args:
        address: `host:port` or a URL; else `WAYPOST_HTTP_ADDR`,
            `CONSUL_HTTP_ADDR`, then `127.0.0.1:8500`.
        token: ACL token; else `WAYPOST_HTTP_TOKEN` / `CONSUL_HTTP_TOKEN`.
        verify: TLS: False, True (the system's CA store), or a CA bundle
            path (else `WAYPOST_CACERT` / `CONSUL_CACERT`).
        cert: client certificate path, or (certificate, key) paths.
        timeout: seconds for one plain request.
        max_connections: requests in flight at once (kept-alive
            connections); watch feeds have a connection each besides.

    Example::

        async with AsyncClient() as client:
            async with client.register("api", port=8080):
                found = await client.instances("api", passing=True)
                print(found.ids)
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        verify: bool | str | None = None,
        cert: tuple[str, str] | str | None = None,
        timeout: float = _base.DEFAULT_TIMEOUT,
        max_connections: int = 100,
    ) -> None:
        self.settings = _base.resolve_settings(
            address, token=token, verify=verify, cert=cert, timeout=timeout
        )
        self._origins = [Origin(s) for s in _base.every_origin(self.settings)]
        self._origin = self._origins[0]
        self._max_connections = max_connections
        self._pool = AsyncConnectionPool(self._origin, max_connections)
        self._retired: list[AsyncConnectionPool] = []
        self._feeds = AsyncFeeds(self)
        self._cache: AsyncCache | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        # With several addresses: the one in use.
        """The registry's `host:port`."""
        return self._origin.address

    async def _run(self, call: Call[T], pool: AsyncConnectionPool | None = None) -> T:
        """Send `call` (on `pool`, default the client's) and decode its answer.

        With several addresses, an agent that cannot be reached is left for
        the next one; the call goes there too when that is safe (it never
        left, or it only reads).
        """
        timeout = call.timeout(self.settings)
        if pool is not None:
            answer = await pool.send(request_message(pool.origin, call), timeout)
            return call.finish(answer)
        tries = len(self._origins)
        while True:
            origin, pool = self._origin, self._pool
            try:
                answer = await pool.send(request_message(origin, call), timeout)
            except RegistryConnectError as exc:
                tries -= 1
                if not self._fail_over(origin) or not tries:
                    raise
                if not _base.is_never_sent(exc, call.method):
                    raise
                continue
            return call.finish(answer)

    def _fail_over(self, failed: Origin) -> bool:
        """Move from an unreachable agent to the next address; False when
        there is no other."""
        if len(self._origins) == 1:
            return False
        with self._lock:
            if self._origin is failed:
                index = (self._origins.index(failed) + 1) % len(self._origins)
                self._origin = self._origins[index]
                old, self._pool = (
                    self._pool,
                    AsyncConnectionPool(self._origin, self._max_connections),
                )
                old.interrupt()
                self._retired.append(old)
                logger.warning(
                    "registry at %s unreachable; using %s",
                    failed.address,
                    self._origin.address,
                )
        return True

    def _long_poll_pool(self) -> AsyncConnectionPool:
        """A connection of its own for one blocking-query loop."""
        return AsyncConnectionPool(self._origin, 1, is_interruptible=True)

    # -- lifecycle ----------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the cache's watchers and every watch feed; close connections."""
        if self._cache is not None:
            await self._cache.aclose()
        await self._feeds.aclose()
        await self._pool.aclose()
        for pool in self._retired:
            await pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- registration -------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        port: int,
        address: str = "",
        service_id: str | None = None,
        tags: Sequence[str] = (),
        meta: Mapping[str, str] | None = None,
        weight: int | None = None,
        ttl: float | str = "10s",
        deregister_after: float | str | None = None,
        on_heartbeat_failure: HeartbeatFailure | None = None,
        handle_sigterm: bool = True,
    ) -> AsyncServiceRegistration:
        """A registration for the lifetime of an `async with` block.

        Entering registers the instance with a passing TTL check and starts
        heartbeats every TTL/3 as a task; if the registry forgets it
        (restart, reaped) the next heartbeat registers it again. Leaving
        deregisters. SIGTERM leaves the block too, when nothing else
        handles it, and the process then exits with status 0. Nothing is
        sent until the block is entered (or `await start()` is called): one
        never started warns (`RuntimeWarning`) when it is garbage-collected.

        Args:
            name: the service name.
            port: the instance's port.
            address: its address; empty means its node's.
            service_id: unique ID; default `<name>-<hostname>-<port>`.
            tags, meta: Consul's tags and metadata.
            weight: share of traffic for weighted balancers; 0 drains.
            ttl: TTL of the heartbeat check (`"10s"` or seconds).
            deregister_after: let the registry reap the instance after this
                long critical (DeregisterCriticalServiceAfter).
            on_heartbeat_failure: called as `(registration, error)` in the
                heartbeat task after each failed heartbeat; must not block.
            handle_sigterm: turn SIGTERM into a clean exit (main thread
                only, and only if SIGTERM has no handler yet).
        """
        registration = _calls.make_registration(
            name,
            port=port,
            address=address,
            service_id=service_id,
            tags=tags,
            meta=meta,
            weight=weight,
            ttl=ttl,
            deregister_after=deregister_after,
        )
        return AsyncServiceRegistration(
            self,
            registration,
            on_heartbeat_failure=on_heartbeat_failure,
            handle_sigterm=handle_sigterm,
        )

    async def register_service(
        self,
        name: str,
        *,
        port: int,
        address: str = "",
        service_id: str | None = None,
        tags: Sequence[str] = (),
        meta: Mapping[str, str] | None = None,
        weight: int | None = None,
        ttl: float | str | None = None,
        deregister_after: float | str | None = None,
    ) -> str:
        """Register once, without heartbeats; return the service ID.

        Args are those of `register()`; with a `ttl`, the check starts
        passing and turns critical unless someone calls `pass_check()`.
        """
        registration = _calls.make_registration(
            name,
            port=port,
            address=address,
            service_id=service_id,
            tags=tags,
            meta=meta,
            weight=weight,
            ttl=ttl,
            deregister_after=deregister_after,
        )
        await self._run(_calls.register_call(registration))
        return registration.service_id

    async def deregister(self, service_id: str) -> None:
        """Remove a service instance from this agent.

        Raises:
            NotFound: no such service ID on this agent.
        """
        await self._run(_calls.deregister_call(service_id))

    async def pass_check(self, check_id: str, note: str = "") -> None:
        """Set a TTL check passing (a heartbeat)."""
        await self._run(_calls.check_call(check_id, HealthStatus.PASSING, note))

    async def warn_check(self, check_id: str, note: str = "") -> None:
        """Set a TTL check to warning."""
        await self._run(_calls.check_call(check_id, HealthStatus.WARNING, note))

    async def fail_check(self, check_id: str, note: str = "") -> None:
        """Set a TTL check critical."""
        await self._run(_calls.check_call(check_id, HealthStatus.CRITICAL, note))

    async def maintenance(
        self, enable: bool, *, reason: str = "", service_id: str | None = None
    ) -> None:
        """Put the node (or one service instance) in or out of maintenance.

        Args:
            enable: True to enter maintenance (instances turn critical).
            reason: shown as the maintenance check's notes.
            service_id: one instance instead of the whole node.
        """
        await self._run(
            _calls.maintenance_call(enable=enable, reason=reason, service_id=service_id)
        )

    # -- discovery ----------------------------------------------------------

    async def services(self) -> dict[str, list[str]]:
        """Every service name in the catalog, with the tags its instances use."""
        return await self._run(_calls.services_call())

    async def instances(
        self,
        name: str,
        *,
        passing: bool = False,
        tags: Sequence[str] = (),
        index: int | None = None,
        wait: float | str | None = None,
        cached: bool = False,
    ) -> InstanceSet:
        """A service's instances with their health.

        Args:
            name: the service name.
            passing: only instances whose every check passes.
            tags: only instances with all of these tags.
            index: block until the registry's index passes this one.
            wait: how long to block (with `index`), e.g. `"30s"`.
            cached: answer from `self.cache` (a watcher kept up to date by
                blocking queries); when the registry is unreachable this is
                the last known set, with `is_stale` set.
        """
        if cached:
            if index is not None:
                raise InvalidRequest("cached=True answers from memory: no index")
            return await self.cache.instances(name, passing=passing, tags=tags)
        return await self._run(
            _calls.instances_call(
                name, passing=passing, tags=tags, index=index, wait=wait
            )
        )

    def watch(
        self,
        name: str,
        *,
        passing: bool = True,
        tags: Sequence[str] = (),
        balancer: Balancer | None = None,
        on_change: OnChange | None = None,
        wait: float = DEFAULT_WATCH_WAIT,
        min_backoff: float = DEFAULT_MIN_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> AsyncWatcher:
        """An `AsyncWatcher` that keeps a service's latest set in memory.

        Use it with `async with` (or `await start()` / `await stop()`).
        Watchers of one client that watch the same query (name, passing,
        tags, wait and backoff) share one blocking query and one decoded
        answer; each keeps its own balancer and callback.

        Args:
            name, passing, tags: the query, as in `instances()`.
            balancer: what `pick()` uses; default `RoundRobin()`.
            on_change: called with each new `InstanceSet` (and when it turns
                stale) in the watcher's task; must not block.
            wait: how long each blocking query may be held.
            min_backoff, max_backoff: retry delays while unreachable.
        """
        state = WatchState(
            name,
            passing=passing,
            tags=tags,
            wait=wait,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
        )
        return AsyncWatcher(self, state, balancer=balancer, on_change=on_change)

    @property
    def cache(self) -> AsyncCache:
        """Watchers shared by `instances(cached=True)`, one per query."""
        with self._lock:
            if self._cache is None:
                self._cache = AsyncCache(self)
            return self._cache

    # -- agent, status ------------------------------------------------------

    async def members(self) -> list[Member]:
        """The registry nodes this agent knows."""
        return await self._run(_calls.members_call())

    async def checks(self) -> list[Check]:
        """This agent's checks (maintenance checks included)."""
        return await self._run(_calls.checks_call())

    async def servers(self) -> list[RaftServer]:
        """The servers that hold the data and which one leads: the agent
        itself, or in cluster mode every etcd member."""
        return await self._run(_calls.raft_servers_call())

    async def leader(self) -> str:
        """The leader's address: a cheap "is the registry up?" probe."""
        return await self._run(_calls.leader_call())

    # -- kv -----------------------------------------------------------------

    async def kv_get(self, key: str) -> KVEntry | None:
        """One key, or None when it does not exist."""
        return await self._run(_calls.kv_get_call(key))

    async def kv_list(self, prefix: str = "") -> list[KVEntry]:
        """Every key under `prefix`, sorted."""
        return await self._run(_calls.kv_list_call(prefix))

    async def kv_put(
        self, key: str, value: bytes | str, *, flags: int = 0, cas: int | None = None
    ) -> bool:
        """Store a value; False when `cas` did not match.

        Args:
            key: the key.
            value: bytes, or text stored as UTF-8.
            flags: an opaque number kept with the value.
            cas: write only if the key's ModifyIndex is this (0: absent).
        """
        return await self._run(_calls.kv_put_call(key, value, flags=flags, cas=cas))

    async def kv_delete(
        self, key: str, *, recurse: bool = False, cas: int | None = None
    ) -> bool:
        """Delete a key (or a prefix with `recurse`); False when `cas` failed."""
        return await self._run(_calls.kv_delete_call(key, recurse=recurse, cas=cas))

    # ------------------------------------------------------------ snapshots

    async def snapshot_save(self, *, stale: bool = False) -> bytes:
        """The registry's whole state at one index, as an archive (a
        gzipped tar; needs a management token with ACLs on)."""
        return await self._run(_calls.snapshot_save_call(stale=stale))

    async def snapshot_restore(self, archive: bytes) -> bool:
        """Replace the registry's whole state with an archive's (all of it
        or nothing; `RequestRejected` for a damaged archive)."""
        return await self._run(_calls.snapshot_restore_call(archive))


class AsyncServiceRegistration:
    """A registered instance and its heartbeat task; see `AsyncClient.register`.

    Attributes:
        registration: what is registered.
        heartbeat: counters and the last error (`beats`, `failures`,
            `reregistrations`, `last_error`).
    """

    def __init__(
        self,
        client: AsyncClient,
        registration: Registration,
        *,
        on_heartbeat_failure: HeartbeatFailure | None = None,
        handle_sigterm: bool = True,
    ) -> None:
        self.client = client
        self.registration = registration
        self.heartbeat = HeartbeatState(registration, on_heartbeat_failure)
        self._handle_sigterm = handle_sigterm
        self._stopping = Event()
        self._task: Background | None = None
        self._guard = TerminationGuard()

    @property
    def service_id(self) -> str:
        return self.registration.service_id

    @property
    def check_id(self) -> str:
        return self.registration.check_id

    async def start(self) -> Self:
        """Register and start heartbeats.

        If the registry cannot be reached now, the failure is reported and
        the heartbeats keep trying: the instance registers when it is back.

        Raises:
            RequestRejected: the registry refused the registration.
        """
        self.heartbeat.state = "running"
        try:
            await self.client._run(self.heartbeat.register_call())
        except RegistryUnavailable as exc:
            self.heartbeat.failed(exc)
        if self.registration.ttl is not None and self._task is None:
            self._stopping.clear()
            self._task = Background(
                self._beat_forever, name=f"waypost-heartbeat-{self.service_id}"
            )
        return self

    async def beat(self) -> bool:
        """One heartbeat now; register again if the registry lost us."""
        try:
            try:
                await self.client._run(self.heartbeat.pass_call())
            except NotFound:
                self.heartbeat.lost()
                await self.client._run(self.heartbeat.register_call())
        except WaypostError as exc:
            self.heartbeat.failed(exc)
            return False
        self.heartbeat.succeeded()
        return True

    async def _beat_forever(self) -> None:
        while not await self._stopping.wait(self.registration.heartbeat_interval):
            await self.beat()

    async def stop(self, deregister: bool = True) -> None:
        """Stop heartbeats and deregister; a failure to deregister is logged."""
        self.heartbeat.state = "stopped"
        self._stopping.set()
        if self._task is not None:
            await self._task.stop()
            self._task = None
        if not deregister:
            return
        try:
            await self.client.deregister(self.service_id)
        except NotFound:
            pass
        except WaypostError as exc:
            logger.warning("could not deregister %r: %s", self.service_id, exc)

    def __repr__(self) -> str:
        return self.heartbeat.describe(type(self).__name__)

    def __del__(self) -> None:
        heartbeat: HeartbeatState | None = getattr(self, "heartbeat", None)
        if heartbeat is not None:
            heartbeat.warn_if_never_used(self, "async with client.register(...):")

    async def __aenter__(self) -> Self:
        await self.start()
        if self._handle_sigterm:
            self._guard.install()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._guard.uninstall()
        await self.stop()
        if self._guard.fired:
            # SIGTERM ended the block: deregistered, now a clean exit.
            raise SystemExit(SIGTERM_EXIT_CODE)
