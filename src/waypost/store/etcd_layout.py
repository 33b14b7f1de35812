"""How the catalog is laid out in etcd: keys, values, and a plan's transaction.

    <prefix>/r/<table>/<key>   a row (nodes, services, checks, kv), msgpack
    <prefix>/l/<kind>/<key>    a lock marker: the checks of one service, the
                               items of one node (planner's virtual keys)
    <prefix>/m/<node>          a live agent, on its membership lease
    <prefix>/rev               the commit ID of the last waypost transaction
    <prefix>/del               put by transactions that delete or rename, so a
                               freshly listed agent knows the index floor

A row's value carries its CreateIndex when that is not the revision that
wrote it (a row written again keeps the first one); its ModifyIndex is
always the revision etcd gave the write, so every agent decodes the same
numbers. No I/O here: `store/etcd.py` sends what this builds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from waypost.core.acl.changes import ACL_LOCKS, ACL_TABLES
from waypost.core.catalog import Catalog
from waypost.core.changes import (
    CHECKS,
    KV,
    NODE_ITEMS,
    NODES,
    SERVICE_CHECKS,
    SERVICES,
    LockKey,
    Plan,
    Row,
)
from waypost.core.config.changes import CONFIG_TABLES
from waypost.core.coordinates import COORDINATES
from waypost.core.model import Check, Service
from waypost.core.sessions import SESSIONS
from waypost.core.tables import LOAD_ORDER, TABLES
from waypost.store.etcd_client import (
    Message,
    compare_mod,
    op_delete,
    op_put,
    prefix_end,
)

logger = logging.getLogger("waypost.store.etcd")

#: Load order of the tables (the one list: core/tables.py).
ORDER = LOAD_ORDER
_MARKERS = (SERVICE_CHECKS, NODE_ITEMS)


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """A live agent, as it announces itself under `<prefix>/m/<node>`."""

    node: str
    node_id: str = ""
    address: str = ""
    http_port: int = 0
    datacenter: str = ""
    version: str = ""


class Layout:
    """The keys under one prefix, and how rows and plans become etcd's."""

    def __init__(self, prefix: str) -> None:
        root = prefix.rstrip("/").encode()
        self.root = root.decode()
        self.prefix = root + b"/"
        self.end = prefix_end(self.prefix)
        self.rows = root + b"/r/"
        self.locks = root + b"/l/"
        self.members = root + b"/m/"
        #: User events, each on a short lease: every agent's watch sees them.
        self.events = root + b"/e/"
        self.rev_key = root + b"/rev"
        self.del_key = root + b"/del"
        self._encoder = msgspec.msgpack.Encoder()
        self._decoders = {t: msgspec.msgpack.Decoder(c) for t, c in TABLES.items()}
        self._member_decoder = msgspec.msgpack.Decoder(Member)

    def row_key(self, table: str, key: str) -> bytes:
        return self.rows + table.encode() + b"/" + key.encode()

    def lock_key(self, lock: LockKey) -> bytes:
        return self.locks + lock[0].encode() + b"/" + lock[1].encode()

    def member_key(self, node: str) -> bytes:
        return self.members + node.encode()

    def encode_member(self, member: Member) -> bytes:
        return self._encoder.encode(member)

    # ------------------------------------------------------------ decoding

    def decode_row(self, key: bytes, value: bytes | None, revision: int) -> Row | None:
        """The row a key holds at `revision` (None value: deleted then)."""
        table, _, name = key[len(self.rows) :].partition(b"/")
        table_name = table.decode()
        decoder = self._decoders.get(table_name)
        if decoder is None:
            logger.warning("ignoring etcd key %r: unknown table", key)
            return None
        if value is None:
            return (table_name, name.decode(), None)
        try:
            decoded = decoder.decode(value)
        except msgspec.DecodeError as exc:
            logger.error("ignoring etcd key %r: %s", key, exc)
            return None
        create = decoded.create_index or revision  # type: ignore[attr-defined]
        decoded = msgspec.structs.replace(
            decoded, create_index=create, modify_index=revision
        )
        return (table_name, name.decode(), decoded)

    def decode_member(self, value: bytes) -> Member | None:
        try:
            return self._member_decoder.decode(value)
        except msgspec.DecodeError:
            return None

    # ------------------------------------------------------------ transactions

    def compares(
        self,
        plan: Plan,
        *,
        revision_of: Callable[[str, str], int],
        markers: dict[bytes, int],
        applied: int,
    ) -> list[Message]:
        """What the plan read, as etcd must still have it: each key at the
        revision the replica holds (0: absent); a prefix read whole (a
        recursive KV delete): nothing newer than the replica. A restore read
        every row: none may be newer than the replica."""
        if plan.replaces_all:
            return [
                compare_mod(self.rows, applied + 1, range_end=prefix_end(self.rows))
            ]
        compares = []
        for lock in plan.reads:
            table, name = lock
            if table in _MARKERS:
                key = self.lock_key(lock)
                compares.append(compare_mod(key, markers.get(key, 0)))
            else:
                compares.append(
                    compare_mod(self.row_key(table, name), revision_of(table, name))
                )
        for prefix in plan.prefix_reads:
            start = self.row_key(KV, prefix)
            compares.append(
                compare_mod(start, applied + 1, range_end=prefix_end(start))
            )
        return compares

    def ops(self, plan: Plan, commit_id: bytes, catalog: Catalog) -> list[Message]:
        """The rows, the markers the plan wrote (deleted with their owner),
        `rev`, and `del` when something was deleted or renamed."""
        ops = []
        deleted: set[LockKey] = set()
        renames = False
        for table, key, value in plan.rows:
            if value is None:
                deleted.add((table, key))
                ops.append(op_delete(self.row_key(table, key)))
            else:
                encoded = self._encoder.encode(value)
                ops.append(op_put(self.row_key(table, key), encoded))
                renames = renames or is_rename(catalog, table, value)
        for lock in plan.writes:
            if lock[0] not in _MARKERS:
                continue
            owner = (SERVICES if lock[0] == SERVICE_CHECKS else NODES, lock[1])
            if owner in deleted:
                ops.append(op_delete(self.lock_key(lock)))
            else:
                ops.append(op_put(self.lock_key(lock), b""))
        ops.append(op_put(self.rev_key, commit_id))
        if deleted or renames:
            ops.append(op_put(self.del_key, b""))
        return ops


