"""The registry as its transports see it: reads, one write path, one status path.

HTTP (and DNS, a UI, an ACL layer) depend on this, not on the `Agent`:

- `catalog`: every read, from memory;
- `apply(change)`: the one write path. Plan against the catalog, let the
  store index and persist the plan, and return once the store delivered the
  durable entry and the catalog applied it (`Applied`);
- `update_check(...)`: the one status path, for every source of a check
  result (HTTP TTL updates, the check runner, alias checks, TTL expiry):
  hysteresis in one place, then `apply`;
- `watchers`: who waits on which topics (blocking queries);
- `config`, `now()`.

The agent composes a Registry with its transports and owns start-up and
shutdown (`server.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.config import AgentConfig
from waypost.core.acl.authorizer import Authorizer
from waypost.core.acl.changes import InitializeAcl
from waypost.core.acl.model import AGENT_TOKEN_PREFIX, ANONYMOUS_SECRET
from waypost.core.brake import Brake, BrakeSettings
from waypost.core.catalog import Catalog
from waypost.core.changes import CHECKS, Change, Entry, UpdateCheck
from waypost.core.checkstate import CheckStates
from waypost.core.events import T_EVENTS, EventBuffer, UserEvent, matches, validate
from waypost.core.model import Check, HealthStatus
from waypost.core.planner import check_key, plan, unknown_check
from waypost.core.sessions import Session
from waypost.core.snapshot import Snapshot, dump, restore_plan
from waypost.core.watch import Watchers
from waypost.exceptions import NotFound
from waypost.metrics import HEARTBEATS
from waypost.runner.probes import require_scripts_enabled
from waypost.store.base import Conflict, Store

if TYPE_CHECKING:
    from waypost.cluster import Cluster

logger = logging.getLogger("waypost.registry")

Clock = Callable[[], float]
Listener = Callable[[Entry], None]


#: No token at all (not even the anonymous one): nothing is allowed.
DENY_ALL = Authorizer("", (), default_allow=False)


class Applied(msgspec.Struct, frozen=True):
    """The outcome of one accepted change."""

    #: False when a condition did not hold (a KV CAS): Consul's `false`.
    ok: bool = True
    #: The index the change took; None when it changed nothing durable.
    index: int | None = None
    #: What the change answers besides ok (`/v1/txn`: core.txn.TxnAnswer).
    result: object = None


class Registry:
    """One registry's state, its write path and its status path."""

    def __init__(
        self, config: AgentConfig, store: Store, *, clock: Clock = time.monotonic
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.catalog = Catalog()
        self.watchers = Watchers()
        self.check_states = CheckStates()
        self.brake = Brake(
            BrakeSettings(
                enabled=config.self_preservation,
                threshold=config.self_preservation_threshold,
                window=config.self_preservation_window,
            )
        )
        self.node_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"waypost.{config.node}"))
        self.started_at = time.time()
        self.is_shutting_down = False
        #: The port the HTTP transport listens on (0 before it binds).
        self.http_port = config.http_port
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Future[object]] = set()
        #: Set by the agent: how a transport asks the process to stop.
        self.request_shutdown: Callable[[], None] = lambda: None
        #: Set by the agent: how many active checks its runner runs.
        self.count_running: Callable[[], int] = lambda: 0
        #: Tokens set through /v1/agent/token (`default` answers requests
        #: that carry none); kept across restarts only with persistence on.
        self.agent_tokens: dict[str, str] = {}
        #: Cluster mode: the live agents, the etcd members (None: one agent).
        self.cluster: Cluster | None = None
        #: The user events this agent received whose filters match it.
        self.events = EventBuffer()
        self._event_clock = 0
        #: Set by the agent in cluster mode: send an encoded event to every
        #: agent, returning once this one received it (None: one agent).
        self.broadcast_event: Callable[[UserEvent], Awaitable[None]] | None = None
        #: Set by the agent: re-read the configuration files (reload).
        self.reload_config: Callable[[], Awaitable[None]] = _nothing_to_reload
        store.bind(self._deliver)

    def now(self) -> float:
        return self.clock()

    def checks_running(self) -> int:
        """Active checks this agent runs (set by the agent; 0 without one)."""
        return self.count_running()

    def on_apply(self, listener: Listener) -> None:
        """Call `listener(entry)` after each durable entry is applied."""
        self._listeners.append(listener)

    def load(self) -> None:
        """Fill the catalog from the store (start-up)."""
        rows, index = self.store.load()
        self.catalog.restore(rows, index, now=self.now())

    async def start_acl(self) -> None:
        """Configure the ACL state; with ACLs on, write the builtin policies,
        the anonymous token and the initial management token if missing."""
        acl = self.config.acl
        state = self.catalog.acl
        state.configure(
            default_allow=acl.default_policy == "allow",
            datacenter=self.config.datacenter,
        )
        if not acl.enabled:
            return
        await self.apply(
            InitializeAcl(
                now=time.time(),
                initial_management=acl.initial_management,
                initial_accessor=str(uuid.uuid4()),
            )
        )
        if acl.enable_token_persistence:
            for name, fact in state.facts.items():
                if name.startswith(AGENT_TOKEN_PREFIX) and fact.value:
                    self.agent_tokens[name[len(AGENT_TOKEN_PREFIX) :]] = fact.value

    def dns_authorizer(self) -> Authorizer | None:
        """What DNS answers may show: the agent's `dns` token, else its
        `default` one, else the anonymous token (None: ACLs are off)."""
        if not self.config.acl.enabled:
            return None
        state = self.catalog.acl
        secret = (
            self.agent_tokens.get("dns")
            or self.agent_tokens.get("default")
            or ANONYMOUS_SECRET
        )
        token = state.token_by_secret(secret)
        if token is None or (
            token.expiration_time is not None and token.expiration_time <= time.time()
        ):
            token = state.token_by_secret(ANONYMOUS_SECRET)
        return state.authorizer(token) if token is not None else DENY_ALL

    def set_agent_token(self, kind: str, secret: str) -> None:
        """/v1/agent/token/<kind>: the token the agent uses for that purpose."""
        if secret:
            self.agent_tokens[kind] = secret
        else:
            self.agent_tokens.pop(kind, None)
        # Answers cached for requests without a token may change with it.
        self.catalog.acl.epoch += 1

    # ------------------------------------------------------------ writes

    async def apply(self, change: Change) -> Applied:
        """Validate, persist and apply one change, or refuse it whole.

        Raises the change's 4xx (`InvalidRequest`, `NotFound`) before
        anything is written, `StoreUnavailable` (503) if the store could not
        make it durable; in both cases nothing changed.
        """
        synced = False
        while True:
            planned = plan(self.catalog, change)
            settled = self.store.conflict(planned)
            if settled is not None:
                await settled
                continue
            if not planned.ok and not synced:
                # A condition failed against this agent's catalog. In cluster
                # mode it may be behind: refuse only once it has every write
                # committed before now (a no-op for the embedded stores).
                synced = True
                await self.store.sync()
                continue
            if planned.is_noop:
                now = self.now()
                if planned.output is not None:
                    self.catalog.set_output(*planned.output)
                if planned.arm:
                    self.catalog.arm(planned.arm, now)
                    self._notify_listeners_of_deadlines()
                return Applied(ok=planned.ok, result=planned.result)
            try:
                entry = await self.store.commit(planned)
            except Conflict as conflict:
                await conflict.settled
                continue
            return Applied(ok=planned.ok, index=entry.index, result=planned.result)

    # ------------------------------------------------------------ events

    async def fire_event(self, event: UserEvent) -> None:
        """Send a user event to every agent (`InvalidRequest` for bad
        filters or an event over serf's size limit)."""
        validate(event)
        if self.broadcast_event is None:
            self.receive_event(event)
        else:
            await self.broadcast_event(event)

    def receive_event(self, event: UserEvent, ltime: int | None = None) -> None:
        """An event arrived (from this agent or, in cluster mode, through
        etcd with its revision as Lamport time): keep it if it is for us."""
        if ltime is None:
            self._event_clock += 1
            ltime = self._event_clock
        else:
            self._event_clock = max(self._event_clock, ltime)
        node = self.config.node
        services = [(s.name, s.tags) for s in self.catalog.node_services(node)]
        if not matches(event, node=node, services=services):
            return
        if self.events.add(msgspec.structs.replace(event, ltime=ltime)):
            self.watchers.notify([T_EVENTS])

    # ------------------------------------------------------------ snapshots

    async def snapshot(self, *, stale: bool = False) -> Snapshot:
        """The whole state at one index; unless `stale`, first every write
        committed anywhere (cluster mode, as Consul asks its leader)."""
        if not stale:
            await self.store.sync()
        return dump(self.catalog)

    async def restore(self, snapshot: Snapshot) -> Applied:
        """Replace the whole state with a snapshot's, as one durable change
        (all of it or nothing); every blocking query is woken."""
        while True:
            planned = restore_plan(self.catalog, snapshot.rows)
            settled = self.store.conflict(planned)
            if settled is not None:
                await settled
                continue
            if planned.is_noop:
                return Applied()
            try:
                entry = await self.store.commit(planned)
            except Conflict as conflict:
                await conflict.settled
                continue
            return Applied(index=entry.index)

    def _deliver(self, entry: Entry) -> None:
        """The store's callback: a durable entry, in index order."""
        self.catalog.apply(entry, now=self.now())
        for table, key, value in entry.rows:
            if table == CHECKS and value is None:
                node, _, check_id = key.partition("\x00")
                self.check_states.forget((node, check_id))
        if entry.replaces_all:
            self.watchers.notify_all()
        else:
            self.watchers.notify(entry.topics)
        for listener in self._listeners:
            listener(entry)

    def _notify_listeners_of_deadlines(self) -> None:
        # Re-armed deadlines may be earlier than the timer's next wake-up.
        for listener in self._listeners:
            listener(Entry(index=self.catalog.index, rows=[], topics=set()))

    # ------------------------------------------------------------ status

    async def update_check(
        self,
        node: str,
        check_id: str,
        status: HealthStatus,
        output: str,
        *,
        heartbeat: bool = False,
    ) -> None:
        """The one way a check result enters the registry.

        `heartbeat`: a TTL update, which restarts the TTL whatever its
        status. Hysteresis (SuccessBeforePassing, FailuresBeforeWarning/
        Critical) decides whether the result changes the status; a status
        change is a durable write, an output-only change is not.
        """
        check = self.catalog.get_check(node, check_id)
        if check is None:
            raise unknown_check(check_id)
        if heartbeat:
            HEARTBEATS.inc()
            self.catalog.touch((node, check_id), self.now())
        decided = self.check_states.observe((node, check_id), check.definition, status)
        if decided is None:
            return
        if decided is check.status and not self.store.is_pending(check_key(check)):
            # The hot path: a heartbeat that changes nothing durable. Its
            # output, if new, is kept in memory without an index.
            if check.output != output:
                self.catalog.set_output(node, check_id, output)
            return
        await self.apply(
            UpdateCheck(node=node, check_id=check_id, status=decided, output=output)
        )

    def report_check(
        self, node: str, check_id: str, status: HealthStatus, output: str
    ) -> None:
        """`update_check` for callers that cannot wait (the check runner)."""
        self.spawn(self.update_check(node, check_id, status, output))

    def spawn(self, write: Coroutine[Any, Any, object]) -> None:
        """Run a write in the background; its failure is logged, not lost."""
        task = asyncio.ensure_future(write)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            # A check or service removed meanwhile is not worth a traceback.
            level = logging.DEBUG if _is_gone(error) else logging.ERROR
            logger.log(level, "background write failed: %s", error)

    async def drain(self) -> None:
        """Wait for background writes (shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def renew_session(self, session_id: str) -> Session | None:
        """`/v1/session/renew`: the session's TTL timer starts over on this
        agent (no write, no index, as Consul's leader keeps it in memory)."""
        session = self.catalog.sessions.renew(session_id, self.now())
        if session is not None:
            self._notify_listeners_of_deadlines()
        return session

    async def consistent(self) -> None:
        """`?consistent`: return once the catalog has every committed write."""
        await self.store.sync()

    def run_due(self) -> None:
        """Apply what the clock asks for: expired TTLs and reaps.

        While the store cannot commit, nothing is due: a replica that may be
        stale must not evict anyone (the brake holds, logged once).
        """
        now = self.now()
        if not self.store.health().known_leader:
            self.brake.hold(now, "the store is unavailable")
        elif self.brake.release_hold(now):
            self.catalog.grant_grace(now)
        for change in self.catalog.due(now, self.brake):
            if isinstance(change, UpdateCheck):
                self.report_check(
                    change.node, change.check_id, change.status, change.output
                )
            else:
                self.spawn(self.apply(change))
        for notice in self.brake.drain_notices():
            logger.warning(notice)

    # ------------------------------------------------------------ config

    def validate_check(self, check: Check) -> None:
        """Refuse what this agent would not run (script checks unless enabled)."""
        require_scripts_enabled(
            check.definition, enabled=self.config.enable_script_checks
        )

    def begin_shutdown(self) -> None:
        self.is_shutting_down = True
        # Blocking queries answer now with what they have, instead of
        # holding the shutdown for up to ten minutes.
        self.watchers.notify_all()


async def _nothing_to_reload() -> None:
    return None


def _is_gone(error: BaseException | None) -> bool:
    return isinstance(error, NotFound)
