"""/v1/agent/*: self, members, local services and checks, maintenance, leave.

Expected shapes and words are Consul's (agent/agent_endpoint.go, agent.go,
api-docs/agent/service.mdx and check.mdx), checked with the real py-consul
client and with raw HTTP where the client hides the wire.
"""

from __future__ import annotations

import consul
import httpx
import pytest

import waypost
from tests.http.support import (
    agent_checks,
    agent_services,
    health_ids,
    register,
)
from tests.stores import STATUS_IS_ETCD
from waypost.testing import AgentProcess

# Consul's default maintenance notes (agent.go).
SERVICE_MAINT_NOTE = (
    "Maintenance mode is enabled for this service, but no reason was provided."
    " This is a default message."
)
NODE_MAINT_NOTE = (
    "Maintenance mode is enabled for this node, but no reason was provided."
    " This is a default message."
)


# ---------------------------------------------------------------- self, members


def test_self_reports_consul_version_and_datacenter(
    client: consul.Consul, shared_agent: AgentProcess
) -> None:
    config = client.agent.self()["Config"]
    assert config["Version"] == "1.22.0"
    assert config["Datacenter"] == "dc1"
    assert config["PrimaryDatacenter"] == "dc1"
    assert config["NodeName"] == shared_agent.node
    assert config["Server"] is True
    # Consul omits an empty Partition (json:",omitempty").
    assert "Partition" not in config


def test_self_keeps_waypost_version_apart_from_the_consul_version(
    client: consul.Consul,
) -> None:
    me = client.agent.self()
    assert me["Stats"]["waypost"]["version"] == waypost.__version__
    assert me["Config"]["Version"] != waypost.__version__
    assert int(me["Stats"]["waypost"]["index"]) >= 1
    # Consul's Self has exactly these keys; clients check the set.
    assert set(me) == {
        "Config",
        "DebugConfig",
        "Coord",
        "Member",
        "Stats",
        "Meta",
        "xDS",
    }
    # Go clients decode Stats as map[string]map[string]string.
    assert all(
        isinstance(v, str) for group in me["Stats"].values() for v in group.values()
    )


@STATUS_IS_ETCD
def test_self_stats_name_the_leader_that_status_reports(client: consul.Consul) -> None:
    stats = client.agent.self()["Stats"]
    assert stats["consul"]["leader"] == "true"
    assert stats["consul"]["leader_addr"] == client.status.leader()


def test_members_lists_this_agent_alive(
    client: consul.Consul, shared_agent: AgentProcess
) -> None:
    members = client.agent.members()
    assert [m["Name"] for m in members] == [shared_agent.node]
    assert members[0]["Status"] == 1  # serf.StatusAlive
    assert members[0]["Tags"]["dc"] == "dc1"
    assert members[0]["Tags"]["role"] == "consul"


def test_wan_members_are_named_node_dot_datacenter(
    client: consul.Consul, shared_agent: AgentProcess
) -> None:
    wan = client.agent.members(wan=True)
    assert [m["Name"] for m in wan] == [f"{shared_agent.node}.dc1"]


# ---------------------------------------------------------------- services


def test_services_lists_registered_services_but_not_consul(
    client: consul.Consul, unique: str
) -> None:
    client.agent.service.register(unique, service_id=f"{unique}-a", port=80)
    client.agent.service.register(unique, service_id=f"{unique}-b", port=81)
    services = client.agent.services()
    assert {f"{unique}-a", f"{unique}-b"} <= set(services)
    assert "consul" not in services
    assert services[f"{unique}-b"]["Service"] == unique
    assert services[f"{unique}-b"]["Port"] == 81


def test_service_by_id_returns_the_instance_and_its_content_hash(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "ID": f"{unique}-1", "Port": 7000})
    response = http.get(f"/v1/agent/service/{unique}-1")
    assert response.status_code == 200
    body = response.json()
    assert body["ID"] == f"{unique}-1"
    assert body["Service"] == unique
    assert body["Port"] == 7000
    assert body["Datacenter"] == "dc1"
    assert body["ContentHash"]
    assert response.headers["X-Consul-ContentHash"] == body["ContentHash"]


