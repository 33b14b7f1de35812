"""waypost side by side with etcd and ZooKeeper: the same discovery workload.

    python bench/compare.py [--quick] [--only PHASE] [--profile DIR]

Each system is driven from this one Python process through a client that costs
little per request: waypost over raw keep-alive HTTP/1.1 (httptools, msgspec)
and through its own AsyncClient, etcd over gRPC (aetcd; its JSON gateway
through httpx is measured once, to justify the choice), ZooKeeper through
kazoo. Phases (each on freshly started servers, all on 127.0.0.1):

  register   durable registrations/s, 1 and 64 concurrent callers
  heartbeat  10,000 live instances: heartbeats/s and the server's CPU
  discover   healthy instances of a service of 10 and of 1,000: reads/s, p99
  notify     1,000 watchers on 100 services; one changes: time until all of
             its watchers know, and how many watchers of others woke
  detect     an instance stops heartbeating (TTL 10 s): time until it is gone
  footprint  RSS with 100,000 instances; start-up after a restart with them

Writes the `compare` section of bench/RESULTS.md and prints a summary; exits 1
when a target is missed (never with --quick). --profile DIR runs waypost alone
under py-spy and prints where the agent spends its time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import (
    Etcd,
    HttpClients,
    PeerUnavailable,
    Registry,
    Waypost,
    WaypostClient,
    ZooKeeper,
    cpu_seconds,
    ensure_installed,
    has_waypost_client,
    retry,
    rss_bytes,
)
from _results import environment, write_section

PHASES = ("register", "heartbeat", "discover", "notify", "detect", "footprint")
CONCURRENCY = (1, 64)
READERS = 32  # concurrent discovery callers
WATCHERS_PER_SERVICE = 10  # etcd/ZooKeeper: that many sessions, each watching all
SETTLE = 0.3  # seconds after a change in which stray wake-ups are counted
PEERS_MISSING = 3  # exit status: etcd/ZooKeeper absent and not installable


class Sizes(NamedTuple):
    services: int  # register: instances spread over this many services
    register_seconds: float  # per concurrency level
    heartbeat_instances: int
    heartbeat_seconds: float
    discover: tuple[int, int]  # instances of the service read
    read_seconds: float
    watched_services: int  # × WATCHERS_PER_SERVICE watchers
    notify_trials: int
    ttl: int  # detect: TTL check / lease / session timeout, seconds
    zk_tick: int  # ms; a session needs at least 2 ticks
    footprint: int  # instances
    pause: float  # seconds for a server to settle (RSS, armed watchers)
    rounds: int  # systems take turns this often in each timed measurement


FULL = Sizes(100, 5.0, 10_000, 6.0, (10, 1000), 4.0, 100, 7, 10, 2000, 100_000, 1.0, 3)
QUICK = Sizes(10, 0.5, 200, 0.5, (10, 100), 0.5, 10, 2, 2, 500, 1_000, 0.2, 1)

console = Console(width=None if sys.stdout.isatty() else 150)
progress = Progress(
    TextColumn("{task.description:<38}"),
    BarColumn(),
    TextColumn("{task.fields[status]}"),
    TimeElapsedColumn(),
    console=console,
    transient=True,
)


# --------------------------------------------------------------------- runs


class Run(NamedTuple):
    ops: int
    seconds: float
    server_cpu: float  # % of one core
    client_cpu: float  # % of one core, this process (all threads)
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @property
    def cpu_per_1k(self) -> float:
        """Server CPU milliseconds per 1,000 operations."""
        return self.server_cpu * 1e4 / self.rate if self.ops else float("nan")


def _client_cpu() -> float:
    times = os.times()
    return times.user + times.system


async def closed_loop(
    pid: int,
    op: Callable[[int], Awaitable[object]],
    *,
    label: str,
    workers: int,
    count: int,
    seconds: float = float("inf"),
) -> Run:
    """`workers` callers run `op(n)` for n = 0, 1, … until `count` or `seconds`."""
    numbers = itertools.count()
    latencies: list[float] = []
    start = time.perf_counter()
    stop_at = start + seconds
    timed = seconds != float("inf")
    task = progress.add_task(label, total=seconds if timed else count, status="")

    async def caller() -> None:
        while (began := time.perf_counter()) < stop_at:
            n = next(numbers)
            if n >= count:
                return
            await op(n)
            latencies.append(time.perf_counter() - began)

    async def show() -> None:
        while True:
            elapsed = time.perf_counter() - start
            done = elapsed if timed else len(latencies)
            rate = len(latencies) / max(elapsed, 1e-9)
            progress.update(task, completed=done, status=f"{rate:,.0f}/s")
            await asyncio.sleep(0.2)

    profiling = (
        PROFILER.record(pid, label)
        if PROFILER is not None and timed
        else contextlib.nullcontext()
    )
    with profiling:
        start = time.perf_counter()
        stop_at = start + seconds
        server0, client0 = cpu_seconds(pid), _client_cpu()
        ticker = asyncio.create_task(show())
        try:
            await asyncio.gather(*(caller() for _ in range(workers)))
        finally:
            ticker.cancel()
            progress.remove_task(task)
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies) or [float("nan")]
    return Run(
        ops=len(latencies),
        seconds=elapsed,
        server_cpu=100 * (cpu_seconds(pid) - server0) / elapsed,
        client_cpu=100 * (_client_cpu() - client0) / elapsed,
        p50_ms=1000 * ordered[len(ordered) // 2],
        p99_ms=1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    )


def make_registries(scratch: Path, sizes: Sizes, names: list[str]) -> list[Registry]:
    """Fresh servers in their own folder under `scratch`."""
    workdir = Path(tempfile.mkdtemp(dir=scratch))
    made: dict[str, Callable[[], Registry]] = {
        "waypost": lambda: Waypost(workdir / "waypost"),
        "waypost client": lambda: WaypostClient(workdir / "waypost-client"),
        "etcd": lambda: Etcd(workdir),
        "ZooKeeper": lambda: ZooKeeper(workdir, tick=sizes.zk_tick),
    }
    return [made[name]() for name in names]


Results = dict[str, dict[str, float]]  # metric → system → value
Measure = Callable[[Registry, int], Awaitable[Run]]


async def interleaved(
    registries: list[Registry], sizes: Sizes, measure: Measure
) -> dict[str, Run]:
    """Systems take turns for `sizes.rounds` rounds; each one's median round.

    Other work on this shared machine comes and goes: taking turns spreads it
    over all systems instead of landing on whichever ran at the time.
    """
    runs: dict[str, list[Run]] = {registry.name: [] for registry in registries}
    for k in range(sizes.rounds):
        turn = k % len(registries)
        for registry in registries[turn:] + registries[:turn]:
            runs[registry.name].append(await measure(registry, k))
    return {
        name: sorted(done, key=lambda run: run.rate)[len(done) // 2]
        for name, done in runs.items()
    }


def record(out: Results, key: str, runs: dict[str, Run], *, detail: bool) -> None:
    for name, run in runs.items():
        out.setdefault(key, {})[name] = run.rate
        if detail:
            out.setdefault(f"{key} p99", {})[name] = run.p99_ms
            out.setdefault(f"{key} cpu", {})[name] = run.server_cpu
            out.setdefault(f"{key} cpu per 1k", {})[name] = run.cpu_per_1k
            out.setdefault(f"{key} client cpu", {})[name] = run.client_cpu


async def seed(
    registry: Registry, op: Callable[[int], Awaitable[object]], count: int, what: str
) -> None:
    await closed_loop(
        registry.pid, op, label=f"{registry.name}: {what}", workers=64, count=count
    )


async def phase_register(
    registries: list[Registry], sizes: Sizes, out: Results
) -> None:
    for callers in CONCURRENCY:

        def measure(
            registry: Registry, k: int, callers: int = callers
        ) -> Awaitable[Run]:
            services = [f"reg{callers}-{m}" for m in range(sizes.services)]
            return closed_loop(
                registry.pid,
                lambda n: registry.register(services[n % len(services)], k << 24 | n),
                label=f"{registry.name}: register, {callers} caller(s)",
                workers=callers,
                count=1 << 24,
                seconds=sizes.register_seconds / sizes.rounds,
            )

        runs = await interleaved(registries, sizes, measure)
        record(out, f"register {callers}", runs, detail=callers > 1)
    for registry in registries:
        assert await registry.discover("reg1-0") > 0, registry.name


async def phase_heartbeat(
    registries: list[Registry], sizes: Sizes, out: Results
) -> None:
    count = sizes.heartbeat_instances
    for registry in registries:
        await registry.prepare_heartbeats(count)
        await seed(registry, registry.add_heartbeater, count, f"{count:,} heartbeaters")

    def measure(registry: Registry, _k: int) -> Awaitable[Run]:
        return closed_loop(
            registry.pid,
            registry.heartbeat,
            label=f"{registry.name}: heartbeats",
            workers=64,
            count=1 << 30,
            seconds=sizes.heartbeat_seconds / sizes.rounds,
        )

    record(out, "heartbeat", await interleaved(registries, sizes, measure), detail=True)
    for registry in registries:  # every instance is still there
        assert await registry.discover("hb-0") == len(range(0, count, 100))


async def phase_discover(
    registries: list[Registry], sizes: Sizes, out: Results
) -> None:
    for size in sizes.discover:
        service = f"disc-{size}"
        for registry in registries:
            await seed(
                registry,
                lambda n, r=registry, s=service: r.register(s, n),
                size,
                f"{size:,} instances",
            )

        def measure(
            registry: Registry, _k: int, service: str = service, size: int = size
        ) -> Awaitable[Run]:
            async def read(_n: int) -> None:
                found = await registry.discover(service)
                if found != size:
                    raise AssertionError(f"{registry.name}: {found} of {size}")

            return closed_loop(
                registry.pid,
                read,
                label=f"{registry.name}: read {size:,} instances",
                workers=READERS,
                count=1 << 30,
                seconds=sizes.read_seconds / sizes.rounds,
            )

        runs = await interleaved(registries, sizes, measure)
        record(out, f"discover {size}", runs, detail=True)
    for registry in registries:
        if isinstance(registry, Etcd):
            await etcd_client_choice(registry, sizes, out)


class Notified:
    """The watchers of one system and what woke them."""

    def __init__(self, registry: Registry, services: list[str]) -> None:
        self.registry = registry
        self.services = services
        self.wakes: list[tuple[tuple[str, int], float]] = []
        self.target = ""
        self.woken: set[tuple[str, int]] = set()
        self.everyone = asyncio.Event()
        self.latencies: list[float] = []
        self.foreign = 0

    def wake(self, watcher: tuple[str, int], at: float) -> None:
        self.wakes.append((watcher, at))
        if watcher[0] == self.target and watcher not in self.woken:
            self.woken.add(watcher)
            if len(self.woken) == WATCHERS_PER_SERVICE:
                self.everyone.set()

    async def trial(self, k: int) -> None:
        """Add an instance to one service; wait until all its watchers know."""
        self.target = self.services[(k * 37) % len(self.services)]
        self.woken.clear()
        self.everyone.clear()
        first = len(self.wakes)
        began = time.perf_counter()
        await self.registry.register(self.target, 1000 + k)
        await asyncio.wait_for(self.everyone.wait(), timeout=30)
        await asyncio.sleep(SETTLE)
        known: dict[tuple[str, int], float] = {}
        for watcher, at in self.wakes[first:]:
            if watcher[0] == self.target:
                known.setdefault(watcher, at)
            else:
                self.foreign += 1
        self.latencies.append(max(known.values()) - began)


async def phase_notify(registries: list[Registry], sizes: Sizes, out: Results) -> None:
    services = [f"watch-{m}" for m in range(sizes.watched_services)]
    probes = []
    for registry in registries:
        await seed(
            registry,
            lambda n, r=registry: r.register(services[n], n),
            len(services),
            "watched services",
        )
        probe = Notified(registry, services)
        watchers = len(services) * WATCHERS_PER_SERVICE
        with _status(f"{registry.name}: arm {watchers:,} watchers"):
            await registry.watch(services, WATCHERS_PER_SERVICE, probe.wake)
        probes.append(probe)
    await asyncio.sleep(sizes.pause)  # the last blocking requests reach the server
    task = progress.add_task("notify", total=sizes.notify_trials, status="")
    for k in range(sizes.notify_trials):
        for probe in probes[k % len(probes) :] + probes[: k % len(probes)]:
            await probe.trial(k)
        progress.update(task, advance=1)
    progress.remove_task(task)
    for probe in probes:
        median = statistics.median(probe.latencies)
        out.setdefault("notify ms", {})[probe.registry.name] = 1000 * median
        out.setdefault("notify foreign", {})[probe.registry.name] = probe.foreign


async def phase_detect(registries: list[Registry], sizes: Sizes, out: Results) -> None:
    """All systems at once: each waits out a whole TTL."""
    with _status(f"detect: TTL {sizes.ttl} s, all systems at once"):
        await asyncio.gather(*(detect(r, sizes, out) for r in registries))


async def detect(registry: Registry, sizes: Sizes, out: Results) -> None:
    answered = await registry.lapse("lapse", sizes.ttl)
    if await registry.discover("lapse") != 1:
        raise AssertionError(f"{registry.name}: the lapsing instance is missing")
    deadline = answered + 2 * sizes.ttl + 10
    while time.perf_counter() < deadline:
        if await registry.discover("lapse") == 0:
            gone = time.perf_counter() - answered
            out.setdefault("detect s", {})[registry.name] = gone
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{registry.name} still lists the instance at {deadline}")


async def footprint(registry: Registry, sizes: Sizes, out: Results) -> None:
    """RSS empty and full, then start-up time with the instances on disk."""
    per_service = 100
    await registry.discover("fp-0")
    await asyncio.sleep(sizes.pause)
    empty = rss_bytes(registry.pid)
    load = await closed_loop(
        registry.pid,
        lambda m: registry.register_many(
            f"fp-{m}", range(m * per_service, (m + 1) * per_service)
        ),
        label=f"{registry.name}: register {sizes.footprint:,}, by {per_service}",
        workers=16,
        count=sizes.footprint // per_service,
    )
    await asyncio.sleep(sizes.pause)
    full = rss_bytes(registry.pid)
    with _status(f"{registry.name}: restart"):
        began = time.perf_counter()
        await registry.restart()
        await retry(lambda: _expect(registry, "fp-0", per_service), within=120)
        started = time.perf_counter() - began
    name = registry.name
    out.setdefault("rss per instance", {})[name] = (full - empty) / sizes.footprint
    out.setdefault("rss empty MB", {})[name] = empty / 2**20
    out.setdefault("rss full MB", {})[name] = full / 2**20
    out.setdefault("startup s", {})[name] = started
    out.setdefault("load s", {})[name] = load.seconds


async def _expect(registry: Registry, service: str, count: int) -> None:
    found = await asyncio.wait_for(registry.discover(service), timeout=2)
    if found != count:
        raise LookupError(f"{found} of {count}")


@contextlib.contextmanager
def _status(label: str) -> Iterator[None]:
    task = progress.add_task(label, total=None, status="")
    try:
        yield
    finally:
        progress.remove_task(task)


async def etcd_client_choice(registry: Etcd, sizes: Sizes, out: Results) -> None:
    """Reads/s of 10 keys: etcd's JSON gateway through httpx, and gRPC (aetcd)."""
    for n in range(10):
        await registry.register("gw", n)
    prefix = b"/svc/gw/"
    body = {"key": b64(prefix), "range_end": b64(prefix[:-1] + b"0")}
    gateway = HttpClients(f"http://127.0.0.1:{registry.server.port}")

    async def via_gateway(_n: int) -> None:
        answer = await gateway.request("POST", "/v3/kv/range", json=body)
        assert len(answer.json()["kvs"]) == 10

    async def via_grpc(_n: int) -> None:
        assert await registry.discover("gw") == 10

    try:
        for label, op in (
            ("httpx JSON gateway", via_gateway),
            ("aetcd gRPC", via_grpc),
        ):
            run = await closed_loop(
                registry.pid,
                op,
                label=f"etcd client: {label}",
                workers=READERS,
                count=1 << 30,
                seconds=min(2.0, sizes.read_seconds),
            )
            out.setdefault("etcd client", {})[label] = run.rate
    finally:
        await gateway.close()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


