"""The DNS interface with `dig` (Debian's dnsutils, installed by scripts/test):
the lines README "DNS" tells people to copy."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.dns.support import register
from waypost.testing import AgentProcess

pytestmark = pytest.mark.skipif(
    shutil.which("dig") is None,
    reason="dig is not installed (scripts/test installs Debian's dnsutils)",
)

README = Path(__file__).resolve().parents[2] / "README.md"


def dig(agent: AgentProcess, *args: str) -> str:
    result = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(agent.dns_port), "+time=5", "+tries=1", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_dig_short_answers(dns_agent: AgentProcess, api: httpx.Client) -> None:
    register(api, Name="digweb", ID="d1", Port=8080, Address="10.20.0.1", Tags=["v1"])
    register(api, Name="digweb", ID="d2", Port=8081)
    assert set(dig(dns_agent, "digweb.service.consul", "+short").split()) == {
        "10.20.0.1",
        "127.0.0.1",
    }
    assert set(
        dig(dns_agent, "digweb.service.consul", "SRV", "+short").splitlines()
    ) == {
        "1 1 8080 0a140001.addr.dc1.consul.",
        "1 1 8081 waypost-test.node.dc1.consul.",
    }
    assert dig(dns_agent, "v1.digweb.service.consul", "+short").split() == ["10.20.0.1"]
    assert (
        dig(dns_agent, "_digweb._v1.service.consul", "SRV", "+short").split()[2]
        == "8080"
    )
    assert dig(dns_agent, "waypost-test.node.consul", "+short", "+tcp").split() == [
        "127.0.0.1"
    ]


def test_dig_sees_nxdomain_with_the_soa(dns_agent: AgentProcess) -> None:
    out = dig(dns_agent, "nosuch.service.consul")
    assert "status: NXDOMAIN" in out
    assert re.search(r"flags: qr aa rd;", out)
    assert re.search(
        r"consul\.\s+0\s+IN\s+SOA\s+ns\.consul\. hostmaster\.consul\."
        r" \d+ 3600 600 86400 0",
        out,
    )
    assert "status: REFUSED" in dig(dns_agent, "example.com")


def test_the_readme_dig_lines_work(dns_agent: AgentProcess, api: httpx.Client) -> None:
    """Every `dig @127.0.0.1 -p 8600 …` line of README "DNS", on this agent's
    port, answers NOERROR (their services registered first)."""
    section = README.read_text().split("\n## DNS\n", 1)[1].split("\n## ", 1)[0]
    lines = re.findall(r"^dig @127\.0\.0\.1 -p 8600 (.+)$", section, re.M)
    assert len(lines) >= 5
    register(
        api, Name="web", ID="readme-web", Port=8080, Address="10.21.0.1", Tags=["v1"]
    )
    for line in lines:
        args = line.split("#")[0].split()
        out = dig(dns_agent, *args)
        assert "status: NOERROR" in out or "+short" in args, line
        if "+short" in args:
            assert out.strip(), line
