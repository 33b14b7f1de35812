"""Cluster tests print every agent's log when they fail (CI has nothing else)."""

from __future__ import annotations

from collections.abc import Generator

import pytest


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
