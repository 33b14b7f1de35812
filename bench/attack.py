"""Abuse: does the agent keep answering other clients while it is attacked?

    python bench/attack.py [--seconds 20] [--quick] [--no-write] [--only ATTACK]

One `waypost agent --dev` with its default limits serves a service `web` of
10 instances. In each phase an attacker process (this script, `--attack
KIND`) abuses it from loopback addresses 127.0.0.2 and up, while this process
reads `GET /v1/health/service/web?passing` from 127.0.0.1 two ways: on a
kept-alive connection (100 reads/s) and on a new connection each time
(10 reads/s, 10 s timeout). The attacks:

  baseline        none
  slowloris       1,000 sockets from 10 addresses; each sends a request line,
                  then one header byte a second, and reconnects when dropped
  flood-one       10,000 sockets from one address, each held open and
                  reopened as soon as the agent lets go (per-client cap)
  flood-many      12,000 sockets from 60 addresses, the same (global cap)
  big-headers     8 clients in a loop, each request carrying a 1 MB header
  pipeline        100,000 pipelined reads on one connection, answers read
                  and checked in order; again until the phase ends
  pipeline-stall  100,000 pipelined reads on one connection that never
                  reads an answer

Prints a table and writes it to bench/RESULTS.md (earlier runs kept below).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import environment, write_section

from waypost.testing import AgentProcess

HERE = Path(__file__).resolve()
READ = b"GET /v1/health/service/web?passing HTTP/1.1\r\nHost: bench\r\n\r\n"
LEADER = b"GET /v1/status/leader HTTP/1.1\r\nHost: bench\r\n\r\n"
RAMP = 2.0  # seconds an attack has to build up before reads are measured
ATTACKER_NICE = 10  # the attacker's scheduling priority (0 is normal)


class Sizes(NamedTuple):
    slowloris: int
    flood_one: int
    flood_many: int
    flood_sources: int
    big_header: int
    big_clients: int
    pipeline: int


FULL = Sizes(1_000, 10_000, 12_000, 60, 1 << 20, 8, 100_000)
QUICK = Sizes(100, 500, 1_000, 5, 1 << 20, 2, 5_000)

PHASES = (
    "baseline",
    "slowloris",
    "flood-one",
    "flood-many",
    "big-headers",
    "pipeline",
    "pipeline-stall",
)


# ---------------------------------------------------------------- attacks


class Attack:
    """One attacker process: counts what it saw, prints it as JSON."""

    def __init__(self, port: int, seconds: float, sizes: Sizes) -> None:
        self.port = port
        self.sizes = sizes
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + seconds
        self.seen: collections.Counter[str] = collections.Counter()
        self.open = self.max_open = 0

    @property
    def running(self) -> bool:
        return self.loop.time() < self.deadline

    def left(self) -> float:
        return max(0.0, self.deadline - self.loop.time())

    async def connect(
        self, source: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            pair = await asyncio.wait_for(
                asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(source, 0), limit=1 << 20
                ),
                min(5.0, self.left() + 0.01),
            )
        except TimeoutError:
            self.seen["connect timed out"] += 1
            return None
        except OSError:
            self.seen["connect failed"] += 1
            await asyncio.sleep(0.1)
            return None
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        self.seen["connections"] += 1
        return pair

    def closed(self, writer: asyncio.StreamWriter) -> None:
        self.open -= 1
        writer.close()

    def answer(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 "):
            self.seen[f"answered {data[9:12].decode()}"] += 1
        elif not data:
            self.seen["closed without an answer"] += 1

    # -- slowloris: one header byte a second, forever

    async def slowloris(self) -> None:
        count = self.sizes.slowloris
        await asyncio.gather(*(self._slow(n, count) for n in range(count)))

    async def _slow(self, n: int, count: int) -> None:
        await asyncio.sleep(RAMP * n / count)
        source = f"127.0.0.{2 + n % 10}"
        while self.running:
            pair = await self.connect(source)
            if pair is None:
                continue
            reader, writer = pair
            try:
                writer.write(b"GET /v1/health/service/web HTTP/1.1\r\nHost: bench\r\n")
                header = b"X-Slow: " + b"a" * 100_000
                for byte in range(len(header)):
                    writer.write(header[byte : byte + 1])
                    self.seen["header bytes sent"] += 1
                    try:
                        data = await asyncio.wait_for(reader.read(4096), 1.0)
                    except TimeoutError:
                        if not self.running:
                            break
                        continue
                    self.answer(data)
                    break
            except OSError:
                self.seen["reset"] += 1
            finally:
                self.closed(writer)

    # -- connection floods: hold sockets open, reopen when let go

    async def flood(self, count: int, sources: int) -> None:
        await asyncio.gather(*(self._hold(n, count, sources) for n in range(count)))

    async def _hold(self, n: int, count: int, sources: int) -> None:
        await asyncio.sleep(RAMP * n / count)
        source = f"127.0.0.{2 + n % sources}"
        while self.running:
            pair = await self.connect(source)
            if pair is None:
                continue
            reader, writer = pair
            try:
                data = await asyncio.wait_for(reader.read(4096), self.left())
                self.answer(data)
            except TimeoutError:
                pass  # still held when the phase ended
            except OSError:
                self.seen["reset"] += 1
            finally:
                self.closed(writer)

    # -- 1 MB headers

    async def big_headers(self) -> None:
        size = self.sizes.big_header
        wire = b"GET /v1/health/service/web HTTP/1.1\r\nHost: bench\r\nX-Big: "
        wire += b"a" * size + b"\r\n\r\n"
        clients = self.sizes.big_clients
        await asyncio.gather(*(self._big(n, wire) for n in range(clients)))

    async def _big(self, n: int, wire: bytes) -> None:
        source = f"127.0.0.{2 + n}"
        while self.running:
            pair = await self.connect(source)
            if pair is None:
                continue
            reader, writer = pair
            try:
                writer.write(wire)
                self.seen["requests"] += 1
                with_answer = await asyncio.wait_for(reader.read(4096), 10)
                self.answer(with_answer)
                await writer.drain()
                self.seen["header bytes sent"] += len(wire)
            except OSError:
                self.seen["reset"] += 1
            except TimeoutError:
                self.seen["no answer in 10 s"] += 1
            finally:
                self.closed(writer)

    # -- pipelining

    async def pipeline_stall(self) -> None:
        """Send the pipeline as fast as the agent takes it; read nothing."""
        count = self.sizes.pipeline
        wire = memoryview(b"".join(READ for _ in range(count)))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.bind(("127.0.0.2", 0))
        sock.connect(("127.0.0.1", self.port))
        sock.setblocking(False)
        self.seen["connections"] += 1
        sent = 0
        try:
            while self.running and sent < len(wire):
                try:
                    sent += sock.send(wire[sent : sent + 65536])
                except BlockingIOError:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(self.left())
        except OSError:
            self.seen["dropped by the agent"] += 1
        finally:
            sock.close()
        self.seen["requests sent"] = count
        self.seen["requests the kernel took"] = sent // len(READ)

    async def pipeline(self) -> None:
        count = self.sizes.pipeline
        wire = b"".join(READ if n % 2 == 0 else LEADER for n in range(count))
        rounds: list[float] = []
        while self.running:
            pair = await self.connect("127.0.0.2")
            if pair is None:
                continue
            reader, writer = pair
            started = self.loop.time()
            writer.write(wire)
            try:
                answered, ordered = await _read_alternating(reader, count)
            except (OSError, asyncio.IncompleteReadError):
                self.seen["reset"] += 1
                self.closed(writer)
                continue
            self.closed(writer)
            self.seen["answered"] += answered
            self.seen["answered out of order"] += 0 if ordered else 1
            if answered == count:
                rounds.append(self.loop.time() - started)
        self.seen[f"rounds of {count:,}"] = len(rounds)
        if rounds:
            self.seen["seconds per round (median)"] = round(
                statistics.median(rounds), 2
            )

    def report(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        return {
            **self.seen,
            "most open at once": self.max_open,
            "attacker CPU seconds": round(cpu, 1),
        }


async def _read_alternating(
    reader: asyncio.StreamReader, count: int
) -> tuple[int, bool]:
    """Read `count` answers; True if they alternate health, leader, health…"""
    lengths: list[int] = []
    ordered = True
    for n in range(count):
        head = await reader.readuntil(b"\r\n\r\n")
        at = head.find(b"content-length: ")
        length = int(head[at + 16 : head.index(b"\r\n", at)])
        await reader.readexactly(length)
        if n < 2:
            lengths.append(length)
        elif length != lengths[n % 2]:
            ordered = False
    return count, ordered and lengths[0] != lengths[1]


async def run_attack(kind: str, port: int, seconds: float, sizes: Sizes) -> None:
    attack = Attack(port, seconds, sizes)
    if kind == "slowloris":
        await attack.slowloris()
    elif kind == "flood-one":
        await attack.flood(sizes.flood_one, 1)
    elif kind == "flood-many":
        await attack.flood(sizes.flood_many, sizes.flood_sources)
    elif kind == "big-headers":
        await attack.big_headers()
    elif kind == "pipeline":
        await attack.pipeline()
    elif kind == "pipeline-stall":
        await attack.pipeline_stall()
    print(json.dumps(attack.report()), flush=True)


# ---------------------------------------------------------------- probes


class Reads:
    """Latencies of the measured health reads, and the ones that failed."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failed = 0

    def cells(self) -> str:
        if not self.latencies:
            return f"0 | - | - | - | {self.failed}"
        ordered = sorted(self.latencies)
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
        return (
            f"{len(ordered):,} | {statistics.median(ordered) * 1e3:.2f}"
            f" | {p99 * 1e3:.2f} | {ordered[-1] * 1e3:.0f} | {self.failed}"
        )