def test_service_by_unknown_id_is_404_in_consul_words(http: httpx.Client) -> None:
    response = http.get("/v1/agent/service/no-such-service")
    assert response.status_code == 404
    assert response.text == "unknown service ID: no-such-service"


def test_registration_defaults_id_weights_tags_and_meta(
    client: consul.Consul, unique: str
) -> None:
    assert client.agent.service.register(unique) is True
    service = client.agent.services()[unique]
    assert service["ID"] == unique
    assert service["Weights"] == {"Passing": 1, "Warning": 1}
    assert service["Tags"] == []
    assert service["Meta"] == {}
    assert service["Port"] == 0
    assert service["EnableTagOverride"] is False


def test_registration_accepts_lowercase_keys_as_python_consul_sends_them(
    http: httpx.Client, unique: str
) -> None:
    register(
        http,
        {
            "name": unique,
            "id": f"{unique}-1",
            "address": "db.internal",
            "port": 5432,
            "tags": ["primary"],
            "meta": {"zone": "a"},
            "weights": {"passing": 5, "warning": 2},
            "enabletagoverride": True,
            "checks": [{"ttl": "30s", "notes": "heartbeat"}],
        },
    )
    service = agent_services(http)[f"{unique}-1"]
    assert service["Address"] == "db.internal"
    assert service["Port"] == 5432
    assert service["Tags"] == ["primary"]
    assert service["Meta"] == {"zone": "a"}
    assert service["Weights"] == {"Passing": 5, "Warning": 2}
    assert service["EnableTagOverride"] is True
    check = agent_checks(http)[f"service:{unique}-1"]
    assert check["Notes"] == "heartbeat"
    assert check["Definition"]["TTL"] == "30s"


def test_registration_accepts_consul_snake_case_aliases(
    http: httpx.Client, unique: str
) -> None:
    register(
        http,
        {
            "Name": unique,
            "enable_tag_override": True,
            "tagged_addresses": {"lan": {"address": "10.0.0.9", "port": 80}},
            "check": {
                "ttl": "30s",
                "deregister_critical_service_after": "90m",
                "check_id": f"{unique}-ttl",
            },
        },
    )
    service = agent_services(http)[unique]
    assert service["EnableTagOverride"] is True
    assert service["TaggedAddresses"]["lan"] == {"Address": "10.0.0.9", "Port": 80}
    check = agent_checks(http)[f"{unique}-ttl"]
    assert check["Definition"]["DeregisterCriticalServiceAfter"] == "1h30m0s"


def test_an_ip_address_gets_consul_default_tagged_addresses(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "Address": "10.1.2.3", "Port": 80})
    tagged = agent_services(http)[unique]["TaggedAddresses"]
    assert tagged == {
        "lan_ipv4": {"Address": "10.1.2.3", "Port": 80},
        "wan_ipv4": {"Address": "10.1.2.3", "Port": 80},
    }


def test_a_single_service_check_is_named_service_colon_id(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "ID": f"{unique}-1", "Check": {"TTL": "30s"}})
    check = agent_checks(http)[f"service:{unique}-1"]
    assert check["Name"] == f"Service '{unique}' check"
    assert check["ServiceID"] == f"{unique}-1"
    assert check["ServiceName"] == unique
    assert check["Type"] == "ttl"


def test_check_and_checks_are_numbered_check_first(
    http: httpx.Client, unique: str
) -> None:
    register(
        http,
        {
            "Name": unique,
            "Check": {"TTL": "11s"},
            "Checks": [{"TTL": "12s"}, {"TTL": "13s"}],
        },
    )
    checks = agent_checks(http)
    ttls = {
        check_id: checks[check_id]["Definition"]["TTL"]
        for check_id in (
            f"service:{unique}:1",
            f"service:{unique}:2",
            f"service:{unique}:3",
        )
    }
    assert ttls == {
        f"service:{unique}:1": "11s",
        f"service:{unique}:2": "12s",
        f"service:{unique}:3": "13s",
    }


