"""Cluster mode: three agents on a real 3-member etcd, on this machine.

    python bench/cluster.py [--duration 8] [--quick]

Measures, in one run (every process on 127.0.0.1, data on disk, every write
fsync'd by etcd's WAL on three members):
- propagation: a KV put through agent A until a blocking query on agent B
  returns with it, p50/p99 over sequential rounds;
- CPU of agent A per 1,000 reads (health of a 10-instance service, wrk -c32)
  with A alone and with three agents running: reads are served from A's
  replica, so the cost per read must not grow with the number of agents;
- TTL heartbeats/s per agent with three agents taking them at once, and
  with one;
- registrations/s through the cluster (one agent; three at once) against
  the embedded SQLite store (one agent);
- etcd's own figures on the same cluster: puts/s from 64 concurrent callers
  and one caller's put latency, through gRPC (aetcd).
Writes its section of bench/RESULTS.md (earlier runs kept below).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import environment, write_section
from http_bench import REGISTER_LUA, TTL_LUA, seed_reads, seed_ttl, wrk

from waypost.testing import AgentProcess, EtcdCluster


def agent(etcd: EtcdCluster, name: str, prefix: str) -> AgentProcess:
    return AgentProcess(
        dev=False,
        node=name,
        extra_args=[
            "--etcd",
            etcd.endpoints,
            "--etcd-prefix",
            prefix,
            "--self-preservation",
            "off",
        ],
    ).start()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def propagation(a: AgentProcess, b: AgentProcess, rounds: int) -> list[float]:
    """Seconds from sending a put to A until B's blocking query returns it."""
    times = []
    with (
        httpx.Client(base_url=a.url) as writer,
        httpx.Client(base_url=b.url, timeout=30) as reader,
    ):
        writer.put("/v1/kv/prop", content=b"0").raise_for_status()
        index = 0
        while index == 0:
            answer = reader.get("/v1/kv/prop")
            index = int(answer.headers["X-Consul-Index"]) if answer.is_success else 0
        for n in range(rounds):
            got: list[float] = []
            ready = threading.Event()
            thread = threading.Thread(target=_wait, args=(reader, index, ready, got))
            thread.start()
            ready.wait()
            time.sleep(0.02)  # the blocking query is parked on B
            sent = time.perf_counter()
            writer.put("/v1/kv/prop", content=str(n).encode()).raise_for_status()
            thread.join(15)
            times.append(got[0] - sent)
            index = int(reader.get("/v1/kv/prop").headers["X-Consul-Index"])
    return times


def _wait(
    reader: httpx.Client, index: int, ready: threading.Event, got: list[float]
) -> None:
    ready.set()
    reader.get("/v1/kv/prop", params={"index": index, "wait": "10s"})
    got.append(time.perf_counter())


def reads_cpu(target: AgentProcess, duration: int) -> tuple[float, float]:
    """(reads/s, CPU ms of the agent per 1,000 reads)."""
    pid = target.process.pid  # type: ignore[union-attr]
    before = cpu_seconds(pid)
    result = wrk(
        target.url + "/v1/health/service/web?passing",
        connections=32,
        duration=duration,
    )
    used = cpu_seconds(pid) - before
    reads = result["rps"] * duration
    return result["rps"], used / reads * 1000 * 1000


def parallel_wrk(
    urls: list[str], *, connections: int, duration: int, script: str
) -> list[dict[str, float]]:
    results: list[dict[str, float]] = [{} for _ in urls]

    def run(i: int) -> None:
        results[i] = wrk(
            urls[i], connections=connections, duration=duration, script=script
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def etcd_figures(endpoint: str, duration: float) -> tuple[float, float]:
    """(puts/s from 64 callers, one caller's put p50 ms) straight to etcd."""
    import aetcd

    host, port = endpoint.removeprefix("http://").split(":")
    async with aetcd.Client(host=host, port=int(port)) as client:
        latencies = []
        for n in range(200):
            start = time.perf_counter()
            await client.put(b"/bench/one", str(n).encode())
            latencies.append(time.perf_counter() - start)
        done = 0
        stop = time.perf_counter() + duration

        async def caller(i: int) -> None:
            nonlocal done
            n = 0
            while time.perf_counter() < stop:
                n += 1
                await client.put(f"/bench/c{i}/{n % 100}".encode(), b"x")
                done += 1

        began = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(64)))
        return done / (time.perf_counter() - began), statistics.median(latencies) * 1000