def _read_one(sock: socket.socket, buffer: bytearray) -> int:
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end]).lower()
    at = head.find(b"content-length: ")
    length = int(head[at + 16 : head.index(b"\r\n", at)])
    while len(buffer) < end + length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buffer += data
    status = int(buffer[9:12])
    del buffer[: end + length]
    return status


def probe_keepalive(port: int, seconds: float, rate: float, reads: Reads) -> None:
    """Sequential reads on one kept-alive connection (reopened if lost)."""
    sock: socket.socket | None = None
    buffer = bytearray()
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                buffer.clear()
            sock.sendall(READ)
            if _read_one(sock, buffer) != 200:
                raise ConnectionError("not 200")
            reads.latencies.append(time.monotonic() - started)
        except OSError:
            reads.failed += 1
            if sock is not None:
                sock.close()
            sock = None
        next_at = max(next_at + 1 / rate, time.monotonic())
        time.sleep(max(0.0, next_at - time.monotonic()))
    if sock is not None:
        sock.close()


def probe_fresh(port: int, seconds: float, rate: float, reads: Reads) -> None:
    """Each read on a new connection: connect, ask, read, close."""
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(READ)
                if _read_one(sock, bytearray()) != 200:
                    raise ConnectionError("not 200")
            reads.latencies.append(time.monotonic() - started)
        except OSError:
            reads.failed += 1
        next_at = max(next_at + 1 / rate, time.monotonic())
        time.sleep(max(0.0, next_at - time.monotonic()))


