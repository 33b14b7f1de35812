"""The scheduler in-process: stagger, bounded concurrency, start/stop/redefine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tests.runner.targets import HttpTarget
from waypost.core.catalog import Catalog
from waypost.core.model import Check, CheckDefinition, HealthStatus
from waypost.runner.scheduler import CheckRunner, run_timeout

NODE = "n1"
Reports = list[tuple[str, HealthStatus, str]]


def http_check(
    check_id: str, url: str, interval: float, node: str = NODE, timeout: float = 0.0
) -> Check:
    definition = CheckDefinition(http=url, interval=interval, timeout=timeout or None)
    return Check(node=node, check_id=check_id, definition=definition)


@pytest.fixture
async def runner() -> AsyncIterator[tuple[CheckRunner, Reports]]:
    reports: Reports = []

    def report(node: str, check_id: str, status: HealthStatus, output: str) -> None:
        reports.append((check_id, status, output))

    scheduler = CheckRunner(node=NODE, report=report, catalog=Catalog(), concurrency=3)
    scheduler.start()
    yield scheduler, reports
    await scheduler.stop()


async def until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - polling a thread's counters
            await asyncio.sleep(0.01)


async def test_first_runs_are_staggered_over_one_interval(
    runner: tuple[CheckRunner, Reports],
) -> None:
    scheduler, reports = runner
    loop = asyncio.get_running_loop()
    with HttpTarget() as web:
        started = loop.time()
        for i in range(30):
            scheduler.sync(http_check(f"c{i}", web.url, interval=1.0))
        seen: dict[str, float] = {}
        while len(seen) < 30:
            for check_id, _, _ in reports:
                seen.setdefault(check_id, loop.time() - started)
            await asyncio.sleep(0.01)
    first = sorted(seen.values())
    assert first[-1] - first[0] > 0.4  # spread out, not a thundering herd
    assert first[-1] < 1.5


async def test_concurrent_probes_never_exceed_the_limit(
    runner: tuple[CheckRunner, Reports],
) -> None:
    scheduler, reports = runner
    with HttpTarget() as web:
        web.delay = 0.3
        for i in range(12):
            check = http_check(f"slow{i}", web.url, interval=0.1, timeout=2.0)
            scheduler.sync(check)
        await until(lambda: len(reports) >= 12)
    # Each probe holds its slot for the 0.3 s delay: a fourth concurrent probe
    # would overlap three others inside that window and be counted.
    assert web.peak_in_flight == 3
    assert all(status is HealthStatus.PASSING for _, status, _ in reports)


async def test_removed_check_stops_and_redefined_check_restarts(
    runner: tuple[CheckRunner, Reports],
) -> None:
    scheduler, _ = runner
    with HttpTarget() as old, HttpTarget() as new:
        scheduler.sync(http_check("c", old.url, interval=0.05))
        await until(lambda: len(old.requests) >= 2)
        scheduler.sync(http_check("c", new.url, interval=0.05))
        await until(lambda: len(new.requests) >= 2)
        before = len(old.requests)
        scheduler.remove((NODE, "c"))
        count = len(new.requests)
        await asyncio.sleep(0.3)  # a negative: give a stray run every chance
        assert len(new.requests) <= count + 1
        assert len(old.requests) <= before + 1
        assert len(scheduler) == 0


async def test_checks_of_other_nodes_and_ttl_checks_are_not_scheduled(
    runner: tuple[CheckRunner, Reports],
) -> None:
    scheduler, _ = runner
    scheduler.sync(http_check("remote", "http://127.0.0.1:9", 1.0, node="other"))
    ttl = Check(node=NODE, check_id="ttl", definition=CheckDefinition(ttl=10.0))
    scheduler.sync(ttl)
    script = CheckDefinition(args=["/bin/true"], interval=1.0)
    scheduler.sync(Check(node=NODE, check_id="script", definition=script))
    assert len(scheduler) == 0


def test_timeout_defaults_to_ten_seconds_or_the_interval_if_smaller() -> None:
    assert run_timeout(CheckDefinition(http="http://x"), 30.0) == 10.0
    assert run_timeout(CheckDefinition(http="http://x"), 0.2) == 0.2
    assert run_timeout(CheckDefinition(http="http://x", timeout=3.0), 0.2) == 3.0
    assert run_timeout(CheckDefinition(args=["x"]), 60.0) == 30.0
