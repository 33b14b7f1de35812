"""`?filter=` over the wire: Consul's expressions select, bad ones are a 400."""

from __future__ import annotations

import consul
import httpx
import pytest


@pytest.fixture
def two_webs(http: httpx.Client, unique: str) -> str:
    for sid, tag, env in (("a", "primary", "prod"), ("b", "backup", "dev")):
        body = {
            "Name": unique,
            "ID": f"{unique}-{sid}",
            "Tags": [tag],
            "Meta": {"env": env},
        }
        http.put("/v1/agent/service/register", json=body).raise_for_status()
    return unique


def _ids(rows: list[dict[str, object]], key: str) -> list[object]:
    return sorted(r[key] for r in rows)  # type: ignore[type-var]


def test_health_service_filter_on_service_meta(
    http: httpx.Client, two_webs: str
) -> None:
    rows = http.get(
        f"/v1/health/service/{two_webs}",
        params={"filter": 'Service.Meta.env == "prod"'},
    ).json()
    assert [r["Service"]["ID"] for r in rows] == [f"{two_webs}-a"]


def test_catalog_service_filter_with_and_or_not(
    http: httpx.Client, two_webs: str
) -> None:
    expression = (
        '(ServiceTags contains "primary" or ServiceMeta.env == dev)'
        ' and not ServiceID == ""'
    )
    rows = http.get(
        f"/v1/catalog/service/{two_webs}", params={"filter": expression}
    ).json()
    assert _ids(rows, "ServiceID") == [f"{two_webs}-a", f"{two_webs}-b"]
    rows = http.get(
        f"/v1/catalog/service/{two_webs}",
        params={"filter": '"backup" not in ServiceTags'},
    ).json()
    assert _ids(rows, "ServiceID") == [f"{two_webs}-a"]


def test_agent_services_filter_is_a_map_of_matches(
    http: httpx.Client, two_webs: str
) -> None:
    found = http.get(
        "/v1/agent/services",
        params={"filter": f'Service == "{two_webs}" and Meta.env matches "^de"'},
    ).json()
    assert list(found) == [f"{two_webs}-b"]


def test_filter_on_checks_list(http: httpx.Client, unique: str) -> None:
    body = {"Name": unique, "Check": {"TTL": "60s"}}
    http.put("/v1/agent/service/register", json=body).raise_for_status()
    rows = http.get(
        f"/v1/health/service/{unique}", params={"filter": 'Checks.Status == "critical"'}
    ).json()
    assert len(rows) == 1
    rows = http.get(
        f"/v1/health/checks/{unique}", params={"filter": "Status == passing"}
    ).json()
    assert rows == []


def test_filter_is_empty_and_in_on_maps(http: httpx.Client, two_webs: str) -> None:
    rows = http.get(
        f"/v1/catalog/service/{two_webs}", params={"filter": '"env" in ServiceMeta'}
    ).json()
    assert len(rows) == 2
    rows = http.get(
        f"/v1/catalog/service/{two_webs}", params={"filter": "ServiceMeta is empty"}
    ).json()
    assert rows == []


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("Service.Meta.env ==", "1:20"),
        ("(Service.ID == x", "Unmatched parentheses"),
        ('Bogus == "x"', 'Selector "Bogus" is not valid'),
    ],
)
def test_bad_filter_is_a_400_that_says_where(
    http: httpx.Client, two_webs: str, expression: str, fragment: str
) -> None:
    response = http.get(f"/v1/health/service/{two_webs}", params={"filter": expression})
    assert response.status_code == 400
    assert fragment in response.text


def test_py_consul_passes_filters_through(client: consul.Consul, two_webs: str) -> None:
    _, nodes = client.catalog.nodes(filter_expr='Node != ""')
    assert nodes
    backup = 'Service.Tags contains "backup"'
    _, rows = client.health.service(two_webs, filter_expr=backup)
    assert [r["Service"]["ID"] for r in rows] == [f"{two_webs}-b"]
