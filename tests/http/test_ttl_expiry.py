"""TTL checks expire on their own: end to end, on a real clock, no sleeps."""

from __future__ import annotations

import consul
import httpx

from tests.http.support import agent_checks, health_ids, register
from waypost.testing import wait_until


def _check(http: httpx.Client, check_id: str) -> dict[str, str]:
    check: dict[str, str] = agent_checks(http)[check_id]
    return check


def test_a_ttl_check_turns_critical_with_ttl_expired_when_not_refreshed(
    client: consul.Consul, http: httpx.Client, unique: str
) -> None:
    client.agent.service.register(unique, check=consul.Check.ttl("1s"))
    check_id = f"service:{unique}"
    assert client.agent.check.ttl_pass(check_id) is True
    assert _check(http, check_id)["Status"] == "passing"

    wait_until(lambda: _check(http, check_id)["Status"] == "critical", timeout=10)
    assert _check(http, check_id)["Output"] == "TTL expired"
    assert health_ids(http, unique, passing="") == []


def test_a_heartbeat_brings_an_expired_check_back(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "Check": {"TTL": "1s", "Status": "passing"}})
    check_id = f"service:{unique}"
    wait_until(lambda: _check(http, check_id)["Status"] == "critical", timeout=10)

    http.put(f"/v1/agent/check/pass/{check_id}", params={"note": "back"})
    assert (_check(http, check_id)["Status"], _check(http, check_id)["Output"]) == (
        "passing",
        "back",
    )
    assert health_ids(http, unique, passing="") == [unique]
    http.put(f"/v1/agent/service/deregister/{unique}")
