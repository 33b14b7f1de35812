"""Acknowledged means durable: a real agent killed with SIGKILL loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from waypost.testing import AgentProcess

BURST = 900
KILL_AFTER_ACKS = 520
CLIENTS = 64


async def _register_burst(agent: AgentProcess, acked: list[str]) -> None:
    """64 clients, each registering one instance after another.

    Not 900 requests queued at once in one httpx pool: httpcore scans every
    queued request against every connection on each change (quadratic), and
    on a loaded machine the test process spent the whole timeout there
    before sending anything, so the agent was never killed (1 run in 5).
    The agent sees the same 64 concurrent writers either way.
    """
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    numbers = iter(range(BURST))
    async with httpx.AsyncClient(base_url=agent.url, limits=limits, timeout=30) as http:
        killed = asyncio.Event()

        async def register(n: int) -> None:
            body = {"Name": "burst", "ID": f"burst-{n}", "Port": 1000 + n % 50000}
            try:
                response = await http.put("/v1/agent/service/register", json=body)
            except httpx.HTTPError:
                return  # in flight when the process died: not acknowledged
            if response.status_code == 200:
                acked.append(body["ID"])
                if len(acked) >= KILL_AFTER_ACKS and not killed.is_set():
                    killed.set()
                    assert agent.process is not None
                    agent.process.send_signal(signal.SIGKILL)

        async def client() -> None:
            for n in numbers:  # shared: each number is registered once
                await register(n)

        await asyncio.gather(*(client() for _ in range(CLIENTS)))


def test_every_acknowledged_registration_survives_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    agent = AgentProcess(dev=False, data_dir=data_dir).start()
    acked: list[str] = []
    try:
        asyncio.run(_register_burst(agent, acked))
    finally:
        code = agent.stop()
    assert code == -signal.SIGKILL, "the agent must have died mid-burst"
    assert len(acked) >= 500
    restarted = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        services = httpx.get(f"{restarted.url}/v1/agent/services", timeout=10).json()
    finally:
        assert restarted.stop() == 0
    lost = set(acked) - set(services)
    assert not lost, f"{len(lost)} acknowledged registrations lost"


def test_check_status_survives_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    agent = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        httpx.put(
            f"{agent.url}/v1/agent/service/register",
            json={"Name": "kept", "Port": 80, "Check": {"TTL": "60s"}},
        ).raise_for_status()
        httpx.put(f"{agent.url}/v1/agent/check/pass/service:kept").raise_for_status()
    finally:
        agent.kill()
    restarted = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        checks = httpx.get(f"{restarted.url}/v1/agent/checks").json()
    finally:
        restarted.stop()
    assert checks["service:kept"]["Status"] == "passing"


def test_index_does_not_go_backwards_after_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    agent = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        url = f"{agent.url}/v1/agent/service/register"
        httpx.put(url, json={"Name": "gone", "Port": 1}).raise_for_status()
        httpx.put(f"{agent.url}/v1/agent/service/deregister/gone").raise_for_status()
        before = int(
            httpx.get(f"{agent.url}/v1/health/service/gone").headers["X-Consul-Index"]
        )
    finally:
        assert agent.stop() == 0
    restarted = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        after = int(
            httpx.get(f"{restarted.url}/v1/health/service/gone").headers[
                "X-Consul-Index"
            ]
        )
    finally:
        restarted.stop()
    assert after >= before


def _start_failure(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "waypost", "agent", *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_second_agent_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        result = _start_failure(
            ["--data-dir", str(data_dir), "--http-addr", "127.0.0.1:0"]
        )
    finally:
        first.stop()
    assert result.returncode != 0
    assert "locked by another waypost agent" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_corrupt_database_stops_start_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "state.db").write_bytes(b"this is not a database" * 100)
    result = _start_failure(["--data-dir", str(data_dir), "--http-addr", "127.0.0.1:0"])
    assert result.returncode != 0
    assert "cannot open" in result.stderr or "cannot read" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # It never started empty over the data it could not read.
    assert (data_dir / "state.db").read_bytes().startswith(b"this is not")


def test_corrupt_row_stops_start_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    agent = AgentProcess(dev=False, data_dir=data_dir).start()
    agent.stop()
    with sqlite3.connect(data_dir / "state.db") as db:
        db.execute("INSERT INTO rows VALUES ('services', 'x', x'c1c1c1')")
    result = _start_failure(["--data-dir", str(data_dir), "--http-addr", "127.0.0.1:0"])
    assert result.returncode != 0
    assert "corrupt" in result.stderr


def test_data_dir_that_is_a_file_stops_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _start_failure(
        ["--data-dir", str(blocker / "data"), "--http-addr", "127.0.0.1:0"]
    )
    assert result.returncode != 0
    assert "cannot use data dir" in result.stderr


def test_port_in_use_stops_start_up(shared_agent: AgentProcess) -> None:
    result = _start_failure(["--dev", "--http-addr", shared_agent.address])
    assert result.returncode != 0
    assert "cannot listen on" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_cleanly_with_exit_0(tmp_path: Path, sig: int) -> None:
    agent = AgentProcess(dev=False, data_dir=tmp_path / "data").start()
    httpx.put(f"{agent.url}/v1/agent/service/register", json={"Name": "s", "Port": 1})
    assert agent.stop(sig) == 0
    assert "waypost agent stopped" in agent.log
    assert os.path.exists(tmp_path / "data" / "state.db")
