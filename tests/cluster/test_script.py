"""`scripts/cluster`, the README's one-machine recipe, really starts a cluster."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cluster.support import needs_etcd

REPO = Path(__file__).resolve().parents[2]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _free_block(size: int) -> int:
    """A base port with `size` free ports above it (checked, not reserved).

    Taken below the kernel's ephemeral range: a block picked inside it can be
    handed to any outgoing connection before the script binds it.
    """
    low, _ = _ephemeral_range()
    while True:
        base = random.randrange(10000, max(10001, low - size))
        try:
            for offset in range(size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@needs_etcd
@pytest.mark.timeout(180)
def test_the_cluster_script_starts_three_agents_on_three_etcd_members(
    tmp_path: Path,
) -> None:
    agents = _free_block(3)
    etcd = _free_block(22)
    env = {
        **os.environ,
        "WAYPOST_CLUSTER_PORT": str(agents),
        "WAYPOST_CLUSTER_DNS_PORT": str(_free_block(3)),
        "WAYPOST_CLUSTER_ETCD_PORT": str(etcd),
        "WAYPOST_CLUSTER_DIR": str(tmp_path / "cluster"),
    }
    script = subprocess.Popen(
        ["bash", "scripts/cluster", "--member-lease", "3s"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Ctrl-C as in a terminal. A shell started in the background (`cmd &`,
        # nohup, some CI runners) ignores SIGINT, every process under it
        # inherits that, and bash cannot trap a signal ignored on entry.
        preexec_fn=_sigint_as_in_a_terminal,
    )
    try:
        assert script.stderr is not None
        lines = []
        deadline = time.monotonic() + 120
        for line in script.stderr:
            lines.append(line)
            if "cluster up" in line or time.monotonic() > deadline:
                break
        assert any("cluster up" in line for line in lines), "".join(lines)
        urls = [f"http://127.0.0.1:{agents + i}" for i in range(3)]
        put = httpx.put(f"{urls[0]}/v1/kv/recipe", content=b"works", timeout=10)
        assert put.json() is True
        got = httpx.get(f"{urls[2]}/v1/kv/recipe?consistent&raw", timeout=10)
        assert got.content == b"works"
        members = httpx.get(f"{urls[1]}/v1/agent/members", timeout=10).json()
        assert sorted(m["Name"] for m in members) == ["node0", "node1", "node2"]
    finally:
        script.send_signal(signal.SIGINT)
        try:
            script.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
            logs = "".join(
                f"--- {log.name}\n{log.read_text()}"
                for log in sorted((tmp_path / "cluster").glob("agent*.log"))
            )
            pytest.fail(f"scripts/cluster still ran 60 s after Ctrl-C:\n{logs}")
        finally:
            assert script.stderr is not None
            script.stderr.close()
    # Every agent and etcd member it started is gone.
    for port in (agents, agents + 1, agents + 2, etcd, etcd + 10, etcd + 20):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.ConnectError:
            continue
        pytest.fail(f"something still listens on {port}")
