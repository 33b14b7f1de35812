"""Every catalog, health and KV read carries Consul's query-meta headers.

Clients (py-consul's `index=`, consul-template, Prometheus consul_sd) read
X-Consul-Index to start blocking queries; it must be there, and ≥ 1, even on
a 404 or an empty answer (Consul's setIndex never sends 0).
"""

from __future__ import annotations

import httpx
import pytest

from tests.http.support import assert_consul_read_headers
from waypost.testing import AgentProcess

READS = [
    "/v1/catalog/nodes",
    "/v1/catalog/services",
    "/v1/catalog/service/{unique}",
    "/v1/catalog/service/no-such-service",
    "/v1/catalog/node/{node}",
    "/v1/catalog/node/no-such-node",
    "/v1/catalog/node-services/{node}",
    "/v1/catalog/node-services/no-such-node",
    "/v1/health/service/{unique}",
    "/v1/health/service/{unique}?passing",
    "/v1/health/service/no-such-service",
    "/v1/health/checks/{unique}",
    "/v1/health/node/{node}",
    "/v1/health/node/no-such-node",
    "/v1/health/state/any",
    "/v1/health/state/critical",
    "/v1/kv/{unique}",
    "/v1/kv/{unique}?raw",
    "/v1/kv/{unique}/?recurse",
    "/v1/kv/{unique}/?keys&separator=/",
    "/v1/kv/no-such-key",
    "/v1/kv/no-such-key?raw",
    "/v1/kv/no-such-prefix/?recurse",
    "/v1/kv/no-such-prefix/?keys",
]
# Not in the list: /v1/catalog/datacenters, which Consul answers without any
# query meta (catalog_endpoint.go CatalogDatacenters never calls setMeta).


@pytest.mark.parametrize("path", READS)
def test_reads_carry_index_known_leader_and_last_contact(
    http: httpx.Client, shared_agent: AgentProcess, unique: str, path: str
) -> None:
    http.put(
        "/v1/agent/service/register",
        json={"Name": unique, "Check": {"TTL": "30s"}},
    ).raise_for_status()
    http.put(f"/v1/kv/{unique}", content=b"v").raise_for_status()
    http.put(f"/v1/kv/{unique}/child", content=b"v").raise_for_status()

    response = http.get(path.format(unique=unique, node=shared_agent.node))
    assert response.status_code in (200, 404)
    assert_consul_read_headers(response)


def test_a_fresh_agent_never_answers_index_zero(fresh_http: httpx.Client) -> None:
    for path in ("/v1/kv/anything", "/v1/health/service/none", "/v1/catalog/services"):
        assert_consul_read_headers(fresh_http.get(path))
