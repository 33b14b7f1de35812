"""Cluster mode: the catalog lives in etcd; this agent serves from a replica.

etcd is the truth. Every row is an etcd key under the prefix (msgpack
values, as the SQLite store's); X-Consul-Index is etcd's revision, and a
row's CreateIndex/ModifyIndex come from the revisions etcd gave it, so every
agent sees the same numbers. The replica is this agent's Catalog, filled by
one list and then one watch from the revision it applied (the Kubernetes
apiserver's watch cache); each watch response is grouped by revision into an
`Entry` and delivered, with topics derived from the rows (`core.replica`).

The keys (`store/etcd_layout.py`): rows under `<prefix>/r/`, lock markers
under `<prefix>/l/`, live agents under `<prefix>/m/`, and `<prefix>/rev`,
the ID of the last waypost commit.

`commit(plan)` is one etcd transaction: it compares every key the plan read
(unchanged since the replica saw it, or still absent; a recursive KV delete's
range: nothing newer than the replica), then writes the rows, the markers and
`rev`. A failed compare is a `Conflict`: the registry plans again once the
replica has caught up. The commit returns only after the watch delivered the
transaction's revision to the catalog: a client reads its own write on the
agent it wrote to. `sync()` (`?consistent`) reads `rev` with a quorum read
and waits until the replica has applied it.

When the watch's revision was compacted, the store lists again and delivers
the difference as one entry, so blocking queries see one change. Without
etcd, reads go on from the replica (`health()` says how stale), writes are
refused with `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from waypost.config import EtcdConfig
from waypost.core.catalog import Catalog
from waypost.core.changes import KV, Entry, LockKey, Plan, Row, stamp
from waypost.core.replica import diff, topics_of
from waypost.exceptions import PayloadTooLarge, StartupError, StoreUnavailable
from waypost.metrics import etcd_revision
from waypost.store.base import Conflict, Deliver, StoreHealth
from waypost.store.etcd_client import (
    EVENT_DELETE,
    Ambiguous,
    Compacted,
    EtcdClient,
    EtcdError,
    EtcdUnavailable,
    Message,
    TLSFiles,
    op_get,
    op_put,
)
from waypost.store.etcd_layout import ORDER, Layout, Member, revision_reader

logger = logging.getLogger("waypost.store.etcd")

#: Keys per page when listing.
PAGE = 5000
#: How often the store proves it can reach a quorum when nothing else did.
PROBE_EVERY = 1.0
#: Contact older than this: the known-leader flag goes false, writes fail fast.
STALE_AFTER = 3.0
#: How long a write waits for etcd (elections included) before a 503.
WRITE_BUDGET = 8.0
#: Once etcd has been out of reach this long, writes fail at once (503)
#: instead of each waiting WRITE_BUDGET; an election alone never lasts this.
FAIL_FAST_AFTER = 5.0
#: How long a committed write waits for the watch to bring it back.
APPLY_WAIT = 30.0
#: How long `sync()` (?consistent) waits for the replica.
SYNC_WAIT = 10.0
#: etcd's --max-txn-ops (128 unless etcd was started with more): a snapshot
#: restore is one transaction, so its rows must fit in one.
#: How long a user event's key lives in etcd (agents watching get it at once).
EVENT_TTL = 30
MAX_TXN_OPS = int(os.environ.get("WAYPOST_ETCD_MAX_TXN_OPS", "128"))


class EtcdStore:
    """Rows in etcd, a replica in this agent's catalog."""

    def __init__(self, client: EtcdClient, prefix: str = "/waypost") -> None:
        self.client = client
        self.layout = Layout(prefix)
        secure = any(e.secure for e in client.endpoints)
        self.description = "etcd:" + ",".join(e.target for e in client.endpoints)
        self.description += f" prefix={self.layout.root}" + (" tls" if secure else "")
        self._deliver: Deliver | None = None
        self._catalog_rows: Callable[[str, str], int] = lambda table, key: 0
        self._catalog_obj: Catalog | None = None
        #: The revision the replica has applied (listed or watched up to).
        self.applied = 0
        #: Lock markers' ModifyIndex, as the replica saw them.
        self._markers: dict[bytes, int] = {}
        #: Live agents by node name.
        self.members: dict[str, Member] = {}
        self._member_listeners: list[Callable[[], None]] = []
        self._event_listeners: list[Callable[[bytes, int], None]] = []
        self._initial: list[list[Row]] = []
        self._initial_floor = 0
        self._floor = 0
        # Local commits in flight: commit ID → (plan, future of its entry).
        self._commits: dict[bytes, tuple[Plan, asyncio.Future[Entry]]] = {}
        # Keys written by local commits in flight (count), and who waits.
        self._writing: dict[LockKey, int] = {}
        self._waiting: dict[LockKey, list[asyncio.Future[None]]] = {}
        # Who waits for the replica to reach a revision.
        self._reach: list[tuple[int, asyncio.Future[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._commit_serial = 0
        self._commit_tag = os.urandom(6).hex().encode()
        self._healthy = True
        self._unhealthy_since = 0.0
        self._closed = False
        self.relists = 0

    # ------------------------------------------------------------ start-up

    def attach(self, catalog: Catalog) -> None:
        """The replica: where plans' reads are looked up for the compares."""
        self._catalog_obj = catalog
        self._catalog_rows = revision_reader(catalog)

    async def open(self) -> None:
        """List everything under the prefix (etcd must answer: else no start)."""
        try:
            listed = await self._list()
        except EtcdError as exc:
            raise StartupError(
                f"cannot read the catalog from etcd ({self.description}): {exc}"
            ) from exc
        rows, markers, members, floor, revision = listed
        # Rows grouped by their revision, oldest first: delivered one group
        # at a time, they leave every topic at the revision of the last row
        # that touched it, exactly as on an agent that watched them happen.
        groups: dict[int, list[Row]] = {}
        for revision_of_row, row in rows:
            groups.setdefault(revision_of_row, []).append(row)
        self._initial = [
            sorted(groups[r], key=lambda row: ORDER[row[0]]) for r in sorted(groups)
        ]
        self._initial_revisions = sorted(groups)
        self._markers = markers
        self.members = members
        self._initial_floor = floor
        self.applied = revision
        etcd_revision(seen=revision, applied=revision)

    def load(self) -> tuple[list[Row], int]:
        """Nothing to restore: `open` queued the listing as entries, delivered
        now (each at its revision), then the watch starts."""
        for revision, rows in zip(self._initial_revisions, self._initial, strict=True):
            self._deliver_entry(revision, rows, floor=0)
        if self._initial_floor:
            self._deliver_entry(self.applied, [], floor=self._initial_floor)
        self._initial = []
        self._initial_revisions = []
        self._start_tasks()
        return [], 0

    def bind(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def on_members(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after the set of live agents changed."""
        self._member_listeners.append(listener)

    def on_event(self, listener: Callable[[bytes, int], None]) -> None:
        """Call `listener(value, revision)` for every user event put under
        `e/` by any agent (this one included), as the watch brings it."""
        self._event_listeners.append(listener)

    async def broadcast(self, value: bytes) -> None:
        """Deliver a user event to every agent: a key under `e/` on a lease of
        `EVENT_TTL` seconds; returns once this agent's watch brought it."""
        # A task of its own: the caller may be an inline handler (no task).
        await asyncio.get_running_loop().create_task(self._broadcast(value))

    async def _broadcast(self, value: bytes) -> None:
        try:
            lease, _ttl = await self.client.lease_grant(EVENT_TTL)
            key = self.layout.events + os.urandom(12).hex().encode()
            response = await self.client.txn([], [op_put(key, value, lease)], [])
        except EtcdError as exc:
            raise StoreUnavailable(
                f"could not send the event through etcd: {exc}"
            ) from exc
        await self._wait_reached(int(response.header.revision), SYNC_WAIT)

    def _start_tasks(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch_loop(), name="etcd-watch"))
        self._tasks.append(loop.create_task(self._probe_loop(), name="etcd-probe"))

    # ------------------------------------------------------------ listing

    async def _list(
        self,
    ) -> tuple[list[tuple[int, Row]], dict[bytes, int], dict[str, Member], int, int]:
        end = self.layout.end
        response = await self.client.range(self.layout.prefix, end, limit=PAGE)
        revision = int(response.header.revision)
        kvs = list(response.kvs)
        while response.more:
            start = bytes(kvs[-1].key) + b"\x00"
            response = await self.client.range(
                start, end, revision=revision, limit=PAGE
            )
            kvs.extend(response.kvs)
        rows: list[tuple[int, Row]] = []
        markers: dict[bytes, int] = {}
        members: dict[str, Member] = {}
        floor = 0
        for kv in kvs:
            key = bytes(kv.key)
            if key.startswith(self.layout.rows):
                row = self.layout.decode_row(key, bytes(kv.value), int(kv.mod_revision))
                if row is not None:
                    rows.append((int(kv.mod_revision), row))
            elif key.startswith(self.layout.locks):
                markers[key] = int(kv.mod_revision)
            elif key.startswith(self.layout.members):
                member = self.layout.decode_member(bytes(kv.value))
                if member is not None:
                    members[member.node] = member
            elif key == self.layout.del_key:
                floor = int(kv.mod_revision)
        return rows, markers, members, floor, revision

    # ------------------------------------------------------------ watching

    async def _watch_loop(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                async for response in self.client.watch(
                    self.layout.prefix, self.layout.end, self.applied + 1
                ):
                    backoff = 0.05
                    self._mark_healthy()
                    if response.events:
                        self._apply_events(response.events)
            except Compacted as compacted:
                logger.warning(
                    "etcd compacted revision %d the watch needed (now %d);"
                    " listing again",
                    self.applied + 1,
                    compacted.revision,
                )
                with contextlib.suppress(EtcdError):
                    await self._relist()
            except EtcdUnavailable as exc:
                logger.debug("etcd watch: %s; resuming from %d", exc, self.applied)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: log it, keep the replica going
                logger.exception("etcd watch failed; resuming from %d", self.applied)
                await asyncio.sleep(1.0)

    def _apply_events(self, events: Any) -> None:
        group: list[Message] = []
        revision = 0
        for event in events:
            event_revision = int(event.kv.mod_revision)
            if group and event_revision != revision:
                self._apply_group(revision, group)
                group = []
            revision = event_revision
            group.append(event)
        if group:
            self._apply_group(revision, group)

    def _apply_group(self, revision: int, events: list[Message]) -> None:
        if revision <= self.applied:
            return  # seen already (a watch resumed from an older revision)
        rows: list[Row] = []
        commit_id = b""
        floor = 0
        members_changed = False
        user_events: list[bytes] = []
        for event in events:
            kv = event.kv
            key = bytes(kv.key)
            deleted = event.type == EVENT_DELETE
            if key.startswith(self.layout.rows):
                value = None if deleted else bytes(kv.value)
                row = self.layout.decode_row(key, value, revision)
                if row is not None:
                    rows.append(row)
            elif key.startswith(self.layout.locks):
                if deleted:
                    self._markers.pop(key, None)
                else:
                    self._markers[key] = revision
            elif key.startswith(self.layout.members):
                members_changed = True
                node = key[len(self.layout.members) :].decode()
                member = None if deleted else self.layout.decode_member(bytes(kv.value))
                if member is None:
                    self.members.pop(node, None)
                else:
                    self.members[node] = member
            elif key.startswith(self.layout.events):
                if not deleted:
                    user_events.append(bytes(kv.value))
            elif key == self.layout.rev_key and not deleted:
                commit_id = bytes(kv.value)
            elif key == self.layout.del_key and not deleted:
                floor = revision
        mine = self._commits.get(commit_id) if commit_id else None
        entry = None
        if rows or floor:
            entry = self._deliver_entry(
                revision, rows, floor=floor, arm=mine[0].arm if mine else []
            )
        self.applied = revision
        etcd_revision(seen=revision, applied=revision)
        if mine is not None and not mine[1].done():
            mine[1].set_result(entry or stamp(mine[0], revision))
        self._wake_reached()
        if members_changed:
            for listener in self._member_listeners:
                listener()
        for value in user_events:
            for event_listener in self._event_listeners:
                event_listener(value, revision)

    def _deliver_entry(
        self,
        revision: int,
        rows: list[Row],
        *,
        floor: int,
        arm: list[tuple[str, str]] | None = None,
    ) -> Entry:
        topics = topics_of(self._catalog(), rows) if rows else set()
        entry = Entry(
            index=revision, rows=rows, topics=topics, arm=arm or [], floor=floor
        )
        if self._deliver is not None:
            try:
                self._deliver(entry)
            except Exception:  # a bug in applying; etcd keeps the truth
                logger.exception("could not apply etcd revision %d", revision)
        return entry

    def _catalog(self) -> Catalog:
        assert self._catalog_obj is not None, "EtcdStore used before attach()"
        return self._catalog_obj

    async def _relist(self) -> None:
        """The watch's revision is gone: list again and deliver the difference."""
        rows, markers, members, floor, revision = await self._list()
        self.relists += 1
        changed = diff(self._catalog(), [row for _, row in rows])
        self._markers = markers
        old_members = self.members
        self.members = members
        # The difference is one change at the listed revision.
        self._deliver_entry(revision, changed, floor=floor)
        self.applied = revision
        etcd_revision(seen=revision, applied=revision)
        # Local commits whose events fell in the gap are in the listing: they
        # wait for `reached(their revision)` too (see `commit`).
        self._wake_reached()
        if old_members != members:
            for listener in self._member_listeners:
                listener()

    # ------------------------------------------------------------ reaching

    def reached(self, revision: int) -> asyncio.Future[None]:
        """A future done once the replica has applied `revision`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if revision <= self.applied:
            future.set_result(None)
        else:
            self._reach.append((revision, future))
        return future

    def _wake_reached(self) -> None:
        if not self._reach:
            return
        keep = []
        for revision, future in self._reach:
            if revision <= self.applied:
                if not future.done():
                    future.set_result(None)
            elif not future.done():
                keep.append((revision, future))
        self._reach = keep

    async def _wait_reached(self, revision: int, within: float) -> None:
        try:
            async with asyncio.timeout(within):
                await self.reached(revision)
        except TimeoutError as exc:
            raise StoreUnavailable(
                f"this agent's replica did not reach etcd revision {revision}"
                f" within {within:g}s (it has {self.applied})"
            ) from exc

    async def current_revision(self, within: float) -> int:
        """The revision of the last waypost commit, by a quorum read."""
        response = await self.client.range(self.layout.rev_key, within=within)
        self._mark_healthy()
        if response.kvs:
            return int(response.kvs[0].mod_revision)
        return 0

    async def sync(self) -> None:
        """`?consistent`: wait until the replica has every committed write."""
        # A task of its own: the caller may be an inline handler (no task).
        await asyncio.get_running_loop().create_task(self._sync())

    async def _sync(self) -> None:
        try:
            revision = await self.current_revision(SYNC_WAIT)
        except EtcdError as exc:
            self._mark_unhealthy()
            raise StoreUnavailable(
                f"etcd is unavailable, cannot serve a consistent read: {exc}"
            ) from exc
        await self._wait_reached(revision, SYNC_WAIT)

    # ------------------------------------------------------------ health

    def _mark_healthy(self) -> None:
        if not self._healthy:
            logger.warning("etcd is reachable again; writes resume")
        self._healthy = True

    def _mark_unhealthy(self) -> None:
        if self._healthy:
            self._healthy = False
            self._unhealthy_since = time.monotonic()
            logger.warning(
                "etcd unavailable (no quorum reachable): serving reads from this"
                " agent's replica, refusing writes"
            )

    def health(self) -> StoreHealth:
        since = time.monotonic() - self.client.last_contact
        healthy = self._healthy and since < STALE_AFTER
        return StoreHealth(known_leader=healthy, last_contact=0.0 if healthy else since)

    async def _probe_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(PROBE_EVERY / 2)
            if time.monotonic() - self.client.last_contact < PROBE_EVERY:
                continue
            try:
                await self.current_revision(STALE_AFTER)
            except EtcdError:
                self._mark_unhealthy()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("etcd probe failed")

    # ------------------------------------------------------------ writing

    def is_pending(self, key: LockKey) -> bool:
        return key in self._writing

    def conflict(self, plan: Plan) -> asyncio.Future[None] | None:
        """A local commit in flight writes what `plan` read: wait for it
        (etcd would refuse the plan anyway)."""
        if not self._writing:
            return None
        if plan.replaces_all:  # a restore read everything
            return self._wait_for(next(iter(self._writing)))
        for key in plan.reads:
            if key in self._writing:
                return self._wait_for(key)
        for prefix in plan.prefix_reads:
            for table, name in self._writing:
                if table == KV and name.startswith(prefix):
                    return self._wait_for((table, name))
        return None

    def _wait_for(self, key: LockKey) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        return future

    def _hold(self, plan: Plan) -> None:
        for key in plan.writes:
            self._writing[key] = self._writing.get(key, 0) + 1

    def _release(self, plan: Plan) -> None:
        for key in plan.writes:
            left = self._writing.get(key, 0) - 1
            if left > 0:
                self._writing[key] = left
                continue
            self._writing.pop(key, None)
            for future in self._waiting.pop(key, ()):
                if not future.done():
                    future.set_result(None)

    def _new_commit_id(self) -> bytes:
        self._commit_serial += 1
        return self._commit_tag + b"-" + str(self._commit_serial).encode()

    async def commit(self, plan: Plan) -> Entry:
        # Everything up to the first await runs against the catalog the plan
        # was made from: the compares say what it saw.
        settled = self.conflict(plan)
        if settled is not None:
            raise Conflict(settled)
        if (
            not self._healthy
            and time.monotonic() - self._unhealthy_since > FAIL_FAST_AFTER
        ):
            raise StoreUnavailable(
                "etcd is unavailable (no quorum reachable); the change was not applied"
            )
        compares = self.layout.compares(
            plan,
            revision_of=self._catalog_rows,
            markers=self._markers,
            applied=self.applied,
        )
        commit_id = self._new_commit_id()
        ops = self.layout.ops(plan, commit_id, self._catalog())
        if plan.replaces_all and len(ops) > MAX_TXN_OPS:
            # One transaction or nothing: a restore is never half applied.
            raise PayloadTooLarge(
                f"the snapshot has {len(ops)} rows and etcd applies at most"
                f" {MAX_TXN_OPS} operations in one transaction; restart etcd with"
                " a larger --max-txn-ops and set WAYPOST_ETCD_MAX_TXN_OPS to match"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Entry] = loop.create_future()
        self._commits[commit_id] = (plan, future)
        self._hold(plan)
        # HTTP handlers may run outside any task (inline, until they first
        # wait): the rest, with its timeouts, runs as a task of its own.
        return await loop.create_task(
            self._commit(plan, compares, ops, commit_id, future)
        )

    async def _commit(
        self,
        plan: Plan,
        compares: list[Message],
        ops: list[Message],
        commit_id: bytes,
        future: asyncio.Future[Entry],
    ) -> Entry:
        try:
            revision = await self._transact(compares, ops, commit_id)
            if future.done():
                return future.result()
            # The watch brings it back (normally), or a relist that skipped
            # its events reaches past it.
            reached = self.reached(revision)
            await asyncio.wait(
                (future, reached), timeout=APPLY_WAIT, return_when="FIRST_COMPLETED"
            )
            if future.done():
                return future.result()
            if not reached.done():
                logger.error(
                    "etcd committed revision %d but the watch did not bring it"
                    " back within %gs",
                    revision,
                    APPLY_WAIT,
                )
            return stamp(plan, revision)
        finally:
            self._commits.pop(commit_id, None)
            self._release(plan)

    async def _transact(
        self, compares: list[Message], ops: list[Message], commit_id: bytes
    ) -> int:
        """Run the transaction; its revision, or Conflict / StoreUnavailable."""
        deadline = time.monotonic() + WRITE_BUDGET
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._mark_unhealthy()
                raise StoreUnavailable(
                    "etcd did not commit the change in time; it was not applied"
                )
            try:
                response = await self.client.txn(
                    compares, ops, [op_get(self.layout.rev_key)], within=left
                )
            except Ambiguous as exc:
                found = await self._resolve(commit_id, deadline)
                if found is not None:
                    return found
                logger.info("etcd: %s; the change was not applied, retrying", exc)
                continue
            except EtcdUnavailable as exc:
                self._mark_unhealthy()
                raise StoreUnavailable(
                    f"etcd is unavailable; the change was not applied: {exc}"
                ) from exc
            except EtcdError as exc:
                raise StoreUnavailable(f"etcd refused the change: {exc}") from exc
            self._mark_healthy()
            if not response.succeeded:
                raise Conflict(self.reached(_rev_of(response)))
            return int(response.header.revision)

    async def _resolve(self, commit_id: bytes, deadline: float) -> int | None:
        """After a lost answer: the revision the commit got, or None if it
        was not applied (a quorum read, then the replica up to it)."""
        while time.monotonic() < deadline:
            try:
                revision = await self.current_revision(deadline - time.monotonic())
                await self._wait_reached(revision, deadline - time.monotonic())
            except (EtcdError, StoreUnavailable):
                await asyncio.sleep(0.05)
                continue
            entry = self._commits.get(commit_id)
            if entry is not None and entry[1].done():
                return entry[1].result().index
            return None
        self._mark_unhealthy()
        raise StoreUnavailable(
            "etcd became unavailable while committing; the change may or may"
            " not have been applied"
        )

    # ------------------------------------------------------------ shutdown

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.client.close()

    # Test and operator helpers.

    async def compact(self) -> int:
        """Compact etcd's history up to its current revision (tests, ops)."""
        response = await self.client.range(self.layout.rev_key)
        revision = int(response.header.revision)
        await self.client.compact(revision)
        return revision


def _rev_of(response: Message) -> int:
    """The revision of the last commit, from a failed transaction's read."""
    for item in response.responses:
        kvs = item.response_range.kvs
        if kvs:
            return int(kvs[0].mod_revision)
    return int(response.header.revision)


def open_etcd_store(config: EtcdConfig) -> EtcdStore:
    """The store for `--etcd`: a client of those endpoints, under the prefix."""
    try:
        client = EtcdClient(
            config.endpoints,
            tls=TLSFiles(ca=config.ca_file, cert=config.cert_file, key=config.key_file),
            user=config.user,
            password=config.password,
        )
    except (ValueError, OSError) as exc:
        raise StartupError(f"--etcd: {exc}") from exc
    return EtcdStore(client, config.prefix)