def test_python_consul_check_lands_as_the_single_service_check(
    client: consul.Consul, unique: str
) -> None:
    # py-consul sends `check=` as "checks": [check]; one check, so no ":1".
    client.agent.service.register(unique, check=consul.Check.ttl("30s"))
    assert f"service:{unique}" in client.agent.checks()


def test_service_checks_start_critical_unless_a_status_is_given(
    http: httpx.Client, unique: str
) -> None:
    register(
        http,
        {
            "Name": unique,
            "Checks": [
                {"CheckID": f"{unique}-plain", "TTL": "30s"},
                {"CheckID": f"{unique}-up", "TTL": "30s", "Status": "passing"},
                {"CheckID": f"{unique}-meh", "TTL": "30s", "Status": "warning"},
            ],
        },
    )
    checks = agent_checks(http)
    assert checks[f"{unique}-plain"]["Status"] == "critical"
    assert checks[f"{unique}-up"]["Status"] == "passing"
    assert checks[f"{unique}-meh"]["Status"] == "warning"


def test_reregistering_keeps_the_current_check_status_and_output(
    http: httpx.Client, unique: str
) -> None:
    """Consul restores a re-registered check's state: a client re-asserting
    itself never flaps its instance to critical."""
    body = {"Name": unique, "Check": {"TTL": "30s"}}
    register(http, body)
    http.put(f"/v1/agent/check/pass/service:{unique}", params={"note": "warm"})
    register(http, body)
    register(http, {"Name": unique, "Check": {"TTL": "60s", "Status": "critical"}})
    check = agent_checks(http)[f"service:{unique}"]
    assert (check["Status"], check["Output"]) == ("passing", "warm")
    assert check["Definition"]["TTL"] == "1m0s"


def test_replace_existing_checks_drops_the_checks_left_out(
    http: httpx.Client, unique: str
) -> None:
    both = [
        {"CheckID": f"{unique}-a", "TTL": "30s"},
        {"CheckID": f"{unique}-b", "TTL": "30s"},
    ]
    register(http, {"Name": unique, "Checks": both})
    register(http, {"Name": unique, "Checks": both[:1]})
    assert {f"{unique}-a", f"{unique}-b"} <= set(agent_checks(http))

    register(
        http,
        {"Name": unique, "Checks": both[:1]},
        **{"replace-existing-checks": "true"},
    )
    checks = agent_checks(http)
    assert f"{unique}-a" in checks
    assert f"{unique}-b" not in checks


def test_python_consul_replace_existing_checks(
    client: consul.Consul, unique: str
) -> None:
    client.agent.service.register(
        unique,
        check=consul.Check.ttl("30s"),
        extra_checks=[consul.Check.ttl("31s")],
    )
    assert {f"service:{unique}:1", f"service:{unique}:2"} <= set(client.agent.checks())
    client.agent.service.register(
        unique, check=consul.Check.ttl("30s"), replace_existing_checks=True
    )
    mine = {c for c in client.agent.checks() if c.startswith(f"service:{unique}")}
    assert mine == {f"service:{unique}"}


def test_deregister_removes_the_service_and_its_checks(
    client: consul.Consul, unique: str
) -> None:
    client.agent.service.register(unique, check=consul.Check.ttl("30s"))
    assert client.agent.service.deregister(unique) is True
    assert unique not in client.agent.services()
    assert f"service:{unique}" not in client.agent.checks()
    _, nodes = client.health.service(unique)
    assert nodes == []


def test_deregister_of_an_unknown_service_is_404_in_consul_words(
    http: httpx.Client,
) -> None:
    response = http.put("/v1/agent/service/deregister/no-such-service")
    assert response.status_code == 404
    assert response.text == (
        'Unknown service ID "no-such-service". Ensure that the service ID is'
        " passed, not the service name."
    )


