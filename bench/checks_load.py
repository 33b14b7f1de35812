"""Active checks vs the API: does running 10,000 HTTP checks starve reads?

One agent process runs 10,000 HTTP checks at a 10 s interval (1,000 probes a
second) against a local target (a minimal HTTP server in its own process).
Steady readers (raw keep-alive connections, so the client's own cost stays
out of the figures) measure the latency of `GET /v1/health/service/<one>`
(a small, fixed read) while the agent is idle and while the checks run.
Run: `.venv/bin/python bench/checks_load.py` (about 1.5 min).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _rawhttp import RawConnection
from _results import environment, write_section

from waypost.testing import run_agent, wait_until

CHECKS = 10_000
INTERVAL = "10s"
READ_RATE = 200  # reads per second, spread over a few connections
READERS = 4
PHASE = 20.0  # seconds of reads per phase

TARGET = r"""
import asyncio, sys, uvloop
count = 0
REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        global count
        if data.startswith(b"GET /count"):
            body = str(count).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                                 b"Connection: close\r\n\r\n%s" % (len(body), body))
        else:
            count += 1
            self.transport.write(REPLY)
        self.transport.close()
async def main():
    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
uvloop.run(main())
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def read_latencies(url: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    period = READERS / READ_RATE
    parts = httpx.URL(url)

    async def reader() -> None:
        conn = RawConnection(parts.host, parts.port or 80)
        end = time.monotonic() + seconds
        next_at = time.monotonic()
        while time.monotonic() < end:
            started = time.monotonic()
            status, _ = await conn.request("GET", "/v1/health/service/probe-me")
            assert status == 200, status
            latencies.append(time.monotonic() - started)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        conn.close()

    await asyncio.gather(*(reader() for _ in range(READERS)))
    return latencies


async def register_checks(url: str, target: str) -> None:
    parts = httpx.URL(url)
    conns = [RawConnection(parts.host, parts.port or 80) for _ in range(16)]

    async def some(offset: int) -> None:
        conn = conns[offset]
        for i in range(offset, CHECKS, len(conns)):
            body = {
                "Name": f"load{i % 100}",
                "ID": f"load-{i}",
                "Port": 20_000 + i,
                "Check": {"HTTP": f"{target}/health/{i}", "Interval": INTERVAL},
            }
            status = await conn.put(
                "/v1/agent/service/register", json.dumps(body).encode()
            )
            assert status == 200, status
        conn.close()

    await asyncio.gather(*(some(k) for k in range(len(conns))))


def summary(name: str, values: list[float], cpu: float) -> str:
    ordered = sorted(values)
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    return (
        f"| {name} | {len(values):,} | {statistics.median(values) * 1000:.2f}"
        f" | {p99:.2f} | {ordered[-1] * 1000:.2f} | {cpu:.0%} |"
    )


def main() -> None:
    target = subprocess.Popen(
        [sys.executable, "-c", TARGET], stdout=subprocess.PIPE, text=True
    )
    assert target.stdout is not None
    target_url = f"http://127.0.0.1:{int(target.stdout.readline())}"
    try:
        with run_agent() as agent, httpx.Client(base_url=agent.url) as api:
            assert agent.process is not None
            pid = agent.process.pid
            api.put(
                "/v1/agent/service/register",
                json={"Name": "probe-me", "ID": "probe-me", "Port": 1},
            ).raise_for_status()
            cpu0 = cpu_seconds(pid)
            idle = asyncio.run(read_latencies(agent.url, PHASE))
            idle_cpu = (cpu_seconds(pid) - cpu0) / PHASE
            started = time.monotonic()
            asyncio.run(register_checks(agent.url, target_url))
            registered_in = time.monotonic() - started
            time.sleep(11)  # every check has had its staggered first run
            probes0 = int(httpx.get(f"{target_url}/count").text)
            cpu0 = cpu_seconds(pid)
            loaded = asyncio.run(read_latencies(agent.url, PHASE))
            loaded_cpu = (cpu_seconds(pid) - cpu0) / PHASE
            rate = (int(httpx.get(f"{target_url}/count").text) - probes0) / PHASE
            wait_until(
                lambda: len(api.get("/v1/health/state/passing").json()) >= CHECKS,
                timeout=30,
            )
    finally:
        target.kill()
        target.wait()
    text = "\n".join(
        [
            f"### Active checks vs API reads ({environment()})",
            "",
            f"{CHECKS:,} HTTP checks every {INTERVAL} against a local target"
            f" (registered in {registered_in:.1f} s); reads of one small"
            f" service at {READ_RATE}/s over {READERS} connections, {PHASE:g} s"
            f" per phase. Probes observed at the target: {rate:,.0f}/s (expected"
            f" {CHECKS / 10:,.0f}/s); all {CHECKS:,} checks passing afterwards."
            f" Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:"
            " the target, the reader and the agent share them.",
            "",
            "| phase | reads | p50 ms | p99 ms | max ms | agent CPU |",
            "| --- | --- | --- | --- | --- | --- |",
            summary("idle", idle, idle_cpu),
            summary("10,000 checks running", loaded, loaded_cpu),
        ]
    )
    print(text)
    write_section("checks_load", text)


if __name__ == "__main__":
    main()
