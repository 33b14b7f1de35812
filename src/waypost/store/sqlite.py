"""The embedded durable store: one SQLite file, WAL, group commit.

One writer thread owns the connection. Changes queue up while a transaction
is being fsynced; the next transaction takes all of them at once, so many
concurrent writes share one fsync. The queue's order is the index order.
Once COMMIT returned with `synchronous=FULL`, the batch's entries are
delivered to the catalog in that order and only then do their `commit()`
calls return: an acknowledged write survives `kill -9`, and nothing is
visible before it is durable. A failed transaction is rolled back and its
changes refused (503); the next batch tries again, so writes resume once the
disk does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path

import msgspec

from waypost.core.changes import (
    Entry,
    LockKey,
    Plan,
    Row,
    stamp,
)
from waypost.core.tables import LOAD_ORDER, TABLES
from waypost.exceptions import InvalidRequest, StartupError, StoreUnavailable
from waypost.metrics import STORE_BATCH_SIZE, STORE_COMMIT_SECONDS, STORE_FAILURES
from waypost.store.base import HEALTHY, Conflict, Deliver, PendingWrites, StoreHealth

logger = logging.getLogger("waypost.store")

SCHEMA_VERSION = "1"
DB_NAME = "state.db"
LOCK_NAME = "waypost.lock"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    tbl TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
"""

_UPSERT = "INSERT OR REPLACE INTO rows (tbl, key, value) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM rows WHERE tbl = ? AND key = ?"
_SET_INDEX = "INSERT OR REPLACE INTO meta (name, value) VALUES ('index', ?)"

_Pending = tuple[Entry, Plan, asyncio.Future[Entry], asyncio.AbstractEventLoop]
#: A row as stored: (table, key, msgpack bytes, or None to delete).
_Encoded = tuple[str, str, bytes | None]
#: A change the store could not encode, and the error its writer gets.
_Refused = tuple[_Pending, InvalidRequest]
_STOP = None


