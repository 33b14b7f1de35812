"""Agent: start-up → serve → shutdown. Composes the registry, its transports
(HTTP), the check runner and the timer that drives TTL expiry and reaping.

Every write goes through `Registry.apply`: planned against the catalog,
indexed and made durable by the store, applied to the catalog, then answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import time
from typing import TYPE_CHECKING

from waypost import __version__
from waypost.config import CONSUL_API_VERSION, PORT_OFF, AgentConfig
from waypost.core import events
from waypost.core.changes import (
    CHECKS,
    Entry,
    RegisterCheck,
    RegisterNode,
    RegisterService,
)
from waypost.core.model import SERF_CHECK_ID, Check, HealthStatus, Node, Service
from waypost.dns.server import DnsServer
from waypost.exceptions import InvalidRequest, StartupError, StoreUnavailable
from waypost.file_services import FileServices
from waypost.http.app import ConsulAPI
from waypost.http.listeners import HttpServer, open_listeners
from waypost.logs import HUB
from waypost.registry import Clock, Registry
from waypost.rtt import Peers, RttProber
from waypost.runner.scheduler import CheckRunner
from waypost.store.base import Store
from waypost.store.memory import MemoryStore

if TYPE_CHECKING:
    from waypost.cluster import Cluster
    from waypost.store.etcd_layout import Member

logger = logging.getLogger("waypost.agent")

#: Longest the timer sleeps, so a newly armed earlier deadline is seen soon.
TIMER_TICK = 0.1

#: Allocations between young-generation collections (CPython's default: 700).
GC_THRESHOLD = 20_000

#: How long shutdown waits for in-flight requests before closing them.
SHUTDOWN_GRACE = 5.0


class Agent:
    """One registry process: its registry, its store, its HTTP server."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        store: Store | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config
        self.store: Store = store if store is not None else _open_store(config)
        self.registry = Registry(config, self.store, clock=clock)
        self.registry.request_shutdown = self.request_shutdown
        self._stop = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._timer_at = 0.0
        self._timer: asyncio.Task[None] | None = None
        self.runner = CheckRunner(
            node=config.node,
            report=self.registry.report_check,
            catalog=self.registry.catalog,
            enable_scripts=config.enable_script_checks,
            concurrency=config.check_concurrency,
        )
        self.registry.on_apply(self._applied)
        self.registry.count_running = self.runner.__len__
        self.cluster = _open_cluster(self)
        #: The services and checks of --config-file/--config-dir.
        self.file_services = FileServices(self.registry)
        self.registry.reload_config = self.file_services.load
        self._reloads: set[asyncio.Task[None]] = set()
        #: This agent's network coordinate (measured in cluster mode).
        self.rtt = RttProber(self.registry, _peers(self))

    @property
    def catalog(self):  # type: ignore[no-untyped-def]
        return self.registry.catalog

    def _applied(self, entry: Entry) -> None:
        """Keep the runner and the timer in step with what was applied."""
        if entry.topics:
            self.runner.notice(entry.topics)
        touched_checks = bool(entry.arm)
        for table, key, value in entry.rows:
            if table != CHECKS:
                continue
            touched_checks = True
            if isinstance(value, Check):
                self.runner.sync(value)
            else:
                node, _, check_id = key.partition("\x00")
                self.runner.remove((node, check_id))
        if touched_checks:
            # The change may have armed a deadline earlier than the timer's
            # next wake-up (a new TTL check, a critical check passing again).
            deadline = self.registry.catalog.next_deadline()
            if deadline is not None and deadline < self._timer_at:
                self._timer_wake.set()

    # ------------------------------------------------------------ lifecycle

    async def startup(self) -> None:
        """Load the store and make sure this agent's own node is registered."""
        await self.store.open()
        self.registry.load()
        # The catalog is long-lived and acyclic: move what start-up loaded
        # out of the collector's sight, and collect young objects less often
        # (the default 700 makes a busy registry collect every few requests).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 20)
        if self.cluster is not None:
            await self.cluster.start(self._member())
        await self.registry.start_acl()
        await self._register_self()
        await self.rtt.start()
        try:
            await self.file_services.load()
        except InvalidRequest as exc:
            message = str(exc).removeprefix("Failed to reload configs: ")
            raise StartupError(message) from None
        for check in self.registry.catalog.all_checks():
            self.runner.sync(check)
        self.runner.start()
        self._timer = asyncio.create_task(self._run_timer(), name="waypost-timer")

    def _member(self) -> Member:
        from waypost.store.etcd_layout import Member

        return Member(
            node=self.config.node,
            node_id=self.registry.node_id,
            address=self.config.advertise_address,
            http_port=self.registry.http_port,
            datacenter=self.config.datacenter,
            version=__version__,
        )

    async def _register_self(self) -> None:
        address = self.config.advertise_address
        registry = self.registry
        node = Node(
            name=self.config.node,
            node_id=registry.node_id,
            address=address,
            datacenter=self.config.datacenter,
            tagged_addresses={
                "lan": address,
                "lan_ipv4": address,
                "wan": address,
                "wan_ipv4": address,
            },
            meta={"consul-network-segment": "", "consul-version": CONSUL_API_VERSION},
        )
        await registry.apply(RegisterNode(node=node))
        serf = Check(
            node=node.name,
            check_id=SERF_CHECK_ID,
            name="Serf Health Status",
            status=HealthStatus.PASSING,
            output="Agent alive and reachable",
        )
        existing = registry.catalog.get_check(node.name, SERF_CHECK_ID)
        if existing is None or existing.status is not HealthStatus.PASSING:
            await registry.apply(RegisterCheck(check=serf))
        # Consul servers list themselves as service "consul"; clients and
        # test suites written for Consul expect it in the catalog.
        consul = Service(node=node.name, service_id="consul", name="consul", port=8300)
        await registry.apply(RegisterService(service=consul))

    async def _run_timer(self) -> None:
        registry = self.registry
        while True:
            registry.run_due()
            deadline = (
                None if registry.brake.engaged else registry.catalog.next_deadline()
            )
            now = registry.now()
            delay = TIMER_TICK if deadline is None else deadline - now
            delay = min(max(delay, 0.001), TIMER_TICK)
            self._timer_at = now + delay
            self._timer_wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._timer_wake.wait()

    def _reload_on_signal(self) -> None:
        """SIGHUP: re-read the configuration files, as Consul's agent does."""
        task = asyncio.get_running_loop().create_task(self._reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload(self) -> None:
        logger.info("SIGHUP: reloading the configuration files")
        try:
            await self.file_services.load()
        except (InvalidRequest, StoreUnavailable) as exc:
            logger.error("reload refused, the old configuration stays: %s", exc)

    def request_shutdown(self) -> None:
        """Begin a graceful stop (PUT /v1/agent/leave, SIGTERM, SIGINT)."""
        self._stop.set()

    async def shutdown(self) -> None:
        """Stop timers, then commit what is pending and close the store."""
        self.registry.begin_shutdown()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        await self.runner.stop()
        await self.rtt.stop()
        await self.registry.drain()
        if self.cluster is not None:
            await self.cluster.stop()
        await self.store.close()

    async def serve(self, sock: socket.socket | None = None) -> None:
        """Run until asked to stop; `sock` is an already bound HTTP listener."""
        http = HttpServer(ConsulAPI(self.registry), self.config.limits)
        for bound, context in open_listeners(self.config, sock):
            http.add(bound, context)
        self.registry.http_port = next(
            (lst.port for lst in http.listeners if lst.scheme == "http"), PORT_OFF
        )
        dns = DnsServer(self.registry, self.config.dns)
        if self.config.dns.enabled:
            try:
                dns.bind()
            except BaseException:
                await http.stop_accepting()
                raise
        loop = asyncio.get_running_loop()
        await self.startup()
        try:
            http.start()
            if self.config.dns.enabled:
                await dns.start()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_shutdown)
            loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)
            logger.info(
                "waypost agent %s listening on %s node=%s datacenter=%s"
                " store=%s consul-api=%s dns=%s",
                __version__,
                " ".join(http.urls),
                self.config.node,
                self.config.datacenter,
                self.store.description,
                CONSUL_API_VERSION,
                dns.address if self.config.dns.enabled else "off",
            )
            await self._stop.wait()
            logger.info("shutting down")
            # 1. Stop accepting; 2. let blocking queries answer now; 3. give
            # in-flight requests (durable commits) time to finish; 4. close.
            await http.stop_accepting()
            self.registry.begin_shutdown()
            HUB.close_streams()
            await http.close(SHUTDOWN_GRACE)
        finally:
            await dns.stop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await http.stop_accepting()
            await http.tracker.stop()
            await self.shutdown()
            logger.info("waypost agent stopped")


