"""Consul's sessions and the locks they hold, pure.

A session is a row of the `sessions` table, written by change records
planned through the same Draft as every other write. What Consul's state
store does, the planner does here (agent/consul/state/session.go, kvs.go):

- create: the node and every check must exist, no check critical;
- destroy (asked for, TTL expired, or invalidated because its node was
  deregistered or one of its checks went critical or was deregistered):
  the session row goes, and every key it holds is released (Session
  cleared, LockIndex kept) or deleted, by its Behavior;
- `?acquire`: LockIndex + 1 and Session set, if the key is free and not in
  its lock-delay; `?release`: Session cleared, if the caller holds it.

Conflicts make this a compare-and-set: a lock plan reads the key and the
session row; it writes the `node-items` set key of the session's node, which
every destroy of a session on that node reads, so a destroy planned before a
concurrent acquire committed is planned again and sees the key.

Not durable, as in Consul: lock-delays (derived on every agent when it
applies an entry that deletes a session holding keys) and TTL timers
(armed at create, renew and start-up with 2 x TTL). No I/O; time arrives as
`now`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from waypost.core.changes import NODE_ITEMS, Change
from waypost.core.health import Deadlines
from waypost.core.model import HealthStatus, KVEntry
from waypost.core.topics import kv_topic
from waypost.core.watch import Topic
from waypost.durations import parse_duration
from waypost.exceptions import InvalidRequest

if TYPE_CHECKING:
    from waypost.core.planner import Draft

#: The table a store persists sessions in (`core/tables.py`).
SESSIONS = "sessions"
#: Every session query reads this one topic (Consul indexes the table).
T_SESSIONS: Topic = ("sessions", "")

BEHAVIOR_RELEASE = "release"
BEHAVIOR_DELETE = "delete"
#: structs.SessionTTLMultiplier: a TTL session expires after twice its TTL.
TTL_MULTIPLIER = 2.0
#: Consul's session_ttl_min default and structs.SessionTTLMax.
TTL_MIN = 10.0
TTL_MAX = 24 * 3600.0
#: structs.MaxLockDelay: longer delays are cut to this.
MAX_LOCK_DELAY = 60.0
DEFAULT_LOCK_DELAY = 15.0


class ServiceCheckRef(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A service check a session depends on (Consul's structs.ServiceCheck)."""

    id: str
    namespace: str = ""