class SQLiteStore:
    """Durable rows in `<data_dir>/state.db`, guarded by an exclusive lock file."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.description = f"sqlite:{self.path}"
        self._lock_file = self._acquire_lock()
        self._db = self._connect()
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._encoder = msgspec.msgpack.Encoder()
        self._decoders = {t: msgspec.msgpack.Decoder(c) for t, c in TABLES.items()}
        self._index = 0
        self._deliver: Deliver | None = None
        self._pending = PendingWrites()
        self._thread = threading.Thread(
            target=self._write_loop, name="waypost-sqlite-writer", daemon=True
        )
        self._thread.start()
        #: How many transactions and how many changes they carried (metrics).
        self.transactions = 0
        self.changes = 0

    # ----------------------------------------------------------- start-up

    def _acquire_lock(self) -> int:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StartupError(
                f"cannot use data dir {self.data_dir}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StartupError(
                f"data dir {self.data_dir} is locked by another waypost agent"
                f" (pid {holder}); stop it or choose another --data-dir"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            version = db.execute(
                "SELECT value FROM meta WHERE name = 'schema'"
            ).fetchone()
            if version is None:
                db.execute(
                    "INSERT INTO meta (name, value) VALUES ('schema', ?)",
                    (SCHEMA_VERSION,),
                )
            elif version[0] != SCHEMA_VERSION:
                raise StartupError(
                    f"{self.path} has schema version {version[0]}, this waypost"
                    f" reads {SCHEMA_VERSION}"
                )
        except sqlite3.Error as exc:
            self._release_lock()
            raise StartupError(f"cannot open {self.path}: {exc}") from exc
        except StartupError:
            self._release_lock()
            raise
        return db

    def _release_lock(self) -> None:
        os.close(self._lock_file)

    def load(self) -> tuple[list[Row], int]:
        """Read every row; a row that does not decode stops start-up."""
        try:
            raw = self._db.execute("SELECT tbl, key, value FROM rows").fetchall()
            found = self._db.execute(
                "SELECT value FROM meta WHERE name = 'index'"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StartupError(f"cannot read {self.path}: {exc}") from exc
        rows: list[Row] = []
        for table, key, value in raw:
            decoder = self._decoders.get(table)
            if decoder is None:
                raise StartupError(f"{self.path}: unknown table {table!r} in rows")
            try:
                rows.append((table, key, decoder.decode(value)))
            except msgspec.DecodeError as exc:
                raise StartupError(
                    f"{self.path}: row {table}/{key!r} is corrupt: {exc}"
                ) from exc
        # Nodes first: services and checks refer to them.
        rows.sort(key=lambda row: LOAD_ORDER[row[0]])
        self._index = int(found[0]) if found else 0
        return rows, self._index

    async def open(self) -> None:
        return None

    async def sync(self) -> None:
        return None  # one writer: the catalog has every commit

    def health(self) -> StoreHealth:
        return HEALTHY

    def bind(self, deliver: Deliver) -> None:
        self._deliver = deliver

    # ----------------------------------------------------------- writing

    def conflict(self, plan: Plan) -> asyncio.Future[None] | None:
        return self._pending.conflict(plan)

    def is_pending(self, key: LockKey) -> bool:
        return self._pending.is_pending(key)

    async def commit(self, plan: Plan) -> Entry:
        # Everything up to the queue happens before the first await: the
        # plan was made against the catalog as it is now.
        settled = self._pending.conflict(plan)
        if settled is not None:
            raise Conflict(settled)
        self._index += 1
        entry = stamp(plan, self._index)
        self._pending.add(plan, entry.index)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Entry] = loop.create_future()
        self._queue.put((entry, plan, future, loop))
        return await future

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._write_batch(batch)
            if stop:
                return

    def _encode(
        self, batch: list[_Pending]
    ) -> tuple[list[_Pending], list[list[_Encoded]], list[_Refused]]:
        """Rows as bytes; a change whose value cannot be stored is refused alone.

        The planner should have refused such a change (an integer beyond
        uint64, say); should one reach the store, it must not take the writer
        thread, or the batch, down with it.
        """
        kept: list[_Pending] = []
        encoded: list[list[_Encoded]] = []
        refused: list[_Refused] = []
        encode = self._encoder.encode
        for pending in batch:
            try:
                rows = [
                    (table, key, None if value is None else encode(value))
                    for table, key, value in pending[0].rows
                ]
            except (OverflowError, TypeError, ValueError, msgspec.EncodeError) as exc:
                logger.error(
                    "bug: change %d cannot be stored: %s", pending[0].index, exc
                )
                refused.append((pending, InvalidRequest(f"cannot store this: {exc}")))
                continue
            kept.append(pending)
            encoded.append(rows)
        return kept, encoded, refused

    def _write_batch(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        started = time.perf_counter()
        kept, encoded, refused = self._encode(batch)
        try:
            if kept:
                self._commit_rows(kept, encoded)
                STORE_COMMIT_SECONDS.observe(time.perf_counter() - started)
                STORE_BATCH_SIZE.observe(len(kept))
        except Exception as exc:  # any: the writer thread must outlive it
            # Nothing of this batch is on disk, and nothing of it was applied
            # in memory: refuse these changes; the next batch tries again.
            logger.error("store write failed, %d change(s) refused: %s", len(kept), exc)
            error = exc
            STORE_FAILURES.inc()
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
        batch[0][3].call_soon_threadsafe(self._settle, kept, error, refused)

    def _commit_rows(self, kept: list[_Pending], encoded: list[list[_Encoded]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        for rows in encoded:
            for table, key, value in rows:
                if value is None:
                    self._db.execute(_DELETE, (table, key))
                else:
                    self._db.execute(_UPSERT, (table, key, value))
        self._db.execute(_SET_INDEX, (str(kept[-1][0].index),))
        self._db.execute("COMMIT")
        self.transactions += 1
        self.changes += len(kept)

    def _settle(
        self,
        batch: list[_Pending],
        error: BaseException | None,
        refused: list[_Refused],
    ) -> None:
        """On the event loop, in index order: deliver, then answer."""
        for (_entry, plan, future, _loop), reason in refused:
            self._pending.release(plan)
            if not future.done():
                future.set_exception(reason)
        for entry, plan, future, _loop in batch:
            self._pending.release(plan)
            if error is not None:
                if not future.done():
                    future.set_exception(
                        StoreUnavailable(f"could not persist the change: {error}")
                    )
                continue
            if self._deliver is not None:
                try:
                    self._deliver(entry)
                except Exception:  # a bug in applying; the entry is durable
                    logger.exception("could not apply committed entry %d", entry.index)
            if not future.done():
                future.set_result(entry)

    async def close(self) -> None:
        """Commit what is queued, stop the writer, release the lock."""
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._db.close()
        self._release_lock()
