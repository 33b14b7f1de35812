"""`/v1/status/*`: a single node is its own leader and only peer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.http.messages import Request, Response, json_response

if TYPE_CHECKING:
    from waypost.server import Agent


def _raft_address(agent: Agent) -> str:
    # Consul answers with the server RPC address (port 8300), not HTTP's.
    return f"{agent.config.advertise_address}:8300"


async def leader(agent: Agent, request: Request) -> Response:
    return json_response(_raft_address(agent))


async def peers(agent: Agent, request: Request) -> Response:
    return json_response([_raft_address(agent)])
