"""`waypost agent`'s HTTPS, TLS and limit flags: documented, read from the
environment like every agent flag, and refused with a usage error when wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from waypost import cli_listeners
from waypost.testing import run_agent

README = Path(__file__).resolve().parents[2] / "README.md"


def production_section() -> str:
    return (
        README.read_text().split("## Running in production", 1)[1].split("\n## ", 1)[0]
    )


def test_every_listener_flag_is_in_running_in_production() -> None:
    section = production_section()
    flags = [flag for flag, *_ in cli_listeners._LIMITS]
    flags += [flag for flag, _ in cli_listeners._TLS]
    flags += ["--https-addr"]
    assert [f for f in flags if f"`{f}`" not in section] == []


def test_every_dns_flag_is_in_the_dns_section() -> None:
    section = README.read_text().split("\n## DNS\n", 1)[1].split("\n## ", 1)[0]
    help_text = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flags = set(
        re.findall(r"(--(?:dns-[a-z-]+|domain|alt-domain|recursor))", help_text)
    )
    assert len(flags) >= 10
    assert sorted(f for f in flags if f"`{f}`" not in section) == []


def test_every_acl_flag_is_documented_in_the_acl_section() -> None:
    section = production_section().split("### ACLs", 1)[1].split("\n### ", 1)[0]
    usage = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    flags = set(re.findall(r"--acl-[a-z-]+", usage))
    assert flags == {
        "--acl-enabled",
        "--acl-default-policy",
        "--acl-initial-management",
        "--acl-enable-token-persistence",
    }
    for flag in flags:
        assert f"`{flag}`" in section, flag


def test_limits_come_from_waypost_environment_variables() -> None:
    env = {"WAYPOST_HTTP_MAX_URL_BYTES": "100", "WAYPOST_HTTP_HEADER_TIMEOUT": "2s"}
    with run_agent(env=env) as agent:
        response = httpx.get(f"{agent.url}/v1/kv/{'k' * 100}")
    assert response.status_code == 414
    assert "the limit is 100 bytes" in response.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http-header-timeout", "soon"], "'soon' is not a duration"),
        (["--http-idle-timeout", "-1s"], "'-1s' is negative"),
        (["--http-max-url-bytes", "70000"], "70000 is not in the range"),
        (["--https-addr", "nowhere"], "'nowhere' is not HOST:PORT"),
        (["--dns-addr", "nowhere"], "'nowhere' is not HOST:PORT"),
        (["--dns-service-ttl", "web"], "'web' is not NAME=DURATION"),
        (["--dns-service-ttl", "web=soon"], "'soon' is not a duration"),
        (["--dns-node-ttl", "-5s"], "'-5s' is not a duration"),
        (["--recursor", "10.0.0.1:99999"], "'10.0.0.1:99999' is not HOST[:PORT]"),
    ],
)
def test_wrong_values_are_usage_errors(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--dev", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr
