"""The Store protocol: what the agent needs from durability.

`load()` returns every persisted row and the last index; `commit()` returns
only once the rows are durable. Stores know nothing of HTTP.
"""

from __future__ import annotations

from typing import Protocol

from waypost.core.catalog import Row


class Store(Protocol):
    """Durability for the catalog: rows in, rows back after a restart."""

    #: Shown in the start-up line, e.g. "sqlite:/var/lib/waypost/state.db".
    description: str

    def load(self) -> tuple[list[Row], int]:
        """Every persisted row and the index of the last commit."""
        ...

    async def commit(self, rows: list[Row], index: int) -> None:
        """Persist the rows of one change; return only when durable."""
        ...

    async def close(self) -> None:
        """Finish pending commits, then release the files."""
        ...