def ttl_script(count: int) -> str:
    return TTL_LUA.replace("%d", str(count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2 s runs (smoke)")
    args = parser.parse_args()
    duration = 2 if args.quick else args.duration
    rounds = 20 if args.quick else args.rounds
    if shutil.which("wrk") is None or shutil.which("etcd") is None:
        sys.exit("needs wrk and etcd: apt-get install wrk etcd-server")
    rows: dict[str, str] = {}

    with EtcdCluster(3) as etcd:
        prefix = "/bench"
        a = agent(etcd, "a", prefix)
        try:
            seed_reads(a)
            rps, cpu = reads_cpu(a, duration)
            rows["reads/s on A, A alone (32 conn)"] = f"{rps:,.0f}"
            rows["CPU of A per 1,000 reads, A alone"] = f"{cpu:.1f} ms"
            seed_ttl(a, 100)
            one = wrk(a.url, connections=32, duration=duration, script=ttl_script(100))
            rows["heartbeats/s, one agent"] = f"{one['rps']:,.0f}"
            reg = wrk(a.url, connections=64, duration=duration, script=REGISTER_LUA)
            rows["registrations/s through one agent (64 conn)"] = (
                f"{reg['rps']:,.0f} (p99 {reg['p99_ms']:.0f} ms)"
            )
            b = agent(etcd, "b", prefix)
            c = agent(etcd, "c", prefix)
            try:
                rps, cpu = reads_cpu(a, duration)
                rows["reads/s on A, three agents"] = f"{rps:,.0f}"
                rows["CPU of A per 1,000 reads, three agents"] = f"{cpu:.1f} ms"
                for other in (b, c):
                    seed_ttl(other, 100)
                beats = parallel_wrk(
                    [x.url for x in (a, b, c)],
                    connections=32,
                    duration=duration,
                    script=ttl_script(100),
                )
                per = [r["rps"] for r in beats]
                rows["heartbeats/s per agent, three at once"] = (
                    " / ".join(f"{r:,.0f}" for r in per) + f" (sum {sum(per):,.0f})"
                )
                regs = parallel_wrk(
                    [x.url for x in (a, b, c)],
                    connections=22,
                    duration=duration,
                    script=REGISTER_LUA.replace("bench-", "bench-x-"),
                )
                total = sum(r["rps"] for r in regs)
                rows["registrations/s through three agents at once (3×22 conn)"] = (
                    f"{total:,.0f}"
                )
                times = sorted(propagation(a, b, rounds))
                p50 = statistics.median(times) * 1000
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
                rows[
                    f"propagation A → blocking query on B, p50 / p99 ({rounds} rounds)"
                ] = f"{p50:.1f} / {p99:.1f} ms"
            finally:
                b.stop()
                c.stop()
        finally:
            a.stop()
        puts, latency = asyncio.run(etcd_figures(etcd.urls[0], duration))
        rows["etcd itself: puts/s, 64 callers (aetcd, gRPC)"] = f"{puts:,.0f}"
        rows["etcd itself: one caller's put, p50"] = f"{latency:.1f} ms"

    with tempfile.TemporaryDirectory() as scratch:
        embedded = AgentProcess(dev=False, data_dir=Path(scratch) / "d").start()
        try:
            reg = wrk(
                embedded.url, connections=64, duration=duration, script=REGISTER_LUA
            )
            rows["registrations/s, embedded SQLite store (64 conn)"] = (
                f"{reg['rps']:,.0f} (p99 {reg['p99_ms']:.0f} ms)"
            )
        finally:
            embedded.stop()

    etcd_version = subprocess.run(
        ["etcd", "--version"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows.items())
    text = textwrap.dedent(
        f"""\
        ### Cluster mode ({environment()})

        {etcd_version}, 3 members on loopback (default heartbeat/election),
        3 agents (`--etcd`), wrk -t1 {duration} s per line. Everything shares
        the 2 cores: with three agents, three etcd members and wrk on them,
        per-agent figures are what is left of the machine, not what an agent
        on its own core would do.

        | measure | figure |
        | --- | --- |
        """
    )
    text += table + "\n"
    print(text)
    if not args.quick:
        write_section("cluster", text)


if __name__ == "__main__":
    main()
