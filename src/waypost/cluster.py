"""Cluster mode: this agent among others. Membership, the ring, who owns what.

- **Membership.** Each agent holds an etcd lease and keeps
  `<prefix>/m/<node>` on it, renewed every third of the lease. When an agent
  dies its lease expires, etcd deletes the key, and every agent's watch sees
  the set of live agents change.
- **Ownership.** A check on a live agent's node is that agent's (agent
  endpoints stay local, as in Consul). Any other check (catalog-registered
  external services, the nodes of dead agents) belongs to the live agent
  that the consistent-hash ring over the live agents (`waypost.ring`) picks
  for `<node>\\0<check ID>`: when an agent joins or leaves, about 1/N of those
  move. An agent runs the active checks it owns and keeps TTL and reap
  deadlines only for them (`Catalog.ownership`).
- **Reconcile** (what Consul's leader does for serfHealth): the owner of a
  dead agent's `serfHealth` turns it critical, so that node's instances leave
  `?passing`; every agent keeps its own passing.

The etcd members themselves (for /v1/status and the raft configuration) are
read from etcd and cached for a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING

import msgspec

from waypost.core.changes import UpdateCheck
from waypost.core.model import SERF_CHECK_ID, HealthStatus
from waypost.core.ring import HashRing
from waypost.exceptions import StartupError
from waypost.store.etcd import EtcdStore
from waypost.store.etcd_client import (
    EtcdError,
    compare_mod,
    op_get,
    op_put,
)
from waypost.store.etcd_layout import Member

if TYPE_CHECKING:
    from waypost.registry import Registry
    from waypost.runner.scheduler import CheckRunner

logger = logging.getLogger("waypost.cluster")

SERF_ALIVE = "Agent alive and reachable"
SERF_DEAD = "Agent not live or unreachable"
#: How long the etcd member list is reused.
ETCD_VIEW_TTL = 1.0


class EtcdMember(msgspec.Struct, frozen=True, kw_only=True):
    """One etcd member as /v1/status and the raft configuration show it."""

    id: str
    name: str
    peer_address: str
    client_urls: list[str]
    is_leader: bool


class AgentInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An agent of the cluster, live or gone (/v1/agent/members)."""

    node: str
    address: str = ""
    node_id: str = ""
    http_port: int = 0
    version: str = ""
    is_alive: bool = True


class EtcdView(msgspec.Struct, frozen=True, kw_only=True):
    members: list[EtcdMember]
    raft_index: int = 0
    #: False when no member could be asked (etcd down): the last known list.
    is_current: bool = True


