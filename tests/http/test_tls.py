"""HTTPS as Consul serves it: the listener, mutual TLS, the minimum version,
and every client of ours (library, CLI, py-consul) speaking it.

Certificates come from a CA the tests make (`tls_files`, trustme).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator

import consul
import httpx
import pytest

from tests.conftest import TLSFiles
from waypost.client import Client, RegistryConnectError
from waypost.testing import AgentProcess, run_agent


def client_context(
    tls: TLSFiles, *, cert: tuple[str, str] | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca)
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


@pytest.fixture(scope="module")
def mtls_agent(tls_files: TLSFiles) -> Iterator[AgentProcess]:
    """HTTPS only, client certificates required."""
    with run_agent(extra_args=tls_files.agent_args(mutual=True)) as agent:
        yield agent


def own_cert(tls: TLSFiles) -> tuple[str, str]:
    return (tls.client_cert, tls.client_key)


def test_https_only_agent_answers_over_tls_and_has_no_plain_listener(
    tls_files: TLSFiles,
) -> None:
    with run_agent(extra_args=tls_files.agent_args()) as agent:
        assert agent.port == 0 and agent.https_port > 0
        assert "http://" not in agent.log
        response = httpx.get(
            f"{agent.https_url}/v1/agent/self", verify=client_context(tls_files)
        )
        assert response.status_code == 200
        assert response.json()["DebugConfig"]["HTTPPort"] == -1
        # The agent's certificate is checked: without the CA it is refused.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{agent.https_url}/v1/agent/self")


def test_http_and_https_listeners_serve_one_catalog(tls_files: TLSFiles) -> None:
    args = ["--https-addr", "127.0.0.1:0"]
    args += ["--tls-cert-file", tls_files.server_cert]
    args += ["--tls-key-file", tls_files.server_key]
    with run_agent(extra_args=args) as agent:
        assert agent.port > 0 and agent.https_port > 0
        body = {"Name": "both", "Port": 80}
        httpx.put(f"{agent.url}/v1/agent/service/register", json=body)
        services = httpx.get(
            f"{agent.https_url}/v1/catalog/services", verify=client_context(tls_files)
        ).json()
        assert "both" in services


def test_mutual_tls_refuses_a_client_without_a_certificate(
    mtls_agent: AgentProcess, tls_files: TLSFiles
) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(
            f"{mtls_agent.https_url}/v1/catalog/services",
            verify=client_context(tls_files),
        )


def test_mutual_tls_refuses_a_certificate_from_another_ca(
    mtls_agent: AgentProcess, tls_files: TLSFiles
) -> None:
    stranger = (tls_files.stranger_cert, tls_files.stranger_key)
    with pytest.raises(httpx.TransportError):
        httpx.get(
            f"{mtls_agent.https_url}/v1/catalog/services",
            verify=client_context(tls_files, cert=stranger),
        )


def test_mutual_tls_serves_a_client_with_a_signed_certificate(
    mtls_agent: AgentProcess, tls_files: TLSFiles
) -> None:
    """...also after refused handshakes: they cost the agent nothing lasting."""
    for _ in range(3):
        with pytest.raises(httpx.TransportError):
            httpx.get(mtls_agent.https_url, verify=client_context(tls_files))
    context = client_context(tls_files, cert=own_cert(tls_files))
    with httpx.Client(base_url=mtls_agent.https_url, verify=context) as http:
        for _ in range(3):  # one kept-alive connection
            assert http.get("/v1/status/leader").status_code == 200


def test_waypost_client_registers_and_watches_over_mutual_tls(
    mtls_agent: AgentProcess, tls_files: TLSFiles
) -> None:
    """The library's requests and its blocking-query watcher both use TLS."""
    with Client(
        mtls_agent.https_url, verify=tls_files.ca, cert=own_cert(tls_files)
    ) as client:
        client.register_service("tls-api", port=8443, service_id="tls-api-1")
        with client.watch("tls-api", passing=False) as watcher:
            found = watcher.wait_for(lambda s: bool(s), 10)
            assert [i.service_id for i in found] == ["tls-api-1"]