# ---------------------------------------------------------------- numeric IDs


def test_numeric_id_is_taken_as_the_id_with_a_port_hint(
    http: httpx.Client, unique: str
) -> None:
    """python-consul's `register("example-service", 8080)` sends 8080 as the ID."""
    name = f"example-service-{unique}"
    response = http.put(
        "/v1/agent/service/register",
        json={"name": name, "id": 8080, "address": "localhost", "tags": ["web"]},
    )
    assert response.status_code == 200
    assert "did you mean port=8080?" in response.headers["X-Waypost-Warning"]
    assert health_ids(http, name) == ["8080"]
    service = agent_services(http)["8080"]
    assert (service["Service"], service["Port"], service["Tags"]) == (name, 0, ["web"])
    http.put("/v1/agent/service/deregister/8080")


def test_numeric_id_with_a_port_registers_without_a_warning(
    http: httpx.Client, unique: str
) -> None:
    response = http.put(
        "/v1/agent/service/register",
        json={"name": unique, "id": 8081, "port": 9000},
    )
    assert response.status_code == 200
    assert "X-Waypost-Warning" not in response.headers
    assert agent_services(http)["8081"]["Port"] == 9000
    http.put("/v1/agent/service/deregister/8081")


def test_python_consul_positional_id_registers_the_number_as_id(
    client: consul.Consul, unique: str
) -> None:
    name = f"example-service-{unique}"
    assert client.agent.service.register(name, 8082) is True
    _, nodes = client.health.service(name)
    assert [n["Service"]["ID"] for n in nodes] == ["8082"]
    client.agent.service.deregister("8082")


# ---------------------------------------------------------------- maintenance


def test_service_maintenance_adds_a_critical_check_with_the_reason(
    client: consul.Consul, http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "Check": {"TTL": "30s", "Status": "passing"}})
    assert client.agent.service.maintenance(unique, True, "upgrading db") is True

    check = client.agent.checks()[f"_service_maintenance:{unique}"]
    assert check["Status"] == "critical"
    assert check["Notes"] == "upgrading db"
    assert check["Name"] == "Service Maintenance Mode"
    assert check["ServiceID"] == unique
    assert health_ids(http, unique, passing="") == []

    assert client.agent.service.maintenance(unique, False) is True
    assert f"_service_maintenance:{unique}" not in client.agent.checks()
    assert health_ids(http, unique, passing="") == [unique]


def test_service_maintenance_without_a_reason_uses_consul_default_note(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique})
    http.put(f"/v1/agent/service/maintenance/{unique}", params={"enable": "true"})
    notes = agent_checks(http)[f"_service_maintenance:{unique}"]["Notes"]
    assert notes == SERVICE_MAINT_NOTE


