"""This agent's network coordinate: measured round trips to the other agents.

Consul's agents learn their Vivaldi coordinates from serf's probes and send
them to the servers every `coordinate_update_period` (5 s). Here, in
cluster mode, every `PROBE_EVERY` seconds the agent times one small HTTP
request (`GET /`, answered from memory) to a random other live agent,
feeds the round trip and that agent's coordinate (from the catalog) to its
Vivaldi client (`core/vivaldi.py`), and writes its own coordinate through
the write path at most every `UPDATE_EVERY` seconds. One agent alone writes
the origin coordinate at start-up, as a lone Consul agent has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from waypost.core.coordinates import UpdateCoordinates
from waypost.core.vivaldi import Client, origin
from waypost.exceptions import WaypostError
from waypost.registry import Registry

logger = logging.getLogger("waypost.rtt")

#: Seconds between probes (serf probes a LAN member about every second).
PROBE_EVERY = 1.0
#: Seconds between writes of this agent's coordinate (Consul's
#: coordinate_update_period default).
UPDATE_EVERY = 5.0
#: A probe not answered within this many seconds is dropped.
PROBE_TIMEOUT = 2.0

#: (node, host, HTTP port) of the other live agents.
Peers = Callable[[], list[tuple[str, str, int]]]


class RttProber:
    """Measures round trips to the other agents and keeps this one's coordinate."""

    def __init__(self, registry: Registry, peers: Peers | None) -> None:
        self.registry = registry
        self.peers = peers
        self.client = Client()
        self.probes = 0
        self._task: asyncio.Task[None] | None = None
        self._written_at = -UPDATE_EVERY

    async def start(self) -> None:
        """Write this agent's starting coordinate; probe in cluster mode."""
        await self._write()
        if self.peers is not None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="waypost-rtt"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _write(self) -> None:
        node = self.registry.config.node
        try:
            await self.registry.apply(
                UpdateCoordinates(items=((node, self.client.coord),))
            )
        except WaypostError as exc:  # the store is out of reach: next time
            logger.debug("could not write this agent's coordinate: %s", exc)
        self._written_at = time.monotonic()

    async def _run(self) -> None:
        assert self.peers is not None
        while True:
            await asyncio.sleep(PROBE_EVERY)
            others = self.peers()
            if not others:
                continue
            node, host, port = random.choice(others)
            rtt = await probe(host, port)
            if rtt is None:
                continue
            self.probes += 1
            found = self.registry.catalog.coordinates.get(node)
            other = found.coord if found is not None else origin()
            try:
                self.client.update(node, other, rtt)
            except ValueError as exc:
                logger.debug("coordinate update from %s refused: %s", node, exc)
                continue
            if time.monotonic() - self._written_at >= UPDATE_EVERY:
                await self._write()


async def probe(host: str, port: int) -> float | None:
    """Seconds from sending `GET /` on an open connection to the first line
    of the answer; None if the agent did not answer in time."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                started = time.perf_counter()
                writer.write(b"GET / HTTP/1.1\r\nHost: waypost\r\n\r\n")
                await writer.drain()
                line = await reader.readline()
                elapsed = time.perf_counter() - started
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    return elapsed if line.startswith(b"HTTP/1.1") else None
