"""`/v1/status/*` and `/v1/operator/raft/configuration`: who holds the data.

One agent is its own leader and only peer. In cluster mode the data lives in
etcd, so these describe the etcd members truthfully: their peer addresses,
which one leads, the raft index (`""` as leader while etcd has none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.http.catalog import require_local_datacenter
from waypost.http.messages import Request, Response, json_response

if TYPE_CHECKING:
    from waypost.registry import Registry


def raft_address(registry: Registry) -> str:
    # Consul answers with the server RPC address (port 8300), not HTTP's.
    return f"{registry.config.advertise_address}:8300"


async def leader(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    if registry.cluster is None:
        return json_response(raft_address(registry))
    view = await registry.cluster.etcd_view()
    leaders = [m.peer_address for m in view.members if m.is_leader and view.is_current]
    return json_response(leaders[0] if leaders else "")


async def peers(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    if registry.cluster is None:
        return json_response([raft_address(registry)])
    view = await registry.cluster.etcd_view()
    return json_response([m.peer_address for m in view.members])


async def raft_configuration(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    """Consul's RaftConfigurationResponse (structs.RaftServer per server)."""
    if registry.cluster is None:
        servers = [
            {
                "ID": registry.node_id,
                "Node": registry.config.node,
                "Address": raft_address(registry),
                "Leader": True,
                "ProtocolVersion": "3",
                "Voter": True,
                "LastIndex": registry.catalog.index,
            }
        ]
        # The index of the Raft configuration, not of the data: a dev
        # Consul's single-server configuration answers 0 (py-consul's
        # test_operator asserts it).
        return json_response({"Servers": servers, "Index": 0})
    view = await registry.cluster.etcd_view()
    servers = [
        {
            "ID": member.id,
            "Node": member.name,
            "Address": member.peer_address,
            "Leader": member.is_leader and view.is_current,
            "ProtocolVersion": "3",
            "Voter": True,
            "LastIndex": view.raft_index,
        }
        for member in view.members
    ]
    return json_response({"Servers": servers, "Index": view.raft_index})
