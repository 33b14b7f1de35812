"""Fixtures for py-consul's upstream tests, backed by a real waypost agent.

Upstream (criteo/py-consul, tests/conftest.py) starts a fresh `consul agent
-dev` per test (function-scoped `consul_instance`, parametrised over Consul
binaries) and hands tests `consul_port` == (port, version) and `consul_obj`
== (consul.Consul(port=port), version), the version being read back from
`/v1/agent/self` `Config.Version`. We keep those shapes exactly, with a fresh
`waypost agent --dev` in place of the Consul binary (with `--enable-script-checks`
when waypost has it, as upstream sets `"enable_script_checks": true`).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections.abc import Iterator

import consul
import httpx
import pytest

from waypost.testing import run_agent


def bootstrap(port: int) -> None:
    """Upstream start_consul_instance()'s start-up ritual, minus its
    trailing `time.sleep(2)` (Consul's anti-entropy settling time).

    Wait for a leader, register a throw-away service "foo", wait until
    /v1/health/service/foo shows it, deregister it.
    """
    base_uri = f"http://127.0.0.1:{port}/v1/"
    while True:
        response = httpx.get(base_uri + "status/leader", timeout=10)
        if response.text.strip() != '""':
            break
        time.sleep(0.1)

    httpx.put(
        base_uri + "agent/service/register", content='{"name": "foo"}', timeout=10
    )

    while True:
        response = httpx.get(base_uri + "health/service/foo", timeout=10)
        if response.text.strip() != "[]":
            break
        time.sleep(0.1)

    httpx.put(base_uri + "agent/service/deregister/foo", timeout=10)


def get_consul_version(port: int) -> str:
    base_uri = f"http://127.0.0.1:{port}/v1/"
    response = httpx.get(base_uri + "agent/self", timeout=10)
    return str(response.json()["Config"]["Version"]).strip()


@functools.cache
def agent_args() -> tuple[str, ...]:
    """Upstream's agent config sets `"enable_script_checks": True`; pass
    waypost's equivalent flag when this waypost has it."""
    usage = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    return ("--enable-script-checks",) if "--enable-script-checks" in usage else ()


@pytest.fixture
def consul_instance() -> Iterator[tuple[int, str]]:
    with run_agent(extra_args=list(agent_args())) as agent:
        # py-consul's default host is 127.0.0.1, as is the agent's.
        assert agent.host == "127.0.0.1"
        bootstrap(agent.port)
        yield agent.port, get_consul_version(agent.port)


@pytest.fixture
def consul_port(consul_instance: tuple[int, str]) -> tuple[int, str]:
    port, version = consul_instance
    return port, version


@pytest.fixture
def consul_obj(consul_port: tuple[int, str]) -> tuple[consul.Consul, str]:
    port, version = consul_port
    c = consul.Consul(port=port)
    return c, version
