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

import collections
import functools
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import consul
import httpx
import pytest

from waypost.testing import run_agent

# Upstream's shapes (criteo/py-consul conftest.py and tests/conftest.py).
ConsulInstance = collections.namedtuple(
    "ConsulInstance", ["container", "port", "version"]
)
ACLConsul = collections.namedtuple("ACLConsul", ["instance", "token", "version"])


def bootstrap(port: int, token: str = "") -> None:
    """Upstream start_consul_instance()'s start-up ritual, minus its
    trailing `time.sleep(2)` (Consul's anti-entropy settling time).

    Wait for a leader, register a throw-away service "foo", wait until
    /v1/health/service/foo shows it, deregister it.
    """
    base_uri = f"http://127.0.0.1:{port}/v1/"
    headers = {"X-Consul-Token": token} if token else {}
    while True:
        response = httpx.get(base_uri + "status/leader", timeout=10)
        if response.text.strip() != '""':
            break
        time.sleep(0.1)

    httpx.put(
        base_uri + "agent/service/register",
        content='{"name": "foo"}',
        headers=headers,
        timeout=10,
    )

    while True:
        response = httpx.get(
            base_uri + "health/service/foo", headers=headers, timeout=10
        )
        if response.text.strip() != "[]":
            break
        time.sleep(0.1)

    httpx.put(base_uri + "agent/service/deregister/foo", headers=headers, timeout=10)


def get_consul_version(port: int, token: str = "") -> str:
    base_uri = f"http://127.0.0.1:{port}/v1/"
    headers = {"X-Consul-Token": token} if token else {}
    response = httpx.get(base_uri + "agent/self", headers=headers, timeout=10)
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
def consul_instance() -> Iterator[ConsulInstance]:
    with run_agent(extra_args=list(agent_args())) as agent:
        # py-consul's default host is 127.0.0.1, as is the agent's.
        assert agent.host == "127.0.0.1"
        bootstrap(agent.port)
        # Upstream's ConsulInstance(container, port, version).
        yield ConsulInstance(None, agent.port, get_consul_version(agent.port))


@pytest.fixture
def consul_port(consul_instance: ConsulInstance) -> tuple[int, str]:
    return consul_instance.port, consul_instance.version


@pytest.fixture
def consul_obj(consul_port: tuple[int, str]) -> tuple[consul.Consul, str]:
    port, version = consul_port
    c = consul.Consul(port=port)
    return c, version


@pytest.fixture
def acl_consul_instance() -> Iterator[tuple[ConsulInstance, str]]:
    """Upstream's ACL instance (`acl.enabled`, `tokens.initial_management` a
    fresh `uuid4().hex`), here with default deny, as production runs it."""
    token = uuid.uuid4().hex
    args = [
        *agent_args(),
        "--acl-enabled",
        "--acl-default-policy",
        "deny",
        "--acl-initial-management",
        token,
    ]
    with run_agent(extra_args=args) as agent:
        bootstrap(agent.port, token)
        version = get_consul_version(agent.port, token)
        yield ConsulInstance(None, agent.port, version), token


@pytest.fixture
def acl_consul(acl_consul_instance: tuple[ConsulInstance, str]) -> ACLConsul:
    instance, token = acl_consul_instance
    return ACLConsul(consul.Consul(port=instance.port), token, instance.version)
