"""Snapshots as values: the whole state at one index, and its restore.

`dump(catalog)` is every row of every table with the index they were read
at; `restore_plan(catalog, rows)` is one Plan that replaces the state with
those rows (deleting every row the snapshot lacks), kept verbatim so their
CreateIndex/ModifyIndex are the snapshot's. The archive these travel in is
`waypost/snapshot.py`. No I/O.
"""

from __future__ import annotations

import msgspec

from waypost.core.catalog import Catalog
from waypost.core.changes import Plan, Row


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The state at `index`: every row of every table."""

    index: int
    rows: tuple[Row, ...]


def dump(catalog: Catalog) -> Snapshot:
    """The catalog as it is now, at its index (a consistent cut: the catalog
    changes only between calls, one entry at a time)."""
    return Snapshot(index=catalog.index, rows=tuple(catalog.rows()))


def restore_plan(catalog: Catalog, rows: tuple[Row, ...]) -> Plan:
    """Replace the whole state with `rows`: puts for theirs, deletes for the
    rows the snapshot does not have. Load order: nodes before what refers
    to them, deletes of dependants before their owners."""
    wanted = {(table, key) for table, key, _value in rows}
    deletes: list[Row] = [
        (table, key, None)
        for table, key, _value in catalog.rows()
        if (table, key) not in wanted
    ]
    deletes.reverse()
    keys = {(table, key) for table, key, _value in (*rows, *deletes)}
    return Plan(
        rows=[*deletes, *rows],
        topics=set(),
        reads=set(keys),
        writes=set(keys),
        replaces_all=True,
    )
