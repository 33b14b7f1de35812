"""DNS interface: queries/s and latency with dnsperf, and the codec choice.

    python bench/dns_bench.py [--seconds 10] [--quick] [--no-write]

One `waypost agent --dev` with a 10-instance service `web` (each instance its
own address). Debian's `dnsperf` (scripts/test installs it) sends each
workload for `--seconds` with 64 queries outstanding, over UDP (and one over
TCP). Then the per-query work of the two DNS libraries considered, dnslib
and dnspython: parse a query, build a 10-SRV reply with its A records, pack
it (the measurement behind waypost's choice of dnslib). Writes the "dns"
section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import environment, write_section

from waypost.testing import AgentProcess

INSTANCES = 10
OUTSTANDING = 64

#: (label, dnsperf query line, extra dnsperf flags)
WORKLOADS = [
    ("A, 10 instances, no EDNS0 (3 answers)", "web.service.consul A", []),
    ("A, 10 instances, EDNS0 (10 answers)", "web.service.consul A", ["-e", "-D"]),
    ("SRV, 10 instances, EDNS0 (10 + 10 A)", "web.service.consul SRV", ["-e", "-D"]),
    ("NXDOMAIN with SOA", "nosuch.service.consul A", []),
    ("node A", "bench.node.consul A", []),
    ("A over TCP, EDNS0", "web.service.consul A", ["-m", "tcp", "-e", "-D"]),
]


def seed(agent: AgentProcess) -> None:
    with httpx.Client(base_url=agent.url, timeout=30) as http:
        for i in range(INSTANCES):
            http.put(
                "/v1/agent/service/register",
                json={
                    "Name": "web",
                    "ID": f"web{i}",
                    "Port": 8000 + i,
                    "Address": f"10.0.0.{i + 1}",
                },
            ).raise_for_status()


HEADER = (
    "| workload | queries/s | avg ms | stddev ms | max ms | lost | reply bytes"
    " | agent CPU µs/query | queries per agent CPU-second |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (/proc; Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dnsperf(
    agent: AgentProcess, query: str, flags: list[str], seconds: float
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as data:
        data.write(query + "\n")
    try:
        done = subprocess.run(
            [
                "dnsperf", "-s", "127.0.0.1", "-p", str(agent.dns_port),
                "-d", data.name, "-l", str(seconds), "-q", str(OUTSTANDING), *flags,
            ],
            capture_output=True, text=True, timeout=seconds + 60,
        )  # fmt: skip
    finally:
        os.unlink(data.name)
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(out + done.stderr)

    def number(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else float("nan")

    return {
        "qps": number(r"Queries per second:\s+([\d.]+)"),
        "avg_ms": number(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
        "max_ms": number(r"max ([\d.]+)\)") * 1000,
        "stddev_ms": number(r"Latency StdDev \(s\):\s+([\d.]+)") * 1000,
        "lost": number(r"Queries lost:\s+(\d+)"),
        "size": number(r"response (\d+)"),
        "run_s": number(r"Run time \(s\):\s+([\d.]+)"),
    }


def codec() -> list[tuple[str, float]]:
    """Microseconds per query for each library: parse, build, pack."""
    import dns.message
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.IN.A
    import dns.rdtypes.IN.SRV
    import dns.rrset
    import dnslib

    wire = dns.message.make_query("web.service.consul.", "SRV", use_edns=0).to_wire()
    IN, SRV, A = dns.rdataclass.IN, dns.rdatatype.SRV, dns.rdatatype.A

    def with_dnspython() -> bytes:
        request = dns.message.from_wire(wire)
        reply = dns.message.make_response(request)
        answer = dns.rrset.RRset(request.question[0].name, IN, SRV)
        for i in range(INSTANCES):
            target = dns.name.from_text(f"0a0000{i + 1:02x}.addr.dc1.consul.")
            answer.add(dns.rdtypes.IN.SRV.SRV(IN, SRV, 1, 1, 8000 + i, target), 0)
            glue = dns.rrset.RRset(target, IN, A)
            glue.add(dns.rdtypes.IN.A.A(IN, A, f"10.0.0.{i + 1}"), 0)
            reply.additional.append(glue)
        reply.answer.append(answer)
        return reply.to_wire()

    def with_dnslib() -> bytes:
        request = dnslib.DNSRecord.parse(wire)
        reply = request.reply()
        for i in range(INSTANCES):
            target = f"0a0000{i + 1:02x}.addr.dc1.consul."
            record = dnslib.SRV(1, 1, 8000 + i, target)
            reply.add_answer(dnslib.RR(request.q.qname, dnslib.QTYPE.SRV, rdata=record))
            address = dnslib.A(f"10.0.0.{i + 1}")
            reply.add_ar(dnslib.RR(target, dnslib.QTYPE.A, rdata=address))
        return bytes(reply.pack())

    results = []
    for name, work in (("dnslib", with_dnslib), ("dnspython", with_dnspython)):
        work()
        best = min(timeit.repeat(work, number=500, repeat=7)) / 500
        results.append((name, best * 1e6))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="1 s each, a smoke run")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md")
    options = parser.parse_args()
    seconds = 1.0 if options.quick else options.seconds
    if shutil.which("dnsperf") is None:
        sys.exit(
            "dnsperf is not installed: apt-get install dnsperf (scripts/test does)"
        )
    load_start = os.getloadavg()[0]
    agent = AgentProcess(node="bench").start()
    rows = []
    try:
        seed(agent)
        assert agent.process is not None
        pid = agent.process.pid
        for label, query, flags in WORKLOADS:
            cpu_before = cpu_seconds(pid)
            figures = dnsperf(agent, query, flags, seconds)
            used = cpu_seconds(pid) - cpu_before
            # The agent's CPU per query: what a core costs, whatever else
            # shares the machine (throughput and latency depend on that).
            figures["cpu_us"] = used / max(figures["qps"] * figures["run_s"], 1) * 1e6
            rows.append((label, figures))
            print(
                f"{label:42s} {figures['qps']:9,.0f} q/s"
                f"  avg {figures['avg_ms']:6.2f} ms  max {figures['max_ms']:7.2f} ms"
                f"  lost {figures['lost']:.0f}"
                f"  agent CPU {figures['cpu_us']:.0f} µs/query",
                flush=True,
            )
    finally:
        agent.stop()
    codecs = codec()
    for name, micros in codecs:
        print(f"codec {name:10s} {micros:8.1f} µs per 10-SRV reply")
    load_end = os.getloadavg()[0]
    table = "\n".join(
        f"| {label} | {f['qps']:,.0f} | {f['avg_ms']:.2f} | {f['stddev_ms']:.2f}"
        f" | {f['max_ms']:.2f} | {f['lost']:.0f} | {f['size']:.0f}"
        f" | {f['cpu_us']:.0f} | {1e6 / f['cpu_us']:,.0f} |"
        for label, f in rows
    )
    fastest = min(micros for _, micros in codecs)
    codec_rows = "\n".join(
        f"| {name} | {micros:,.0f} | {micros / fastest:.1f}× |"
        for name, micros in codecs
    )
    loads = f"load average {load_start:.1f} at start, {load_end:.1f} at end"
    text = f"""### DNS interface ({environment()}, {loads})

`python bench/dns_bench.py --seconds {seconds:g}`. One `waypost agent --dev`, a
service of {INSTANCES} instances (each its own address); Debian's dnsperf,
{OUTSTANDING} queries outstanding, {seconds:g} s per workload, UDP unless said.
Throughput and latency depend on what else runs on the 2 cores (see the load
average); the agent's CPU per query (from /proc) depends much less on it.

{HEADER}
{table}

The codec (why dnslib): parse a query, build a reply of {INSTANCES} SRV records
with their A records, pack it; best of 7 rounds of 500, in-process.

| library | µs per reply | × fastest |
| --- | ---: | ---: |
{codec_rows}
"""
    print(text)
    if not options.no_write:
        write_section("dns", text)


if __name__ == "__main__":
    main()
