"""waypost's Python client: register, heartbeat, discover, pick.

`Client` (blocking, httpx) and `AsyncClient` (asyncio, httpx) have the same
methods; only `close` / `aclose` differ. Errors come from one tree, drawn in
`waypost.exceptions`.
"""

from __future__ import annotations

from waypost.client._sync import Cache, Client, ServiceRegistration, Watcher
from waypost.client.balancers import (
    Balancer,
    LeastInFlight,
    Random,
    RingBalancer,
    RoundRobin,
    Weighted,
)
from waypost.client.model import Instance, InstanceSet, Member

__all__ = [
    "Balancer",
    "Cache",
    "Client",
    "Instance",
    "InstanceSet",
    "LeastInFlight",
    "Member",
    "Random",
    "RingBalancer",
    "RoundRobin",
    "ServiceRegistration",
    "Watcher",
    "Weighted",
]
