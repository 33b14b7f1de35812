"""A store that keeps nothing: `--dev` mode and tests of the layers above."""

from __future__ import annotations

from waypost.core.catalog import Row


class MemoryStore:
    """Acknowledges at once; everything is gone when the process ends."""

    description = "memory (dev mode: nothing is written)"

    def load(self) -> tuple[list[Row], int]:
        return [], 0

    async def commit(self, rows: list[Row], index: int) -> None:
        return None

    async def close(self) -> None:
        return None