PHASE_FUNCTIONS: dict[str, Callable[[list[Registry], Sizes, Results], Awaitable[None]]]
PHASE_FUNCTIONS = {
    "register": phase_register,
    "heartbeat": phase_heartbeat,
    "discover": phase_discover,
    "notify": phase_notify,
    "detect": phase_detect,
}


async def run_phase(
    phase: str,
    systems: list[str],
    sizes: Sizes,
    scratch: Path,
    out: Results,
    *,
    shared: list[Registry] | None,
) -> dict[str, str]:
    """On `shared` servers if given, else fresh ones; versions of what ran."""
    if shared is not None and phase != "footprint":
        await PHASE_FUNCTIONS[phase](shared, sizes, out)
        return {registry.name: registry.version() for registry in shared}
    registries = make_registries(scratch, sizes, systems)
    # Footprint measures each server from empty and times its start-up: alone,
    # except in --quick where the seconds matter more.
    together = phase != "footprint" or sizes.rounds == 1
    groups = [registries] if together else [[r] for r in registries]
    for group in groups:
        async with contextlib.AsyncExitStack() as stack:
            await open_all(stack, group)
            if phase == "footprint":
                await asyncio.gather(*(footprint(r, sizes, out) for r in group))
            else:
                await PHASE_FUNCTIONS[phase](group, sizes, out)
    return {registry.name: registry.version() for registry in registries}