class Session(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One session, as Consul's structs.Session holds it.

    `node_checks` / `service_checks` None encode as JSON null, as Go's nil
    slices do; `checks` is the deprecated field, kept as given.
    """

    id: str
    node: str
    name: str = ""
    lock_delay: float = DEFAULT_LOCK_DELAY
    behavior: str = BEHAVIOR_RELEASE
    #: Kept as the caller wrote it ("20s"), as Consul keeps it.
    ttl: str = ""
    node_checks: tuple[str, ...] | None = None
    service_checks: tuple[ServiceCheckRef, ...] | None = None
    checks: tuple[str, ...] = ()
    create_index: int = 0
    modify_index: int = 0

    def check_ids(self) -> list[str]:
        """Every check the session depends on, once (structs.CheckIDs)."""
        ids = dict.fromkeys(self.checks)
        ids.update(dict.fromkeys(self.node_checks or ()))
        ids.update(dict.fromkeys(c.id for c in self.service_checks or ()))
        return list(ids)

    @property
    def ttl_seconds(self) -> float:
        """The TTL in seconds (0: none); validated when the session is made."""
        return parse_duration(self.ttl) if self.ttl else 0.0


# ---------------------------------------------------------------- changes


class CreateSession(Change, frozen=True, kw_only=True):
    """`PUT /v1/session/create`: the handler chose the ID."""

    session: Session


class DestroySession(Change, frozen=True, kw_only=True):
    """`PUT /v1/session/destroy/:id`, or a TTL that ran out. Unknown: done."""

    session_id: str


class KVLock(Change, frozen=True, kw_only=True):
    """`PUT /v1/kv/:key?acquire=:session`; `now` decides the lock-delay."""

    key: str
    value: bytes
    session: str
    flags: int = 0
    now: float = 0.0
    #: The KV endpoint refuses keys in their lock-delay; a txn does not
    #: (Consul checks it in kvs_endpoint.go only).
    honor_lock_delay: bool = True


class KVUnlock(Change, frozen=True, kw_only=True):
    """`PUT /v1/kv/:key?release=:session`."""

    key: str
    value: bytes
    session: str
    flags: int = 0


# ---------------------------------------------------------------- state

_K = TypeVar("_K", str, tuple[str, str])


class SessionState:
    """The catalog's sessions, who depends on what, and what is not durable."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self._by_node: dict[str, set[str]] = {}
        self._by_check: dict[tuple[str, str], set[str]] = {}
        #: session ID -> the keys it holds
        self._held: dict[str, set[str]] = {}
        #: key -> until when (`now` clock) it may not be acquired
        self._delays: dict[str, float] = {}
        #: TTL timers of the sessions this agent expires
        self.ttl: Deadlines[str] = Deadlines()
        # During one entry: sessions deleted, and keys their sessions left.
        self._ended: dict[str, Session] = {}
        self._left: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def all(self) -> list[Session]:
        return [self.sessions[k] for k in sorted(self.sessions)]

    def of_node(self, node: str) -> list[Session]:
        ids = self._by_node.get(node, ())
        return [self.sessions[k] for k in sorted(ids)]

    def ids_of_node(self, node: str) -> list[str]:
        return sorted(self._by_node.get(node, ()))

    def ids_of_check(self, node: str, check_id: str) -> list[str]:
        return sorted(self._by_check.get((node, check_id), ()))

    def held(self, session_id: str) -> list[str]:
        return sorted(self._held.get(session_id, ()))

    # ------------------------------------------------------------ applying

    def apply_row(
        self, session_id: str, value: Session | None, now: float, *, owned: bool
    ) -> None:
        old = self.sessions.pop(session_id, None)
        if old is not None:
            _discard(self._by_node, old.node, session_id)
            for check_id in old.check_ids():
                _discard(self._by_check, (old.node, check_id), session_id)
        if value is None:
            self.ttl.disarm(session_id)
            if old is not None:
                self._ended[session_id] = old
            return
        self.sessions[session_id] = value
        self._by_node.setdefault(value.node, set()).add(session_id)
        for check_id in value.check_ids():
            self._by_check.setdefault((value.node, check_id), set()).add(session_id)
        if old is None:
            self.arm(value, now, owned=owned)

    def kv_changed(self, key: str, old: KVEntry | None, new: KVEntry | None) -> None:
        """A KV row changed: keep who holds what; note keys a session left."""
        before = old.session if old is not None else ""
        after = new.session if new is not None else ""
        if before == after:
            return
        if before:
            _discard(self._held, before, key)
            self._left.append((key, before))
        if after:
            self._held.setdefault(after, set()).add(key)

    def finish(self, now: float | None) -> None:
        """End of an entry: a deleted session's keys start their lock-delay
        (deleteSessionTxn). `now` None: start-up, no delays."""
        if now is not None:
            for key, session_id in self._left:
                ended = self._ended.get(session_id)
                if ended is not None and ended.lock_delay > 0:
                    delay = min(ended.lock_delay, MAX_LOCK_DELAY)
                    self._delays[key] = max(self._delays.get(key, 0.0), now + delay)
            if len(self._delays) > 1024:
                self._delays = {k: t for k, t in self._delays.items() if t > now}
        self._ended.clear()
        self._left.clear()

    def is_delayed(self, key: str, now: float) -> bool:
        until = self._delays.get(key)
        return until is not None and until > now

    # ------------------------------------------------------------ TTL

    def arm(self, session: Session, now: float, *, owned: bool) -> None:
        ttl = session.ttl_seconds
        if ttl > 0 and owned:
            self.ttl.arm(session.id, now + TTL_MULTIPLIER * ttl)
        else:
            self.ttl.disarm(session.id)

    def renew(self, session_id: str, now: float) -> Session | None:
        """`/v1/session/renew`: the timer starts over (no write, no index)."""
        session = self.sessions.get(session_id)
        if session is not None:
            self.arm(session, now, owned=True)
        return session


def _discard(index: dict[_K, set[str]], key: _K, item: str) -> None:
    items = index.get(key)
    if items is not None:
        items.discard(item)
        if not items:
            del index[key]


# ---------------------------------------------------------------- planning


def session_of(draft: Draft, session_id: str) -> Session | None:
    found: Session | None = draft.row(SESSIONS, session_id)
    return found


def plan_create(draft: Draft, change: CreateSession) -> None:
    """state.sessionCreateTxn: the node and its checks, none critical."""
    session = change.session
    if draft.node(session.node) is None:
        raise InvalidRequest("Missing node registration")
    for check_id in session.check_ids():
        check = draft.check(session.node, check_id)
        if check is None:
            raise InvalidRequest(f"Missing check '{check_id}' registration")
        if check.status is HealthStatus.CRITICAL:
            raise InvalidRequest(f"Check '{check_id}' is in critical state")
    if session_of(draft, session.id) is not None:  # pragma: no cover - uuid4
        raise InvalidRequest(f"Session {session.id!r} exists")
    # A destroy of this node's sessions (its deregistration) reads this key.
    draft.writes.add((NODE_ITEMS, session.node))
    draft.put_row(SESSIONS, session.id, session)
    draft.topics.add(T_SESSIONS)


def plan_destroy(draft: Draft, change: DestroySession) -> None:
    destroy(draft, change.session_id)


def destroy(draft: Draft, session_id: str) -> None:
    """state.deleteSessionTxn: the row goes; its keys by its Behavior."""
    session = session_of(draft, session_id)
    if session is None:
        return
    # Its keys as of now: an acquire committed meanwhile wrote this key.
    draft.reads.add((NODE_ITEMS, session.node))
    for key in draft.catalog.sessions.held(session_id):
        entry = draft.kv(key)
        if entry is None or entry.session != session_id:
            continue
        if session.behavior == BEHAVIOR_DELETE:
            draft.delete_kv(key)
        else:
            draft.put_kv(msgspec.structs.replace(entry, session=""))
        draft.topics.add(kv_topic(key))
    draft.put_row(SESSIONS, session_id, None)
    draft.topics.add(T_SESSIONS)


def invalidate_check(draft: Draft, node: str, check_id: str) -> None:
    """A check went critical or away: the sessions on it are destroyed."""
    draft.reads.add((NODE_ITEMS, node))
    for session_id in draft.catalog.sessions.ids_of_check(node, check_id):
        destroy(draft, session_id)


def invalidate_node(draft: Draft, node: str) -> None:
    """A node was deregistered: every session on it is destroyed."""
    draft.reads.add((NODE_ITEMS, node))
    for session_id in draft.catalog.sessions.ids_of_node(node):
        destroy(draft, session_id)


def plan_lock(draft: Draft, change: KVLock) -> bool:
    """state.kvsLockTxn, and kvs_endpoint.go's lock-delay refusal."""
    if not change.session:
        raise InvalidRequest("missing session")
    session = session_of(draft, change.session)
    if session is None:
        # differs: Consul answers its RPC error as a 500; the caller's
        # input is wrong, so a 400 with the same words.
        raise InvalidRequest(f'invalid session "{change.session}"')
    if change.honor_lock_delay and draft.catalog.sessions.is_delayed(
        change.key, change.now
    ):
        return False
    old = draft.kv(change.key)
    if old is not None and old.session and old.session != change.session:
        return False
    if old is None:
        lock_index = 1
    elif old.session == change.session:
        lock_index = old.lock_index
    else:
        lock_index = old.lock_index + 1
    draft.writes.add((NODE_ITEMS, session.node))
    draft.put_kv(
        KVEntry(
            key=change.key,
            value=change.value,
            flags=change.flags,
            lock_index=lock_index,
            session=change.session,
            create_index=old.create_index if old else 0,
        )
    )
    draft.topics.add(kv_topic(change.key))
    return True


def plan_unlock(draft: Draft, change: KVUnlock) -> bool:
    """state.kvsUnlockTxn: only the holder releases; LockIndex is kept."""
    if not change.session:
        raise InvalidRequest("missing session")
    old = draft.kv(change.key)
    if old is None or old.session != change.session:
        return False
    draft.put_kv(
        KVEntry(
            key=change.key,
            value=change.value,
            flags=change.flags,
            lock_index=old.lock_index,
            session="",
            create_index=old.create_index,
        )
    )
    draft.topics.add(kv_topic(change.key))
    return True


PLANNERS: dict[type[Change], Callable[[Draft, Any], bool | None]] = {
    CreateSession: plan_create,
    DestroySession: plan_destroy,
    KVLock: plan_lock,
    KVUnlock: plan_unlock,
}
