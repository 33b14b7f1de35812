# ruff: noqa: E501  (the harness is the text of a conftest.py, kept readable)
"""Run py-consul 1.8.0's own upstream test suite against waypost; print passed/total.

    .venv/bin/python scripts/py_consul_upstream.py [--keep DIR] [-- pytest args]

What it does, as a new user would: fetches the py-consul 1.8.0 sdist from
PyPI with pip (`pip download --no-binary :all: py-consul==1.8.0`; the sdist
ships tests/), unpacks its tests/, and runs them with pytest as upstream's
CI runs them against `consul agent -dev` in Docker, against
`waypost agent --dev --enable-script-checks` instead. Only the harness is
replaced: upstream's root conftest.py (which starts Consul containers) by
the one below, which starts a fresh waypost agent per test with the same
fixtures and shapes (`consul_instance`, `acl_consul_instance`: an agent
with ACLs on and `initial_management` a fresh token, Consul's default
policy `allow`), the same readiness ritual, and one "version" instead of
upstream's three Consul versions; the agent listens on 127.0.0.1:8500
when that port is free, as upstream's does inside its container (its HTTP
checks aim at http://localhost:8500, the agent itself). The tests and tests/conftest.py run as
shipped. The client under test is the py-consul 1.8.0 installed here.

Prints the pytest summary, then `py-consul upstream: PASSED/TOTAL passed`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "1.8.0"
SDIST = f"py_consul-{VERSION}.tar.gz"

HARNESS = '''\
"""waypost's stand-in for py-consul's root conftest.py (scripts/py_consul_upstream.py)."""

import collections
import os
import socket
import time
import uuid

import pytest
import requests

from waypost.testing import run_agent

ConsulInstance = collections.namedtuple("ConsulInstance", ["container", "port", "version"])


@pytest.fixture(scope="session", autouse=True)
def _unset_consul_token():
    if "CONSUL_HTTP_TOKEN" in os.environ:
        del os.environ["CONSUL_HTTP_TOKEN"]


def _ready(port, token=None):
    """Upstream's start_consul_container readiness checks, against waypost."""
    base_uri = f"http://127.0.0.1:{port}/v1/"
    headers = {"X-Consul-Token": token} if token else {}
    deadline = time.time() + 10
    while True:
        if time.time() > deadline:
            raise TimeoutError("Global timeout reached")
        response = requests.get(base_uri + "status/leader", timeout=2)
        if response.status_code == 200 and response.json():
            break
        time.sleep(0.1)
    for _ in range(10):
        requests.put(base_uri + "agent/service/register", json={"name": "test-service"},
                     headers=headers, timeout=2)
        response = requests.get(base_uri + "health/service/test-service", headers=headers, timeout=2)
        if response.status_code == 200 and response.json():
            requests.put(base_uri + "agent/service/deregister/test-service", headers=headers, timeout=2)
            return
        time.sleep(0.5)
    raise Exception("Failed to verify Consul startup")


def _version(port, token=None):
    headers = {"X-Consul-Token": token} if token else {}
    response = requests.get(f"http://127.0.0.1:{port}/v1/agent/self", headers=headers, timeout=10)
    return response.json()["Config"]["Version"].strip()


def _port_8500_is_free():
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", 8500))
        except OSError:
            return False
    return True


def _agent(token=None):
    args = ["--enable-script-checks"]
    # Upstream's agent listens on 8500 in its container, and its HTTP checks
    # aim at http://localhost:8500 (the agent itself): listen there when free.
    if _port_8500_is_free():
        args += ["--http-addr", "127.0.0.1:8500"]
    if token:
        args += ["--acl-enabled", "--acl-default-policy", "allow",
                 "--acl-initial-management", token]
    return run_agent(extra_args=args)


@pytest.fixture(params=["waypost"])
def consul_instance(request):
    with _agent() as agent:
        _ready(agent.port)
        yield ConsulInstance(None, agent.port, _version(agent.port))


@pytest.fixture(params=["waypost"])
def acl_consul_instance(request):
    token = uuid.uuid4().hex
    with _agent(token) as agent:
        _ready(agent.port, token)
        yield ConsulInstance(None, agent.port, _version(agent.port, token)), token


@pytest.fixture
def consul_port(consul_instance):
    return consul_instance.port, consul_instance.version
'''


def fetch(workdir: Path) -> Path:
    """The sdist, from PyPI through pip (or a copy already in `workdir`)."""
    found = workdir / SDIST
    if not found.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"py-consul=={VERSION}", "-d", str(workdir)],
            check=True,
        )  # fmt: skip
    return found


def unpack(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as archive:
        members = [
            m for m in archive.getmembers()
            if m.name.startswith(f"py_consul-{VERSION}/tests/")
            or m.name == f"py_consul-{VERSION}/pyproject.toml"
        ]  # fmt: skip
        archive.extractall(into, members=members, filter="data")
    root = into / f"py_consul-{VERSION}"
    if not (root / "tests" / "api").is_dir():
        raise SystemExit("the py-consul sdist carries no tests/api: nothing to run")
    (root / "conftest.py").write_text(HARNESS)
    # Upstream's pytest options, minus coverage (pytest-cov is not a need).
    (root / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    (root / "pyproject.toml").unlink(missing_ok=True)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work here and keep it")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="py-consul-upstream-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        root = unpack(fetch(workdir), workdir)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
             "-p", "no:randomly", "-q", "-rfE", "--tb=line", "tests",
             *args.pytest_args],
            cwd=root, capture_output=True, text=True, check=False,
        )  # fmt: skip
        print(result.stdout[-20000:])
        summary = result.stdout.strip().splitlines()[-1] if result.stdout else ""
        counts = {
            word: int(n)
            for n, word in re.findall(
                r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)", summary
            )
        }
        passed = counts.get("passed", 0) + counts.get("xpassed", 0)
        total = sum(counts.values())
        print(f"py-consul upstream: {passed}/{total} passed")
        return 0 if result.returncode in (0, 1) else result.returncode
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