async def open_all(
    stack: contextlib.AsyncExitStack, registries: list[Registry]
) -> None:
    """Start the servers side by side; `stack` stops them, even half-started."""
    for registry in registries:
        stack.push_async_callback(registry.close)
    opened = await asyncio.gather(
        *(registry.open() for registry in registries), return_exceptions=True
    )
    for result in opened:
        if isinstance(result, BaseException):
            raise result


async def run_phases(
    phases: list[str], systems: list[str], sizes: Sizes, scratch: Path
) -> tuple[Results, dict[str, str]]:
    """Each phase on fresh servers; --quick shares one set (but for footprint)."""
    out: Results = {}
    versions: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        shared = None
        if sizes.rounds == 1 and phases != ["footprint"]:
            shared = make_registries(scratch, sizes, systems)
            with _status("starting servers"):
                await open_all(stack, shared)
        with progress:
            overall = progress.add_task("phases", total=len(phases), status="")
            for phase in phases:
                began = time.perf_counter()
                progress.update(overall, description=f"phase: {phase}")
                versions |= await run_phase(
                    phase, systems, sizes, scratch, out, shared=shared
                )
                progress.update(overall, advance=1)
                took = time.perf_counter() - began
                console.print(f"[green]✓[/] {phase} ({took:.1f} s)")
    return out, versions


