"""HTTP benchmark of one waypost agent process, beside bare reference servers.

    python bench/http_bench.py [--duration 10] [--quick]

Measures with wrk (Debian's `wrk`), in one run on this machine:
- reads/s of /v1/health/service/web?passing with 10 instances, against a bare
  uvicorn+raw-ASGI app and a minimal uvloop+httptools server returning the
  same bytes;
- durable registrations/s (64 connections) and the same with --dev;
- TTL passes/s.
Writes its section of bench/RESULTS.md (earlier runs kept below).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import environment, write_section

from waypost.testing import AgentProcess, wait_until

HERE = Path(__file__).resolve().parent

REGISTER_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"Name":"bench","ID":"bench-' .. counter ..
    '","Port":8080,"Tags":["v1"],"Meta":{"zone":"a"}}'
  return wrk.format("PUT", "/v1/agent/service/register",
    {["Content-Type"]="application/json"}, body)
end
"""

TTL_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v1/agent/check/pass/service:ttl-" .. (counter % %d))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrk(
    url: str,
    *,
    connections: int,
    duration: int,
    script: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        if script:
            lua.write(script)
    if script:
        args += ["-s", lua.name]
    done = subprocess.run([*args, url], capture_output=True, text=True, check=True)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": rps,
        "non2xx": float(bad.group(1)) if bad else 0.0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "socket_errors": 1.0 if errors else 0.0,
    }


def start_bare(kind: str, body_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "_bare_servers.py"),
            kind,
            str(port),
            str(body_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/").status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=15)
    return proc, url


def seed_reads(agent: AgentProcess, token: str = "") -> bytes:
    headers = {"X-Consul-Token": token} if token else {}
    with httpx.Client(base_url=agent.url, headers=headers) as http:
        for n in range(10):
            body = {
                "Name": "web",
                "ID": f"web-{n}",
                "Address": f"10.0.0.{n}",
                "Port": 8080,
                "Tags": ["v1", "primary"],
                "Meta": {"zone": "a"},
                "Check": {"TTL": "1h", "Status": "passing"},
            }
            http.put("/v1/agent/service/register", json=body).raise_for_status()
        return http.get("/v1/health/service/web?passing").content


def seed_ttl(agent: AgentProcess, count: int) -> None:
    with httpx.Client(base_url=agent.url) as http:
        for n in range(count):
            body = {"Name": "ttl", "ID": f"ttl-{n}", "Check": {"TTL": "1h"}}
            http.put("/v1/agent/service/register", json=body).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 s runs (smoke)")
    args = parser.parse_args()
    duration = 2 if args.quick else args.duration
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    results: dict[str, dict[str, float]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="waypost-bench-"))

    dev = AgentProcess(dev=True, node="bench").start()
    durable = AgentProcess(dev=False, data_dir=scratch / "data", node="bench").start()
    try:
        body = seed_reads(dev)
        body_file = scratch / "body.json"
        body_file.write_bytes(body)
        assert len(json.loads(body)) == 10
        read_path = "/v1/health/service/web?passing"
        print(f"reads: {len(body)} B body, wrk -c32 -d{duration}s", flush=True)
        results["reads waypost"] = wrk(
            dev.url + read_path, connections=32, duration=duration
        )
        for kind in ("uvicorn", "httptools"):
            proc, url = start_bare(kind, body_file)
            try:
                results[f"reads bare {kind}"] = wrk(
                    url + read_path, connections=32, duration=duration
                )
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
        print("registrations: wrk -c64", flush=True)
        results["register durable"] = wrk(
            durable.url, connections=64, duration=duration, script=REGISTER_LUA
        )
        results["register dev"] = wrk(
            dev.url, connections=64, duration=duration, script=REGISTER_LUA
        )
        print("ttl passes: 1000 checks, wrk -c64", flush=True)
        seed_ttl(dev, 1000)
        results["ttl pass"] = wrk(
            dev.url,
            connections=64,
            duration=duration,
            script=TTL_LUA.replace("%d", "1000"),
        )
        self_info = httpx.get(durable.url + "/v1/agent/self").json()["Stats"]["waypost"]
    finally:
        dev.stop()
        durable.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    for name, r in results.items():
        print(
            f"{name:24s} {r['rps']:>10.0f} req/s  p99 {r['p99_ms']:.2f} ms"
            f"  non-2xx {r['non2xx']:.0f}"
        )
    write_section("http", render(results, duration, self_info))


def render(
    results: dict[str, dict[str, float]], duration: int, info: dict[str, object]
) -> str:
    reads = results["reads waypost"]["rps"]
    uv = results["reads bare uvicorn"]["rps"]
    ht = results["reads bare httptools"]["rps"]
    read_ratio = f"{reads / uv:.2f}× uvicorn, {reads / ht:.2f}× httptools"

    def row(name: str, target: str, ratio: str = "") -> str:
        r = results[name]
        return (
            f"| {name} | {r['rps']:,.0f} | {r['p99_ms']:.2f} | {r['non2xx']:.0f} |"
            f" {ratio} | {target} |"
        )

    return textwrap.dedent(
        f"""\
        ### HTTP: one agent process ({environment()})

        wrk -t1, {duration} s per line; reads use -c32, writes -c64.
        Durable registrations: {info.get("Counts")} in the store after the run.

        | workload | req/s | p99 ms | non-2xx | ratio | target |
        | --- | --- | --- | --- | --- | --- |
        {row("reads waypost", "≥ 0.8× bare uvicorn", read_ratio)}
        {row("reads bare uvicorn", "reference")}
        {row("reads bare httptools", "ceiling")}
        {row("register durable", "≥ 5,000/s")}
        {row("register dev", "≥ 30,000/s")}
        {row("ttl pass", "≥ 20,000/s")}
        """
    )


if __name__ == "__main__":
    main()