class Usage:
    """The agent's CPU share and peak RSS while a phase runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, self._rss())

    def __enter__(self) -> Usage:
        self.peak_rss = self._rss()
        self._cpu_start, self._wall_start = self._cpu(), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_share = (self._cpu() - self._cpu_start) / (
            time.monotonic() - self._wall_start
        )


# ---------------------------------------------------------------- phases


class Phase(NamedTuple):
    name: str
    attacker: dict[str, Any]
    keepalive: Reads
    fresh: Reads
    cpu: float
    peak_rss: int


def run_phase(name: str, agent: AgentProcess, seconds: float, quick: bool) -> Phase:
    attacker: subprocess.Popen[str] | None = None
    if name != "baseline":
        args = [sys.executable, str(HERE), "--attack", name, "--port", str(agent.port)]
        args += ["--seconds", str(seconds + RAMP)] + (["--quick"] if quick else [])
        attacker = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            text=True,
            # A remote attacker does not share the agent's CPU; on one
            # machine, the attacker yields to the agent and the reader.
            preexec_fn=lambda: os.nice(ATTACKER_NICE),
        )
        time.sleep(RAMP)
    keepalive, fresh = Reads(), Reads()
    assert agent.process is not None
    with Usage(agent.process.pid) as usage:
        threads = [
            threading.Thread(
                target=probe_keepalive, args=(agent.port, seconds, 100, keepalive)
            ),
            threading.Thread(target=probe_fresh, args=(agent.port, seconds, 10, fresh)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seen: dict[str, Any] = {}
    if attacker is not None:
        out, _ = attacker.communicate(timeout=60)
        seen = json.loads(out.strip().splitlines()[-1])
    settle(agent)
    return Phase(name, seen, keepalive, fresh, usage.cpu_share, usage.peak_rss)


def settle(agent: AgentProcess) -> None:
    """Wait until the agent answers a new connection again (the attacker's
    sockets are closing)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{agent.url}/v1/status/leader", timeout=5).is_success:
                time.sleep(1.0)
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError("the agent did not recover after the attack")


