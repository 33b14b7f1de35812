"""The seed's Flask example runs against waypost with the real python-consul.

python-consul and py-consul both install the module `consul`, so the example
runs in a venv of its own, created once (under .cache/) and reused.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from tests.conftest import TLSFiles
from waypost.testing import AgentProcess, run_agent, wait_until

ROOT = Path(__file__).resolve().parent.parent
SEED_VENV = ROOT / ".cache" / "seed-venv"
EXAMPLE = ROOT / "examples" / "seed_flask_app.py"


@pytest.fixture(scope="session")
def seed_python() -> Path:
    python = SEED_VENV / "bin" / "python"
    marker = SEED_VENV / ".ready"
    if not marker.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(SEED_VENV)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "python-consul==1.1.0",
                "flask",
                "requests",
            ],
            check=True,
            timeout=600,
        )
        marker.write_text("ok")
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_seed_flask_app_registers_heartbeats_and_deregisters(
    seed_python: Path, agent: AgentProcess
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "CONSUL_HOST": agent.host,
        "CONSUL_PORT": str(agent.port),
        "PORT": str(port),
    }
    app = subprocess.Popen(
        [str(seed_python), str(EXAMPLE)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = httpx.Client(base_url=agent.url, timeout=10)
    try:

        def passing() -> list[object]:
            return api.get("/v1/health/service/example-service?passing").json()

        entries = wait_until(passing, timeout=30)
        assert isinstance(entries, list)
        service = entries[0]["Service"]  # type: ignore[index]
        assert service["ID"] == f"example-service-{port}"
        assert service["Port"] == port
        assert service["Tags"] == ["web"]

        # The seed's exact call: 8080 becomes the ID, and we say so.
        seed = httpx.get(f"http://127.0.0.1:{port}/register", timeout=10)
        assert seed.text == "Service registered"
        services = api.get("/v1/agent/services").json()
        assert services["8080"]["Service"] == "example-service"
        agent.wait_for_log("did you mean port=8080?")
    finally:
        app.send_signal(signal.SIGTERM)
        code = app.wait(15)
        assert app.stderr is not None
        app.stderr.close()
        api.close()
    assert code == 0
    services = httpx.get(f"{agent.url}/v1/agent/services").json()
    assert f"example-service-{port}" not in services


def test_seed_cli_line_starts_an_agent(tmp_path: Path) -> None:
    """`consul agent -server -bootstrap -node localhost`, spelled waypost."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "waypost",
            "agent",
            "-server",
            "-bootstrap",
            "-node",
            "localhost",
            "-http-port",
            str(port),
            "-data-dir",
            str(tmp_path),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v1/status/leader").is_success
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=20)
        me = httpx.get(f"http://127.0.0.1:{port}/v1/agent/self").json()
        assert me["Config"]["NodeName"] == "localhost"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert process.stderr is not None
        process.stderr.close()


# The seed's python-consul 1.1.0 calls over HTTPS, `verify=` a CA file (and,
# for mutual TLS, `cert=`): the argument python-consul has for it.
SEED_OVER_TLS = """
import json, sys
import consul

host, port, ca, cert, key = sys.argv[1:]
client = consul.Consul(
    host=host, port=int(port), scheme="https", verify=ca,
    cert=(cert, key) if cert else None,
)
client.agent.service.register(
    "example-service", 8080, address="localhost", tags=["web"]
)
_, entries = client.health.service("example-service")
client.agent.service.deregister("8080")
_, after = client.health.service("example-service")
print(json.dumps({"ids": [e["Service"]["ID"] for e in entries], "after": after}))
"""


def _seed_over_tls(
    seed_python: Path, agent: AgentProcess, ca: str, cert: str = "", key: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(seed_python), "-c", SEED_OVER_TLS, agent.host, str(agent.https_port),
         ca, cert, key],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_seed_python_consul_works_over_https_with_a_ca_file(
    seed_python: Path, tls_files: TLSFiles
) -> None:
    with run_agent(extra_args=tls_files.agent_args()) as agent:
        done = _seed_over_tls(seed_python, agent, tls_files.ca)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ids": ["8080"], "after": []}


def test_seed_python_consul_needs_its_client_certificate_under_mutual_tls(
    seed_python: Path, tls_files: TLSFiles
) -> None:
    with run_agent(extra_args=tls_files.agent_args(mutual=True)) as agent:
        refused = _seed_over_tls(seed_python, agent, tls_files.ca)
        served = _seed_over_tls(
            seed_python, agent, tls_files.ca, tls_files.client_cert,
            tls_files.client_key,
        )  # fmt: skip
    assert refused.returncode != 0
    assert "SSLError" in refused.stderr or "ConnectionError" in refused.stderr
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout) == {"ids": ["8080"], "after": []}
