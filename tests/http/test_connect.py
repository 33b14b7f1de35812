"""Connect's control-plane data, served as data, against a real agent."""

from __future__ import annotations

import httpx
import pytest


def _services(http: httpx.Client) -> dict[str, dict[str, object]]:
    return http.get("/v1/agent/services").json()  # type: ignore[no-any-return]


def test_sidecar_service_expands_into_a_proxy_registration_as_consuls_agent(
    fresh_http: httpx.Client,
) -> None:
    body = {
        "Name": "web",
        "Port": 8080,
        "Tags": ["v1"],
        "Meta": {"team": "a"},
        "Connect": {"sidecar_service": {}},
    }
    assert fresh_http.put("/v1/agent/service/register", json=body).status_code == 200
    services = _services(fresh_http)
    assert "Connect" not in services["web"]  # the agent strips SidecarService
    sidecar = services["web-sidecar-proxy"]
    assert sidecar["Kind"] == "connect-proxy"
    assert sidecar["Service"] == "web-sidecar-proxy"
    assert sidecar["Port"] == 21000
    assert sidecar["Tags"] == ["v1"]
    assert sidecar["Meta"] == {"team": "a"}
    proxy = sidecar["Proxy"]
    assert isinstance(proxy, dict)
    assert proxy["DestinationServiceName"] == "web"
    assert proxy["DestinationServiceID"] == "web"
    assert proxy["LocalServiceAddress"] == "127.0.0.1"
    assert proxy["LocalServicePort"] == 8080
    checks = fresh_http.get("/v1/agent/checks").json()
    listening = checks["service:web-sidecar-proxy:1"]
    assert listening["Name"] == "Connect Sidecar Listening"
    assert listening["Definition"]["TCP"] == "127.0.0.1:21000"
    aliasing = checks["service:web-sidecar-proxy:2"]
    assert aliasing["Name"] == "Connect Sidecar Aliasing web"
    # A second service's sidecar takes the next port; re-registering keeps it.
    api = {"Name": "api", "Port": 9090, "Connect": {"SidecarService": {}}}
    fresh_http.put("/v1/agent/service/register", json=api).raise_for_status()
    fresh_http.put("/v1/agent/service/register", json=body).raise_for_status()
    services = _services(fresh_http)
    assert services["api-sidecar-proxy"]["Port"] == 21001
    assert services["web-sidecar-proxy"]["Port"] == 21000
    # Deregistering the service removes its sidecar with it.
    fresh_http.put("/v1/agent/service/deregister/web").raise_for_status()
    services = _services(fresh_http)
    assert "web" not in services
    assert "web-sidecar-proxy" not in services
    assert "api-sidecar-proxy" in services


def test_a_sidecar_with_upstreams_and_its_own_port_keeps_them(
    fresh_http: httpx.Client,
) -> None:
    body = {
        "name": "web",
        "port": 8080,
        "connect": {
            "sidecar_service": {
                "port": 21500,
                "proxy": {
                    "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]
                },
            }
        },
    }
    fresh_http.put("/v1/agent/service/register", json=body).raise_for_status()
    sidecar = fresh_http.get("/v1/agent/service/web-sidecar-proxy").json()
    assert sidecar["Port"] == 21500
    assert sidecar["Proxy"]["Upstreams"] == [
        {"DestinationName": "db", "LocalBindPort": 9191}
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"Name": "p", "Kind": "connect-proxy", "Port": 1},
            "Proxy.DestinationServiceName must be non-empty",
        ),
        (
            {
                "Name": "p",
                "Kind": "connect-proxy",
                "Proxy": {"DestinationServiceName": "w"},
            },
            "Port or SocketPath must be set for a connect-proxy",
        ),
        ({"Name": "p", "Kind": "mesh-gateway"}, "Port must be non-zero"),
        ({"Name": "p", "Kind": "bogus"}, "Invalid service kind"),
        (
            {"Name": "p", "Connect": {"SidecarService": {"ID": "x"}}},
            "cannot specify an ID",
        ),
        (
            {
                "Name": "p",
                "Connect": {"SidecarService": {"Connect": {"SidecarService": {}}}},
            },
            "nested SidecarService",
        ),
        ({"Name": "p", "Connect": {"Native": "yes"}}, "Connect.Native"),
        ({"Name": "p", "Proxy": {"Bogus": 1}}, "unknown field"),
        ({"Name": "p", "Proxy": {"Upstreams": 3}}, "Upstreams"),
        ({"Name": "p", "Locality": {"Planet": "x"}}, "Locality"),
    ],
)
def test_bad_connect_registrations_are_a_400_and_register_nothing(
    fresh_http: httpx.Client, body: dict[str, object], message: str
) -> None:
    response = fresh_http.put("/v1/agent/service/register", json=body)
    assert response.status_code == 400, response.text
    assert message in response.text
    assert set(_services(fresh_http)) == set()