def _open_store(config: AgentConfig) -> Store:
    if config.etcd.enabled:
        from waypost.store.etcd import open_etcd_store

        return open_etcd_store(config.etcd)
    if config.dev:
        return MemoryStore()
    from waypost.store.sqlite import SQLiteStore

    return SQLiteStore(config.data_dir)


def _open_cluster(agent: Agent) -> Cluster | None:
    """Cluster mode's membership and ownership, when the store is etcd."""
    if not agent.config.etcd.enabled:
        return None
    from waypost.cluster import Cluster
    from waypost.store.etcd import EtcdStore

    store = agent.store
    if not isinstance(store, EtcdStore):  # pragma: no cover - wiring bug
        raise TypeError("cluster mode needs the etcd store")
    store.attach(agent.registry.catalog)
    cluster = Cluster(
        agent.registry,
        store,
        agent.runner,
        node=agent.config.node,
        lease_ttl=agent.config.etcd.member_lease,
    )
    agent.registry.cluster = cluster
    # User events reach every agent through etcd (keys on short leases).
    agent.registry.broadcast_event = lambda event: store.broadcast(events.encode(event))
    store.on_event(
        lambda value, revision: _receive_event(agent.registry, value, revision)
    )
    return cluster


def _peers(agent: Agent) -> Peers | None:
    """Cluster mode: the other live agents' HTTP addresses (for RTT probes)."""
    from waypost.store.etcd import EtcdStore

    store = agent.store
    if agent.cluster is None or not isinstance(store, EtcdStore):
        return None
    node = agent.config.node

    def peers() -> list[tuple[str, str, int]]:
        return [
            (m.node, m.address, m.http_port)
            for m in store.members.values()
            if m.node != node and m.address and m.http_port > 0
        ]

    return peers


def _receive_event(registry: Registry, value: bytes, revision: int) -> None:
    event = events.decode(value)
    if event is None:
        logger.error("ignoring a user event that does not decode")
        return
    registry.receive_event(event, ltime=revision)


async def run_agent(config: AgentConfig) -> None:
    """Run one agent until it is told to stop."""
    agent = Agent(config)
    await agent.serve()
