"""The Flask and FastAPI examples register on start and deregister on SIGTERM."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import free_port
from waypost.testing import AgentProcess, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(
    path: Path, name: str, agent: AgentProcess, *, exit_code: int = 0
) -> tuple[dict[str, object], int]:
    """Start the example, wait until it is passing, call /peers, SIGTERM it."""
    port = free_port()
    env = {**os.environ, "WAYPOST_HTTP_ADDR": agent.address, "PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, str(path)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    health = f"{agent.url}/v1/health/service/{name}?passing"
    try:
        wait_until(lambda: httpx.get(health).json(), timeout=20)
        (entry,) = httpx.get(health).json()
        assert entry["Service"]["Port"] == port
        assert entry["Service"]["Tags"] == ["web"]

        def peers() -> dict[str, object] | None:
            try:
                return dict(httpx.get(f"http://127.0.0.1:{port}/peers").json())
            except httpx.TransportError:
                return None

        answer = wait_until(peers, timeout=20)
        assert isinstance(answer, dict)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == exit_code, stderr
    assert httpx.get(health).json() == []
    return answer, port


def test_flask_example_registers_serves_peers_and_deregisters_on_sigterm(
    agent: AgentProcess,
) -> None:
    answer, port = run_example(EXAMPLES / "flask_app.py", "flask-example", agent)
    assert answer == {"peers": [f"127.0.0.1:{port}"], "stale": False}


@pytest.mark.skipif(
    importlib.util.find_spec("fastapi") is None, reason="fastapi is not installed"
)
def test_fastapi_example_registers_in_its_lifespan_and_deregisters_on_sigterm(
    agent: AgentProcess,
) -> None:
    # uvicorn shuts down (running the lifespan's deregistration), then
    # re-raises the SIGTERM it caught, so the process ends by that signal.
    answer, port = run_example(
        EXAMPLES / "fastapi_app.py",
        "fastapi-example",
        agent,
        exit_code=-signal.SIGTERM,
    )
    assert answer["peers"] == [f"127.0.0.1:{port}"]
    assert answer["sticky"] == f"127.0.0.1:{port}"
