"""Shared fixtures: real agents on free loopback ports, real clients."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import consul
import httpx
import pytest

from waypost.testing import AgentProcess, run_agent

_names = itertools.count()


@pytest.fixture(scope="session")
def shared_agent() -> Iterator[AgentProcess]:
    """One `--dev` agent for tests that only touch their own unique names.

    Self-preservation is off: TTL checks that finished tests abandon would
    otherwise engage the brake and hold every later expiry.
    """
    with run_agent(extra_args=["--self-preservation", "off"]) as agent:
        yield agent


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    """A fresh `--dev` agent for tests that need an empty registry."""
    with run_agent() as fresh:
        yield fresh


@pytest.fixture
def http(shared_agent: AgentProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_agent.url, timeout=30) as client:
        yield client


@pytest.fixture
def client(shared_agent: AgentProcess) -> consul.Consul:
    """The real py-consul client against the shared agent."""
    return consul.Consul(host=shared_agent.host, port=shared_agent.port)


@pytest.fixture
def unique() -> str:
    """A name no other test uses (the shared agent outlives each test)."""
    return f"svc{next(_names)}"
