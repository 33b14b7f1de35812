"""Operator endpoints, usage and config entries against a real agent."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from waypost.testing import AgentProcess, run_agent


def test_autopilot_configuration_put_replaces_it_whole_and_cas_guards_it(
    fresh_http: httpx.Client,
) -> None:
    url = "/v1/operator/autopilot/configuration"
    before = fresh_http.get(url).json()
    assert before["CleanupDeadServers"] is True
    assert before["LastContactThreshold"] == "200ms"
    assert before["ServerStabilizationTime"] == "10s"
    assert before["MaxTrailingLogs"] == 250
    assert fresh_http.put(url + "?cas=999", json={"MinQuorum": 3}).json() is False
    assert fresh_http.get(url).json() == before
    # As Consul's api.AutopilotConfiguration: what the body omits is zero.
    body = {"MinQuorum": 3, "LastContactThreshold": "1s"}
    assert fresh_http.put(url + f"?cas={before['ModifyIndex']}", json=body).json()
    after = fresh_http.get(url).json()
    assert after["MinQuorum"] == 3
    assert after["LastContactThreshold"] == "1s"
    assert after["CleanupDeadServers"] is False
    assert after["MaxTrailingLogs"] == 0
    assert after["ModifyIndex"] > before["ModifyIndex"]


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("?cas=x", "{}", "Error parsing cas value"),
        ("", '{"LastContactThreshold": "soon"}', 'invalid duration "soon"'),
        ("", '{"MaxTrailingLogs": "many"}', "MaxTrailingLogs"),
        ("", "[1, 2]", "Error parsing autopilot config"),
        ("", "{", "Request decode failed"),
    ],
)
def test_bad_autopilot_configuration_is_a_400(
    http: httpx.Client, query: str, body: str, message: str
) -> None:
    url = "/v1/operator/autopilot/configuration" + query
    response = http.put(url, content=body)
    assert response.status_code == 400
    assert message in response.text


def test_autopilot_health_and_state_show_the_agent_as_the_one_healthy_leader(
    http: httpx.Client,
) -> None:
    health = http.get("/v1/operator/autopilot/health")
    assert health.status_code == 200
    body = health.json()
    assert body["Healthy"] is True
    assert body["FailureTolerance"] == 0
    [server] = body["Servers"]
    assert server["Leader"] and server["Voter"] and server["Healthy"]
    assert server["SerfStatus"] == "alive"
    state = http.get("/v1/operator/autopilot/state").json()
    assert state["Leader"] == server["ID"]
    assert state["Voters"] == [server["ID"]]
    assert state["Servers"][server["ID"]]["Status"] == "leader"


def test_raft_peer_removal_is_refused_in_consuls_words(http: httpx.Client) -> None:
    url = "/v1/operator/raft/peer"
    missing = http.delete(url)
    assert missing.status_code == 400
    assert missing.text.startswith("Must specify either ?id")
    both = http.delete(url, params={"id": "a", "address": "b"})
    assert both.text == "Must specify only one of ?id or ?address"
    unknown = http.delete(url, params={"address": "10.0.0.1:8300"})
    assert unknown.status_code == 400
    assert unknown.text == (
        'address "10.0.0.1:8300" was not found in the Raft configuration'
    )
    own = http.get("/v1/operator/raft/configuration").json()["Servers"][0]
    itself = http.delete(url, params={"address": own["Address"]})
    assert itself.status_code == 400
    assert "cannot remove a server" in itself.text
    assert http.get("/v1/status/leader").json() == own["Address"]


def test_usage_counts_services_instances_and_nodes(fresh_http: httpx.Client) -> None:
    for i in range(3):
        fresh_http.put(
            "/v1/agent/service/register", json={"Name": "web", "ID": f"web-{i}"}
        ).raise_for_status()
    fresh_http.put("/v1/agent/service/register", json={"Name": "db"})
    usage = fresh_http.get("/v1/operator/usage").json()
    dc1 = usage["Usage"]["dc1"]
    # consul itself counts, as in Consul (but is not billable)
    assert dc1["Services"] == 3
    assert dc1["ServiceInstances"] == 5
    assert dc1["BillableServiceInstances"] == 4
    assert dc1["Nodes"] == 1
    assert dc1["ConnectServiceInstances"]["connect-proxy"] == 0
    assert usage["KnownLeader"] is True


def test_config_entry_round_trip_in_consuls_spelling(http: httpx.Client) -> None:
    body = {
        "kind": "service-defaults",
        "name": "cfg-web",
        "protocol": "HTTP",
        "mesh_gateway": {"Mode": "local"},
        "Meta": {"team": "a"},
    }
    assert http.put("/v1/config", json=body).json() is True
    entry = http.get("/v1/config/service-defaults/cfg-web").json()
    assert entry["Kind"] == "service-defaults"
    assert entry["Name"] == "cfg-web"
    assert entry["Protocol"] == "http"  # ServiceConfigEntry.Normalize
    assert entry["MeshGateway"] == {"Mode": "local"}
    assert entry["Meta"] == {"team": "a"}
    assert entry["CreateIndex"] == entry["ModifyIndex"] > 0
    listed = http.get("/v1/config/service-defaults").json()
    assert [e["Name"] for e in listed if e["Name"] == "cfg-web"] == ["cfg-web"]
    assert http.delete("/v1/config/service-defaults/cfg-web").json() == {}
    gone = http.get("/v1/config/service-defaults/cfg-web")
    assert gone.status_code == 404
    assert gone.text == 'Config entry not found for "service-defaults" / "cfg-web"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Name": "x"}, "Payload does not contain a kind/Kind key at the top level"),
        ({"Kind": 3, "Name": "x"}, "Kind value in payload is not a string"),
        ({"Kind": "nope", "Name": "x"}, "invalid config entry kind: nope"),
        ({"Kind": "service-defaults"}, "Name is required"),
        ({"Kind": "service-defaults", "Name": "x", "Routes": []}, "invalid keys"),
        ({"Kind": "proxy-defaults", "Name": "x"}, 'only "global" is supported'),
        ({"Kind": "exported-services", "Name": "x"}, "Name must be"),
        ({"Kind": "service-defaults", "Name": "*"}, "not a wildcard"),
        ({"Kind": "service-defaults", "Name": "x", "Protocol": 1}, "Protocol"),
        ({"Kind": "service-defaults", "Name": "x", "Meta": {"a": 1}}, "Meta"),
    ],
)
def test_bad_config_entries_are_a_400_and_change_nothing(
    http: httpx.Client, body: dict[str, object], message: str
) -> None:
    before = http.get("/v1/config/service-defaults").headers["x-consul-index"]
    response = http.put("/v1/config", json=body)
    assert response.status_code == 400, response.text
    assert message in response.text
    after = http.get("/v1/config/service-defaults").headers["x-consul-index"]
    assert after == before


def test_config_entry_cas_creates_only_when_absent_and_updates_at_its_index(
    http: httpx.Client, unique: str
) -> None:
    entry = {"Kind": "service-resolver", "Name": unique, "ConnectTimeout": "5s"}
    assert http.put("/v1/config?cas=0", json=entry).json() is True
    assert http.put("/v1/config?cas=0", json=entry).json() is False
    index = http.get(f"/v1/config/service-resolver/{unique}").json()["ModifyIndex"]
    changed = {**entry, "ConnectTimeout": "9s"}
    assert http.put(f"/v1/config?cas={index + 1}", json=changed).json() is False
    assert http.put(f"/v1/config?cas={index}", json=changed).json() is True
    url = f"/v1/config/service-resolver/{unique}"
    assert http.get(url).json()["ConnectTimeout"] == "9s"
    assert http.delete(url + "?cas=1").json() is False
    now = http.get(url).json()["ModifyIndex"]
    assert http.delete(f"{url}?cas={now}").json() is True
    assert http.get(url).status_code == 404


def test_fixed_name_kinds_take_their_one_name(http: httpx.Client) -> None:
    assert http.put("/v1/config", json={"Kind": "proxy-defaults"}).json() is True
    assert http.get("/v1/config/proxy-defaults/global").json()["Name"] == "global"
    assert http.put("/v1/config", json={"Kind": "mesh", "Name": "x"}).json() is True
    assert http.get("/v1/config/mesh/mesh").json()["Name"] == "mesh"


def test_a_config_list_blocks_until_an_entry_of_its_kind_changes(
    http: httpx.Client, shared_agent: AgentProcess, unique: str
) -> None:
    first = http.get("/v1/config/service-splitter")
    index = first.headers["x-consul-index"]
    answered: list[float] = []

    def wait() -> None:
        with httpx.Client(base_url=shared_agent.url, timeout=30) as own:
            started = time.monotonic()
            own.get(f"/v1/config/service-splitter?index={index}&wait=20s")
            answered.append(time.monotonic() - started)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # the waiter parks; another kind wakes nobody
    http.put("/v1/config", json={"Kind": "service-defaults", "Name": unique})
    time.sleep(0.3)
    assert not answered
    splits = [{"Weight": 100}]
    body = {"Kind": "service-splitter", "Name": unique, "Splits": splits}
    http.put("/v1/config", json=body).raise_for_status()
    waiter.join(timeout=20)
    assert answered and answered[0] < 5


def _client(agent: AgentProcess) -> httpx.Client:
    return httpx.Client(base_url=agent.url, timeout=30)


def test_config_entries_and_autopilot_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with run_agent(dev=False, data_dir=data) as agent, _client(agent) as http:
        entry = {"Kind": "service-defaults", "Name": "kept", "Protocol": "grpc"}
        http.put("/v1/config", json=entry).raise_for_status()
        url = "/v1/operator/autopilot/configuration"
        http.put(url, json={"MinQuorum": 5}).raise_for_status()
        saved = http.get("/v1/config/service-defaults/kept").json()
    with run_agent(dev=False, data_dir=data) as agent, _client(agent) as http:
        assert http.get("/v1/config/service-defaults/kept").json() == saved
        auto = http.get("/v1/operator/autopilot/configuration").json()
        assert auto["MinQuorum"] == 5
