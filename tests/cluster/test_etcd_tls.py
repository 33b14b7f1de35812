"""Cluster mode over TLS: the agent reaches etcd on https:// with a CA and a
client certificate (etcd started with --client-cert-auth), and without its
certificate it does not start.

One real etcd member serving TLS, certificates from the tests' own CA.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TLSFiles
from waypost.testing import free_port, run_agent

pytestmark = pytest.mark.skipif(
    shutil.which("etcd") is None,
    reason="etcd is not installed (scripts/test installs Debian's etcd-server)",
)


@pytest.fixture(scope="module")
def tls_etcd(tls_files: TLSFiles) -> Iterator[str]:
    """An etcd member that serves clients only over mutual TLS."""
    client_port, peer_port = free_port(), free_port()
    url = f"https://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    with tempfile.TemporaryDirectory(prefix="waypost-etcd-tls-") as scratch:
        process = subprocess.Popen(
            ["etcd", "--name", "tls0", "--data-dir", str(Path(scratch) / "data"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"tls0={peer}",
             "--cert-file", tls_files.server_cert, "--key-file", tls_files.server_key,
             "--trusted-ca-file", tls_files.ca, "--client-cert-auth"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_healthy(url, tls_files, process)
            yield url
        finally:
            process.kill()
            process.wait(10)


def _wait_healthy(url: str, tls: TLSFiles, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=tls.ca)
    context.load_cert_chain(tls.client_cert, tls.client_key)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", verify=context, timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("etcd with TLS did not start")
        time.sleep(0.05)


def test_an_agent_keeps_its_catalog_in_etcd_over_mutual_tls(
    tls_etcd: str, tls_files: TLSFiles
) -> None:
    args = ["--etcd", tls_etcd, "--etcd-cacert", tls_files.ca]
    args += ["--etcd-cert", tls_files.client_cert, "--etcd-key", tls_files.client_key]
    with run_agent(dev=False, extra_args=args) as agent:
        body = {"Name": "over-tls", "ID": "over-tls-1", "Port": 1}
        registered = httpx.put(f"{agent.url}/v1/agent/service/register", json=body)
        assert registered.status_code == 200, registered.text
    # A second agent on the same etcd sees it: it was stored there.
    with run_agent(dev=False, node="other", extra_args=args) as other:
        services = httpx.get(f"{other.url}/v1/catalog/services").json()
    assert "over-tls" in services


def test_without_its_client_certificate_the_agent_does_not_start(
    tls_etcd: str, tls_files: TLSFiles
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--http-addr", "127.0.0.1:0",
         "--etcd", tls_etcd, "--etcd-cacert", tls_files.ca],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "waypost: error: cannot read the catalog from etcd" in done.stderr
    assert "Traceback" not in done.stderr
