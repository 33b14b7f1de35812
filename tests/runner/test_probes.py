"""Each probe against a real local target: status and Consul's output words."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.runner.targets import (
    GrpcHealthTarget,
    H2Target,
    HttpsTarget,
    HttpTarget,
    TcpListener,
    UdpEcho,
    free_port,
)
from waypost.core.model import CheckDefinition, HealthStatus
from waypost.exceptions import InvalidRequest
from waypost.runner.probes import (
    SCRIPTS_DISABLED,
    ProbeResult,
    probe_grpc,
    probe_h2ping,
    probe_http,
    probe_script,
    probe_tcp,
    probe_udp,
    require_scripts_enabled,
)

P, W, C = HealthStatus.PASSING, HealthStatus.WARNING, HealthStatus.CRITICAL


@pytest.fixture
def web() -> object:
    with HttpTarget() as target:
        yield target


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (200, P, "OK"),
        (204, P, "No Content"),
        (429, W, "Too Many Requests"),
        (500, C, "Internal Server Error"),
        (404, C, "Not Found"),
    ],
)
async def test_http_status_code_decides_health(
    web: HttpTarget, code: int, status: HealthStatus, reason: str
) -> None:
    web.status, web.body = code, b"" if code == 204 else b"hello"
    url = f"{web.url}/health"
    result = await probe_http(CheckDefinition(http=url, interval=1.0), 2.0)
    assert result.status is status
    body = "" if code == 204 else "hello"
    assert result.output == f"HTTP GET {url}: {code} {reason} Output: {body}"


async def test_http_sends_method_headers_and_body(web: HttpTarget) -> None:
    definition = CheckDefinition(
        http=f"{web.url}/hook",
        method="POST",
        header={"X-Token": ["abc"], "Host": ["svc.example"]},
        body='{"ping": true}',
    )
    result = await probe_http(definition, 2.0)
    assert result.status is P and result.output.startswith("HTTP POST ")
    method, path, headers, body = web.requests[-1]
    assert (method, path, body) == ("POST", "/hook", b'{"ping": true}')
    assert headers["X-Token"] == "abc" and headers["Host"] == "svc.example"
    assert headers["User-Agent"] == "Consul Health Check"


async def test_http_output_keeps_only_the_first_bytes_of_the_body(
    web: HttpTarget,
) -> None:
    web.body = b"x" * 10_000
    result = await probe_http(CheckDefinition(http=web.url, output_max_size=64), 2.0)
    assert result.output.endswith(": 200 OK Output: " + "x" * 64)


async def test_http_follows_redirects_unless_disabled(web: HttpTarget) -> None:
    web.location = f"{web.url}/elsewhere"
    follow = await probe_http(CheckDefinition(http=f"{web.url}/moved"), 2.0)
    assert follow.status is P and web.requests[-1][1] == "/elsewhere"
    stay = await probe_http(
        CheckDefinition(http=f"{web.url}/moved", disable_redirects=True), 2.0
    )
    assert stay.status is C and ": 302 Found Output:" in stay.output


async def test_http_refused_connection_is_critical_with_go_wording() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = await probe_http(CheckDefinition(http=url), 2.0)
    assert result.status is C
    assert result.output.startswith(f'Get "{url}": dial tcp 127.0.0.1:')
    assert result.output.endswith("connect: connection refused")


async def test_http_hanging_target_is_critical_at_the_timeout(web: HttpTarget) -> None:
    web.delay = 2.0
    result = await probe_http(CheckDefinition(http=web.url), 0.2)
    assert result.status is C and "Client.Timeout exceeded" in result.output


async def test_tcp_listener_passes_and_closed_port_fails() -> None:
    with TcpListener() as listener:
        address = f"127.0.0.1:{listener.port}"
        result = await probe_tcp(CheckDefinition(tcp=address), 2.0)
        assert result == ProbeResult(P, f"TCP connect {address}: Success")
    closed = f"127.0.0.1:{free_port()}"
    result = await probe_tcp(CheckDefinition(tcp=closed), 2.0)
    assert result == ProbeResult(C, f"dial tcp {closed}: connect: connection refused")


async def test_udp_answering_socket_passes_and_unreachable_port_fails() -> None:
    with UdpEcho() as echo:
        address = f"127.0.0.1:{echo.port}"
        result = await probe_udp(CheckDefinition(udp=address), 2.0)
        assert result == ProbeResult(P, f"UDP connect {address}: Success")
        assert echo.received == 1
    closed = f"127.0.0.1:{free_port()}"
    result = await probe_udp(CheckDefinition(udp=closed), 2.0)
    assert result.status is C and "connection refused" in result.output


async def test_grpc_serving_passes_and_not_serving_fails() -> None:
    with GrpcHealthTarget() as server:
        server.set("api", serving=True)
        target = f"127.0.0.1:{server.port}/api"
        result = await probe_grpc(CheckDefinition(grpc=target), 5.0)
        assert result == ProbeResult(P, f"gRPC check {target}: success")
        server.set("api", serving=False)
        result = await probe_grpc(CheckDefinition(grpc=target), 5.0)
        assert result == ProbeResult(C, f"gRPC {target} serving status: NOT_SERVING")
        unknown = f"127.0.0.1:{server.port}/nope"
        result = await probe_grpc(CheckDefinition(grpc=unknown), 5.0)
        assert result.status is C and "code = NotFound" in result.output


async def test_grpc_unreachable_server_is_critical() -> None:
    target = f"127.0.0.1:{free_port()}"
    result = await probe_grpc(CheckDefinition(grpc=target), 2.0)
    assert result.status is C and "code = Unavailable" in result.output


async def test_h2ping_gets_an_ack_from_an_http2_server() -> None:
    with H2Target() as server:
        target = f"127.0.0.1:{server.port}"
        result = await probe_h2ping(CheckDefinition(h2ping=target), 2.0)
        assert result == ProbeResult(P, "HTTP2 ping was successful")
        assert server.pings == 1


async def test_h2ping_against_http1_server_fails(web: HttpTarget) -> None:
    target = f"127.0.0.1:{web.port}"
    result = await probe_h2ping(CheckDefinition(h2ping=target), 1.0)
    assert result.status is C and result.output.startswith("HTTP2 ping failed")


async def test_h2ping_closed_port_fails_to_dial() -> None:
    target = f"127.0.0.1:{free_port()}"
    result = await probe_h2ping(CheckDefinition(h2ping=target), 1.0)
    assert result.status is C and result.output.startswith(
        f"Failed to dial to {target}"
    )


@pytest.mark.parametrize(("code", "status"), [(0, P), (1, W), (2, C)])
async def test_script_exit_code_decides_health(code: int, status: HealthStatus) -> None:
    args = [sys.executable, "-c", f"print('hi'); raise SystemExit({code})"]
    result = await probe_script(CheckDefinition(args=args), 10.0)
    assert result == ProbeResult(status, "hi\n")


async def test_script_that_hangs_is_killed_at_the_timeout() -> None:
    args = [sys.executable, "-c", "import time; time.sleep(30)"]
    result = await probe_script(CheckDefinition(args=args), 0.3)
    assert result == ProbeResult(C, "Timed out (0.3s) running check")


def test_script_checks_are_refused_unless_enabled() -> None:
    definition = CheckDefinition(args=["/bin/true"], interval=1.0)
    with pytest.raises(InvalidRequest, match="Scripts are disabled on this agent"):
        require_scripts_enabled(definition, enabled=False)
    require_scripts_enabled(definition, enabled=True)
    assert "enable_script_checks" in SCRIPTS_DISABLED


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
async def test_https_with_a_self_signed_certificate_needs_tls_skip_verify(
    tmp_path: Path,
) -> None:
    with HttpsTarget(str(tmp_path)) as web:
        strict = await probe_http(CheckDefinition(http=web.url), 5.0)
        assert strict.status is C and "CERTIFICATE_VERIFY_FAILED" in strict.output
        relaxed = CheckDefinition(http=web.url, tls_skip_verify=True)
        result = await probe_http(relaxed, 5.0)
        assert result == ProbeResult(P, f"HTTP GET {web.url}: 200 OK Output: all good")
        named = CheckDefinition(
            http=web.url, tls_skip_verify=True, tls_server_name="waypost.test"
        )
        assert (await probe_http(named, 5.0)).status is P
