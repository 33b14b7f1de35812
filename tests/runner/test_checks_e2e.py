"""Active checks end to end: a real agent process probing real local targets."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.runner.targets import (
    GrpcHealthTarget,
    H2Target,
    HttpTarget,
    TcpListener,
    UdpEcho,
    free_port,
)
from tests.stores import single_agent_only
from waypost.testing import AgentProcess, run_agent, wait_until

FAST = "200ms"


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentProcess]:
    with run_agent(extra_args=["--enable-script-checks"]) as process:
        yield process


@pytest.fixture
def api(agent: AgentProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agent.url, timeout=10) as client:
        yield client


def register(api: httpx.Client, name: str, check: dict[str, object]) -> None:
    body = {"Name": name, "ID": name, "Port": 80, "Check": check}
    response = api.put("/v1/agent/service/register", json=body)
    assert response.status_code == 200, response.text


def check_of(api: httpx.Client, name: str) -> dict[str, object]:
    check: dict[str, object] = api.get("/v1/agent/checks").json()[f"service:{name}"]
    return check


def wait_status(
    api: httpx.Client, name: str, status: str, timeout: float = 10.0
) -> dict[str, object]:
    def reached() -> dict[str, object] | None:
        check = check_of(api, name)
        return check if check["Status"] == status else None

    return wait_until(reached, timeout=timeout)  # type: ignore[return-value]


def test_http_check_follows_the_target_status(api: httpx.Client) -> None:
    with HttpTarget() as web:
        register(api, "http-e2e", {"HTTP": f"{web.url}/health", "Interval": FAST})
        check = wait_status(api, "http-e2e", "passing")
        assert check["Output"] == f"HTTP GET {web.url}/health: 200 OK Output: all good"
        web.status = 429
        wait_status(api, "http-e2e", "warning")
        web.status = 503
        wait_status(api, "http-e2e", "critical")
        passing = api.get("/v1/health/service/http-e2e?passing").json()
        assert passing == []


def test_tcp_udp_grpc_and_h2ping_checks_pass_against_live_targets(
    api: httpx.Client,
) -> None:
    with (
        TcpListener() as tcp,
        UdpEcho() as udp,
        GrpcHealthTarget() as grpc,
        H2Target() as h2,
    ):
        grpc.set("", serving=True)
        register(api, "tcp-e2e", {"TCP": f"127.0.0.1:{tcp.port}", "Interval": FAST})
        register(api, "udp-e2e", {"UDP": f"127.0.0.1:{udp.port}", "Interval": FAST})
        register(api, "grpc-e2e", {"GRPC": f"127.0.0.1:{grpc.port}", "Interval": FAST})
        register(api, "h2-e2e", {"H2PING": f"127.0.0.1:{h2.port}", "Interval": FAST})
        for name in ("tcp-e2e", "udp-e2e", "grpc-e2e", "h2-e2e"):
            wait_status(api, name, "passing")
        grpc.set("", serving=False)
        check = wait_status(api, "grpc-e2e", "critical")
        assert "NOT_SERVING" in str(check["Output"])


def test_checks_against_dead_targets_turn_critical(api: httpx.Client) -> None:
    closed = f"127.0.0.1:{free_port()}"
    register(api, "tcp-dead", {"TCP": closed, "Interval": FAST, "Status": "passing"})
    check = wait_status(api, "tcp-dead", "critical")
    assert check["Output"] == f"dial tcp {closed}: connect: connection refused"


def test_hanging_target_does_not_delay_other_checks_or_the_api(
    api: httpx.Client,
) -> None:
    with HttpTarget() as slow, HttpTarget() as quick:
        slow.delay = 5.0
        hangs = {"HTTP": slow.url, "Interval": FAST, "Timeout": "300ms"}
        register(api, "hangs", {**hangs, "Status": "passing"})
        register(api, "quick", {"HTTP": quick.url, "Interval": FAST})
        check = wait_status(api, "hangs", "critical")
        assert "Client.Timeout exceeded" in str(check["Output"])
        wait_status(api, "quick", "passing")
        seen = len(quick.requests)
        started = time.monotonic()
        api.get("/v1/agent/self").raise_for_status()
        assert time.monotonic() - started < 1.0
        wait_until(lambda: len(quick.requests) >= seen + 5, timeout=5)


def wait_for_requests(web: HttpTarget, more: int) -> None:
    seen = len(web.requests)
    wait_until(lambda: len(web.requests) >= seen + more, timeout=5)


def test_failures_before_critical_absorbs_a_flapping_target(api: httpx.Client) -> None:
    with HttpTarget() as web:
        register(
            api,
            "flappy",
            {
                "HTTP": web.url,
                "Interval": "100ms",
                "FailuresBeforeCritical": 4,
                "SuccessBeforePassing": 2,
            },
        )
        wait_status(api, "flappy", "passing")
        index = api.get("/v1/health/checks/flappy").headers["X-Consul-Index"]
        for _ in range(6):  # one failure at a time, never four in a row
            web.status = 500
            wait_for_requests(web, 1)
            web.status = 200
            wait_for_requests(web, 2)
        assert check_of(api, "flappy")["Status"] == "passing"
        assert api.get("/v1/health/checks/flappy").headers["X-Consul-Index"] == index
        web.status = 500
        wait_status(api, "flappy", "critical")


def test_output_only_changes_do_not_bump_the_index(api: httpx.Client) -> None:
    with HttpTarget() as web:
        register(api, "chatty", {"HTTP": web.url, "Interval": "100ms"})
        wait_status(api, "chatty", "passing")
        index = api.get("/v1/health/service/chatty").headers["X-Consul-Index"]
        web.body = b"something new"
        wait_until(lambda: "something new" in str(check_of(api, "chatty")["Output"]))
        blocked = api.get(
            "/v1/health/service/chatty", params={"index": index, "wait": "1s"}
        )
        assert blocked.headers["X-Consul-Index"] == index


def test_alias_check_follows_the_aliased_instance(api: httpx.Client) -> None:
    with HttpTarget() as web:
        register(api, "backend", {"HTTP": web.url, "Interval": FAST})
        register(api, "sidecar", {"AliasService": "backend"})
        wait_status(api, "sidecar", "passing")
        assert check_of(api, "sidecar")["Output"] == "All checks passing."
        web.status = 500
        wait_status(api, "backend", "critical")
        check = wait_status(api, "sidecar", "critical", timeout=2)
        assert str(check["Output"]).startswith(
            "Aliased check \"Service 'backend' check\""
        )
        api.put("/v1/agent/service/deregister/backend").raise_for_status()
        check = wait_status(api, "sidecar", "critical")
        wait_until(
            lambda: "could not be found" in str(check_of(api, "sidecar")["Output"])
        )


def test_script_check_runs_when_enabled(api: httpx.Client) -> None:
    script = [sys.executable, "-c", "print('fine'); raise SystemExit(1)"]
    register(api, "scripted", {"Args": script, "Interval": FAST})
    check = wait_status(api, "scripted", "warning")
    assert check["Output"] == "fine\n"


def test_script_checks_are_refused_without_the_flag() -> None:
    script = [sys.executable, "-c", "pass"]
    with run_agent() as plain, httpx.Client(base_url=plain.url, timeout=10) as api:
        response = api.put(
            "/v1/agent/check/register",
            json={"Name": "s", "Args": script, "Interval": "100ms"},
        )
        assert response.status_code == 400
        assert "Scripts are disabled on this agent" in response.text
        response = api.put(
            "/v1/agent/service/register",
            json={"Name": "svc", "Check": {"Args": script, "Interval": "1s"}},
        )
        assert response.status_code == 400
        assert "Scripts are disabled on this agent" in response.text
        assert api.get("/v1/agent/checks").json() == {}
        assert api.get("/v1/agent/services").json() == {}


@single_agent_only("the ring gives other nodes' checks to a live agent")
def test_checks_of_other_nodes_are_never_run(api: httpx.Client) -> None:
    with HttpTarget() as web:
        body = {
            "Node": "elsewhere",
            "Address": "10.0.0.9",
            "Service": {"ID": "remote", "Service": "remote"},
            "Check": {
                "CheckID": "remote-http",
                "ServiceID": "remote",
                "Status": "passing",
                "Definition": {"HTTP": web.url, "Interval": "100ms"},
            },
        }
        api.put("/v1/catalog/register", json=body).raise_for_status()
        with HttpTarget() as own:  # a check of our own node, to know time passed
            register(api, "own-node", {"HTTP": own.url, "Interval": "100ms"})
            wait_until(lambda: len(own.requests) >= 3, timeout=5)
        assert web.requests == []
        checks = api.get("/v1/health/node/elsewhere").json()
        assert [c["Status"] for c in checks] == ["passing"]