def test_enabling_service_maintenance_twice_keeps_the_first_reason(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique})
    url = f"/v1/agent/service/maintenance/{unique}"
    http.put(url, params={"enable": "true", "reason": "first"})
    assert (
        http.put(url, params={"enable": "true", "reason": "second"}).status_code == 200
    )
    assert agent_checks(http)[f"_service_maintenance:{unique}"]["Notes"] == "first"


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("{id}", {}, 400, "Missing value for enable"),
        ("{id}", {"enable": "maybe"}, 400, 'Invalid value for enable: "maybe"'),
        ("{id}", {"enable": ""}, 400, 'Invalid value for enable: ""'),
        ("", {"enable": "true"}, 400, "Missing service ID"),
        (
            "nope-{id}",
            {"enable": "true"},
            404,
            'No service registered with ID "nope-{id}"',
        ),
        (
            "nope-{id}",
            {"enable": "false"},
            404,
            'No service registered with ID "nope-{id}"',
        ),
    ],
)
def test_service_maintenance_rejects_bad_requests_in_consul_words(
    http: httpx.Client,
    unique: str,
    path: str,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    register(http, {"Name": unique})
    response = http.put(
        "/v1/agent/service/maintenance/" + path.format(id=unique), params=params
    )
    assert (response.status_code, response.text) == (status, message.format(id=unique))
    assert f"_service_maintenance:{unique}" not in agent_checks(http)


def test_node_maintenance_takes_every_instance_out_of_rotation(
    fresh_client: consul.Consul, fresh_http: httpx.Client
) -> None:
    register(
        fresh_http,
        {"Name": "web", "ID": "web-1", "Check": {"TTL": "30s", "Status": "passing"}},
    )
    register(fresh_http, {"Name": "api", "Check": {"TTL": "30s", "Status": "passing"}})
    assert fresh_client.agent.maintenance(True, "kernel upgrade") is True

    check = fresh_client.agent.checks()["_node_maintenance"]
    assert check["Status"] == "critical"
    assert check["Notes"] == "kernel upgrade"
    assert check["Name"] == "Node Maintenance Mode"
    assert check["ServiceID"] == ""
    assert health_ids(fresh_http, "web", passing="") == []
    assert health_ids(fresh_http, "api", passing="") == []
    assert fresh_http.get("/v1/agent/health/service/id/web-1").status_code == 503

    assert fresh_client.agent.maintenance(False) is True
    assert "_node_maintenance" not in fresh_client.agent.checks()
    assert health_ids(fresh_http, "web", passing="") == ["web-1"]


def test_node_maintenance_default_note_and_bad_flags(fresh_http: httpx.Client) -> None:
    assert fresh_http.put("/v1/agent/maintenance").text == "Missing value for enable"
    bad = fresh_http.put("/v1/agent/maintenance", params={"enable": "yes"})
    assert (bad.status_code, bad.text) == (400, 'Invalid value for enable: "yes"')
    fresh_http.put("/v1/agent/maintenance", params={"enable": "1"})
    assert agent_checks(fresh_http)["_node_maintenance"]["Notes"] == NODE_MAINT_NOTE


# ---------------------------------------------------------------- checks
#
# A node-level check decides the health of every instance on its node, so
# node-level checks go on a fresh agent; the others hang off their own
# service on the shared one.


def _ttl_check_on_own_service(http: httpx.Client, unique: str) -> str:
    register(http, {"Name": unique})
    response = http.put(
        "/v1/agent/check/register",
        json={"Name": f"{unique}-ttl", "TTL": "30s", "ServiceID": unique},
    )
    assert response.status_code == 200, response.text
    return f"{unique}-ttl"


def test_check_register_adds_a_node_check_starting_critical(
    fresh_client: consul.Consul,
) -> None:
    assert fresh_client.agent.check.register(
        "disk", consul.Check.ttl("30s"), check_id="disk-1", notes="disk space"
    )
    check = fresh_client.agent.checks()["disk-1"]
    assert check["Name"] == "disk"
    assert check["Notes"] == "disk space"
    assert check["Status"] == "critical"
    assert check["Type"] == "ttl"
    assert check["ServiceID"] == ""
    assert check["Definition"]["TTL"] == "30s"


def test_check_register_defaults_the_id_to_the_name(
    fresh_client: consul.Consul,
) -> None:
    fresh_client.agent.check.register("memory", consul.Check.ttl("30s"))
    assert set(fresh_client.agent.checks()) == {"memory"}


def test_check_register_attaches_to_a_service(
    client: consul.Consul, unique: str
) -> None:
    client.agent.service.register(unique, tags=["blue"])
    client.agent.check.register(
        f"{unique}-extra", consul.Check.ttl("30s"), service_id=unique
    )
    check = client.agent.checks()[f"{unique}-extra"]
    assert (check["ServiceID"], check["ServiceName"]) == (unique, unique)
    assert check["ServiceTags"] == ["blue"]
    _, checks = client.health.checks(unique)
    assert [c["CheckID"] for c in checks] == [f"{unique}-extra"]


def test_check_register_for_an_unknown_service_is_404(
    http: httpx.Client, unique: str
) -> None:
    response = http.put(
        "/v1/agent/check/register",
        json={"Name": unique, "TTL": "30s", "ServiceID": f"{unique}-nope"},
    )
    assert response.status_code == 404
    assert response.text == f'ServiceID "{unique}-nope" does not exist'
    assert unique not in agent_checks(http)


def test_check_deregister_removes_the_check(client: consul.Consul, unique: str) -> None:
    client.agent.service.register(unique)
    client.agent.check.register(
        f"{unique}-c", consul.Check.ttl("30s"), service_id=unique
    )
    assert client.agent.check.deregister(f"{unique}-c") is True
    assert f"{unique}-c" not in client.agent.checks()
    assert unique in client.agent.services()


def test_check_deregister_of_an_unknown_check_is_404_in_consul_words(
    http: httpx.Client,
) -> None:
    response = http.put("/v1/agent/check/deregister/no-such-check")
    assert response.status_code == 404
    assert response.text == (
        'Unknown check ID "no-such-check". Ensure that the check ID is passed,'
        " not the check name."
    )


def test_ttl_pass_warn_fail_set_the_status_and_the_note_as_output(
    client: consul.Consul, http: httpx.Client, unique: str
) -> None:
    check_id = _ttl_check_on_own_service(http, unique)

    def state() -> tuple[str, str]:
        check = client.agent.checks()[check_id]
        return check["Status"], check["Output"]

    assert client.agent.check.ttl_pass(check_id, "all good") is True
    assert state() == ("passing", "all good")
    assert client.agent.check.ttl_warn(check_id, "slow") is True
    assert state() == ("warning", "slow")
    assert client.agent.check.ttl_fail(check_id, "down") is True
    assert state() == ("critical", "down")
    client.agent.check.ttl_pass(check_id)
    assert state() == ("passing", "")


def test_check_update_sets_status_and_output(http: httpx.Client, unique: str) -> None:
    check_id = _ttl_check_on_own_service(http, unique)
    response = http.put(
        f"/v1/agent/check/update/{check_id}",
        json={"Status": "warning", "Output": "queue is long"},
    )
    assert response.status_code == 200
    check = agent_checks(http)[check_id]
    assert (check["Status"], check["Output"]) == ("warning", "queue is long")


def test_check_update_rejects_an_unknown_status_in_consul_words(
    http: httpx.Client, unique: str
) -> None:
    check_id = _ttl_check_on_own_service(http, unique)
    response = http.put(f"/v1/agent/check/update/{check_id}", json={"Status": "green"})
    assert (response.status_code, response.text) == (
        400,
        "Invalid check status: 'green'",
    )
    assert agent_checks(http)[check_id]["Status"] == "critical"


@pytest.mark.parametrize("verb", ["pass", "warn", "fail"])
def test_ttl_update_of_an_unknown_check_is_404(http: httpx.Client, verb: str) -> None:
    response = http.put(f"/v1/agent/check/{verb}/no-such-check")
    assert response.status_code == 404
    assert response.text.startswith('Unknown check ID "no-such-check".')


def test_ttl_update_of_a_check_without_ttl_is_refused(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique})
    http.put(
        "/v1/agent/check/register",
        json={
            "Name": f"{unique}-http",
            "HTTP": "http://127.0.0.1:1/",
            "Interval": "1h",
            "ServiceID": unique,
        },
    )
    response = http.put(f"/v1/agent/check/pass/{unique}-http")
    assert response.status_code == 400
    assert response.text == f'CheckID "{unique}-http" does not have associated TTL'


