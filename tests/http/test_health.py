"""/v1/health/*: instances with their checks, filtered by health and tag.

`?passing` is Consul's filterNonPassing (health_endpoint.go): an instance is
dropped when any of its checks is not passing, its node's checks included
(serfHealth, node checks, node maintenance).
"""

from __future__ import annotations

import consul
import httpx
import pytest

from tests.http.support import health_ids, register
from waypost.testing import AgentProcess


def _passing_ttl(check_id: str) -> dict[str, str]:
    return {"CheckID": check_id, "TTL": "30s", "Status": "passing"}


def test_node_lists_node_and_service_checks(http: httpx.Client, unique: str) -> None:
    http.put(
        "/v1/catalog/register",
        json={
            "Node": unique,
            "Address": "10.0.1.1",
            "Service": {"Service": f"{unique}-s"},
            "Checks": [
                {"CheckID": "node-disk", "Name": "disk", "Status": "warning"},
                {"CheckID": "svc-up", "Name": "up", "ServiceID": f"{unique}-s"},
            ],
        },
    )
    checks = http.get(f"/v1/health/node/{unique}").json()
    assert [(c["CheckID"], c["ServiceID"], c["Status"]) for c in checks] == [
        ("node-disk", "", "warning"),
        ("svc-up", f"{unique}-s", "critical"),
    ]
    assert all(c["Node"] == unique for c in checks)


def test_node_without_checks_is_an_empty_list(http: httpx.Client) -> None:
    response = http.get("/v1/health/node/no-such-node")
    assert (response.status_code, response.json()) == (200, [])


def test_checks_lists_the_checks_of_every_instance_of_a_service(
    client: consul.Consul, http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "ID": f"{unique}-1", "Check": {"TTL": "30s"}})
    register(http, {"Name": unique, "ID": f"{unique}-2", "Check": {"TTL": "30s"}})
    _, checks = client.health.checks(unique)
    assert sorted(c["CheckID"] for c in checks) == [
        f"service:{unique}-1",
        f"service:{unique}-2",
    ]
    assert {c["ServiceName"] for c in checks} == {unique}


def test_service_returns_node_service_and_checks_with_serf_health(
    client: consul.Consul, http: httpx.Client, shared_agent: AgentProcess, unique: str
) -> None:
    register(http, {"Name": unique, "Port": 3000, "Check": {"TTL": "30s"}})
    _, entries = client.health.service(unique)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["Node"]["Node"] == shared_agent.node
    assert (entry["Service"]["ID"], entry["Service"]["Port"]) == (unique, 3000)
    assert [c["CheckID"] for c in entry["Checks"]] == [
        "serfHealth",
        f"service:{unique}",
    ]


def test_passing_drops_an_instance_whose_service_check_is_not_passing(
    client: consul.Consul, http: httpx.Client, unique: str
) -> None:
    register(
        http,
        {"Name": unique, "ID": f"{unique}-ok", "Check": _passing_ttl(f"{unique}-a")},
    )
    register(
        http,
        {"Name": unique, "ID": f"{unique}-warn", "Check": _passing_ttl(f"{unique}-b")},
    )
    register(
        http,
        {"Name": unique, "ID": f"{unique}-down", "Check": _passing_ttl(f"{unique}-c")},
    )
    http.put(f"/v1/agent/check/warn/{unique}-b")
    http.put(f"/v1/agent/check/fail/{unique}-c")

    assert sorted(health_ids(http, unique)) == [
        f"{unique}-down",
        f"{unique}-ok",
        f"{unique}-warn",
    ]
    assert health_ids(http, unique, passing="") == [f"{unique}-ok"]
    _, entries = client.health.service(unique, passing=True)
    assert [e["Service"]["ID"] for e in entries] == [f"{unique}-ok"]


def test_passing_drops_an_instance_when_any_of_its_checks_fails(
    http: httpx.Client, unique: str
) -> None:
    register(
        http,
        {
            "Name": unique,
            "Checks": [_passing_ttl(f"{unique}-a"), _passing_ttl(f"{unique}-b")],
        },
    )
    assert health_ids(http, unique, passing="") == [unique]
    http.put(f"/v1/agent/check/fail/{unique}-b")
    assert health_ids(http, unique, passing="") == []


def test_passing_drops_instances_on_a_node_with_a_failing_node_check(
    http: httpx.Client, unique: str
) -> None:
    http.put(
        "/v1/catalog/register",
        json={
            "Node": f"{unique}-sick",
            "Address": "10.0.1.2",
            "Service": {"Service": unique, "ID": f"{unique}-1"},
            "Check": {"CheckID": "node-disk", "Name": "disk", "Status": "warning"},
        },
    )
    http.put(
        "/v1/catalog/register",
        json={
            "Node": f"{unique}-well",
            "Address": "10.0.1.3",
            "Service": {"Service": unique, "ID": f"{unique}-2"},
        },
    )
    assert sorted(health_ids(http, unique)) == [f"{unique}-1", f"{unique}-2"]
    assert health_ids(http, unique, passing="") == [f"{unique}-2"]


