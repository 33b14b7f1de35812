"""The SQLite writer thread outlives a change it cannot store."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.core.changes import Entry, Plan
from waypost.core.model import KVEntry
from waypost.exceptions import InvalidRequest
from waypost.store.sqlite import SQLiteStore


def _put(key: str, flags: int) -> Plan:
    entry = KVEntry(key=key, value=b"v", flags=flags)
    return Plan(rows=[("kv", key, entry)])


async def test_an_unstorable_change_is_refused_alone_and_writes_go_on(
    tmp_path: Path,
) -> None:
    """A value msgpack cannot hold (an int past uint64) once stopped the
    writer thread: that write and every later one waited forever."""
    store = SQLiteStore(tmp_path)
    delivered: list[Entry] = []
    store.bind(delivered.append)
    try:
        with pytest.raises(InvalidRequest, match="cannot store this"):
            await store.commit(_put("big", 2**70))
        entry = await store.commit(_put("fine", 2**64 - 1))
        assert [e.index for e in delivered] == [entry.index]
        rows, index = store.load()
        assert index == entry.index
        assert [key for _table, key, _value in rows] == ["fine"]
    finally:
        await store.close()