def test_long_ttl_output_is_truncated_the_way_consul_does(
    http: httpx.Client, unique: str
) -> None:
    check_id = _ttl_check_on_own_service(http, unique)
    http.put(
        f"/v1/agent/check/update/{check_id}",
        json={"Status": "passing", "Output": "x" * 5000},
    )
    output = agent_checks(http)[check_id]["Output"]
    assert output == "x" * 4096 + " ... (captured 4096 of 5000 bytes)"


def test_serf_health_is_not_an_agent_local_check(
    http: httpx.Client, shared_agent: AgentProcess
) -> None:
    """The leader, not the agent, owns serfHealth: Consul's agent never lists it."""
    assert "serfHealth" not in agent_checks(http)
    assert http.put("/v1/agent/check/pass/serfHealth").status_code == 404
    assert http.put("/v1/agent/check/deregister/serfHealth").status_code == 404
    node_checks = http.get(f"/v1/health/node/{shared_agent.node}").json()
    assert "serfHealth" in [c["CheckID"] for c in node_checks]


# ---------------------------------------------------------------- local health


@pytest.mark.parametrize(
    ("verb", "status", "code"),
    [("pass", "passing", 200), ("warn", "warning", 429), ("fail", "critical", 503)],
)
def test_agent_health_by_id_maps_status_to_http_code(
    http: httpx.Client, unique: str, verb: str, status: str, code: int
) -> None:
    register(http, {"Name": unique, "Check": {"TTL": "30s"}})
    http.put(f"/v1/agent/check/{verb}/service:{unique}")

    response = http.get(f"/v1/agent/health/service/id/{unique}")
    assert response.status_code == code
    assert response.headers["X-Consul-Reason"] == status
    body = response.json()
    assert body["AggregatedStatus"] == status
    assert body["Service"]["ID"] == unique
    assert [c["CheckID"] for c in body["Checks"]] == [f"service:{unique}"]

    text = http.get(f"/v1/agent/health/service/id/{unique}", params={"format": "text"})
    assert (text.status_code, text.text) == (code, status)
    plain = http.get(
        f"/v1/agent/health/service/id/{unique}", headers={"Accept": "text/plain"}
    )
    assert (plain.status_code, plain.text) == (code, status)