def is_rename(catalog: Catalog, table: str, value: msgspec.Struct) -> bool:
    """A put that moves a row off topics it was on (a service renamed, a
    check moved to another service): like a delete for index floors."""
    if table == SERVICES and isinstance(value, Service):
        service = catalog.node_service(value.node, value.service_id)
        return service is not None and service.name != value.name
    if table == CHECKS and isinstance(value, Check):
        check = catalog.get_check(value.node, value.check_id)
        return check is not None and check.service_id != value.service_id
    return False


def revision_reader(catalog: Catalog) -> Callable[[str, str], int]:
    """A row's ModifyIndex in the catalog (0: absent): what a compare expects."""

    def revision_of(table: str, key: str) -> int:
        value: msgspec.Struct | None
        if table == NODES:
            value = catalog.nodes.get(key)
        elif table == SERVICES:
            node, _, item = key.partition("\x00")
            value = catalog.node_service(node, item)
        elif table == CHECKS:
            node, _, item = key.partition("\x00")
            value = catalog.get_check(node, item)
        elif table == KV:
            value = catalog.kv_get(key)
        elif table in ACL_TABLES:
            value = catalog.acl.row(table, key)
        elif table in CONFIG_TABLES:
            value = catalog.config.row(table, key)
        elif table == COORDINATES:
            value = catalog.coordinates.get(key)
        elif table in ACL_LOCKS:
            return 0  # a lock key, never a row: compared as absent
        elif table == SESSIONS:
            value = catalog.sessions.get(key)
        else:  # pragma: no cover - the planner only reads these
            raise ValueError(f"unknown table {table!r}")
        return int(value.modify_index) if value is not None else 0  # type: ignore[attr-defined]

    return revision_of
