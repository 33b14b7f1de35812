"""/v1/catalog/*: external nodes, services and checks; the datacenter's view.

Shapes follow Consul's structs.Node, structs.ServiceNode and
structs.NodeServices (api-docs/catalog.mdx); the tag filter is Consul's
state-store serviceTagsFilter (every tag, case-insensitive).
"""

from __future__ import annotations

import consul
import httpx
import pytest

from tests.http.support import consul_index, register
from waypost.testing import AgentProcess


def _external(
    http: httpx.Client, node: str, address: str = "10.0.0.1", **extra: object
) -> None:
    response = http.put(
        "/v1/catalog/register", json={"Node": node, "Address": address, **extra}
    )
    assert (response.status_code, response.json()) == (200, True)


def test_register_an_external_node_with_a_service_and_checks(
    client: consul.Consul, unique: str
) -> None:
    node = f"{unique}-node"
    assert client.catalog.register(
        node,
        "10.1.10.11",
        service={"service": unique, "port": 6379, "tags": ["primary"]},
        check={"name": f"{unique}-alive", "serviceid": unique, "status": "passing"},
    )
    _, found = client.catalog.node(node)
    assert found["Node"]["Address"] == "10.1.10.11"
    assert found["Node"]["Datacenter"] == "dc1"
    assert found["Services"][unique]["Port"] == 6379

    _, rows = client.catalog.service(unique)
    assert [(r["Node"], r["ServiceID"], r["ServicePort"]) for r in rows] == [
        (node, unique, 6379)
    ]
    _, checks = client.health.node(node)
    check = {c["CheckID"]: c for c in checks}[f"{unique}-alive"]
    assert (check["ServiceID"], check["ServiceName"], check["Status"]) == (
        unique,
        unique,
        "passing",
    )


def test_register_node_meta_and_tagged_addresses(
    http: httpx.Client, unique: str
) -> None:
    _external(
        http,
        unique,
        NodeMeta={"rack": "r1"},
        TaggedAddresses={"wan": "203.0.113.7"},
    )
    node = http.get(f"/v1/catalog/node/{unique}").json()["Node"]
    assert node["Meta"] == {"rack": "r1"}
    assert node["TaggedAddresses"] == {"wan": "203.0.113.7"}


def test_a_catalog_check_without_status_is_critical_and_id_defaults_to_name(
    http: httpx.Client, unique: str
) -> None:
    _external(http, unique, Check={"Name": "ping"})
    checks = http.get(f"/v1/health/node/{unique}").json()
    assert [(c["CheckID"], c["Status"]) for c in checks] == [("ping", "critical")]


def test_a_catalog_service_id_defaults_to_its_name(
    http: httpx.Client, unique: str
) -> None:
    _external(http, f"{unique}-n", Service={"Service": unique})
    rows = http.get(f"/v1/catalog/service/{unique}").json()
    assert [r["ServiceID"] for r in rows] == [unique]


def test_register_is_all_or_nothing(http: httpx.Client, unique: str) -> None:
    """A check naming a service that does not exist rejects the whole request."""
    response = http.put(
        "/v1/catalog/register",
        json={
            "Node": unique,
            "Address": "10.0.0.2",
            "Service": {"Service": unique},
            "Checks": [{"Name": "c1", "ServiceID": f"{unique}-missing"}],
        },
    )
    assert response.status_code == 400
    assert f"{unique}-missing" in response.text
    assert http.get(f"/v1/catalog/node/{unique}").json() is None
    assert http.get(f"/v1/catalog/service/{unique}").json() == []


def test_register_requires_node_and_address(http: httpx.Client, unique: str) -> None:
    response = http.put("/v1/catalog/register", json={"Node": unique})
    assert (response.status_code, response.text) == (
        400,
        "Must provide node and address",
    )


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ({"ID": "x"}, "Must provide service name with ID"),
        ({"Service": "x", "Address": "0.0.0.0"}, "Invalid service address"),
        ({"Port": 80}, "Missing service name"),
    ],
)
def test_register_rejects_a_service_consul_would_refuse(
    http: httpx.Client, unique: str, service: dict[str, object], message: str
) -> None:
    response = http.put(
        "/v1/catalog/register",
        json={"Node": unique, "Address": "10.0.0.9", "Service": service},
    )
    assert (response.status_code, response.text) == (400, message)
    assert http.get(f"/v1/catalog/node/{unique}").json() is None


