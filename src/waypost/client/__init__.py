"""waypost's Python client: register, heartbeat, discover, pick.

`Client` (blocking) and `AsyncClient` (asyncio) have the same methods; only
`close` / `aclose` differ. Both speak HTTP/1.1 through `_http11.py`
(httptools); the blocking modules are generated from the asyncio ones
(scripts/unasync.py). Errors come from one tree, drawn in
`waypost.exceptions`.
"""

from __future__ import annotations

from waypost.client._async import AsyncClient, AsyncServiceRegistration
from waypost.client._async_watch import AsyncCache, AsyncWatcher
from waypost.client._sync import Client, ServiceRegistration
from waypost.client._sync_watch import Cache, Watcher
from waypost.client.balancers import (
    Balancer,
    LeastInFlight,
    Random,
    RingBalancer,
    RoundRobin,
    Weighted,
)
from waypost.client.integrations import WaypostLifespan, register_flask
from waypost.client.model import Instance, InstanceSet, Member, RaftServer
from waypost.exceptions import (
    BadRequest,
    InvalidAddress,
    InvalidRequest,
    NoInstanceAvailable,
    NotFound,
    PermissionDenied,
    RegistryConnectError,
    RegistryServerError,
    RegistryUnavailable,
    RequestRejected,
    WaypostError,
)

__all__ = [
    "AsyncCache",
    "AsyncClient",
    "AsyncServiceRegistration",
    "AsyncWatcher",
    "BadRequest",
    "Balancer",
    "Cache",
    "Client",
    "Instance",
    "InstanceSet",
    "InvalidAddress",
    "InvalidRequest",
    "LeastInFlight",
    "Member",
    "NoInstanceAvailable",
    "NotFound",
    "PermissionDenied",
    "RaftServer",
    "Random",
    "RegistryConnectError",
    "RegistryServerError",
    "RegistryUnavailable",
    "RequestRejected",
    "RingBalancer",
    "RoundRobin",
    "ServiceRegistration",
    "Watcher",
    "WaypostError",
    "WaypostLifespan",
    "Weighted",
    "register_flask",
]
