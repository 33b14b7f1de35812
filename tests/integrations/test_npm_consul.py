"""The npm `consul` package (Node.js) works against waypost unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from waypost.testing import AgentProcess

HERE = Path(__file__).resolve().parent
NPM_DIR = HERE.parent.parent / ".cache" / "npm-consul"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js is not on this machine",
)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    modules = NPM_DIR / "node_modules"
    if not (modules / "consul").exists():
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "consul@2"],
            cwd=NPM_DIR,
            check=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
    return modules


def test_npm_consul_registers_discovers_and_watches(
    agent: AgentProcess, node_modules: Path
) -> None:
    result = subprocess.run(
        ["node", str(HERE / "npm_consul_client.js")],
        env={
            **os.environ,
            "NODE_PATH": str(node_modules),
            "AGENT_HOST": agent.host,
            "AGENT_PORT": str(agent.port),
        },
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["passing"] == ["api-1"]
    assert seen["catalog"] == [9000]
    assert seen["kv"] == "1"
    assert seen["members"] == 1
    assert seen["leader"].endswith(":8300")
    assert seen["watched"] == ["api-1", "api-2"]
    assert seen["after"] == ["api-2"]
