"""Health end to end: TTL expiry, reaping, maintenance, the brake, panic.

Real agent processes over real sockets; heartbeats come from real client
processes, so "the registry lost its clients" is a SIGSTOP away.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from waypost.testing import AgentProcess, run_agent, wait_until

HEARTBEATER = """
import sys, time, httpx
url, period, ids = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
with httpx.Client(base_url=url, timeout=5) as api:
    print("ready", flush=True)
    while True:
        for check_id in ids:
            api.put(f"/v1/agent/check/pass/{check_id}")
        time.sleep(period)
"""

#: Scheduling slack for assertions of "no later than": CI machines stall.
SLACK = 3.0


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    with run_agent() as process:
        yield process


def client(agent: AgentProcess) -> httpx.Client:
    return httpx.Client(base_url=agent.url, timeout=10)


def register_ttl(
    api: httpx.Client, name: str, sid: str, ttl: str, **extra: object
) -> None:
    check = {"TTL": ttl, "Status": "passing", **extra}
    body = {"Name": name, "ID": sid, "Port": 80, "Check": check}
    api.put("/v1/agent/service/register", json=body).raise_for_status()


def heartbeat(
    agent: AgentProcess, period: float, sids: list[str]
) -> subprocess.Popen[bytes]:
    """A client process passing the TTL checks of `sids` every `period` s.

    Returns once it is ready to send: starting Python and importing httpx
    takes longer than ¾ of a 1 s TTL on a loaded machine, and checks
    registered before their heartbeats can start look like a fleet going
    quiet (the brake engaged before the test began, 1 full run in 5).
    Register the checks after this returns.
    """
    args = [sys.executable, "-c", HEARTBEATER, agent.url, str(period)]
    process = subprocess.Popen(
        [*args, *(f"service:{s}" for s in sids)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    ready = process.stdout.readline()
    process.stdout.close()  # it says nothing more
    assert ready == b"ready\n"
    return process


def passing_ids(api: httpx.Client, name: str) -> set[str]:
    rows = api.get(f"/v1/health/service/{name}?passing").json()
    return {row["Service"]["ID"] for row in rows}


def brake(api: httpx.Client) -> dict[str, object]:
    """The brake's state from /v1/agent/self (Stats.self_preservation, strings)."""
    state = api.get("/v1/agent/self").json()["Stats"]["self_preservation"]
    assert isinstance(state, dict)
    return {key: _typed(value) for key, value in state.items()}


def _typed(value: str) -> object:
    if value in ("true", "false"):
        return value == "true"
    return int(value) if value.isdigit() else value


# ---------------------------------------------------------------- expiry, reaping


def test_ttl_expiry_and_reaping_happen_on_time_with_sub_minute_values(
    agent: AgentProcess,
) -> None:
    with client(agent) as api:
        started = time.monotonic()
        register_ttl(
            api, "reaped", "r1", "300ms", DeregisterCriticalServiceAfter="700ms"
        )
        wait_until(lambda: not passing_ids(api, "reaped"), timeout=5, interval=0.01)
        expired = time.monotonic() - started
        wait_until(
            lambda: api.get("/v1/catalog/service/reaped").json() == [],
            timeout=5,
            interval=0.01,
        )
        reaped = time.monotonic() - started
    # Upper bounds are loose on purpose: the tight figures (TTL + 1 s) are
    # measured in bench/detection.py, not asserted on a shared machine.
    assert 0.3 <= expired < 0.3 + SLACK
    assert 1.0 <= reaped < 1.0 + SLACK


def test_catalog_registered_services_are_reaped_too(agent: AgentProcess) -> None:
    body = {
        "Node": "external",
        "Address": "10.1.1.1",
        "Service": {"ID": "ext-1", "Service": "ext"},
        "Check": {
            "CheckID": "ext-alive",
            "ServiceID": "ext-1",
            "Status": "critical",
            "Definition": {"DeregisterCriticalServiceAfter": "500ms"},
        },
    }
    with client(agent) as api:
        started = time.monotonic()
        api.put("/v1/catalog/register", json=body).raise_for_status()
        assert api.get("/v1/catalog/service/ext").json() != []
        wait_until(
            lambda: api.get("/v1/catalog/service/ext").json() == [],
            timeout=5,
            interval=0.01,
        )
        assert time.monotonic() - started < 0.5 + SLACK


# ---------------------------------------------------------------- maintenance


def test_node_and_service_maintenance_take_instances_out_and_back(
    agent: AgentProcess,
) -> None:
    with client(agent) as api:
        register_ttl(api, "maint", "m1", "1h")
        assert passing_ids(api, "maint") == {"m1"}
        api.put(
            "/v1/agent/service/maintenance/m1?enable=true&reason=deploying"
        ).raise_for_status()
        assert passing_ids(api, "maint") == set()
        checks = api.get("/v1/health/checks/maint").json()
        maint = {c["CheckID"]: c for c in checks}["_service_maintenance:m1"]
        assert (maint["Status"], maint["Notes"]) == ("critical", "deploying")
        api.put("/v1/agent/service/maintenance/m1?enable=false").raise_for_status()
        assert passing_ids(api, "maint") == {"m1"}
        api.put("/v1/agent/maintenance?enable=true&reason=kernel").raise_for_status()
        assert passing_ids(api, "maint") == set()
        node_checks = api.get(f"/v1/health/node/{agent.node}").json()
        node_maint = {c["CheckID"]: c for c in node_checks}["_node_maintenance"]
        assert (node_maint["Status"], node_maint["Notes"]) == ("critical", "kernel")
        api.put("/v1/agent/maintenance?enable=false").raise_for_status()
        assert passing_ids(api, "maint") == {"m1"}


