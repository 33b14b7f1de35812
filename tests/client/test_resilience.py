"""Registry restarts and outages: registrations come back on their own, and
the discovery cache keeps answering (stale) while the registry is away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from tests.client.conftest import FixedPortAgent, open_twin
from waypost.client import RegistryConnectError


async def poll(check: Callable[[], Awaitable[object]], within: float) -> float:
    """Await `check()` until truthy; return the seconds it took."""
    started = time.monotonic()
    for _ in range(int(within / 0.02)):
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise TimeoutError(f"not true within {within}s")


def passing_ids(agent: FixedPortAgent, name: str) -> list[str]:
    url = f"http://{agent.address}/v1/health/service/{name}?passing"
    return sorted(row["Service"]["ID"] for row in httpx.get(url, timeout=5).json())


async def test_registration_is_back_within_one_heartbeat_after_a_registry_restart(
    kind: str, fixed_agent: FixedPortAgent
) -> None:
    async with (
        open_twin(kind, fixed_agent.address, timeout=1) as twin,
        twin.register("api", port=8080, ttl="3s", service_id="api-1") as reg,
    ):
        interval = reg.registration.heartbeat_interval
        assert interval == 1.0
        fixed_agent.stop()
        fixed_agent.start()  # same port, and empty: a --dev agent
        beat = reg.heartbeat
        attempts_before = beat.beats + beat.failures

        async def registered_again() -> bool:
            return beat.reregistrations == 1

        # Counted in heartbeats, not seconds (a loaded machine stretches
        # both the restart and each beat): the beat that finds the restarted
        # agent registers again. At most one beat was already in flight
        # when the agent came back; the next one must be it.
        await poll(registered_again, within=10)
        assert beat.beats + beat.failures - attempts_before <= 2

        async def is_back() -> bool:
            # In a thread: a blocking read here would stall the event loop
            # the asyncio twin's heartbeat task runs on.
            found = await asyncio.to_thread(passing_ids, fixed_agent, "api")
            return found == ["api-1"]

        await poll(is_back, within=5)
        assert beat.reregistrations == 1


async def test_cache_serves_the_last_set_marked_stale_while_the_registry_is_down(
    kind: str, fixed_agent: FixedPortAgent
) -> None:
    async with open_twin(kind, fixed_agent.address, timeout=1) as twin:
        twin.client.cache.max_backoff = 0.2
        await twin("register_service", "api", port=1, service_id="api-1")
        first = await twin("instances", "api", passing=True, cached=True)
        assert first.ids == ["api-1"] and not first.is_stale

        fixed_agent.stop()

        async def is_stale() -> bool:
            found = await twin("instances", "api", passing=True, cached=True)
            return found.is_stale

        await poll(is_stale, within=5)
        during = await twin("instances", "api", passing=True, cached=True)
        assert during.ids == ["api-1"] and "cannot reach the registry" in during.error
        try:
            await twin("instances", "api")
        except RegistryConnectError:
            pass  # a direct query fails: only the cache carries callers through
        else:
            raise AssertionError("a direct query answered with the registry down")

        fixed_agent.start()
        await twin("register_service", "api", port=2, service_id="api-2")

        async def caught_up() -> bool:
            found = await twin("instances", "api", passing=True, cached=True)
            return not found.is_stale and found.ids == ["api-2"]

        await poll(caught_up, within=5)
