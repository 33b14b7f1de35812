"""TTL checks expire on their own: end to end, on a real clock, no sleeps.

On a fresh agent: the shared one collects TTL checks other tests abandoned,
and once enough of them go quiet the self-preservation brake (core/brake.py)
rightly holds every expiry.
"""

from __future__ import annotations

import consul
import httpx

from tests.http.support import agent_checks, health_ids, register
from waypost.testing import wait_until


def _check(http: httpx.Client, check_id: str) -> dict[str, str]:
    check: dict[str, str] = agent_checks(http)[check_id]
    return check


def test_a_ttl_check_turns_critical_with_ttl_expired_when_not_refreshed(
    fresh_client: consul.Consul, fresh_http: httpx.Client
) -> None:
    fresh_client.agent.service.register("web", check=consul.Check.ttl("1s"))
    assert fresh_client.agent.check.ttl_pass("service:web") is True
    assert _check(fresh_http, "service:web")["Status"] == "passing"

    wait_until(lambda: _check(fresh_http, "service:web")["Status"] == "critical")
    assert _check(fresh_http, "service:web")["Output"] == "TTL expired"
    assert health_ids(fresh_http, "web", passing="") == []


def test_a_heartbeat_brings_an_expired_check_back(fresh_http: httpx.Client) -> None:
    register(fresh_http, {"Name": "web", "Check": {"TTL": "1s", "Status": "passing"}})
    wait_until(lambda: _check(fresh_http, "service:web")["Status"] == "critical")

    fresh_http.put("/v1/agent/check/pass/service:web", params={"note": "back"})
    check = _check(fresh_http, "service:web")
    assert (check["Status"], check["Output"]) == ("passing", "back")
    assert health_ids(fresh_http, "web", passing="") == ["web"]
