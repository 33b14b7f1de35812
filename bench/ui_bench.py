"""The dashboard at scale: 1,000 services, 10,000 instances.

    python bench/ui_bench.py [--services 1000] [--per-service 10] [--rounds 3]

In one run on this machine, against one `waypost agent --dev`:
- the services page rendered in headless chromium (Debian's, through
  Playwright): from navigation start to every service row in the table,
  cold (new browser context) each time;
- the agent's read throughput (wrk on /v1/health/service/<one of them>)
  with no dashboard open and with 10 dashboards open (10 pages of headless
  chromium on the services page, each holding its blocking query),
  interleaved round by round so drift on a shared machine hits both alike.
Writes its section of bench/RESULTS.md (earlier runs kept below).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import environment, write_section
from http_bench import wrk
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP

from waypost.testing import AgentProcess

DASHBOARDS = 10


def populate(url: str, services: int, per_service: int) -> float:
    """Catalog registrations: `per_service` instances of each service spread
    over 100 nodes, one check each (every 7th critical)."""

    def one(i: int) -> None:
        service, instance = divmod(i, per_service)
        node = f"node-{i % 100:03d}"
        sid = f"svc-{service:04d}-{instance}"
        body = {
            "Node": node,
            "Address": f"10.1.{i % 100}.1",
            "Service": {
                "Service": f"svc-{service:04d}",
                "ID": sid,
                "Port": 8000 + instance,
                "Tags": [f"team-{service % 20}", "v1" if instance % 2 else "v2"],
            },
            "Check": {
                "CheckID": f"check-{sid}",
                "ServiceID": sid,
                "Status": "critical" if i % 7 == 0 else "passing",
            },
        }
        response = client.put("/v1/catalog/register", json=body)
        response.raise_for_status()

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=16)
    with (
        httpx.Client(base_url=url, timeout=60, limits=limits) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        list(pool.map(one, range(services * per_service)))
    return time.perf_counter() - started


#: The page is rendered: its first page of rows (100) is in the table and
#: the count names every service of the catalog. The predicate runs at each
#: animation frame and keeps the page's clock at the first frame it holds.
RENDERED = (
    "(window.renderedAt ??= ("
    "document.querySelectorAll('#svc-rows tr[data-service]').length >= 100"
    " && document.getElementById('svc-count').textContent.startsWith('{total} ')"
    " ? performance.now() : undefined)) !== undefined"
)


def render_once(browser: Any, url: str, services: int) -> dict[str, float]:
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(f"{url}/ui/#/services")
        page.wait_for_function(
            RENDERED.format(total=services + 1), polling="raf", timeout=30_000
        )
        wall = time.perf_counter() - started
        in_page = page.evaluate("window.renderedAt") / 1000
        return {"wall": wall, "in_page": in_page}
    finally:
        context.close()


def open_dashboards(browser: Any, url: str, services: int) -> list[Any]:
    """Ten operators' browsers (a context each: a browser holds at most six
    connections per host, and each dashboard parks one)."""
    contexts = []
    for _ in range(DASHBOARDS):
        context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
        page = context.new_page()
        page.goto(f"{url}/ui/#/services")
        page.wait_for_function(RENDERED.format(total=services + 1), timeout=60_000)
        contexts.append(context)
    return contexts


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def blocking_now(url: str) -> float:
    metrics = httpx.get(f"{url}/v1/agent/metrics").json()
    return next(
        g["Value"]
        for g in metrics["Gauges"]
        if g["Name"] == "consul.rpc.queries_blocking"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--per-service", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    agent = AgentProcess(node="bench-ui", extra_args=["--self-preservation", "off"])
    agent.start()
    try:
        url = agent.url
        took = populate(url, args.services, args.per_service)
        instances = args.services * args.per_service
        print(f"registered {instances} instances in {took:.1f} s")
        started = time.perf_counter()
        summary = httpx.get(f"{url}/v1/internal/ui/services")
        summary_ms = (time.perf_counter() - started) * 1000
        summary_kib = len(summary.content) / 1024
        print(f"/v1/internal/ui/services: {summary_ms:.0f} ms, {summary_kib:.0f} KiB")
        # One check changes: only that service's row is computed again.
        changed = {
            "Node": "node-001",
            "Address": "10.1.1.1",
            "SkipNodeUpdate": True,
            "Check": {
                "CheckID": "check-svc-0000-1",
                "ServiceID": "svc-0000-1",
                "Status": "warning",
            },
        }
        httpx.put(f"{url}/v1/catalog/register", json=changed).raise_for_status()
        started = time.perf_counter()
        httpx.get(f"{url}/v1/internal/ui/services").raise_for_status()
        after_change_ms = (time.perf_counter() - started) * 1000
        print(f"/v1/internal/ui/services after one change: {after_change_ms:.0f} ms")
        read_url = f"{url}/v1/health/service/svc-0500"
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                render_once(browser, url, args.services)  # warm the agent's cache
                renders = [
                    render_once(browser, url, args.services)
                    for _ in range(args.renders)
                ]
                for r in renders:
                    wall, in_page = r["wall"], r["in_page"]
                    print(f"services page: {wall:.3f} s wall, {in_page:.3f} s in page")
                without: list[float] = []
                with_ui: list[float] = []
                blocking = 0.0
                idle: list[float] = []
                cpu_base: list[float] = []
                cpu_ui: list[float] = []
                assert agent.process is not None
                pid = agent.process.pid
                for round_ in range(args.rounds):
                    # ABBA: even rounds measure without first, odd rounds
                    # with first, so a trend in the machine's load cancels.
                    order = (False, True) if round_ % 2 == 0 else (True, False)
                    for dashboards in order:
                        contexts = (
                            open_dashboards(browser, url, args.services)
                            if dashboards
                            else []
                        )
                        if dashboards:
                            blocking = blocking_now(url)
                            before = cpu_seconds(pid)
                            time.sleep(args.duration)  # idle: what do they cost?
                            idle.append(cpu_seconds(pid) - before)
                        before = cpu_seconds(pid)
                        result = wrk(
                            read_url,
                            connections=args.connections,
                            duration=args.duration,
                        )
                        used = cpu_seconds(pid) - before
                        per_read = used / (result["rps"] * args.duration) * 1e6
                        (with_ui if dashboards else without).append(result["rps"])
                        (cpu_ui if dashboards else cpu_base).append(per_read)
                        for context in contexts:
                            context.close()
                    print(
                        f"round {round_ + 1}: {without[-1]:.0f} reads/s without,"
                        f" {with_ui[-1]:.0f} with {DASHBOARDS} dashboards"
                        f" ({blocking:.0f} blocking queries parked); agent CPU per"
                        f" read {cpu_base[-1]:.1f} µs without, {cpu_ui[-1]:.1f} with"
                    )
            finally:
                browser.close()
    finally:
        agent.stop()

    walls = [r["wall"] for r in renders]
    pages = [r["in_page"] for r in renders]
    base_median = statistics.median(without)
    ui_median = statistics.median(with_ui)
    drop = (1 - ui_median / base_median) * 100
    base_cpu, ui_cpu = statistics.median(cpu_base), statistics.median(cpu_ui)
    chromium = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    runs = ", ".join
    command = (
        f"python bench/ui_bench.py --services {args.services}"
        f" --per-service {args.per_service} --rounds {args.rounds}"
        f" --duration {args.duration}"
    )
    rows = [
        (
            f"services page, navigation → rendered: the first 100 rows in the"
            f' table and "{args.services + 1} services" counted (cold context,'
            f" {args.renders} runs)",
            f"median {statistics.median(walls):.3f} s wall,"
            f" {statistics.median(pages):.3f} s in page (performance.now() at the"
            " first animation frame showing them);"
            f" max {max(walls):.3f} s; runs {runs(f'{w:.3f}' for w in walls)}",
        ),
        (
            "`/v1/internal/ui/services` (the whole catalog's summary), first read",
            f"{summary_ms:.0f} ms, {summary_kib:.0f} KiB",
        ),
        (
            "the same after one check changed (one row computed again)",
            f"{after_change_ms:.0f} ms",
        ),
        (
            f"reads/s, `/v1/health/service/svc-0500` (10 instances), wrk"
            f" {args.connections} connections × {args.duration} s, no dashboard",
            f"{runs(f'{x:.0f}' for x in without)} (median {base_median:.0f})",
        ),
        (
            f"same, {DASHBOARDS} dashboards open on the services page"
            f" ({blocking:.0f} blocking queries parked)",
            f"{runs(f'{x:.0f}' for x in with_ui)} (median {ui_median:.0f})",
        ),
        (
            f"change in read throughput with {DASHBOARDS} dashboards open (medians)",
            f"{-drop:+.1f} %",
        ),
        (
            "agent CPU per read (its user + system time ÷ reads), no dashboard",
            f"{runs(f'{x:.1f}' for x in cpu_base)} µs (median {base_cpu:.1f})",
        ),
        (
            f"same, {DASHBOARDS} dashboards open",
            f"{runs(f'{x:.1f}' for x in cpu_ui)} µs (median {ui_cpu:.1f};"
            f" {(ui_cpu / base_cpu - 1) * 100:+.1f} %)",
        ),
        (
            f"agent CPU while {DASHBOARDS} dashboards sit open, no change, per"
            f" {args.duration} s",
            f"{runs(f'{x * 1000:.0f}' for x in idle)} ms",
        ),
    ]
    version = metadata.version("playwright")
    text = "\n".join(
        [
            f"### {environment()}, {chromium}, playwright {version}",
            "",
            f"`{command}`: {args.services:,} services, {instances:,} instances"
            " on 100 nodes (catalog registrations, one check each, every 7th"
            " critical), one `waypost agent --dev`; wrk and chromium on the"
            " same 2 cores, shared with other work.",
            "",
            "| measure | figure |",
            "| --- | --- |",
            *(f"| {what} | {figure} |" for what, figure in rows),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        write_section("ui-bench", "## The dashboard at scale (issue 16)\n\n" + text)


if __name__ == "__main__":
    main()
