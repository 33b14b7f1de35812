"""SIGTERM ends a registered process cleanly: deregistered, exit status 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import httpx
import pytest

from waypost.testing import AgentProcess, wait_until

SYNC = """
import sys, time
from waypost.client import Client
with Client(sys.argv[1]) as client:
    with client.register("sig", port=1, service_id=sys.argv[2]):
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
"""

ASYNC = """
import asyncio, sys
from waypost.client import AsyncClient
async def main():
    async with AsyncClient(sys.argv[1]) as client:
        async with client.register("sig", port=1, service_id=sys.argv[2]):
            print("ready", flush=True)
            await asyncio.Event().wait()
asyncio.run(main())
"""


@pytest.mark.parametrize("script", [SYNC, ASYNC], ids=["sync", "async"])
def test_sigterm_deregisters_and_exits_zero(
    script: str, shared_agent: AgentProcess, unique: str
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), shared_agent.address, unique],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    services = f"{shared_agent.url}/v1/agent/services"
    assert unique in httpx.get(services).json()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    wait_until(lambda: unique not in httpx.get(services).json(), timeout=2)
