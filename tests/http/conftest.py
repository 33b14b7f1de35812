"""Fixtures for the /v1 API tests: clients on the shared and on fresh agents.

The shared agent (tests/conftest.py) serves every test that only touches its
own `unique` names. A test that needs a quiet or empty registry (node
maintenance, leave, "nothing changed" assertions) asks for a fresh one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import consul
import consul.aio
import httpx
import pytest

from waypost.testing import AgentProcess, run_agent


@pytest.fixture
def fresh_http(agent: AgentProcess) -> Iterator[httpx.Client]:
    """Raw HTTP on a fresh, empty agent (the `agent` fixture)."""
    with httpx.Client(base_url=agent.url, timeout=30) as client:
        yield client


@pytest.fixture
def fresh_client(agent: AgentProcess) -> consul.Consul:
    """py-consul on a fresh, empty agent (the `agent` fixture)."""
    return consul.Consul(host=agent.host, port=agent.port)


@pytest.fixture
async def aclient(shared_agent: AgentProcess) -> AsyncIterator[consul.aio.Consul]:
    """The asyncio py-consul client against the shared agent."""
    async with consul.aio.Consul(host=shared_agent.host, port=shared_agent.port) as c:
        yield c


@pytest.fixture(scope="module")
def quiet_agent() -> Iterator[AgentProcess]:
    """One agent per module with no TTL checks ticking: its index only moves
    when the module's own requests change something."""
    with run_agent(node="waypost-quiet") as quiet:
        yield quiet


@pytest.fixture(scope="module")
def quiet_http(quiet_agent: AgentProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=quiet_agent.url, timeout=30) as client:
        yield client
