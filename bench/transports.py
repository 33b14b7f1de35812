"""The client's transport, chosen by measurement: HTTP libraries side by side.

    .venv/bin/python bench/transports.py            # writes bench/RESULTS.md
    .venv/bin/python bench/transports.py --quick --no-write

One `waypost agent --dev`; this process sends the same requests through each
candidate, the way the client uses them (a pool of kept-alive connections,
one pool per client, every request with its own timeout):

  heartbeat   PUT /v1/agent/check/pass/<id>: an empty 200 (64 asyncio
              callers, 16 threads for the blocking libraries)
  read 10     GET /v1/health/service/<name>?passing, 10 instances, Consul's
              JSON (13 KB): the body's bytes, not decoded
  read 1,000  the same for 1,000 instances in waypost's compact answer
              (130 KB): large bodies

Candidates: httpx (what the client used before), httpcore's connection pool
used directly, aiohttp, urllib3 (blocking only) and waypost's own transport
(`waypost.client._async_transport` / `_sync_transport`: httptools' parser on
asyncio protocols or blocking sockets). "floor" is a bare asyncio.Protocol
with httptools, one connection per caller and nothing else (no pool, no
timeouts, no TLS): what any transport adds is measured against it. The
candidates take turns in rounds and each one's median round is shown; the
client CPU per request (this process's CPU time ÷ requests) is what a
transport costs, whatever else the machine is doing.

Writes the `transports` section of bench/RESULTS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import aiohttp
import httpcore
import httptools
import httpx
import urllib3
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import environment, write_section

from waypost.client import AsyncClient
from waypost.client._async_transport import AsyncConnectionPool
from waypost.client._base import Call, resolve_settings
from waypost.client._http11 import Origin, request_message
from waypost.client._sync_transport import ConnectionPool
from waypost.compact import MEDIA_TYPE
from waypost.testing import run_agent

ASYNC_CALLERS = 64
THREADS = 16
CHECKS = 100


class Sizes(NamedTuple):
    seconds: float  # per round and workload
    rounds: int


FULL = Sizes(2.0, 3)
QUICK = Sizes(0.3, 1)


class Request(NamedTuple):
    method: str
    target: str
    accept: str


class Result(NamedTuple):
    rate: float
    cpu_us: float  # this process's CPU per request
    p99_ms: float


# ------------------------------------------------------------------ async


class AsyncCandidate:
    name = ""

    async def open(self, host: str, port: int) -> None: ...

    async def send(self, request: Request) -> int:
        """Send; return the body's length (read whole)."""
        raise NotImplementedError

    async def close(self) -> None: ...


class HttpxAsync(AsyncCandidate):
    name = "httpx"

    async def open(self, host: str, port: int) -> None:
        limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
        self.http = httpx.AsyncClient(
            base_url=f"http://{host}:{port}", limits=limits, trust_env=False
        )

    async def send(self, request: Request) -> int:
        response = await self.http.request(
            request.method,
            request.target,
            headers={"Accept": request.accept},
            timeout=10,
        )
        return len(response.content)

    async def close(self) -> None:
        await self.http.aclose()


class HttpcoreAsync(AsyncCandidate):
    name = "httpcore"

    async def open(self, host: str, port: int) -> None:
        self.pool = httpcore.AsyncConnectionPool(max_connections=128)
        self.base = f"http://{host}:{port}"
        self.host = f"{host}:{port}".encode()

    async def send(self, request: Request) -> int:
        response = await self.pool.request(
            request.method,
            self.base + request.target,
            headers=[(b"Host", self.host), (b"Accept", request.accept.encode())],
            extensions={
                "timeout": {"connect": 10, "read": 10, "write": 10, "pool": 10}
            },
        )
        return len(response.content)

    async def close(self) -> None:
        await self.pool.aclose()


class AiohttpAsync(AsyncCandidate):
    name = "aiohttp"

    async def open(self, host: str, port: int) -> None:
        connector = aiohttp.TCPConnector(limit=128)
        self.session = aiohttp.ClientSession(
            f"http://{host}:{port}", connector=connector
        )
        self.timeout = aiohttp.ClientTimeout(total=10)

    async def send(self, request: Request) -> int:
        async with self.session.request(
            request.method,
            request.target,
            headers={"Accept": request.accept},
            timeout=self.timeout,
        ) as response:
            return len(await response.read())

    async def close(self) -> None:
        await self.session.close()


