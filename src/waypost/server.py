"""Agent: start-up → serve → shutdown. Wires store, catalog, watchers, HTTP.

Every write goes catalog (in memory, validated, indexed) → store (durable)
→ watchers (woken) → 200. TTL expiry and reaping run on one timer task.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import time
import uuid
from collections.abc import Callable

from waypost import __version__
from waypost.config import CONSUL_API_VERSION, PORT_OFF, AgentConfig
from waypost.core.brake import Brake, BrakeSettings
from waypost.core.catalog import CHECKS, Catalog, Commit
from waypost.core.checkstate import CheckStates
from waypost.core.model import SERF_CHECK_ID, Check, HealthStatus, Node, Service
from waypost.core.watch import Watchers
from waypost.http.app import ConsulAPI
from waypost.http.blocking import ResponseCache
from waypost.http.listeners import HttpServer, open_listeners
from waypost.runner.probes import require_scripts_enabled
from waypost.runner.scheduler import CheckRunner
from waypost.store.base import Store
from waypost.store.memory import MemoryStore

logger = logging.getLogger("waypost.agent")

Clock = Callable[[], float]

#: Longest the timer sleeps, so a newly armed earlier deadline is seen soon.
TIMER_TICK = 0.1

#: Allocations between young-generation collections (CPython's default: 700).
GC_THRESHOLD = 20_000

#: How long shutdown waits for in-flight requests before closing them.
SHUTDOWN_GRACE = 5.0


class Agent:
    """One registry process: its state, its store, its HTTP server."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        store: Store | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store: Store = store if store is not None else _open_store(config)
        self.catalog = Catalog()
        self.watchers = Watchers()
        self.response_cache = ResponseCache()
        self.is_shutting_down = False
        self.started_at = time.time()
        self.node_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"waypost.{config.node}"))
        self.maintenance_reason: str | None = None
        self._stop = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._timer_at = 0.0
        self._timer: asyncio.Task[None] | None = None
        self.bound_port = config.http_port
        self.brake = Brake(
            BrakeSettings(
                enabled=config.self_preservation,
                threshold=config.self_preservation_threshold,
                window=config.self_preservation_window,
            )
        )
        self.check_states = CheckStates()
        self.runner = CheckRunner(
            node=config.node,
            report=self.report_check,
            catalog=self.catalog,
            enable_scripts=config.enable_script_checks,
            concurrency=config.check_concurrency,
        )
        self._reports: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ writes

    async def persist(self, commit: Commit | None) -> None:
        """Make a change durable, then wake the watchers of what it touched."""
        if commit is None:
            return
        if commit.rows:
            await self.store.commit(commit.rows, commit.index)
        if commit.topics:
            self.watchers.notify(commit.topics)
            self.runner.notice(commit.topics)
        touched_checks = False
        for table, key, value in commit.rows:
            if table == CHECKS:
                touched_checks = True
                self._sync_check(key, value)
        if touched_checks:
            # The change may have armed a deadline earlier than the timer's
            # next wake-up (a new TTL check, a critical check passing again).
            deadline = self.catalog.next_deadline()
            if deadline is not None and deadline < self._timer_at:
                self._timer_wake.set()

    def _sync_check(self, key: str, value: object) -> None:
        """Keep the runner and hysteresis in step with a persisted check row."""
        if isinstance(value, Check):
            self.runner.sync(value)
            return
        node, _, check_id = key.partition("\x00")
        self.runner.remove((node, check_id))
        self.check_states.forget((node, check_id))

    def report_check(
        self, node: str, check_id: str, status: HealthStatus, output: str
    ) -> None:
        """The one way a check result enters the registry (runner → core).

        Hysteresis decides whether the result changes the status; the catalog
        applies it (output-only changes bump nothing); the change is persisted
        as a task. Does not block.
        """
        check = self.catalog.get_check(node, check_id)
        if check is None:
            return
        decided = self.check_states.observe((node, check_id), check.definition, status)
        if decided is None:
            return
        commit = self.catalog.update_check(
            node, check_id, decided, output, now=self.now()
        )
        if commit is not None:
            task = asyncio.create_task(self._persist_report(commit))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)

    async def _persist_report(self, commit: Commit) -> None:
        try:
            await self.persist(commit)
        except Exception:
            logger.exception("could not persist a check result")

    def validate_check(self, check: Check) -> None:
        """Refuse what this agent would not run (script checks unless enabled)."""
        require_scripts_enabled(
            check.definition, enabled=self.config.enable_script_checks
        )

    def now(self) -> float:
        return self.clock()

    # ------------------------------------------------------------ lifecycle

    async def startup(self) -> None:
        """Load the store and make sure this agent's own node is registered."""
        rows, index = self.store.load()
        self.catalog.restore(rows, index, now=self.now())
        # The catalog is long-lived and acyclic: move what start-up loaded
        # out of the collector's sight, and collect young objects less often
        # (the default 700 makes a busy registry collect every few requests).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 20)
        await self._register_self()
        for check in self.catalog.all_checks():
            self.runner.sync(check)
        self.runner.start()
        self._timer = asyncio.create_task(self._run_timer(), name="waypost-timer")

    async def _register_self(self) -> None:
        address = self.config.advertise_address
        node = Node(
            name=self.config.node,
            node_id=self.node_id,
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
        await self.persist(self.catalog.upsert_node(node))
        serf = Check(
            node=node.name,
            check_id=SERF_CHECK_ID,
            name="Serf Health Status",
            status=HealthStatus.PASSING,
            output="Agent alive and reachable",
        )
        existing = self.catalog.get_check(node.name, SERF_CHECK_ID)
        if existing is None or existing.status is not HealthStatus.PASSING:
            await self.persist(self.catalog.register_check(serf, now=self.now()))
        # Consul servers list themselves as service "consul"; clients and
        # test suites written for Consul expect it in the catalog.
        consul = Service(node=node.name, service_id="consul", name="consul", port=8300)
        await self.persist(self.catalog.register_service(consul, [], now=self.now()))

    async def _run_timer(self) -> None:
        while True:
            now = self.now()
            for commit in self.catalog.expire(now, self.brake):
                try:
                    await self.persist(commit)
                except Exception:
                    logger.exception("could not persist an expiry")
            for notice in self.brake.drain_notices():
                logger.warning(notice)
            deadline = None if self.brake.engaged else self.catalog.next_deadline()
            delay = TIMER_TICK if deadline is None else deadline - self.now()
            delay = min(max(delay, 0.001), TIMER_TICK)
            self._timer_at = self.now() + delay
            self._timer_wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._timer_wake.wait()

    def request_shutdown(self) -> None:
        """Begin a graceful stop (PUT /v1/agent/leave, SIGTERM, SIGINT)."""
        self._stop.set()

    def begin_shutdown(self) -> None:
        self.is_shutting_down = True
        # Blocking queries answer now with what they have, instead of
        # holding the shutdown for up to ten minutes.
        self.watchers.notify_all()

    async def shutdown(self) -> None:
        """Stop timers, then commit what is pending and close the store."""
        self.begin_shutdown()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        await self.runner.stop()
        if self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)
        await self.store.close()

    async def serve(self, sock: socket.socket | None = None) -> None:
        """Run until asked to stop; `sock` is an already bound HTTP listener."""
        http = HttpServer(ConsulAPI(self), self.config.limits)
        for bound, context in open_listeners(self.config, sock):
            http.add(bound, context)
        self.bound_port = next(
            (lst.port for lst in http.listeners if lst.scheme == "http"), PORT_OFF
        )
        loop = asyncio.get_running_loop()
        await self.startup()
        try:
            http.start()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_shutdown)
            logger.info(
                "waypost agent %s listening on %s node=%s datacenter=%s"
                " store=%s consul-api=%s",
                __version__,
                " ".join(http.urls),
                self.config.node,
                self.config.datacenter,
                self.store.description,
                CONSUL_API_VERSION,
            )
            await self._stop.wait()
            logger.info("shutting down")
            # 1. Stop accepting; 2. let blocking queries answer now; 3. give
            # in-flight requests (durable commits) time to finish; 4. close.
            await http.stop_accepting()
            self.begin_shutdown()
            await http.close(SHUTDOWN_GRACE)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await http.stop_accepting()
            await http.tracker.stop()
            await self.shutdown()
            logger.info("waypost agent stopped")


def _open_store(config: AgentConfig) -> Store:
    if config.dev:
        return MemoryStore()
    from waypost.store.sqlite import SQLiteStore

    return SQLiteStore(config.data_dir)


async def run_agent(config: AgentConfig) -> None:
    """Run one agent until it is told to stop."""
    agent = Agent(config)
    await agent.serve()