# ---------------------------------------------------------------- reporting


class Row(NamedTuple):
    key: str
    label: str
    fmt: str
    higher_is_better: bool | None  # None: no ratio
    target: str = ""
    ratio_floor: float | None = None  # waypost ÷ each peer must reach this
    waypost_ceiling: float | None = None  # or waypost's own value must stay under


def rows(sizes: Sizes) -> list[Row]:
    big, hb, fp = sizes.discover[1], sizes.heartbeat_instances, sizes.footprint
    ttl = sizes.ttl
    per_1k = "server CPU ms / 1,000"
    return [
        Row("register 1", "register/s, 1 caller", "{:,.0f}", True, "≥ 0.8×", 0.8),
        Row("register 64", "register/s, 64 callers", "{:,.0f}", True, "≥ 0.8×", 0.8),
        Row("register 64 cpu per 1k", f"{per_1k} registrations", "{:,.0f}", False),
        Row("heartbeat", f"heartbeats/s, {hb:,} live", "{:,.0f}", True, "≥ 1.0×", 1.0),
        Row("heartbeat cpu", "server CPU % while heartbeating", "{:.0f}", None),
        Row("heartbeat cpu per 1k", f"{per_1k} heartbeats", "{:,.0f}", False),
        Row("heartbeat client cpu", "client CPU % while heartbeating", "{:.0f}", None),
        Row("discover 10", "reads/s, 10 instances", "{:,.0f}", True, "≥ 1.0×", 1.0),
        Row("discover 10 p99", "p99 ms, 10 instances", "{:.1f}", False),
        Row("discover 10 cpu per 1k", f"{per_1k} reads of 10", "{:,.0f}", False),
        Row(
            f"discover {big}",
            f"reads/s, {big:,} instances",
            "{:,.0f}",
            True,
            "≥ 1.0×",
            1.0,
        ),
        Row(f"discover {big} p99", f"p99 ms, {big:,} instances", "{:.1f}", False),
        Row(
            f"discover {big} cpu per 1k", f"{per_1k} reads of {big:,}", "{:,.0f}", False
        ),
        Row(
            f"discover {big} client cpu",
            f"client CPU %, reads of {big:,}",
            "{:.0f}",
            None,
        ),
        Row(
            "notify ms", "notify: all watchers know, ms", "{:.1f}", False, "≥ 1.0×", 1.0
        ),
        Row("notify foreign", "notify: others woken", "{:.0f}", None, "0", None, 0),
        Row(
            "detect s",
            f"detect, TTL {ttl} s: gone after, s",
            "{:.2f}",
            False,
            f"≤ {ttl + 1} s",
            None,
            ttl + 1,
        ),
        Row(
            "rss per instance",
            "RSS bytes / instance",
            "{:,.0f}",
            False,
            "≤ 1,536",
            None,
            1536,
        ),
        Row("rss empty MB", "RSS empty, MiB", "{:.1f}", None),
        Row("rss full MB", f"RSS with {fp:,}, MiB", "{:.1f}", None),
        Row("startup s", f"start-up with {fp:,} on disk, s", "{:.2f}", False),
        Row("load s", f"loading {fp:,} in bulk, s", "{:.1f}", False),
    ]