def test_deregister_a_service_keeps_the_node(
    client: consul.Consul, unique: str
) -> None:
    client.catalog.register(unique, "10.0.0.3", service={"service": unique})
    assert client.catalog.deregister(unique, service_id=unique) is True
    _, rows = client.catalog.service(unique)
    assert rows == []
    _, node = client.catalog.node(unique)
    assert node["Services"] == {}


def test_deregister_a_check(client: consul.Consul, unique: str) -> None:
    client.catalog.register(unique, "10.0.0.4", check={"name": "disk"})
    assert client.catalog.deregister(unique, check_id="disk") is True
    _, checks = client.health.node(unique)
    assert checks == []


def test_deregister_a_node_removes_its_services_and_checks(
    client: consul.Consul, unique: str
) -> None:
    client.catalog.register(
        unique,
        "10.0.0.5",
        service={"service": unique},
        check={"name": "alive", "serviceid": unique},
    )
    assert client.catalog.deregister(unique) is True
    _, node = client.catalog.node(unique)
    assert node is None
    _, rows = client.catalog.service(unique)
    assert rows == []
    _, nodes = client.catalog.nodes()
    assert unique not in [n["Node"] for n in nodes]
    _, checks = client.health.checks(unique)
    assert checks == []


def test_datacenters_is_the_one_datacenter(client: consul.Consul) -> None:
    assert client.catalog.datacenters() == ["dc1"]


def test_nodes_lists_the_agent_and_external_nodes_by_name(
    client: consul.Consul, shared_agent: AgentProcess, unique: str
) -> None:
    client.catalog.register(f"{unique}-b", "10.0.0.7")
    client.catalog.register(f"{unique}-a", "10.0.0.6")
    _, nodes = client.catalog.nodes()
    names = [n["Node"] for n in nodes]
    assert shared_agent.node in names
    assert names == sorted(names)
    mine = {n["Node"]: n for n in nodes if n["Node"].startswith(unique)}
    assert mine[f"{unique}-a"]["Address"] == "10.0.0.6"
    assert mine[f"{unique}-a"]["CreateIndex"] <= mine[f"{unique}-a"]["ModifyIndex"]


def test_services_maps_each_name_to_the_union_of_its_tags(
    client: consul.Consul, http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "ID": f"{unique}-1", "Tags": ["v1", "blue"]})
    register(http, {"Name": unique, "ID": f"{unique}-2", "Tags": ["v2", "blue"]})
    _, services = client.catalog.services()
    assert services[unique] == ["blue", "v1", "v2"]
    assert services["consul"] == []


def test_service_lists_every_instance_with_node_and_service_fields(
    http: httpx.Client, shared_agent: AgentProcess, unique: str
) -> None:
    register(
        http,
        {
            "Name": unique,
            "ID": f"{unique}-1",
            "Address": "svc.internal",
            "Port": 8080,
            "Tags": ["t"],
            "Meta": {"version": "3"},
        },
    )
    _external(http, f"{unique}-ext", Service={"Service": unique, "ID": f"{unique}-2"})
    rows = http.get(f"/v1/catalog/service/{unique}").json()
    assert {(r["Node"], r["ServiceID"]) for r in rows} == {
        (shared_agent.node, f"{unique}-1"),
        (f"{unique}-ext", f"{unique}-2"),
    }
    row = next(r for r in rows if r["ServiceID"] == f"{unique}-1")
    assert row["ServiceName"] == unique
    assert row["ServiceAddress"] == "svc.internal"
    assert row["ServicePort"] == 8080
    assert row["ServiceTags"] == ["t"]
    assert row["ServiceMeta"] == {"version": "3"}
    assert row["ServiceWeights"] == {"Passing": 1, "Warning": 1}
    assert row["Address"] == "127.0.0.1"
    assert row["Datacenter"] == "dc1"
    assert row["CreateIndex"] <= row["ModifyIndex"]


def test_service_filters_by_tag_and_repeated_tags_must_all_match(
    http: httpx.Client, client: consul.Consul, unique: str
) -> None:
    register(http, {"Name": unique, "ID": f"{unique}-1", "Tags": ["primary", "v1"]})
    register(http, {"Name": unique, "ID": f"{unique}-2", "Tags": ["replica", "v1"]})

    def ids(tags: list[str]) -> list[str]:
        response = http.get(f"/v1/catalog/service/{unique}", params={"tag": tags})
        return sorted(r["ServiceID"] for r in response.json())

    assert ids(["v1"]) == [f"{unique}-1", f"{unique}-2"]
    assert ids(["primary"]) == [f"{unique}-1"]
    assert ids(["primary", "v1"]) == [f"{unique}-1"]
    assert ids(["primary", "replica"]) == []
    assert ids(["nope"]) == []
    _, rows = client.catalog.service(unique, tag="replica")
    assert [r["ServiceID"] for r in rows] == [f"{unique}-2"]


