"""Cluster tests print every agent's log when they fail (CI has nothing else).

The default fixtures: a three-member etcd shared by a module's tests, and three
fresh agents (a, b, c) on it for each test. A module that kills etcd members
overrides `etcd` with a function-scoped one.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.cluster.support import Agents
from waypost.testing import EtcdCluster


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
        if item.parent is not None:  # module-scoped fixtures look here
            item.parent.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


def failed(request: pytest.FixtureRequest) -> bool:
    return request.node.stash.get(FAILED, False)


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture
def agents(etcd: EtcdCluster, request: pytest.FixtureRequest) -> Iterator[Agents]:
    with Agents(etcd) as started:
        yield started
        started.show_logs = failed(request)