def test_catalog_and_health_connect_answer_proxies_and_native_services(
    fresh_http: httpx.Client,
) -> None:
    http = fresh_http
    http.put(
        "/v1/agent/service/register",
        json={"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}},
    ).raise_for_status()
    http.put(
        "/v1/agent/service/register",
        json={"Name": "api", "Port": 81, "Connect": {"Native": True}},
    ).raise_for_status()
    http.put("/v1/agent/service/register", json={"Name": "plain"}).raise_for_status()
    web = http.get("/v1/catalog/connect/web").json()
    assert [r["ServiceID"] for r in web] == ["web-sidecar-proxy"]
    assert web[0]["ServiceProxy"]["DestinationServiceName"] == "web"
    api = http.get("/v1/catalog/connect/api").json()
    assert [r["ServiceID"] for r in api] == ["api"]
    assert api[0]["ServiceConnect"] == {"Native": True}
    assert http.get("/v1/catalog/connect/plain").json() == []
    health = http.get("/v1/health/connect/web").json()
    assert [e["Service"]["ID"] for e in health] == ["web-sidecar-proxy"]
    # No proxy runs, so its TCP check is critical: ?passing has nobody.
    assert http.get("/v1/health/connect/web?passing").json() == []
    assert http.get("/v1/health/connect/web?peer=elsewhere").json() == []
    usage = http.get("/v1/operator/usage").json()["Usage"]["dc1"]
    assert usage["ConnectServiceInstances"]["connect-proxy"] == 1
    assert usage["ConnectServiceInstances"]["connect-native"] == 1
    assert usage["BillableServiceInstances"] == 3  # web, api, plain


def test_a_blocking_connect_query_wakes_when_a_proxy_registers(
    fresh_http: httpx.Client,
) -> None:
    first = fresh_http.get("/v1/health/connect/web")
    index = first.headers["x-consul-index"]
    with httpx.Client(base_url=str(fresh_http.base_url), timeout=30) as other:
        body = {"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}}
        other.put("/v1/agent/service/register", json=body).raise_for_status()
    answer = fresh_http.get(f"/v1/health/connect/web?index={index}&wait=10s")
    assert [e["Service"]["ID"] for e in answer.json()] == ["web-sidecar-proxy"]
    assert int(answer.headers["x-consul-index"]) > int(index)


def test_gateways_front_what_their_config_entries_list(
    fresh_http: httpx.Client,
) -> None:
    http = fresh_http
    http.put(
        "/v1/catalog/register",
        json={
            "Node": "gw",
            "Address": "10.0.0.9",
            "Service": {"Service": "ingress", "Kind": "ingress-gateway", "Port": 8443},
        },
    ).raise_for_status()
    assert http.get("/v1/catalog/gateway-services/ingress").json() == []
    assert http.get("/v1/health/ingress/web").json() == []
    entry = {
        "Kind": "ingress-gateway",
        "Name": "ingress",
        "Listeners": [
            {"Port": 8080, "Protocol": "http", "Services": [{"Name": "web"}]}
        ],
    }
    http.put("/v1/config", json=entry).raise_for_status()
    rows = http.get("/v1/catalog/gateway-services/ingress").json()
    assert [(r["Gateway"], r["Service"], r["GatewayKind"]) for r in rows] == [
        ({"Name": "ingress"}, {"Name": "web"}, "ingress-gateway")
    ]
    assert rows[0]["Port"] == 8080
    assert rows[0]["Protocol"] == "http"
    ingress = http.get("/v1/health/ingress/web").json()
    assert [(e["Node"]["Node"], e["Service"]["ID"]) for e in ingress] == [
        ("gw", "ingress")
    ]
    assert http.get("/v1/health/ingress/other").json() == []
    terminating = {
        "Kind": "terminating-gateway",
        "Name": "egress",
        "Services": [{"Name": "billing", "CAFile": "/ca.pem", "SNI": "b.example"}],
    }
    http.put("/v1/config", json=terminating).raise_for_status()
    [row] = http.get("/v1/catalog/gateway-services/egress").json()
    assert row["GatewayKind"] == "terminating-gateway"
    assert row["Service"] == {"Name": "billing"}
    assert row["CAFile"] == "/ca.pem"
    assert row["SNI"] == "b.example"


def test_merge_central_config_fills_a_proxy_from_the_defaults(
    fresh_http: httpx.Client,
) -> None:
    http = fresh_http
    body = {"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}}
    http.put("/v1/agent/service/register", json=body).raise_for_status()
    http.put(
        "/v1/config",
        json={
            "Kind": "proxy-defaults",
            "Config": {"protocol": "tcp", "local_connect_timeout_ms": 1000},
            "MeshGateway": {"Mode": "local"},
        },
    ).raise_for_status()
    http.put(
        "/v1/config",
        json={"Kind": "service-defaults", "Name": "web", "Protocol": "http"},
    ).raise_for_status()
    plain = http.get("/v1/catalog/service/web-sidecar-proxy").json()[0]
    assert "Config" not in plain["ServiceProxy"]
    merged = http.get(
        "/v1/catalog/service/web-sidecar-proxy?merge-central-config"
    ).json()[0]["ServiceProxy"]
    assert merged["Config"] == {"protocol": "http", "local_connect_timeout_ms": 1000}
    assert merged["MeshGateway"] == {"Mode": "local"}
    health = http.get("/v1/health/connect/web?merge-central-config").json()
    assert health[0]["Service"]["Proxy"]["Config"]["protocol"] == "http"
    # A typical service is answered as registered.
    web = http.get("/v1/catalog/service/web?merge-central-config").json()[0]
    assert web["ServiceProxy"] == {"Mode": "", "MeshGateway": {}, "Expose": {}}
