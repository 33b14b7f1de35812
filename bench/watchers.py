"""Watcher propagation: from one registration to every one of N watchers.

    .venv/bin/python bench/watchers.py              # 1,000 watchers, 20 rounds
    .venv/bin/python bench/watchers.py --watchers 200 --rounds 5 --no-write

Starts a `waypost agent --dev`, then runs two set-ups, each in a fresh
process with one asyncio loop (uvloop) and one client:

  shared    N `AsyncWatcher`s of one service. Watchers of one query on one
            client share a feed: one blocking query, one decoded answer,
            then each watcher's balancer and `on_change`.
  distinct  N watchers of N services, nothing to share: N blocking queries
            on N connections. A round changes one service (a different one
            each round), so it times one watcher; this set-up is here for
            its memory.

Each round registers a new instance and times, for every watcher of the
changed service, the delay from just before the registration is sent to
the moment that watcher's `on_change` sees the instance; then it
deregisters the instance and waits until every watcher has seen that too.
Memory per watcher: the process's RSS growth while the N watchers start
(their client, feeds and connections included; one watcher was started and
stopped first, so imports and first-use buffers are not counted) and, on
a second client started under tracemalloc, their Python allocations; each
divided by N.

Writes its section into bench/RESULTS.md (between `<!-- watchers:start -->`
and `<!-- watchers:end -->`) unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import msgspec
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import environment, write_section

from waypost.client import AsyncClient, AsyncWatcher, InstanceSet
from waypost.testing import run_agent

SETTLE = 0.5  # seconds between changes


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Round:
    """Who, of the watchers of the changed service, has seen the change."""

    def __init__(self) -> None:
        self.instance_id = ""
        self.present = True
        self.expected: set[int] = set()
        self.started = 0.0
        self.seen: dict[int, float] = {}
        self.done = asyncio.Event()

    def begin(self, instance_id: str, expected: set[int], *, present: bool) -> None:
        self.instance_id, self.present, self.expected = instance_id, present, expected
        self.seen = {}
        self.done = asyncio.Event()
        self.started = time.perf_counter()

    def listener(self, number: int) -> Callable[[InstanceSet], None]:
        def on_change(found: InstanceSet) -> None:
            if number not in self.expected or number in self.seen:
                return
            if (self.instance_id in found.ids) == self.present:
                self.seen[number] = time.perf_counter() - self.started
                if len(self.seen) == len(self.expected):
                    self.done.set()

        return on_change


class Outcome(NamedTuple):
    setup: str
    count: int
    services: int
    connections: int
    latencies: list[float]
    slowest: list[float]
    gone: list[float]
    traced_per_watcher: float
    rss_per_watcher: float


async def start_watchers(
    client: AsyncClient, services: list[str], tracker: Round
) -> list[AsyncWatcher]:
    watchers = [
        client.watch(service, on_change=tracker.listener(n))
        for n, service in enumerate(services)
    ]
    # Fifty at a time: not 1,000 connections in one burst, and not 1,000
    # start() tasks alive at once (their peak would count as watchers' RSS).
    for first in range(0, len(watchers), 50):
        await asyncio.gather(*(w.start() for w in watchers[first : first + 50]))
    # Let every blocking query reach the agent.
    await asyncio.sleep(0.5)
    return watchers


async def warm_up(address: str) -> None:
    """One watcher started and stopped first: imports, decoders and the
    loop's own buffers are not the watchers' memory."""
    client = AsyncClient(address)
    watcher = client.watch("bench-warm-up")
    await watcher.start()
    await watcher.stop()
    await client.aclose()


async def traced_bytes(address: str, services: list[str]) -> int:
    """Python allocations of the same watchers on a client of their own,
    under tracemalloc (which is off while RSS is measured: its bookkeeping
    would count)."""
    idle = Round()
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    client = AsyncClient(address)
    watchers = await start_watchers(client, services, idle)
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for watcher in watchers:
        await watcher.stop()
    await client.aclose()
    return traced - base


def open_connections() -> int:
    """TCP sockets this process holds (the agent's are in another)."""
    folder = Path(f"/proc/{os.getpid()}/fd")
    count = 0
    for fd in folder.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            continue
    return count


async def run(
    address: str, setup: str, count: int, distinct: int, rounds: int
) -> Outcome:
    """`count` watchers over `distinct` services, `rounds` changes."""
    prefix = f"bench-{setup}"
    services = [f"{prefix}-{n % distinct}" for n in range(count)]
    tracker = Round()
    await warm_up(address)
    sockets_before = open_connections()
    gc.collect()
    rss_before = rss_bytes()
    client = AsyncClient(address)
    watchers = await start_watchers(client, services, tracker)
    gc.collect()
    rss_after = rss_bytes()
    connections = open_connections() - sockets_before

    writer = AsyncClient(address)
    latencies: list[float] = []
    slowest: list[float] = []
    gone: list[float] = []
    for number in range(rounds):
        instance_id = f"{prefix}-round-{number}"
        service = f"{prefix}-{number * 7 % distinct}"
        expected = {n for n, name in enumerate(services) if name == service}
        # Let the last wave's blocking queries reach the agent, so a round
        # times one change, not the tail of the previous one.
        await asyncio.sleep(SETTLE)
        tracker.begin(instance_id, expected, present=True)
        await writer.register_service(
            service, port=1000 + number, service_id=instance_id
        )
        await asyncio.wait_for(tracker.done.wait(), 60)
        latencies.extend(tracker.seen.values())
        slowest.append(max(tracker.seen.values()))
        await asyncio.sleep(SETTLE)
        tracker.begin(instance_id, expected, present=False)
        await writer.deregister(instance_id)
        await asyncio.wait_for(tracker.done.wait(), 60)
        gone.extend(tracker.seen.values())
    for watcher in watchers:
        await watcher.stop()
    await writer.aclose()
    await client.aclose()
    # After the RSS figure: memory the probe frees would hide the growth.
    traced = await traced_bytes(address, services)
    return Outcome(
        setup=setup,
        count=count,
        services=distinct,
        connections=connections,
        latencies=latencies,
        slowest=slowest,
        gone=gone,
        traced_per_watcher=traced / count,
        rss_per_watcher=(rss_after - rss_before) / count,
    )


def report(outcomes: list[Outcome], rounds: int, load: tuple[float, float]) -> str:
    def ms(value: float) -> str:
        return f"{value * 1000:,.1f}"

    count = outcomes[0].count
    lines = [
        f"### Watchers: {count:,} AsyncWatchers in one process, shared or not"
        f" ({environment()})",
        "",
        "`.venv/bin/python bench/watchers.py`: one `waypost agent --dev`; per"
        " set-up a fresh asyncio process (uvloop) with one client and"
        f" {rounds} rounds of register → every watcher of the changed service"
        " sees it → deregister → every one sees that. Latency runs from just"
        " before the registration's PUT is sent to the watcher's `on_change`;"
        f" changes are {SETTLE:g} s apart. Shared: {count:,} watchers of one"
        " service share one feed (one blocking query, one decode). Distinct:"
        f" {count:,} watchers of {count:,} services, one blocking query each;"
        " a round changes one service, so it times one watcher. Memory per"
        " watcher: RSS growth while they start (client, feeds, connections"
        " included) and Python allocations of the same on a second client"
        " under tracemalloc, ÷ watchers.",
        "",
        "| set-up | connections | measure | p50 ms | p99 ms | max ms |"
        " KiB / watcher (traced) | KiB / watcher (RSS) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for outcome in outcomes:
        label = f"{outcome.setup}: {outcome.count:,} watchers, {outcome.services:,}"
        label += " service" if outcome.services == 1 else " services"
        memory = (
            f" {outcome.traced_per_watcher / 1024:,.2f}"
            f" | {outcome.rss_per_watcher / 1024:,.2f} |"
        )
        rows = [
            ("registration → each watcher", outcome.latencies),
            ("registration → last of them (per round)", outcome.slowest),
            ("deregistration → each watcher", outcome.gone),
        ]
        for k, (measure, values) in enumerate(rows):
            head = f"| {label} | {outcome.connections:,} |" if k == 0 else "| | |"
            tail = memory if k == 0 else " | |"
            lines.append(
                f"{head} {measure} | {ms(statistics.median(values))}"
                f" | {ms(percentile(values, 0.99))} | {ms(max(values))} |{tail}"
            )
    lines += [
        "",
        f"Load average {load[0]:.1f} at the start, {load[1]:.1f} at the end, on"
        f" {os.cpu_count()} cores (the agent, the watchers and whatever else"
        " runs on this shared machine).",
    ]
    return "\n".join(lines)


def child(address: str, setup: str, count: int, rounds: int) -> None:
    """One set-up in this (fresh) process; the outcome as JSON on stdout."""
    distinct = 1 if setup == "shared" else count
    outcome = uvloop.run(run(address, setup, count, distinct, rounds))
    sys.stdout.write(msgspec.json.encode(outcome._asdict()).decode())


def in_child(address: str, setup: str, count: int, rounds: int) -> Outcome:
    """Each set-up in a process of its own, so RSS growth is its own."""
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            setup,
            "--address",
            address,
            "--watchers",
            str(count),
            "--rounds",
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.startswith("{"):
        raise SystemExit(
            f"the {setup} run failed ({done.returncode}):\n{done.stderr[-3000:]}"
            f"\n{done.stdout[:500]}"
        )
    return Outcome(**msgspec.json.decode(done.stdout.encode()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--child", choices=["shared", "distinct"], help=argparse.SUPPRESS
    )
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.address, args.child, args.watchers, args.rounds)
        return
    load_before = os.getloadavg()[0]
    # Distinct: one connection per watcher from one address, over Consul's
    # per-client cap of 200.
    with run_agent(extra_args=["--http-max-conns-per-client", "0"]) as agent:
        outcomes = [
            in_child(agent.address, setup, args.watchers, args.rounds)
            for setup in ("shared", "distinct")
        ]
    text = report(outcomes, args.rounds, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        write_section("watchers", text)


if __name__ == "__main__":
    main()
