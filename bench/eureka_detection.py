"""A killed Eureka client: how long until it is gone from /eureka/apps.

Starts one `waypost agent --dev` and N real `py-eureka-client` services
(child processes, `tests/eureka/eureka_app.py`) with a 30 s lease
(`leaseInfo.durationInSecs`) renewed every 10 s, kills each with SIGKILL at
a random moment of its renewal cycle, and polls `GET /eureka/apps` (XML,
what clients fetch) every 20 ms until the instance is gone. The figure is
from the kill to the first read without it; the bound is lease + 1 s.

Eureka's own worst case with default settings, from Netflix/eureka's source:
`Lease.renew()` sets `lastUpdateTimestamp = now + duration` and `isExpired()`
adds `duration` again (2 × lease), the EvictionTask runs every 60 s
(`evictionIntervalTimerInMs`), and `/apps` is served from the read-only
response cache refreshed every 30 s (`responseCacheUpdateIntervalMs`):
2 × lease + 60 + 30 s, before any client-side cache (client fetch 30 s,
Ribbon 30 s).

    .venv/bin/python bench/eureka_detection.py [--instances 3] [--lease 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import httpx
from _results import environment, write_section

from waypost.testing import run_agent

APP = Path(__file__).resolve().parents[1] / "tests" / "eureka" / "eureka_app.py"


def start(
    url: str, app: str, instance_id: str, lease: int, interval: int
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(APP),
            f"{url}/eureka",
            app,
            instance_id,
            str(lease),
            str(interval),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        assert line, "the eureka client exited"
        if line.startswith("@@ "):
            json.loads(line[3:])
            return process


def present(client: httpx.Client) -> set[str]:
    root = ElementTree.fromstring(client.get("/eureka/apps").content)
    return {i.findtext("instanceId", "") for i in root.iter("instance")}


def measure(url: str, instances: int, lease: int, interval: int) -> list[float]:
    ids = [f"victim-{n}" for n in range(instances)]
    processes = {i: start(url, "benchvictim", i, lease, interval) for i in ids}
    figures: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        assert present(client) == set(ids)
        # Each dies at a random point of its renewal cycle.
        kill_at = {
            i: time.monotonic() + interval + random.uniform(0, interval) for i in ids
        }
        killed: dict[str, float] = {}
        while len(figures) < len(ids):
            now = time.monotonic()
            for i, at in kill_at.items():
                if i not in killed and now >= at:
                    os.kill(processes[i].pid, signal.SIGKILL)
                    killed[i] = time.monotonic()
            if killed:
                seen = present(client)
                for i, at in list(killed.items()):
                    if i not in seen:
                        figures.append(time.monotonic() - at)
                        del killed[i]
                        kill_at.pop(i)
            time.sleep(0.02)
    for process in processes.values():
        process.wait(10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
    return figures


def report(figures: list[float], lease: int, interval: int) -> str:
    eureka_worst = 2 * lease + 60 + 30
    eureka_default = 2 * 90 + 60 + 30
    worst = max(figures)
    lines = [
        f"### Eureka API: a killed client leaves /eureka/apps ({environment()})",
        "",
        f"`.venv/bin/python bench/eureka_detection.py --instances {len(figures)}"
        f" --lease {lease}`. Real py-eureka-client processes, lease {lease} s renewed"
        f" every {interval} s, SIGKILLed at a random point of their renewal cycle;"
        " `GET /eureka/apps` (XML) polled every 20 ms; seconds from the kill to the"
        " first read without the instance.",
        "",
        "| | min s | median s | max s | bound |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| waypost | {min(figures):.2f} | {statistics.median(figures):.2f} |"
        f" {worst:.2f} | ≤ lease + 1 = {lease + 1} s:"
        f" {'met' if worst <= lease + 1 else 'NOT met'} |",
        f"| Eureka, same lease, default server settings (worst case) | | |"
        f" {eureka_worst} | 2 × {lease} + 60 + 30 |",
        f"| Eureka, all defaults (lease 90 s; worst case) | | | {eureka_default} |"
        " 2 × 90 + 60 + 30 |",
        "",
        "waypost counts the lease once from the last renew (a TTL check of"
        " `durationInSecs`), evicts at the deadline (the agent's timer wakes for it),"
        " and renders every read from memory. Eureka's worst case, read from"
        " Netflix/eureka: `Lease.renew()` sets `lastUpdateTimestamp = now + duration`"
        " and `isExpired()` adds `duration` again (2 × lease); the EvictionTask runs"
        " every 60 s (`evictionIntervalTimerInMs`); `/apps` is served from the"
        " read-only response cache refreshed every 30 s"
        " (`responseCacheUpdateIntervalMs`). A consumer adds its own fetch interval"
        " (30 s) and Ribbon's server-list refresh (30 s) on top. A killed client is"
        " gone no earlier than lease − renewal interval after the kill (it renewed"
        " then), so the spread here comes from where in its cycle it died.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--lease", type=int, default=30)
    parser.add_argument("--interval", type=int, default=10)
    args = parser.parse_args()
    with run_agent() as agent:
        figures = measure(agent.url, args.instances, args.lease, args.interval)
    text = report(figures, args.lease, args.interval)
    print(text)
    write_section("eureka-detection", text)


if __name__ == "__main__":
    main()