# ---------------------------------------------------------------- the brake

FLEET = 20
TTL = "1s"


def test_partition_of_every_client_expires_nobody_and_a_crash_is_still_caught(
    agent: AgentProcess,
) -> None:
    """SIGSTOP the process heartbeating 20 instances: to the registry that is
    the same as its network being cut. Nobody may turn critical; when the
    heartbeats come back the brake releases; then one killed client is caught
    within its TTL + 1 s."""
    sids = [f"p{i}" for i in range(FLEET)]
    with client(agent) as api:
        fleet = heartbeat(agent, 0.3, sids[1:])
        lone = heartbeat(agent, 0.3, sids[:1])
        try:
            for sid in sids:
                register_ttl(api, "fleet", sid, TTL)
            fleet.send_signal(signal.SIGSTOP)
            lone.send_signal(signal.SIGSTOP)
            wait_until(lambda: brake(api)["Engaged"], timeout=5)
            cut = time.monotonic()
            while time.monotonic() - cut < 2.5:  # 2.5 TTLs without a heartbeat
                assert passing_ids(api, "fleet") == set(sids)
            assert str(brake(api)["Engagements"]) == "1"
            agent.wait_for_log("went quiet")
            fleet.send_signal(signal.SIGCONT)
            lone.send_signal(signal.SIGCONT)
            wait_until(lambda: not brake(api)["Engaged"], timeout=5)
            assert passing_ids(api, "fleet") == set(sids)
            lone.kill()
            lone.wait()
            killed = time.monotonic()
            wait_until(
                lambda: passing_ids(api, "fleet") == set(sids[1:]),
                timeout=10,
                interval=0.01,
            )
            # One TTL since the last heartbeat, plus the grace the release
            # gave every held check; the brake stays off for a single crash.
            assert time.monotonic() - killed < 2 * 1.0 + SLACK
            assert not brake(api)["Engaged"]
        finally:
            for process in (fleet, lone):
                process.kill()
                process.wait()


def test_single_crash_is_caught_after_its_ttl(agent: AgentProcess) -> None:
    sids = [f"c{i}" for i in range(FLEET)]
    with client(agent) as api:
        fleet = heartbeat(agent, 0.3, sids[1:])
        lone = heartbeat(agent, 0.3, sids[:1])
        try:
            for sid in sids:
                register_ttl(api, "crashy", sid, TTL)
            wait_until(lambda: passing_ids(api, "crashy") == set(sids), timeout=5)
            lone.kill()
            lone.wait()
            killed = time.monotonic()
            wait_until(
                lambda: passing_ids(api, "crashy") == set(sids[1:]),
                timeout=10,
                interval=0.01,
            )
            assert time.monotonic() - killed < 1.0 + SLACK
            assert str(brake(api)["Engagements"]) == "0"
        finally:
            for process in (fleet, lone):
                process.kill()
                process.wait()


def test_brake_switched_off_lets_a_partition_expire_everyone() -> None:
    with (
        run_agent(extra_args=["--self-preservation", "off"]) as agent,
        client(agent) as api,
    ):
        sids = [f"o{i}" for i in range(FLEET)]
        for sid in sids:
            register_ttl(api, "offbrake", sid, TTL)
        wait_until(lambda: passing_ids(api, "offbrake") == set(), timeout=5)
        assert brake(api)["Enabled"] is False and str(brake(api)["Engagements"]) == "0"


# ---------------------------------------------------------------- panic


def test_panic_threshold_in_meta_returns_every_instance_with_a_header(
    agent: AgentProcess,
) -> None:
    with client(agent) as api:
        for i in range(4):
            body = {
                "Name": "panicky",
                "ID": f"k{i}",
                "Meta": {"waypost-panic-threshold": "0.5"},
                "Check": {"TTL": "1h", "Status": "passing" if i == 0 else "critical"},
            }
            api.put("/v1/agent/service/register", json=body).raise_for_status()
        response = api.get("/v1/health/service/panicky?passing")
        assert len(response.json()) == 4
        assert response.headers["X-Waypost-Panic"] == (
            "threshold=0.5; passing=1; total=4; returning all instances"
        )
        api.put("/v1/agent/check/pass/service:k1").raise_for_status()
        response = api.get("/v1/health/service/panicky?passing")
        assert {r["Service"]["ID"] for r in response.json()} == {"k0", "k1"}
        assert "X-Waypost-Panic" not in response.headers


def test_panic_threshold_is_off_by_default_and_settable_per_agent() -> None:
    body = {"Name": "calm", "ID": "calm-1", "Check": {"TTL": "1h"}}
    with run_agent() as plain, client(plain) as api:
        api.put("/v1/agent/service/register", json=body).raise_for_status()
        response = api.get("/v1/health/service/calm?passing")
        assert response.json() == [] and "X-Waypost-Panic" not in response.headers
    with (
        run_agent(extra_args=["--panic-threshold", "0.3"]) as tuned,
        client(tuned) as api,
    ):
        api.put("/v1/agent/service/register", json=body).raise_for_status()
        response = api.get("/v1/health/service/calm?passing")
        assert len(response.json()) == 1
        assert "passing=0; total=1" in response.headers["X-Waypost-Panic"]