PEERS = ("etcd", "ZooKeeper")


def ratio(row: Row, values: dict[str, float], peer: str) -> float | None:
    """waypost ÷ peer for rates, peer ÷ waypost for costs: > 1 favours waypost."""
    ours, theirs = values.get("waypost"), values.get(peer)
    if row.higher_is_better is None or ours is None or theirs is None:
        return None
    if min(ours, theirs) <= 0:
        return None
    return ours / theirs if row.higher_is_better else theirs / ours


def verdict(row: Row, values: dict[str, float]) -> bool | None:
    ours = values.get("waypost")
    if ours is None:
        return None
    if row.waypost_ceiling is not None:
        return ours <= row.waypost_ceiling
    if row.ratio_floor is None:
        return None
    found = [r for peer in PEERS if (r := ratio(row, values, peer)) is not None]
    return all(r >= row.ratio_floor for r in found) if found else None


def table_lines(out: Results, sizes: Sizes, systems: list[str]) -> list[list[str]]:
    lines = []
    for row in rows(sizes):
        values = out.get(row.key)
        if not values:
            continue
        cells = [row.label]
        cells += [row.fmt.format(values[s]) if s in values else "-" for s in systems]
        for peer in PEERS:
            r = ratio(row, values, peer)
            cells.append(f"{r:.2f}×" if r is not None else "")
        met = verdict(row, values)
        cells += [row.target, {True: "✓", False: "✗ missed", None: ""}[met]]
        lines.append(cells)
    return lines