def test_service_tag_filter_ignores_case_like_consul(
    http: httpx.Client, unique: str
) -> None:
    register(http, {"Name": unique, "Tags": ["Primary"]})
    rows = http.get(f"/v1/catalog/service/{unique}", params={"tag": "pRIMARY"}).json()
    assert [r["ServiceID"] for r in rows] == [unique]


def test_service_with_no_instances_is_an_empty_list(http: httpx.Client) -> None:
    response = http.get("/v1/catalog/service/no-such-service")
    assert (response.status_code, response.json()) == (200, [])


def test_node_returns_the_node_and_a_map_of_its_services(
    http: httpx.Client, unique: str
) -> None:
    _external(http, unique, Service={"Service": f"{unique}-s", "Tags": ["x"]})
    body = http.get(f"/v1/catalog/node/{unique}").json()
    assert body["Node"]["Node"] == unique
    service = body["Services"][f"{unique}-s"]
    assert (service["ID"], service["Service"], service["Tags"]) == (
        f"{unique}-s",
        f"{unique}-s",
        ["x"],
    )


def test_node_that_does_not_exist_is_null(http: httpx.Client) -> None:
    response = http.get("/v1/catalog/node/no-such-node")
    assert (response.status_code, response.json()) == (200, None)


def test_node_services_of_an_unknown_node_is_an_object_of_nulls(
    http: httpx.Client,
) -> None:
    response = http.get("/v1/catalog/node-services/no-such-node")
    assert (response.status_code, response.json()) == (
        200,
        {"Node": None, "Services": None},
    )


def test_node_services_returns_the_node_and_a_list_of_services(
    http: httpx.Client, unique: str
) -> None:
    _external(http, unique, Service={"Service": f"{unique}-s", "Port": 1})
    body = http.get(f"/v1/catalog/node-services/{unique}").json()
    assert body["Node"]["Node"] == unique
    assert [(s["ID"], s["Port"]) for s in body["Services"]] == [(f"{unique}-s", 1)]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/catalog/service/", "Missing service name"),
        ("/v1/catalog/node/", "Missing node name"),
        ("/v1/catalog/node-services/", "Missing node name"),
    ],
)
def test_reads_without_a_name_are_400(
    http: httpx.Client, path: str, message: str
) -> None:
    response = http.get(path)
    assert (response.status_code, response.text) == (400, message)


def test_another_datacenter_has_no_path(
    client: consul.Consul, http: httpx.Client
) -> None:
    """Consul answers "No path to datacenter" for a datacenter it cannot reach."""
    response = http.get("/v1/catalog/nodes", params={"dc": "dc2"})
    assert (response.status_code, response.text) == (400, "No path to datacenter")
    assert http.get("/v1/catalog/nodes", params={"dc": "dc1"}).status_code == 200
    with pytest.raises(consul.ConsulException):
        client.catalog.nodes(dc="dc2")
    index = consul_index(http.get("/v1/catalog/nodes"))
    with pytest.raises(consul.ConsulException):
        client.catalog.register("dc2-node", "10.0.0.8", dc="dc2")
    assert consul_index(http.get("/v1/catalog/nodes")) == index


def test_node_meta_without_a_colon_is_the_key_with_an_empty_value_as_in_consul(
    http: httpx.Client, unique: str
) -> None:
    """Consul's parseMetaPair (agent/http.go): `?node-meta=k` means `k` = "" and
    answers 200; a later pair for the same key replaces an earlier one."""
    key = f"flag-{unique}"
    _external(http, f"{unique}-empty", NodeMeta={key: ""})
    _external(http, f"{unique}-set", NodeMeta={key: "x"})

    def names(*pairs: str) -> list[str]:
        response = http.get(
            "/v1/catalog/nodes", params=[("node-meta", pair) for pair in pairs]
        )
        assert response.status_code == 200, response.text
        return [node["Node"] for node in response.json()]

    assert names(key) == [f"{unique}-empty"]
    assert names(f"{key}:x") == [f"{unique}-set"]
    assert names(f"{key}:nope", f"{key}:x") == [f"{unique}-set"]
    assert names(f"{key}:x", f"{key}:nope") == []
