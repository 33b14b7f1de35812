"""Every open HTTP connection: their deadlines, making room at the cap, and
the graceful close at shutdown.

One sweeper task checks every connection's deadline a few times a second,
so reading a request costs no timer of its own. What a deadline means for a
connection is protocol.py's; this module only keeps the set and the order
in which connections may be closed to make room.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from typing import Protocol

from waypost.config import HttpLimits

#: After refusing a request mid-way, the connection keeps reading (and
#: dropping) what the client still sends for this long or this many bytes,
#: so the client reads the answer rather than a connection reset.
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024


class Connection(Protocol):
    """What the tracker needs of a connection (protocol.HttpProtocol)."""

    @property
    def is_busy(self) -> bool:
        """A request is being answered or waits its turn."""

    def check_deadlines(self, now: float) -> None:
        """Close the connection if its current phase has run out of time."""

    def shed_rank(self, now: float) -> tuple[int, float] | None:
        """Its place in the order of `ConnectionTracker.shed` (lower first),
        or None if it must not be closed to make room."""

    def shed(self) -> None:
        """Close it to make room."""

    def close_when_idle(self) -> None:
        """Close now if idle, else after the answers in flight."""

    def abort(self) -> None:
        """Close now, dropping whatever is unsent."""


class ConnectionTracker:
    """Every open connection: shutdown closes idle ones and waits for busy
    ones; a sweeper task enforces the read and idle deadlines."""

    def __init__(self, limits: HttpLimits | None = None) -> None:
        self.limits = limits if limits is not None else HttpLimits()
        self.connections: set[Connection] = set()
        #: Connections that have not sent a byte yet, oldest first (a dict
        #: keeps insertion order): what `shed` closes first, without a scan.
        self.silent: dict[Connection, None] = {}
        self.request_done = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def tick(self) -> float:
        """How often deadlines are checked: a quarter of the shortest."""
        limits = self.limits
        timeouts = [
            t
            for t in (limits.header_timeout, limits.read_timeout, limits.idle_timeout)
            if t > 0
        ]
        return min(max(min([*timeouts, LINGER_SECONDS]) / 4, 0.02), 1.0)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="waypost-http-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        tick = self.tick
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for connection in list(self.connections):
                connection.check_deadlines(now)

    def shed(self, count: int) -> int:
        """Close up to `count` connections that cost least to lose, to make
        room at the connection cap (nginx's "reusing connections").

        Never one with a request in hand; first those that never sent a
        byte, then those already refused, then heads arriving slowly, then
        idle keep-alives; oldest first. Returns how many it closed.
        """
        chosen = list(itertools.islice(self.silent, count))
        if len(chosen) < count:  # a scan, only when the silent ones run out
            now = time.monotonic()
            ranked = [
                (rank, connection)
                for connection in self.connections
                if (rank := connection.shed_rank(now)) is not None
                and connection not in self.silent
            ]
            best = heapq.nsmallest(count - len(chosen), ranked, key=lambda p: p[0])
            chosen += [connection for _, connection in best]
        for connection in chosen:
            connection.shed()
        return len(chosen)

    def close_idle(self) -> None:
        for connection in list(self.connections):
            connection.close_when_idle()

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for busy connections, then abort them."""
        try:
            async with asyncio.timeout(grace):
                while any(c.is_busy for c in self.connections):
                    self.request_done.clear()
                    await self.request_done.wait()
        except TimeoutError:
            for connection in list(self.connections):
                connection.abort()
