"""Watcher propagation: from one registration to every one of N watchers.

    .venv/bin/python bench/watchers.py              # 1,000 watchers, 20 rounds
    .venv/bin/python bench/watchers.py --watchers 200 --rounds 5 --no-write

Starts a `waypost agent --dev`, then in one process and one asyncio loop
starts N `AsyncWatcher`s on the same service (each holds its own blocking
query). Each round registers a new instance and times, for every watcher,
the delay from just before the registration is sent to the moment that
watcher's `on_change` sees the instance; then it deregisters the instance
and waits until every watcher has seen that too. Memory per watcher is
measured with tracemalloc (Python allocations of N started watchers, their
client pool included) and as the process's RSS growth.

Writes its section into bench/RESULTS.md (between `<!-- watchers:start -->`
and `<!-- watchers:end -->`) unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import environment, write_section

from waypost.client import AsyncClient, AsyncWatcher, InstanceSet
from waypost.testing import run_agent

SERVICE = "bench-watched"
SETTLE = 0.5  # seconds between changes


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Round:
    """Who has seen the round's instance (or its absence), and when."""

    def __init__(self, watchers: int) -> None:
        self.watchers = watchers
        self.instance_id = ""
        self.present = True
        self.started = 0.0
        self.seen: dict[int, float] = {}
        self.done = asyncio.Event()

    def begin(self, instance_id: str, *, present: bool) -> None:
        self.instance_id, self.present = instance_id, present
        self.seen = {}
        self.done = asyncio.Event()
        self.started = time.perf_counter()

    def listener(self, number: int) -> object:
        def on_change(found: InstanceSet) -> None:
            if number in self.seen or not self.instance_id:
                return
            if (self.instance_id in found.ids) == self.present:
                self.seen[number] = time.perf_counter() - self.started
                if len(self.seen) == self.watchers:
                    self.done.set()

        return on_change


async def start_watchers(
    client: AsyncClient, count: int, tracker: Round
) -> list[AsyncWatcher]:
    watchers = [
        client.watch(SERVICE, on_change=tracker.listener(n))  # type: ignore[arg-type]
        for n in range(count)
    ]
    gate = asyncio.Semaphore(100)  # don't open 1,000 connections in one burst

    async def start(watcher: AsyncWatcher) -> None:
        async with gate:
            await watcher.start()

    await asyncio.gather(*(start(w) for w in watchers))
    # Let every watcher's blocking query reach the agent.
    await asyncio.sleep(0.5)
    return watchers


async def run(address: str, count: int, rounds: int) -> dict[str, object]:
    tracker = Round(count)
    gc.collect()
    rss_before = rss_bytes()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    client = AsyncClient(address)
    watchers = await start_watchers(client, count, tracker)
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = rss_bytes()

    writer = AsyncClient(address)
    latencies: list[float] = []
    slowest: list[float] = []
    gone: list[float] = []
    for number in range(rounds):
        instance_id = f"round-{number}"
        # Let the last wave's 1,000 new blocking queries reach the agent, so a
        # round times one change, not the tail of the previous one.
        await asyncio.sleep(SETTLE)
        tracker.begin(instance_id, present=True)
        await writer.register_service(
            SERVICE, port=1000 + number, service_id=instance_id
        )
        await asyncio.wait_for(tracker.done.wait(), 60)
        latencies.extend(tracker.seen.values())
        slowest.append(max(tracker.seen.values()))
        await asyncio.sleep(SETTLE)
        tracker.begin(instance_id, present=False)
        await writer.deregister(instance_id)
        await asyncio.wait_for(tracker.done.wait(), 60)
        gone.extend(tracker.seen.values())
    for watcher in watchers:
        await watcher.stop()
    await writer.aclose()
    await client.aclose()
    return {
        "latencies": latencies,
        "slowest": slowest,
        "gone": gone,
        "traced_per_watcher": (traced - base) / count,
        "rss_per_watcher": (rss_after - rss_before) / count,
    }


def report(result: dict[str, object], count: int, rounds: int) -> str:
    latencies = result["latencies"]
    slowest = result["slowest"]
    gone = result["gone"]
    assert isinstance(latencies, list) and isinstance(slowest, list)
    assert isinstance(gone, list)

    def ms(value: float) -> str:
        return f"{value * 1000:,.1f}"

    traced = float(result["traced_per_watcher"])  # type: ignore[arg-type]
    rss = float(result["rss_per_watcher"])  # type: ignore[arg-type]
    return "\n".join(
        [
            f"### Watchers: {count:,} AsyncWatchers in one process ({environment()})",
            "",
            f"One `waypost agent --dev`; one asyncio process holding {count:,}"
            f" blocking queries on one service; {rounds} rounds of register →"
            " every watcher sees it → deregister → every watcher sees that.",
            "Latency runs from just before the registration's PUT is sent to the"
            f" watcher's `on_change`; changes are {SETTLE:g} s apart.",
            "",
            "| measure | p50 ms | p99 ms | max ms |",
            "| --- | --- | --- | --- |",
            f"| registration → each watcher | {ms(statistics.median(latencies))}"
            f" | {ms(percentile(latencies, 0.99))} | {ms(max(latencies))} |",
            f"| registration → last of the {count:,} (per round)"
            f" | {ms(statistics.median(slowest))} | {ms(percentile(slowest, 0.99))}"
            f" | {ms(max(slowest))} |",
            f"| deregistration → each watcher | {ms(statistics.median(gone))}"
            f" | {ms(percentile(gone, 0.99))} | {ms(max(gone))} |",
            "",
            f"Memory per watcher: {traced / 1024:,.1f} KiB of Python allocations"
            f" (tracemalloc), {rss / 1024:,.1f} KiB of RSS growth.",
            "",
            f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()}"
            " cores (the agent, the watchers and anything else share them).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    else:
        runner = uvloop.run
    # 1,000 watchers, one connection each, all from 127.0.0.1: over the
    # per-client cap (Consul's default 200), as a Consul agent would be set.
    with run_agent(extra_args=["--http-max-conns-per-client", "0"]) as agent:
        result = runner(run(agent.address, args.watchers, args.rounds))
    text = report(result, args.watchers, args.rounds)
    print(text)
    if not args.no_write:
        write_section("watchers", text)


if __name__ == "__main__":
    main()
