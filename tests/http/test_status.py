"""/v1/status/*: a single agent is its own leader and its only peer."""

from __future__ import annotations

import consul
import httpx

from tests.stores import STATUS_IS_ETCD


@STATUS_IS_ETCD
def test_leader_is_this_server_rpc_address(
    client: consul.Consul, http: httpx.Client
) -> None:
    # Consul answers with the server RPC address (port 8300), not HTTP's.
    assert client.status.leader() == "127.0.0.1:8300"
    assert http.get("/v1/status/leader").json() == "127.0.0.1:8300"


@STATUS_IS_ETCD
def test_peers_is_the_leader_alone(client: consul.Consul) -> None:
    assert client.status.peers() == [client.status.leader()]
