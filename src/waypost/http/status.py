"""`/v1/status/*`: a single node is its own leader and only peer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.http.messages import Request, Response, json_response

if TYPE_CHECKING:
    from waypost.registry import Registry


def _raft_address(registry: Registry) -> str:
    # Consul answers with the server RPC address (port 8300), not HTTP's.
    return f"{registry.config.advertise_address}:8300"


async def leader(registry: Registry, request: Request) -> Response:
    return json_response(_raft_address(registry))


async def peers(registry: Registry, request: Request) -> Response:
    return json_response([_raft_address(registry)])