def test_waypost_client_reads_consuls_tls_environment(
    mtls_agent: AgentProcess, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", mtls_agent.https_url)
    monkeypatch.setenv("CONSUL_CACERT", tls_files.ca)
    monkeypatch.setenv("CONSUL_CLIENT_CERT", tls_files.client_cert)
    monkeypatch.setenv("CONSUL_CLIENT_KEY", tls_files.client_key)
    with Client() as client:
        assert "consul" in client.services()
    monkeypatch.delenv("CONSUL_CLIENT_CERT")
    with Client() as client, pytest.raises(RegistryConnectError):
        client.services()


def test_py_consul_speaks_mutual_tls(
    mtls_agent: AgentProcess, tls_files: TLSFiles
) -> None:
    api = consul.Consul(
        host=mtls_agent.host,
        port=mtls_agent.https_port,
        scheme="https",
        verify=tls_files.ca,
        cert=own_cert(tls_files),
    )
    assert api.agent.service.register("pyc-tls", service_id="pyc-tls-1", port=1)
    _, nodes = api.health.service("pyc-tls")
    assert [n["Service"]["ID"] for n in nodes] == ["pyc-tls-1"]


def waypost_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    return subprocess.run(
        [sys.executable, "-m", "waypost", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=30,
    )


def test_cli_speaks_mutual_tls_with_flags_or_consuls_environment(
    mtls_agent: AgentProcess, tls_files: TLSFiles
) -> None:
    address = ["--http-addr", mtls_agent.https_url]
    flags = ["--ca-file", tls_files.ca, "--client-cert", tls_files.client_cert]
    flags += ["--client-key", tls_files.client_key]
    done = waypost_cli("services", "--json", *address, *flags, env={})
    assert done.returncode == 0, done.stderr
    assert "consul" in done.stdout

    env = {
        "CONSUL_HTTP_ADDR": mtls_agent.https_url,
        "CONSUL_CACERT": tls_files.ca,
        "CONSUL_CLIENT_CERT": tls_files.client_cert,
        "CONSUL_CLIENT_KEY": tls_files.client_key,
    }
    done = waypost_cli("services", "--json", env=env)
    assert done.returncode == 0, done.stderr


def test_cli_says_tls_failed_when_the_ca_is_missing(
    mtls_agent: AgentProcess,
) -> None:
    done = waypost_cli("services", "--http-addr", mtls_agent.https_url, env={})
    assert done.returncode == 4
    assert "TLS with the registry" in done.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("spelling", ["TLSv1_3", "tls13"])
def test_tls_min_version_refuses_older_clients(
    tls_files: TLSFiles, spelling: str
) -> None:
    args = [*tls_files.agent_args(), "--tls-min-version", spelling]
    with run_agent(extra_args=args) as agent:
        old = client_context(tls_files)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.ConnectError):
            httpx.get(agent.https_url, verify=old)
        modern = httpx.get(
            f"{agent.https_url}/v1/status/leader", verify=client_context(tls_files)
        )
        assert modern.status_code == 200


def test_default_minimum_is_tls_1_2(tls_files: TLSFiles) -> None:
    with run_agent(extra_args=tls_files.agent_args()) as agent:
        context = client_context(tls_files)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection((agent.host, agent.https_port), 10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == "TLSv1.2"


def test_a_stalled_handshake_is_closed(tls_files: TLSFiles) -> None:
    """A client that connects to the HTTPS port and sends nothing is let go."""
    args = [*tls_files.agent_args(), "--https-handshake-timeout", "0.3s"]
    with (
        run_agent(extra_args=args) as agent,
        socket.create_connection((agent.host, agent.https_port), 10) as raw,
    ):
        raw.settimeout(10)  # a test that cannot hang: closed well before
        with contextlib.suppress(ConnectionResetError):
            assert raw.recv(1) == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert-file", "/nonexistent.pem", "--tls-key-file", "/x.key"],
         "cannot load --tls-cert-file /nonexistent.pem"),
        ([], "HTTPS needs --tls-cert-file and --tls-key-file"),
        (["--tls-verify-incoming"], "--tls-verify-incoming needs --tls-ca-file"),
    ],
)  # fmt: skip
def test_tls_mistakes_stop_the_agent_with_one_line(
    tls_files: TLSFiles, args: list[str], message: str
) -> None:
    if "--tls-verify-incoming" in args:
        args = [*args, "--tls-cert-file", tls_files.server_cert]
        args += ["--tls-key-file", tls_files.server_key]
    done = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--dev", "--https-addr",
         "127.0.0.1:0", *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"waypost: error: {message}")


def test_an_unknown_tls_version_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--dev", "--tls-min-version",
         "ssl3"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "'ssl3' is not a TLS version" in done.stderr


def test_turning_every_listener_off_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "--dev", "--http-addr", ""],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    assert "no listener" in done.stderr


def test_the_header_deadline_holds_over_tls(tls_files: TLSFiles) -> None:
    """Slowloris after a completed handshake meets the same 408."""
    args = [*tls_files.agent_args(), "--http-header-timeout", "0.3s"]
    context = client_context(tls_files)
    with (
        run_agent(extra_args=args) as agent,
        socket.create_connection((agent.host, agent.https_port), 10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n")
        answer = tls.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b"Request headers not received within 0.3s")


def test_https_comes_from_waypost_environment_variables(tls_files: TLSFiles) -> None:
    env = {
        "WAYPOST_HTTPS_ADDR": "127.0.0.1:0",
        "WAYPOST_TLS_CERT_FILE": tls_files.server_cert,
        "WAYPOST_TLS_KEY_FILE": tls_files.server_key,
        "WAYPOST_TLS_MIN_VERSION": "tls13",
    }
    with run_agent(env=env) as agent:
        assert agent.https_port > 0
        old = client_context(tls_files)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.ConnectError):
            httpx.get(agent.https_url, verify=old)
        response = httpx.get(
            f"{agent.https_url}/v1/status/leader", verify=client_context(tls_files)
        )
        assert response.status_code == 200
