"""The lock test (issue 15) across three agents on one etcd cluster: 20
contender processes spread over agents a, b and c, SIGKILLed at random and
restarted; sessions and locks live in etcd. The verdict in
tests/locks/harness.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import failed
from tests.cluster.support import Agents, needs_etcd
from tests.locks import harness
from waypost.testing import EtcdCluster

pytestmark = needs_etcd

SECONDS = float(os.environ.get("WAYPOST_CLUSTER_LOCK_SECONDS", "45"))


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture
def agents(etcd: EtcdCluster, request: pytest.FixtureRequest) -> Iterator[Agents]:
    with Agents(etcd) as started:
        yield started
        started.show_logs = failed(request)


def test_a_lock_is_held_by_at_most_one_contender_across_agents(
    agents: Agents, tmp_path: Path
) -> None:
    processes = [agents.process(name) for name in ("a", "b", "c")]
    report = harness.run(processes, SECONDS, tmp_path)
    print("\nlock test, three agents:", report.summary())
    assert not report.problems, "\n".join(report.problems[:20])
    assert report.acquisitions >= 3
    assert report.expired_holders >= 1
