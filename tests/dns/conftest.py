"""DNS tests run against real agents over real sockets (loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from waypost.testing import AgentProcess, run_agent


@pytest.fixture(scope="module")
def dns_agent() -> Iterator[AgentProcess]:
    """One agent per module; each test registers names of its own."""
    with run_agent(extra_args=["--self-preservation", "off"]) as agent:
        yield agent


@pytest.fixture
def api(dns_agent: AgentProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dns_agent.url, timeout=30) as client:
        yield client
