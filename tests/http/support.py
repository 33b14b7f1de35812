"""Small helpers the /v1 API tests share: reading Consul's headers and state."""

from __future__ import annotations

from typing import Any

import httpx


def consul_index(response: httpx.Response) -> int:
    return int(response.headers["X-Consul-Index"])


def assert_consul_read_headers(response: httpx.Response) -> None:
    """What every Consul catalog/health/kv read carries, 404s included."""
    assert consul_index(response) >= 1
    assert response.headers["X-Consul-KnownLeader"] == "true"
    assert response.headers["X-Consul-LastContact"] == "0"


def registry_index(http: httpx.Client) -> int:
    """The agent's global index: bumped by every accepted change."""
    response = http.get("/v1/agent/self")
    response.raise_for_status()
    return int(response.json()["Stats"]["waypost"]["index"])


def agent_services(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/v1/agent/services")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def agent_checks(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/v1/agent/checks")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def register(http: httpx.Client, body: object, **params: str) -> httpx.Response:
    """PUT /v1/agent/service/register, raising unless it was accepted."""
    response = http.put("/v1/agent/service/register", json=body, params=params)
    assert response.status_code == 200, response.text
    return response


def health_ids(http: httpx.Client, name: str, **params: str) -> list[str]:
    """Instance IDs /v1/health/service/:name returns, in order."""
    response = http.get(f"/v1/health/service/{name}", params=params)
    assert response.status_code == 200, response.text
    return [entry["Service"]["ID"] for entry in response.json()]