def client_ratios(out: Results, sizes: Sizes) -> str:
    """Issue 14's figures: the client's column against raw HTTP and etcd."""
    parts = []
    for key, what in (
        ("heartbeat", "heartbeats"),
        ("discover 10", "reads of 10"),
        ("register 64", "registrations (64 callers)"),
        ("register 1", "registrations (1 caller)"),
    ):
        values = out.get(key, {})
        if values.get("waypost") and "waypost client" in values:
            ratio = values["waypost client"] / values["waypost"]
            parts.append(f"{what} {ratio:.2f}×")
    big = out.get(f"discover {sizes.discover[1]}", {})
    text = ""
    if parts:
        text = "Client ÷ raw HTTP, same run: " + ", ".join(parts) + "."
    if big.get("etcd") and "waypost client" in big:
        text += (
            f" Reads of {sizes.discover[1]:,} instances through the client ÷ etcd:"
            f" {big['waypost client'] / big['etcd']:.2f}×."
        )
    return text


def render(
    out: Results,
    sizes: Sizes,
    systems: list[str],
    versions: dict[str, str],
    quick: bool,
    load: tuple[float, float] = (0.0, 0.0),
) -> str:
    header = ["metric", *systems, "÷ etcd", "÷ ZooKeeper", "target", "met"]
    table = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    table += [
        "| " + " | ".join(cells) + " |" for cells in table_lines(out, sizes, systems)
    ]
    client = out.get("etcd client", {})
    choice = (
        f"etcd client: aetcd over gRPC {client['aetcd gRPC']:,.0f} reads/s against"
        f" {client['httpx JSON gateway']:,.0f} through the /v3 JSON gateway with httpx"
        f" ({READERS} callers, 10 keys), so gRPC it is. "
        if client
        else ""
    )
    server_list = ", ".join(f"{name} {version}" for name, version in versions.items())
    mode = "--quick (sizes shrunk, no targets)" if quick else "full"
    shared = "one set of servers for all but footprint" if quick else "fresh servers"
    watchers = sizes.watched_services * WATCHERS_PER_SERVICE
    return "\n".join(
        [
            f"### waypost vs etcd vs ZooKeeper, {mode} ({environment()})",
            "",
            f"{server_list}. Every phase on {shared} on 127.0.0.1 with data on disk;"
            " each acknowledged write is fsync'd (waypost's SQLite store, etcd's WAL,"
            f" ZooKeeper's txn log; ZooKeeper tickTime {sizes.zk_tick} ms,"
            " -Xmx1000m). One Python process drives all: waypost over raw"
            " keep-alive HTTP/1.1, one connection per concurrent caller, responses"
            " parsed by httptools and JSON decoded by msgspec (C on both sides, as"
            " gRPC's core and protobuf are for etcd; health answers into typed"
            " structs keeping node address, service ID, address and port, since"
            " into dicts the allocation costs ~9× the parse), and through its own"
            " AsyncClient when present (one, shared, max_connections=128; reads"
            " in its compact answer, decoded into Instance values); etcd through"
            " aetcd on one gRPC"
            " channel, keepalives pipelined on one LeaseKeepAlive stream as Go's"
            " clientv3 does; ZooKeeper through kazoo on one session, heartbeats on a"
            " session per instance spoken with kazoo's codec on asyncio.",
            "",
            "A registration is the instance's own write: waypost PUT"
            " /v1/agent/service/register with a TTL check; etcd LeaseGrant + Put;"
            " ZooKeeper one ephemeral znode (its session is made elsewhere, so this"
            " favours ZooKeeper). Discovery: waypost GET /v1/health/service/NAME"
            "?passing (full Consul JSON, every byte parsed); etcd a prefix range;"
            " ZooKeeper"
            " getChildren with the address in the child's name. Timed runs are split"
            f" in {sizes.rounds} round(s) that the systems take in turn, median"
            f" round shown: register {sizes.register_seconds:g} s per level over"
            f" {sizes.services} services, heartbeats {sizes.heartbeat_seconds:g} s"
            f" from 64 callers, reads {sizes.read_seconds:g} s from {READERS}"
            f" callers. Notify: {watchers:,} watchers on {sizes.watched_services}"
            f" services (waypost blocking queries, one connection each; etcd and"
            f" ZooKeeper {WATCHERS_PER_SERVICE} sessions each watching every"
            f" service), median of {sizes.notify_trials} changes, foreign wake-ups"
            f" counted for {SETTLE:g} s after each. Detect: polls every 50 ms.",
            "",
            f"{choice}÷ columns: waypost's rate ÷ the peer's; for times, CPU and"
            " sizes the peer's ÷ waypost's, so > 1 always favours waypost. CPU % is"
            " of one core; server CPU per 1,000 operations does not depend on how"
            " fast the client is. Targets are judged on the raw-HTTP waypost column."
            f" Load average {load[0]:.1f} at the start, {load[1]:.1f} at the end, on"
            f" {os.cpu_count()} cores shared with other work.",
            "",
            *table,
            "",
            client_ratios(out, sizes),
            "",
        ]
    )


