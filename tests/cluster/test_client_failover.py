"""The waypost client given the three agents' addresses: when the agent it
registered through dies, it registers through another within one heartbeat
interval, and its watcher follows the next agent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.cluster.conftest import failed
from tests.cluster.support import Agents, needs_etcd, wait_for
from waypost.client import Client
from waypost.testing import EtcdCluster

pytestmark = [needs_etcd, pytest.mark.timeout(120)]


@pytest.fixture
def agents(request: pytest.FixtureRequest) -> Iterator[Agents]:
    with EtcdCluster(3) as etcd, Agents(etcd) as started:
        yield started
        started.show_logs = failed(request)


def _nodes(agents: Agents, via: str) -> set[str]:
    answer = agents[via].get("/v1/health/service/failover", params={"passing": ""})
    return {entry["Node"]["Node"] for entry in answer.json()}


def test_a_client_with_several_addresses_registers_elsewhere_within_a_heartbeat(
    agents: Agents,
) -> None:
    addresses = ",".join(agents.process(n).address for n in ("a", "b", "c"))
    with (
        Client(addresses) as client,
        client.register("failover", port=9000, ttl="3s", deregister_after="60s"),
        client.watch("failover") as watcher,
    ):
        wait_for(lambda: _nodes(agents, "b") == {"a"})
        wait_for(lambda: [i.node for i in watcher.instances()] == ["a"])
        agents.process("a").kill()
        killed = time.monotonic()
        # Heartbeats every TTL/3 = 1 s: the next one finds a gone, goes to b,
        # hears "unknown check" and registers there.
        wait_for(lambda: "b" in _nodes(agents, "c"), timeout=10)
        assert time.monotonic() - killed <= 1.0 + 1.0
        assert client.address == agents.process("b").address
        # The watcher moved too: it sees the instance on b.
        wait_for(lambda: "b" in {i.node for i in watcher.instances()}, timeout=10)
