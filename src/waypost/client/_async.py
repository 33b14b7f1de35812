"""`AsyncClient`: the asyncio client over `httpx.AsyncClient`; heartbeats and
watchers run as tasks.

Only I/O lives here, as in `_sync.py`, with the same method names; what to
send and what answers mean is shared in `_base.py` and `cache.py`. Every
task has an owner (a registration or a watcher) that cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar

import httpx

from waypost.client import _base, _calls
from waypost.client._async_watch import AsyncCache, AsyncWatcher
from waypost.client._base import Call
from waypost.client._calls import Registration
from waypost.client._heartbeat import HeartbeatFailure, HeartbeatState
from waypost.client._signals import SIGTERM_EXIT_CODE, cancel_on_sigterm
from waypost.client.balancers import Balancer
from waypost.client.cache import (
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MIN_BACKOFF,
    DEFAULT_WATCH_WAIT,
    OnChange,
    WatchState,
)
from waypost.client.model import InstanceSet, Member
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

    Same arguments and methods as `Client`; I/O methods are coroutines,
    and `aclose()` replaces `close()`.

    Args:
        address: `host:port` or a URL; else `WAYPOST_HTTP_ADDR`,
            `CONSUL_HTTP_ADDR`, then `127.0.0.1:8500`.
        token: ACL token; else `WAYPOST_HTTP_TOKEN` / `CONSUL_HTTP_TOKEN`.
        verify: TLS: False, True, or a CA bundle path.
        cert: client certificate path, or (certificate, key) paths.
        timeout: seconds for one plain request.
        max_connections: connection pool size (watchers have their own).

    Example::

        async with AsyncClient() as client:
            async with client.register("api", port=8080):
                print((await client.instances("api", passing=True)).ids)
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
        self._ssl_context = _base.ssl_context(self.settings)
        self._http = self._make_http(max_connections)
        self._cache: AsyncCache | None = None

    def _make_http(self, max_connections: int) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(
            **_base.transport_options(self._ssl_context, max_connections)  # type: ignore[arg-type]
        )
        return httpx.AsyncClient(
            transport=transport,
            **_base.httpx_options(self.settings),  # type: ignore[arg-type]
        )

    @property
    def address(self) -> str:
        """The registry's `host:port`."""
        return self.settings.address

    async def _run(self, call: Call[T]) -> T:
        settings = self.settings
        with _base.mapped_transport_errors(settings):
            response = await self._http.request(
                call.method,
                call.path,
                params=tuple(call.params),
                content=call.body,
                timeout=call.timeout(settings),
            )
        return call.finish(_base.answer_from(response))

    # -- lifecycle ----------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the cache's watchers and close the connections."""
        if self._cache is not None:
            await self._cache.aclose()
        await self._http.aclose()

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

        As `Client.register`, with heartbeats as a task; SIGTERM (when no
        one else handles it) cancels the task that entered the block, which
        deregisters and exits with status 0. Nothing is sent until the
        block is entered (or `start()` awaited); one never started warns.

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
            handle_sigterm: turn SIGTERM into a clean exit.
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

        Args are those of `register()`.
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
            cached: answer from `self.cache`; when the registry is
                unreachable this is the last known set, with `is_stale` set.
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
        self._task: asyncio.Task[None] | None = None
        self._undo_signal: Callable[[], None] | None = None
        self._terminated: list[bool] = []

    @property
    def service_id(self) -> str:
        return self.registration.service_id

    @property
    def check_id(self) -> str:
        return self.registration.check_id

    async def start(self) -> Self:
        """Register and start heartbeats (see `ServiceRegistration.start`).

        Raises:
            RequestRejected: the registry refused the registration.
        """
        self.heartbeat.state = "running"
        try:
            await self.client._run(self.heartbeat.register_call())
        except RegistryUnavailable as exc:
            self.heartbeat.failed(exc)
        if self.registration.ttl is not None:
            self._task = asyncio.create_task(
                self._beat_forever(), name=f"waypost-heartbeat-{self.service_id}"
            )
        return self

    async def beat(self) -> bool:
        """One heartbeat now; register again if the registry lost us."""
        try:
            try:
                try:
                    await self.client._run(self.heartbeat.pass_call())
                except RegistryConnectError:
                    # Once more at once: the first request on a kept-alive
                    # connection to a registry that restarted fails.
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
        while True:
            await asyncio.sleep(self.registration.heartbeat_interval)
            await self.beat()

    async def stop(self, deregister: bool = True) -> None:
        """Stop heartbeats and deregister; a failure to deregister is logged."""
        self.heartbeat.state = "stopped"
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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
        task = asyncio.current_task()
        if self._handle_sigterm and task is not None:
            self._undo_signal = cancel_on_sigterm(
                asyncio.get_running_loop(), task, self._terminated
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._undo_signal is not None:
            self._undo_signal()
            self._undo_signal = None
        await self.stop()
        if self._terminated:
            # SIGTERM cancelled the block: deregistered, now a clean exit.
            raise SystemExit(SIGTERM_EXIT_CODE)
