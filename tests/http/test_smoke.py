"""The agent answers Consul's clients at all: the first thing that must hold."""

from __future__ import annotations

import consul
import httpx


def test_py_consul_registers_and_discovers_a_service(
    client: consul.Consul, unique: str
) -> None:
    client.agent.service.register(unique, service_id=f"{unique}-1", port=9000)
    index, nodes = client.health.service(unique)
    assert int(index) >= 1
    assert [n["Service"]["ID"] for n in nodes] == [f"{unique}-1"]
    assert nodes[0]["Service"]["Port"] == 9000


def test_reads_carry_consul_index_headers(http: httpx.Client) -> None:
    response = http.get("/v1/catalog/services")
    assert response.status_code == 200
    assert int(response.headers["X-Consul-Index"]) >= 1
    assert response.headers["X-Consul-KnownLeader"] == "true"
    assert response.headers["X-Consul-LastContact"] == "0"