class Cluster:
    """This agent's membership, the ring of live agents, ownership, reconcile."""

    def __init__(
        self,
        registry: Registry,
        store: EtcdStore,
        runner: CheckRunner,
        *,
        node: str,
        lease_ttl: float,
    ) -> None:
        self.registry = registry
        self.store = store
        self.runner = runner
        self.member = Member(node=node)
        self.node = node
        self.lease_ttl = max(2, math.ceil(lease_ttl))
        self.lease_id = 0
        self._ring = HashRing()
        self._live: frozenset[str] = frozenset({self.node})
        self._in_ring = False
        self._has_joined = False
        self._tasks: list[asyncio.Task[None]] = []
        self._writing: set[str] = set()
        self._view = EtcdView(members=[], is_current=False)
        self._view_at = -math.inf
        self.is_leaving = False
        registry.catalog.ownership = self
        runner.owns = self.owns
        store.on_members(self._members_changed)
        self._rebuild()

    # ------------------------------------------------------------ ownership

    @property
    def live(self) -> frozenset[str]:
        """Node names of the live agents (this one included)."""
        return self._live

    @property
    def ring(self) -> HashRing:
        """The ring over the members etcd has (what `owns` asks); read-only."""
        return self._ring

    def owns(self, node: str, check_id: str) -> bool:
        if node == self.node:
            return True
        if node in self._live or not self._in_ring:
            return False
        return self._ring.get(f"{node}\x00{check_id}") == self.node

    def is_local(self, node: str) -> bool:
        return node == self.node

    def _rebuild(self) -> None:
        """The ring over the members etcd has. This agent is in it only while
        its own key is there: an agent whose lease expired (cut off for
        longer than the lease) runs no one else's checks until it is back,
        since the others have taken them over."""
        members = frozenset(self.store.members)
        live = members | {self.node}
        self._in_ring = self.node in members
        if live == self._live and len(self._ring) == len(members):
            return
        self._live = live
        self._ring = HashRing(sorted(members))

    def _members_changed(self) -> None:
        before = (self._live, self._in_ring)
        self._rebuild()
        if before == (self._live, self._in_ring):
            return
        joined = sorted(self._live - before[0])
        left = sorted(before[0] - self._live)
        # The first view (this agent's own key arriving) is start-up detail.
        level = logging.INFO if self._has_joined else logging.DEBUG
        self._has_joined = self._has_joined or self._in_ring
        logger.log(
            level,
            "agents: %d live%s%s",
            len(self._live),
            f"; joined {', '.join(joined)}" if joined else "",
            f"; left {', '.join(left)}" if left else "",
        )
        catalog = self.registry.catalog
        catalog.reassign(self.registry.now())
        self.runner.resync(catalog.all_checks())
        self.reconcile()

    # ------------------------------------------------------------ lifecycle

    async def start(self, member: Member) -> None:
        """Join: take a lease and announce this agent (refuses a node name
        that a live agent holds), then keep the lease and reconcile."""
        self.member = member
        await self._join(first=True)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._keepalive(), name="member-lease"))
        self._tasks.append(loop.create_task(self._reconcile_loop(), name="reconcile"))

    async def _join(self, *, first: bool) -> None:
        client = self.store.client
        self.lease_id, _ = await client.lease_grant(self.lease_ttl)
        key = self.store.layout.member_key(self.node)
        value = self.store.layout.encode_member(self.member)
        deadline = time.monotonic() + self.lease_ttl + 2
        warned = False
        while True:
            response = await client.txn(
                [compare_mod(key, 0)],
                [op_put(key, value, self.lease_id)],
                [op_get(key)],
            )
            if response.succeeded:
                return
            if not first:
                # Our own key from an expired lease is gone by now; another
                # agent with our name is not: take over the key all the same.
                await client.txn([], [op_put(key, value, self.lease_id)], [])
                return
            if time.monotonic() > deadline:
                raise StartupError(
                    f"node name {self.node!r} is held by a live agent in this"
                    " cluster; give this agent another --node"
                )
            if not warned:
                warned = True
                logger.warning(
                    "node %r is still a member (a previous run's lease?);"
                    " waiting up to %ds for it to expire",
                    self.node,
                    self.lease_ttl,
                )
            await asyncio.sleep(0.5)

    async def _keepalive(self) -> None:
        interval = self.lease_ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                remaining = await self.store.client.lease_keepalive(
                    self.lease_id, within=interval
                )
                if remaining <= 0:
                    logger.warning(
                        "membership lease expired (etcd was out of reach);"
                        " joining again"
                    )
                    await self._join(first=False)
            except EtcdError as exc:
                logger.debug("membership keepalive: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("membership keepalive failed")

    async def stop(self) -> None:
        """Leave: stop renewing, revoke the lease (others see us go now)."""
        self.is_leaving = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self.lease_id:
            with contextlib.suppress(EtcdError):
                await self.store.client.lease_revoke(self.lease_id)

    # ------------------------------------------------------------ reconcile

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.reconcile()

    def reconcile(self) -> None:
        """serfHealth as membership says: critical for a dead agent's node
        (written by its owner), passing for this agent's own."""
        if self.is_leaving or not self.store.health().known_leader:
            return
        catalog = self.registry.catalog
        for name in list(catalog.nodes):
            serf = catalog.get_check(name, SERF_CHECK_ID)
            if serf is None or name in self._writing:
                continue
            if name == self.node:
                if serf.status is not HealthStatus.PASSING:
                    self._write(name, HealthStatus.PASSING, SERF_ALIVE)
            elif (
                name not in self._live
                and serf.status is HealthStatus.PASSING
                and self.owns(name, SERF_CHECK_ID)
            ):
                logger.info("agent %s is gone: its node turns critical", name)
                self._write(name, HealthStatus.CRITICAL, SERF_DEAD)

    def _write(self, node: str, status: HealthStatus, output: str) -> None:
        self._writing.add(node)

        async def write() -> None:
            try:
                await self.registry.apply(
                    UpdateCheck(
                        node=node, check_id=SERF_CHECK_ID, status=status, output=output
                    )
                )
            finally:
                self._writing.discard(node)

        self.registry.spawn(write())

    def agents(self) -> list[AgentInfo]:
        """Live agents, then the nodes of agents that are gone (their
        serfHealth is still in the catalog), by name."""
        found = {
            member.node: AgentInfo(
                node=member.node,
                address=member.address,
                node_id=member.node_id,
                http_port=member.http_port,
                version=member.version,
            )
            for member in self.store.members.values()
        }
        catalog = self.registry.catalog
        for name, node in catalog.nodes.items():
            if name in found or catalog.get_check(name, SERF_CHECK_ID) is None:
                continue
            found[name] = AgentInfo(
                node=name, address=node.address, node_id=node.node_id, is_alive=False
            )
        return [found[name] for name in sorted(found)]

    # ------------------------------------------------------------ etcd view

    async def etcd_view(self) -> EtcdView:
        """The etcd members and which leads, cached for a second."""
        if time.monotonic() - self._view_at < ETCD_VIEW_TTL:
            return self._view
        # A task of its own: the caller may be an inline handler (no task).
        return await asyncio.get_running_loop().create_task(self._refresh_view())

    async def _refresh_view(self) -> EtcdView:
        client = self.store.client
        try:
            listed = await client.member_list()
            status = await client.cluster_status()
        except EtcdError:
            self._view = msgspec.structs.replace(self._view, is_current=False)
            return self._view
        members = []
        for item in listed.members:
            peer = item.peerURLs[0] if item.peerURLs else ""
            members.append(
                EtcdMember(
                    id=f"{item.ID:x}",
                    name=item.name,
                    peer_address=peer.partition("://")[2] or peer,
                    client_urls=list(item.clientURLs),
                    is_leader=status.leader == item.ID,
                )
            )
        self._view = EtcdView(members=members, raft_index=int(status.raftIndex))
        self._view_at = time.monotonic()
        return self._view