def seed(agent: AgentProcess) -> None:
    with httpx.Client(base_url=agent.url) as http:
        for n in range(10):
            body = {
                "Name": "web",
                "ID": f"web-{n}",
                "Port": 8000 + n,
                "Check": {"TTL": "1h", "Status": "passing"},
            }
            http.put("/v1/agent/service/register", json=body).raise_for_status()
        health = http.get("/v1/health/service/web?passing").json()
        assert len(health) == 10


def report(phases: list[Phase], seconds: float, sizes: Sizes, load: float) -> str:
    lines = [
        f"### Abuse: one agent under attack ({environment()},"
        f" load average {load:.1f} at the start)",
        "",
        "`python bench/attack.py`: an agent with its default limits (10 s header"
        " deadline, 60 s idle, 8,192 connections, 200 per client, 64 KiB heads,"
        " 64 pipelined) serving a 10-instance service. Each attack comes from its"
        f" own process (at nice {ATTACKER_NICE}: a remote attacker does not share"
        " the agent's CPU) on 127.0.0.2 and up while this one reads"
        " `/v1/health/service/web?passing` from 127.0.0.1 for"
        f" {seconds:g} s: on a kept-alive connection at 100/s and on a new"
        " connection each time at 10/s (10 s timeout). Attack sizes:"
        f" slowloris {sizes.slowloris:,} sockets, floods {sizes.flood_one:,}"
        f" sockets from 1 address and {sizes.flood_many:,} from"
        f" {sizes.flood_sources}, {sizes.big_clients} clients sending"
        f" {sizes.big_header:,}-byte headers, {sizes.pipeline:,} pipelined reads.",
        "",
        "| attack | kept-alive reads | p50 ms | p99 ms | max ms | failed"
        " | new-connection reads | p50 ms | p99 ms | max ms | failed"
        " | agent CPU | agent peak RSS |",
        "|" + " --- |" * 13,
    ]
    for phase in phases:
        lines.append(
            f"| {phase.name} | {phase.keepalive.cells()} | {phase.fresh.cells()}"
            f" | {phase.cpu:.0%} | {phase.peak_rss / 2**20:.0f} MiB |"
        )
    lines += ["", "What each attacker saw:", ""]
    for phase in phases:
        if phase.attacker:
            seen = ", ".join(f"{k}: {v:,}" for k, v in phase.attacker.items())
            lines.append(f"- **{phase.name}**: {seen}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="small, for a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--only", choices=PHASES[1:], action="append", help="these attacks only"
    )
    parser.add_argument("--attack", choices=PHASES[1:], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    sizes = QUICK if options.quick else FULL
    _raise_open_files_limit()
    if options.attack:
        import uvloop

        uvloop.run(run_attack(options.attack, options.port, options.seconds, sizes))
        return
    seconds = 2.0 if options.quick and options.seconds == 20.0 else options.seconds
    load = os.getloadavg()[0]
    agent = AgentProcess(dev=True, node="bench").start()
    try:
        seed(agent)
        phases = []
        chosen = ["baseline", *options.only] if options.only else PHASES
        for name in chosen:
            print(f"== {name}", flush=True)
            phases.append(run_phase(name, agent, seconds, options.quick))
    finally:
        code = agent.stop()
    text = report(phases, seconds, sizes, load)
    text += (
        f"\nThe agent logged {len(agent.log_lines)} lines in all the attacks"
        " (warnings about the caps at most once a minute each).\n"
    )
    print(text)
    if code != 0:
        raise SystemExit(f"the agent exited with {code}:\n{agent.log[-3000:]}")
    if not options.no_write:
        write_section("attack", text)


def _raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    main()