def test_passing_drops_an_instance_in_service_maintenance(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "Check": _passing_ttl(f"{unique}-a")})
    http.put(f"/v1/agent/service/maintenance/{unique}", params={"enable": "true"})
    assert health_ids(http, unique, passing="") == []
    assert health_ids(http, unique) == [unique]


def test_passing_drops_every_instance_during_node_maintenance(
    fresh_http: httpx.Client,
) -> None:
    register(fresh_http, {"Name": "web", "Check": _passing_ttl("web-up")})
    assert health_ids(fresh_http, "web", passing="") == ["web"]
    fresh_http.put("/v1/agent/maintenance", params={"enable": "true"})
    assert health_ids(fresh_http, "web", passing="") == []
    entry = fresh_http.get("/v1/health/service/web").json()[0]
    maintenance = {c["CheckID"]: c for c in entry["Checks"]}["_node_maintenance"]
    assert maintenance["Status"] == "critical"
    fresh_http.put("/v1/agent/maintenance", params={"enable": "false"})
    assert health_ids(fresh_http, "web", passing="") == ["web"]


@pytest.mark.parametrize(
    ("value", "filtered"),
    [("", True), ("true", True), ("1", True), ("false", False), ("0", False)],
)
def test_passing_takes_go_booleans(
    http: httpx.Client, unique: str, value: str, filtered: bool
) -> None:
    register(http, {"Name": unique, "Check": {"TTL": "30s"}})
    expected = [] if filtered else [unique]
    assert health_ids(http, unique, passing=value) == expected


def test_passing_with_a_bad_value_is_400(http: httpx.Client) -> None:
    response = http.get("/v1/health/service/anything", params={"passing": "yes"})
    assert (response.status_code, response.text) == (400, "Invalid value for ?passing")


def test_service_filters_by_tag(
    client: consul.Consul, http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "ID": f"{unique}-1", "Tags": ["primary", "v2"]})
    register(http, {"Name": unique, "ID": f"{unique}-2", "Tags": ["replica", "v2"]})
    assert health_ids(http, unique, tag="primary") == [f"{unique}-1"]
    response = http.get(
        f"/v1/health/service/{unique}", params={"tag": ["v2", "replica"]}
    )
    assert [e["Service"]["ID"] for e in response.json()] == [f"{unique}-2"]
    assert health_ids(http, unique, tag="REPLICA") == [f"{unique}-2"]
    _, entries = client.health.service(unique, tag="v2")
    assert sorted(e["Service"]["ID"] for e in entries) == [f"{unique}-1", f"{unique}-2"]


def test_service_for_a_peer_has_no_instances(http: httpx.Client, unique: str) -> None:
    register(http, {"Name": unique})
    assert health_ids(http, unique, peer="other-cluster") == []


@pytest.mark.parametrize("state", ["any", "passing", "warning", "critical"])
def test_state_lists_the_checks_in_that_state(
    http: httpx.Client, unique: str, state: str
) -> None:
    register(
        http,
        {
            "Name": unique,
            "Checks": [
                {"CheckID": f"{unique}-p", "TTL": "30s", "Status": "passing"},
                {"CheckID": f"{unique}-w", "TTL": "30s", "Status": "warning"},
                {"CheckID": f"{unique}-c", "TTL": "30s", "Status": "critical"},
            ],
        },
    )
    response = http.get(f"/v1/health/state/{state}")
    assert response.status_code == 200
    checks = response.json()
    mine = sorted(c["CheckID"] for c in checks if c["CheckID"].startswith(unique))
    expected = {
        "any": [f"{unique}-c", f"{unique}-p", f"{unique}-w"],
        "passing": [f"{unique}-p"],
        "warning": [f"{unique}-w"],
        "critical": [f"{unique}-c"],
    }[state]
    assert mine == expected
    if state != "any":
        assert {c["Status"] for c in checks} == {state}


def test_state_any_includes_serf_health(client: consul.Consul) -> None:
    _, checks = client.health.state("any")
    assert "serfHealth" in [c["CheckID"] for c in checks]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/health/state/unknown", 'Unknown check state "unknown"'),
        ("/v1/health/state/", "Missing check state"),
        ("/v1/health/node/", "Missing node name"),
        ("/v1/health/checks/", "Missing service name"),
        ("/v1/health/service/", "Missing service name"),
    ],
)
def test_bad_health_reads_are_400(http: httpx.Client, path: str, message: str) -> None:
    response = http.get(path)
    assert response.status_code == 400
    assert response.text.startswith(message)