def test_agent_health_by_name_answers_the_worst_instance(
    http: httpx.Client, unique: str
) -> None:
    for n, status in (("1", "passing"), ("2", "warning")):
        register(
            http,
            {
                "Name": unique,
                "ID": f"{unique}-{n}",
                "Check": {"TTL": "30s", "Status": status},
            },
        )
    response = http.get(f"/v1/agent/health/service/name/{unique}")
    assert response.status_code == 429
    assert sorted(e["AggregatedStatus"] for e in response.json()) == [
        "passing",
        "warning",
    ]

    http.put(f"/v1/agent/service/maintenance/{unique}-1", params={"enable": "true"})
    response = http.get(
        f"/v1/agent/health/service/name/{unique}", params={"format": "text"}
    )
    assert (response.status_code, response.text) == (503, "maintenance")


def test_agent_health_of_an_unknown_service_is_404(http: httpx.Client) -> None:
    by_id = http.get("/v1/agent/health/service/id/no-such")
    assert by_id.status_code == 404
    assert by_id.headers["X-Consul-Reason"] == "ServiceId no-such not found"
    assert by_id.json() == {
        "AggregatedStatus": "critical",
        "Service": None,
        "Checks": None,
    }
    text = http.get("/v1/agent/health/service/id/no-such", params={"format": "text"})
    assert (text.status_code, text.text) == (404, "ServiceId no-such not found")

    by_name = http.get("/v1/agent/health/service/name/no-such")
    assert by_name.status_code == 404
    assert by_name.headers["X-Consul-Reason"] == "ServiceName no-such Not Found"
    assert by_name.json() == []


# ---------------------------------------------------------------- leave


def test_leave_stops_the_agent_with_exit_code_zero(
    agent: AgentProcess, fresh_client: consul.Consul
) -> None:
    assert fresh_client.agent.leave() is True
    assert agent.process is not None
    assert agent.process.wait(timeout=15) == 0