def print_summary(out: Results, sizes: Sizes, systems: list[str]) -> None:
    table = Table(title="waypost vs etcd vs ZooKeeper")
    for column in ["metric", *systems, "÷ etcd", "÷ ZK", "target", "met"]:
        table.add_column(column, justify="left" if column == "metric" else "right")
    for cells in table_lines(out, sizes, systems):
        table.add_row(*cells)
    console.print(table)


def missed_targets(out: Results, sizes: Sizes) -> list[str]:
    return [
        row.label
        for row in rows(sizes)
        if row.key in out and verdict(row, out[row.key]) is False
    ]


# ---------------------------------------------------------------- profiling


class Profiler:
    """py-spy on the waypost agent during each timed waypost run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[Path] = []
        self.py_spy = shutil.which("py-spy") or str(
            Path(sys.executable).parent / "py-spy"
        )

    @contextlib.contextmanager
    def record(self, pid: int, label: str) -> Iterator[None]:
        """Sample the agent (`pid`) and this process, the client, meanwhile."""
        stem = re.sub(r"\W+", "-", label).strip("-")
        targets = {f"{stem}.agent": pid, f"{stem}.client": os.getpid()}
        spies = {
            self.folder / f"{name}.txt": subprocess.Popen(
                [
                    *(self.py_spy, "record", "--format", "raw", "--rate", "200"),
                    *("--nonblocking", "--pid", str(target)),
                    *("--output", str(self.folder / f"{name}.txt")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, target in targets.items()
        }
        time.sleep(1.0)  # attached before the load starts
        try:
            yield
        finally:
            for path, spy in spies.items():
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
                if path.exists():
                    self.files.append(path)

    def report(self) -> None:
        for path in self.files:
            console.rule(f"profile: {path.stem}  ({path})")
            console.print(summarize_profile(path))


def summarize_profile(path: Path, top: int = 18) -> str:
    """Self and inclusive shares of a py-spy raw (collapsed) profile."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        if not frames:
            continue
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"{total} samples (busy only)", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("inclusive:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


PROFILER: Profiler | None = None


# --------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--only", choices=PHASES, help="run one phase")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="waypost alone, under py-spy"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="leave bench/RESULTS.md alone"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    phases = [args.only] if args.only else list(PHASES)
    ours = ["waypost", "waypost client"] if has_waypost_client() else ["waypost"]
    systems = ["waypost"] if args.profile else [*ours, *PEERS]
    if args.profile:
        global PROFILER
        args.profile.mkdir(parents=True, exist_ok=True)
        PROFILER = Profiler(args.profile)
    else:
        try:
            ensure_installed()
        except PeerUnavailable as exc:
            console.print(f"[red]{exc}[/]")
            sys.exit(PEERS_MISSING)
    scratch = Path(tempfile.mkdtemp(prefix="waypost-compare-"))
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    try:
        out, versions = asyncio.run(run_phases(phases, systems, sizes, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_summary(out, sizes, systems)
    console.print(client_ratios(out, sizes))
    console.print(f"{time.perf_counter() - began:.0f} s in all")
    if PROFILER is not None:
        PROFILER.report()
        return
    if not args.no_write:
        load = (load_before, os.getloadavg()[0])
        text = render(out, sizes, systems, versions, args.quick, load)
        write_section("compare", text)
        console.print("written to bench/RESULTS.md (section `compare`)")
    missed = missed_targets(out, sizes)
    if missed and not args.quick:
        console.print(f"[red]missed:[/] {'; '.join(missed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