class Messages:
    """Request bytes as the client's `_http11` builds them for a `Call` (and
    keeps on it: a heartbeat's bytes are built once)."""

    def __init__(self, host: str, port: int) -> None:
        settings = resolve_settings(f"{host}:{port}")
        self.origin = Origin(settings)
        self._made: dict[Request, bytes] = {}

    def get(self, request: Request) -> bytes:
        message = self._made.get(request)
        if message is None:
            call = Call(
                request.method,
                request.target,
                decode=len,
                accept=request.accept.encode(),
            )
            message = self._made[request] = request_message(self.origin, call)
        return message


class WaypostAsync(AsyncCandidate):
    name = "waypost (httptools)"

    async def open(self, host: str, port: int) -> None:
        self.messages = Messages(host, port)
        self.pool = AsyncConnectionPool(self.messages.origin, 128)

    async def send(self, request: Request) -> int:
        answer = await self.pool.send(self.messages.get(request), 10)
        return len(answer.body)

    async def close(self) -> None:
        await self.pool.aclose()


class _FloorReply:
    __slots__ = ("body", "done")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _FloorConnection(asyncio.Protocol):
    """bench/_rawhttp.py's HttpConnection before it became the transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.reply = _FloorReply()
        self.parser = httptools.HttpResponseParser(self.reply)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        if self.reply.done and self.waiter is not None:
            self.waiter.set_result(None)

    async def request(self, message: bytes) -> int:
        assert self.transport is not None
        self.reply = _FloorReply()
        self.parser = httptools.HttpResponseParser(self.reply)
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(message)
        await self.waiter
        return len(b"".join(self.reply.body))


class FloorAsync(AsyncCandidate):
    name = "floor: bare Protocol"

    async def open(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_FloorConnection] = []
        self.made: list[_FloorConnection] = []
        self.messages: dict[Request, bytes] = {}

    async def send(self, request: Request) -> int:
        message = self.messages.get(request)
        if message is None:
            length = b"" if request.method == "GET" else b"Content-Length: 0\r\n"
            message = self.messages[request] = (
                b"%s %s HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\n%s\r\n"
                % (
                    request.method.encode(),
                    request.target.encode(),
                    self.host.encode(),
                    request.accept.encode(),
                    length,
                )
            )
        if self.idle:
            connection = self.idle.pop()
        else:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_connection(
                _FloorConnection, self.host, self.port
            )
            self.made.append(connection)
        size = await connection.request(message)
        self.idle.append(connection)
        return size

    async def close(self) -> None:
        for connection in self.made:
            if connection.transport is not None:
                connection.transport.close()


# ------------------------------------------------------------------ blocking


class SyncCandidate:
    name = ""

    def open(self, host: str, port: int) -> None: ...

    def send(self, request: Request) -> int:
        raise NotImplementedError

    def close(self) -> None: ...


class HttpxSync(SyncCandidate):
    name = "httpx"

    def open(self, host: str, port: int) -> None:
        limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
        self.http = httpx.Client(
            base_url=f"http://{host}:{port}", limits=limits, trust_env=False
        )

    def send(self, request: Request) -> int:
        response = self.http.request(
            request.method,
            request.target,
            headers={"Accept": request.accept},
            timeout=10,
        )
        return len(response.content)

    def close(self) -> None:
        self.http.close()


class HttpcoreSync(SyncCandidate):
    name = "httpcore"

    def open(self, host: str, port: int) -> None:
        self.pool = httpcore.ConnectionPool(max_connections=128)
        self.base = f"http://{host}:{port}"
        self.host = f"{host}:{port}".encode()

    def send(self, request: Request) -> int:
        response = self.pool.request(
            request.method,
            self.base + request.target,
            headers=[(b"Host", self.host), (b"Accept", request.accept.encode())],
            extensions={
                "timeout": {"connect": 10, "read": 10, "write": 10, "pool": 10}
            },
        )
        return len(response.content)

    def close(self) -> None:
        self.pool.close()


class Urllib3Sync(SyncCandidate):
    name = "urllib3"

    def open(self, host: str, port: int) -> None:
        self.pool = urllib3.HTTPConnectionPool(
            host, port, maxsize=128, block=True, timeout=urllib3.Timeout(10, 10)
        )

    def send(self, request: Request) -> int:
        response = self.pool.request(
            request.method,
            request.target,
            headers={"Accept": request.accept},
            retries=False,
        )
        return len(response.data)

    def close(self) -> None:
        self.pool.close()


class WaypostSync(SyncCandidate):
    name = "waypost (httptools)"

    def open(self, host: str, port: int) -> None:
        self.messages = Messages(host, port)
        self.pool = ConnectionPool(self.messages.origin, 128)

    def send(self, request: Request) -> int:
        return len(self.pool.send(self.messages.get(request), 10).body)

    def close(self) -> None:
        self.pool.close()


ASYNC: list[type[AsyncCandidate]] = [
    HttpxAsync,
    HttpcoreAsync,
    AiohttpAsync,
    WaypostAsync,
    FloorAsync,
]
SYNC: list[type[SyncCandidate]] = [HttpxSync, HttpcoreSync, Urllib3Sync, WaypostSync]

#: What each library offers that the client needs (checked by hand).
FEATURES = {
    "httpx": "TLS, client certs, timeouts, pool, async + sync",
    "httpcore": "TLS, client certs, timeouts, pool, async + sync",
    "aiohttp": "TLS, client certs, timeouts, pool; async only",
    "urllib3": "TLS, client certs, timeouts, pool; blocking only",
    "waypost (httptools)": "TLS, client certs, timeouts, pool, async + sync"
    " (one source, unasync)",
    "floor: bare Protocol": "nothing: no pool bound, timeout, TLS or errors",
}


# ------------------------------------------------------------------ timing


def cpu() -> float:
    times = os.times()
    return times.user + times.system


async def run_async(
    candidate: AsyncCandidate, requests: Callable[[int], Request], seconds: float
) -> Result:
    latencies: list[float] = []
    counter = iter(range(1 << 40))
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        while (began := time.perf_counter()) < stop:
            await candidate.send(requests(next(counter)))
            latencies.append(time.perf_counter() - began)

    started, cpu0 = time.perf_counter(), cpu()
    await asyncio.gather(*(caller() for _ in range(ASYNC_CALLERS)))
    return _result(latencies, time.perf_counter() - started, cpu() - cpu0)


def run_sync(
    candidate: SyncCandidate, requests: Callable[[int], Request], seconds: float
) -> Result:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(1 << 40))
    stop = time.perf_counter() + seconds

    def caller() -> None:
        mine = []
        while (began := time.perf_counter()) < stop:
            with lock:
                n = next(counter)
            candidate.send(requests(n))
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    started, cpu0 = time.perf_counter(), cpu()
    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(caller) for _ in range(THREADS)]:
            future.result()
    return _result(latencies, time.perf_counter() - started, cpu() - cpu0)


def _result(latencies: list[float], elapsed: float, spent: float) -> Result:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Result(len(ordered) / elapsed, 1e6 * spent / len(ordered), 1000 * p99)


def median(results: list[Result]) -> Result:
    return sorted(results, key=lambda r: r.rate)[len(results) // 2]


# ------------------------------------------------------------------ workloads


async def prepare(address: str) -> dict[str, Callable[[int], Request]]:
    """Register the heartbeat checks and the read services; return workloads."""
    async with AsyncClient(address, max_connections=64) as client:
        gate = asyncio.Semaphore(64)

        async def register(service: str, n: int, ttl: str | None) -> None:
            async with gate:
                await client.register_service(
                    service,
                    port=20000 + n,
                    address="127.0.0.1",
                    service_id=f"{service}-{n}",
                    ttl=ttl,
                    tags=["bench"],
                )

        await asyncio.gather(
            *(register("beat", n, "10m") for n in range(CHECKS)),
            *(register("small", n, "10m") for n in range(10)),
            *(register("large", n, "10m") for n in range(1000)),
        )
    checks = [f"/v1/agent/check/pass/service:beat-{n}" for n in range(CHECKS)]
    beat = [Request("PUT", target, "application/json") for target in checks]
    small = Request("GET", "/v1/health/service/small?passing", "application/json")
    large = Request("GET", "/v1/health/service/large?passing", MEDIA_TYPE)
    return {
        "heartbeat": lambda n: beat[n % CHECKS],
        "read 10": lambda n: small,
        "read 1,000": lambda n: large,
    }


Table = dict[tuple[str, str, str], Result]  # (mode, workload, candidate)


async def measure_async(
    host: str, port: int, workloads: dict[str, Callable[[int], Request]], sizes: Sizes
) -> Table:
    candidates = [kind() for kind in ASYNC]
    for candidate in candidates:
        await candidate.open(host, port)
    runs: dict[tuple[str, str], list[Result]] = {}
    try:
        for workload, requests in workloads.items():
            for k in range(sizes.rounds):
                turn = k % len(candidates)
                for candidate in candidates[turn:] + candidates[:turn]:
                    result = await run_async(candidate, requests, sizes.seconds)
                    runs.setdefault((workload, candidate.name), []).append(result)
                    print(
                        f"  asyncio {workload:<10} {candidate.name:<22} {_show(result)}"
                    )
    finally:
        for candidate in candidates:
            await candidate.close()
    return {("asyncio", w, c): median(r) for (w, c), r in runs.items()}


def measure_sync(
    host: str, port: int, workloads: dict[str, Callable[[int], Request]], sizes: Sizes
) -> Table:
    candidates = [kind() for kind in SYNC]
    for candidate in candidates:
        candidate.open(host, port)
    runs: dict[tuple[str, str], list[Result]] = {}
    try:
        for workload, requests in workloads.items():
            for k in range(sizes.rounds):
                turn = k % len(candidates)
                for candidate in candidates[turn:] + candidates[:turn]:
                    result = run_sync(candidate, requests, sizes.seconds)
                    runs.setdefault((workload, candidate.name), []).append(result)
                    print(
                        f"  threads {workload:<10} {candidate.name:<22} {_show(result)}"
                    )
    finally:
        for candidate in candidates:
            candidate.close()
    return {("threads", w, c): median(r) for (w, c), r in runs.items()}


def _show(result: Result) -> str:
    return (
        f"{result.rate:9,.0f}/s  {result.cpu_us:7.1f} µs CPU/request"
        f"  p99 {result.p99_ms:6.1f} ms"
    )


# ------------------------------------------------------------------ report


def report(table: Table, sizes: Sizes, load: tuple[float, float]) -> str:
    workloads = list(dict.fromkeys(w for _, w, _ in table))
    lines = [
        f"### HTTP transports for the client ({environment()})",
        "",
        "`.venv/bin/python bench/transports.py`: one `waypost agent --dev`;"
        f" asyncio: {ASYNC_CALLERS} callers on one pool (uvloop); threads:"
        f" {THREADS} threads on one pool. Heartbeat = PUT check pass (empty"
        " 200); read 10 = 10 instances in Consul's JSON (~13 KB); read 1,000 ="
        " 1,000 instances in the compact answer (~130 KB); bodies read whole,"
        f" not decoded. {sizes.rounds} round(s) of {sizes.seconds:g} s, taken in"
        " turn; median round. CPU = this process's CPU time per request (what"
        " the transport costs the application); requests/s also depends on the"
        " agent and on whatever else runs on the machine. Load average"
        f" {load[0]:.1f} at the start, {load[1]:.1f} at the end, on"
        f" {os.cpu_count()} cores shared with other work.",
        "",
        "| mode | candidate | what it offers |"
        + "".join(f" {w}: req/s | {w}: µs CPU/req |" for w in workloads),
        "| --- | --- | --- |" + " ---: | ---: |" * len(workloads),
    ]
    for mode in ("asyncio", "threads"):
        names = list(dict.fromkeys(c for m, _, c in table if m == mode))
        for name in names:
            cells = [mode, name, FEATURES.get(name, "")]
            for workload in workloads:
                result = table.get((mode, workload, name))
                cells += (
                    [f"{result.rate:,.0f}", f"{result.cpu_us:,.1f}"]
                    if result
                    else ["-", "-"]
                )
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", verdict(table)]
    return "\n".join(lines)


def verdict(table: Table) -> str:
    """Which full-featured candidate costs least, by how much."""
    said = []
    for mode in ("asyncio", "threads"):
        workloads = list(dict.fromkeys(w for m, w, _ in table if m == mode))
        full = [
            c
            for m, _, c in table
            if m == mode and not c.startswith("floor") and c != "waypost (httptools)"
        ]
        others = list(dict.fromkeys(full))
        parts = []
        for workload in workloads:
            ours = table[(mode, workload, "waypost (httptools)")]
            best = min(others, key=lambda c: table[(mode, workload, c)].cpu_us)
            theirs = table[(mode, workload, best)]
            floor = table.get((mode, workload, "floor: bare Protocol"))
            part = (
                f"{workload} {ours.cpu_us:.0f} µs against {best}'s"
                f" {theirs.cpu_us:.0f} ({theirs.cpu_us / ours.cpu_us:.1f}×)"
            )
            if floor is not None:
                part += f", the floor {floor.cpu_us:.0f}"
            parts.append(part)
        said.append(f"{mode}: " + "; ".join(parts))
    return (
        "Client CPU per request, waypost's transport against the cheapest other"
        " library that does what the client needs: " + ". ".join(said) + "."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    load_before = os.getloadavg()[0]
    # Every candidate keeps its pool open: ~320 connections from one address,
    # over Consul's per-client cap of 200.
    with run_agent(extra_args=["--http-max-conns-per-client", "0"]) as agent:
        host, port = agent.host, agent.port
        workloads = uvloop.run(prepare(agent.address))
        table = uvloop.run(measure_async(host, port, workloads, sizes))
        table |= measure_sync(host, port, workloads, sizes)
    text = report(table, sizes, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        write_section("transports", text)
        print("written to bench/RESULTS.md (section `transports`)")


if __name__ == "__main__":
    main()
