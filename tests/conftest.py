"""Shared fixtures: real agents on free loopback ports, real clients."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import consul
import httpx
import msgspec
import pytest
import trustme

from waypost.testing import (
    DNS_ADDR_ENV,
    TEST_ETCD_ENV,
    AgentProcess,
    EtcdCluster,
    run_agent,
)

_names = itertools.count()

# Agents the tests start themselves (not through AgentProcess) get their DNS
# interface on a free port too: the default 8600 would collide between
# agents, and with test runs of other checkouts on the same machine.
os.environ.setdefault(DNS_ADDR_ENV, "127.0.0.1:0")


@pytest.fixture(scope="session", autouse=True)
def store_under_test() -> Iterator[str]:
    """`WAYPOST_TEST_STORE=etcd`: every `--dev` agent of the suite runs on a
    real 3-member etcd cluster instead (cluster mode, one agent)."""
    if os.environ.get("WAYPOST_TEST_STORE") != "etcd":
        yield "embedded"
        return
    with EtcdCluster(3) as etcd:
        os.environ[TEST_ETCD_ENV] = etcd.endpoints
        try:
            yield "etcd"
        finally:
            del os.environ[TEST_ETCD_ENV]


@pytest.fixture(scope="session")
def shared_agent() -> Iterator[AgentProcess]:
    """One `--dev` agent for tests that only touch their own unique names.

    Self-preservation is off: TTL checks that finished tests abandon would
    otherwise engage the brake and hold every later expiry.
    """
    with run_agent(extra_args=["--self-preservation", "off"]) as agent:
        yield agent


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    """A fresh `--dev` agent for tests that need an empty registry."""
    with run_agent() as fresh:
        yield fresh


@pytest.fixture
def http(shared_agent: AgentProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_agent.url, timeout=30) as client:
        yield client


@pytest.fixture
def client(shared_agent: AgentProcess) -> consul.Consul:
    """The real py-consul client against the shared agent."""
    return consul.Consul(host=shared_agent.host, port=shared_agent.port)


@pytest.fixture
def unique() -> str:
    """A name no other test uses (the shared agent outlives each test)."""
    return f"svc{next(_names)}"


class TLSFiles(msgspec.Struct, frozen=True, kw_only=True):
    """PEM files of a test CA: the agent's certificate, a client's, and a
    client certificate from another CA (which mutual TLS must refuse)."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    stranger_cert: str
    stranger_key: str

    def agent_args(self, *, mutual: bool = False) -> list[str]:
        """Flags for an agent serving HTTPS only, on a free port."""
        args = ["--http-addr", "", "--https-addr", "127.0.0.1:0"]
        args += ["--tls-cert-file", self.server_cert, "--tls-key-file", self.server_key]
        if mutual:
            args += ["--tls-ca-file", self.ca, "--tls-verify-incoming"]
        return args


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    folder = tmp_path_factory.mktemp("tls")
    ca, stranger_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.waypost.test")
    stranger = stranger_ca.issue_cert("client.waypost.test")

    def write(name: str, blob: trustme.Blob) -> str:
        path = folder / name
        blob.write_to_path(path)
        return str(path)

    return TLSFiles(
        ca=write("ca.pem", ca.cert_pem),
        server_cert=write("server.pem", server.cert_chain_pems[0]),
        server_key=write("server.key", server.private_key_pem),
        client_cert=write("client.pem", client.cert_chain_pems[0]),
        client_key=write("client.key", client.private_key_pem),
        stranger_cert=write("stranger.pem", stranger.cert_chain_pems[0]),
        stranger_key=write("stranger.key", stranger.private_key_pem),
    )
