"""Intentions, the Connect CA and the discovery chain against a real agent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from waypost.testing import AgentProcess, run_agent

EXACT = "/v1/connect/intentions/exact"


def _check(http: httpx.Client, source: str, destination: str) -> bool:
    params = {"source": source, "destination": destination}
    answer = http.get("/v1/connect/intentions/check", params=params).json()
    return bool(answer["Allowed"])


def test_intentions_are_service_intentions_entries_decided_by_precedence(
    fresh_http: httpx.Client,
) -> None:
    http = fresh_http
    assert _check(http, "web", "db")  # no intention: ACLs off allow
    wildcard = {"source": "*", "destination": "db"}
    assert http.put(EXACT, params=wildcard, json={"Action": "deny"}).json() is True
    assert not _check(http, "web", "db")
    exact = {"source": "web", "destination": "db"}
    body = {"Action": "allow", "Description": "web may", "Meta": {"a": "b"}}
    assert http.put(EXACT, params=exact, json=body).json() is True
    assert _check(http, "web", "db")  # precedence 9 beats 8
    assert not _check(http, "api", "db")
    read = http.get(EXACT, params=exact).json()
    assert (read["SourceName"], read["DestinationName"]) == ("web", "db")
    assert (read["Action"], read["Precedence"]) == ("allow", 9)
    assert read["Description"] == "web may"
    assert read["Meta"] == {"a": "b"}
    entry = http.get("/v1/config/service-intentions/db").json()
    assert [(s["Name"], s["Action"]) for s in entry["Sources"]] == [
        ("*", "deny"),
        ("web", "allow"),
    ]
    listed = http.get("/v1/connect/intentions").json()
    assert [(i["SourceName"], i["Precedence"]) for i in listed] == [
        ("web", 9),
        ("*", 8),
    ]
    matched = http.get(
        "/v1/connect/intentions/match", params={"by": "destination", "name": "db"}
    ).json()
    assert [i["SourceName"] for i in matched["db"]] == ["web", "*"]
    by_source = http.get(
        "/v1/connect/intentions/match", params={"by": "source", "name": "web"}
    ).json()
    # as Consul: a wildcard source matches every source
    assert [i["SourceName"] for i in by_source["web"]] == ["web", "*"]
    assert http.delete(EXACT, params=exact).json() is True
    assert http.get(EXACT, params=exact).status_code == 404
    assert http.delete(EXACT, params=wildcard).json() is True
    assert http.get("/v1/config/service-intentions/db").status_code == 404


def test_an_intention_made_by_post_is_read_updated_and_deleted_by_its_id(
    fresh_http: httpx.Client,
) -> None:
    http = fresh_http
    body = {"SourceName": "a", "DestinationName": "b", "Action": "deny"}
    created = http.post("/v1/connect/intentions", json=body)
    intention_id = created.json()["ID"]
    url = f"/v1/connect/intentions/{intention_id}"
    assert http.get(url).json()["Action"] == "deny"
    again = http.post("/v1/connect/intentions", json=body)
    assert again.status_code == 400
    assert "duplicate intention found" in again.text
    assert http.put(url, json={**body, "Action": "allow"}).json() is True
    assert _check(http, "a", "b")
    assert http.delete(url).json() is True
    assert http.get(url).status_code == 404


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({"source": "web"}, {"Action": "allow"}, "'destination' not set"),
        ({"source": "web", "destination": "db"}, {"Action": "maybe"}, "Action must"),
        ({"source": "web", "destination": "db"}, [1], "not a JSON object"),
        (
            {"source": "web", "destination": "db"},
            {"Action": "allow", "Permissions": [{"Action": "deny"}]},
            "Action must be empty if Permissions are specified",
        ),
    ],
)
def test_bad_intentions_are_a_400(
    http: httpx.Client, params: dict[str, str], body: object, message: str
) -> None:
    response = http.put(EXACT, params=params, json=body)
    assert response.status_code == 400
    assert message in response.text


def test_intentions_check_defaults_to_deny_under_acl_default_deny() -> None:
    token = "2f0a4c4e-6c53-4f6e-9a42-3a5f6f7a8b90"
    args = ["--acl-enabled", "--acl-default-policy", "deny"]
    args += ["--acl-initial-management", token]
    with (
        run_agent(extra_args=args) as agent,
        httpx.Client(
            base_url=agent.url, headers={"X-Consul-Token": token}, timeout=30
        ) as http,
    ):
        assert not _check(http, "web", "db")
        anonymous = httpx.get(
            agent.url + "/v1/connect/intentions/check?source=web&destination=db"
        )
        assert anonymous.status_code == 403


def _root(http: httpx.Client) -> tuple[dict[str, object], x509.Certificate]:
    roots = http.get("/v1/connect/ca/roots").json()
    [active] = [r for r in roots["Roots"] if r["Active"]]
    assert roots["ActiveRootID"] == active["ID"]
    return roots, x509.load_pem_x509_certificate(active["RootCert"].encode())


def test_the_ca_root_is_a_real_spiffe_ca_certificate(fresh_http: httpx.Client) -> None:
    roots, cert = _root(fresh_http)
    config = fresh_http.get("/v1/connect/ca/configuration").json()
    assert config["Provider"] == "consul"
    assert roots["TrustDomain"] == f"{config['ClusterID']}.consul"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    uris = sans.value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [f"spiffe://{roots['TrustDomain']}"]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert "PRIVATE KEY" not in fresh_http.get("/v1/connect/ca/roots").text
    pem = fresh_http.get("/v1/connect/ca/roots?pem=true")
    assert pem.headers["content-type"] == "application/pem-certificate-chain"
    assert x509.load_pem_x509_certificates(pem.content)[0] == cert
    agent_roots = fresh_http.get("/v1/agent/connect/ca/roots").json()
    assert agent_roots["ActiveRootID"] == roots["ActiveRootID"]


def test_a_leaf_certificate_is_signed_by_the_active_root(
    fresh_http: httpx.Client,
) -> None:
    roots, root = _root(fresh_http)
    issued = fresh_http.get("/v1/agent/connect/ca/leaf/web").json()
    leaf = x509.load_pem_x509_certificate(issued["CertPEM"].encode())
    leaf.verify_directly_issued_by(root)
    uri = f"spiffe://{roots['TrustDomain']}/ns/default/dc/dc1/svc/web"
    assert issued["ServiceURI"] == uri
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert uri in sans.value.get_values_for_type(x509.UniformResourceIdentifier)
    assert "PRIVATE KEY" in issued["PrivateKeyPEM"]


def test_ca_configuration_changes_and_a_new_key_type_rotates_the_root(
    fresh_http: httpx.Client,
) -> None:
    http = fresh_http
    url = "/v1/connect/ca/configuration"
    _, before = _root(http)
    changed = {"Provider": "consul", "Config": {"LeafCertTTL": "24h"}}
    assert http.put(url, json=changed).status_code == 200
    assert http.get(url).json()["Config"]["LeafCertTTL"] == "24h"
    _, same = _root(http)
    assert same == before
    rsa = {
        "Provider": "consul",
        "Config": {"PrivateKeyType": "rsa", "PrivateKeyBits": 2048},
    }
    assert http.put(url, json=rsa).status_code == 200
    roots, after = _root(http)
    assert after != before
    assert [r["Active"] for r in roots["Roots"]] == [False, True]  # type: ignore[union-attr]
    leaf = http.get("/v1/agent/connect/ca/leaf/web").json()
    x509.load_pem_x509_certificate(leaf["CertPEM"].encode()).verify_directly_issued_by(
        after
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Provider": "vault", "Config": {}}, "unknown CA provider"),
        ({"Config": {"LeafCertTTL": "10m"}}, "greater or equal than 1h"),
        ({"Config": {"LeafCertTTL": "10000h"}}, "less than 8760h"),
        ({"Config": {"IntermediateCertTTL": "100h"}}, "3 * LeafCertTTL"),
        ({"Config": {"PrivateKeyType": "dsa"}}, "either 'ec' or 'rsa'"),
        ({"Config": {"PrivateKeyBits": 1000}}, "key length must be one of"),
        ({"Config": {"LeafCertTTL": "soon"}}, "invalid duration"),
        ({"Config": 3}, "Config must be an object"),
    ],
)
def test_bad_ca_configurations_are_a_400_and_change_nothing(
    http: httpx.Client, body: dict[str, object], message: str
) -> None:
    before = http.get("/v1/connect/ca/configuration").json()
    response = http.put("/v1/connect/ca/configuration", json=body)
    assert response.status_code == 400
    assert message in response.text
    assert http.get("/v1/connect/ca/configuration").json() == before


def test_the_ca_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with run_agent(dev=False, data_dir=data) as agent:
        first = httpx.get(agent.url + "/v1/connect/ca/roots", timeout=30).json()
    with run_agent(dev=False, data_dir=data) as agent:
        again = httpx.get(agent.url + "/v1/connect/ca/roots", timeout=30).json()
    assert again == first


def test_the_default_discovery_chain_is_one_resolver(fresh_http: httpx.Client) -> None:
    chain = fresh_http.get("/v1/discovery-chain/web").json()["Chain"]
    assert chain["ServiceName"] == "web"
    assert chain["Protocol"] == "tcp"
    assert chain["Default"] is True
    target = "web.default.default.dc1"
    assert chain["StartNode"] == f"resolver:{target}"
    node = chain["Nodes"][f"resolver:{target}"]
    assert node["Resolver"] == {
        "Default": True,
        "ConnectTimeout": "5s",
        "Target": target,
    }
    assert chain["Targets"][target]["Service"] == "web"
    posted = fresh_http.post(
        "/v1/discovery-chain/web", json={"OverrideProtocol": "http"}
    ).json()["Chain"]
    assert posted["Protocol"] == "http"
    assert posted["CustomizationHash"]


def test_a_chain_follows_router_splitter_and_resolver_entries(
    fresh_http: httpx.Client,
) -> None:
    http = fresh_http
    entries = [
        {"Kind": "service-defaults", "Name": "web", "Protocol": "http"},
        {
            "Kind": "service-resolver",
            "Name": "web",
            "ConnectTimeout": "2s",
            "DefaultSubset": "v1",
            "Subsets": {"v1": {"Filter": "Service.Meta.version == v1"}},
        },
        {
            "Kind": "service-splitter",
            "Name": "web",
            "Splits": [{"Weight": 90}, {"Weight": 10, "Service": "web-canary"}],
        },
        {
            "Kind": "service-router",
            "Name": "web",
            "Routes": [
                {
                    "Match": {"HTTP": {"PathPrefix": "/admin"}},
                    "Destination": {"Service": "admin"},
                }
            ],
        },
    ]
    for entry in entries:
        assert http.put("/v1/config", json=entry).json() is True
    chain = http.get("/v1/discovery-chain/web").json()["Chain"]
    assert chain["Default"] is False
    assert chain["StartNode"] == "router:web.default.default"
    routes = chain["Nodes"]["router:web.default.default"]["Routes"]
    assert [r["NextNode"] for r in routes] == [
        "resolver:admin.default.default.dc1",
        "splitter:web.default.default",
    ]
    splits = chain["Nodes"]["splitter:web.default.default"]["Splits"]
    assert splits == [
        {"Weight": 90, "NextNode": "resolver:v1.web.default.default.dc1"},
        {"Weight": 10, "NextNode": "resolver:web-canary.default.default.dc1"},
    ]
    resolver = chain["Nodes"]["resolver:v1.web.default.default.dc1"]["Resolver"]
    assert resolver["ConnectTimeout"] == "2s"
    target = chain["Targets"]["v1.web.default.default.dc1"]
    assert target["ServiceSubset"] == "v1"
    assert target["Subset"] == {"Filter": "Service.Meta.version == v1"}


def test_a_router_for_a_tcp_service_is_a_400(fresh_http: httpx.Client) -> None:
    router = {"Kind": "service-router", "Name": "raw", "Routes": []}
    assert fresh_http.put("/v1/config", json=router).json() is True
    response = fresh_http.get("/v1/discovery-chain/raw")
    assert response.status_code == 400
    assert "not HTTP, HTTP2 or gRPC" in response.text


def test_force_leave_answers_consuls_error_and_removes_nothing(
    agent: AgentProcess, fresh_http: httpx.Client
) -> None:
    unknown = fresh_http.put("/v1/agent/force-leave/nowhere?prune=true")
    assert unknown.status_code == 400
    assert unknown.text == "agent: No node found with name 'nowhere'"
    own = fresh_http.put(f"/v1/agent/force-leave/{agent.node}")
    assert own.status_code == 400
    nodes = [n["Node"] for n in fresh_http.get("/v1/catalog/nodes").json()]
    assert agent.node in nodes


def test_connect_authorize_answers_from_the_intentions(
    fresh_http: httpx.Client,
) -> None:
    http = fresh_http
    uri = (
        "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web"
    )
    body = {"Target": "db", "ClientCertURI": uri}
    default = http.post("/v1/agent/connect/authorize", json=body).json()
    assert default == {
        "Authorized": True,
        "Reason": "Default behavior configured by ACLs",
    }
    http.put(
        EXACT, params={"source": "web", "destination": "db"}, json={"Action": "deny"}
    )
    denied = http.post("/v1/agent/connect/authorize", json=body).json()
    assert denied["Authorized"] is False
    assert denied["Reason"].startswith("Matched L4 intention: web => db")
    bad = http.post(
        "/v1/agent/connect/authorize", json={"Target": "db", "ClientCertURI": "x"}
    )
    assert bad.status_code == 400
    assert bad.text == "ClientCertURI not a valid Connect identifier"
    missing = http.post("/v1/agent/connect/authorize", json={"ClientCertURI": uri})
    assert missing.text == "Target service must be specified."


def test_agent_version_names_the_consul_version_spoken(http: httpx.Client) -> None:
    version = http.get("/v1/agent/version").json()
    self_version = http.get("/v1/agent/self").json()["Config"]["Version"]
    assert version["HumanVersion"] == self_version
    assert version["SHA"].startswith("waypost-")
