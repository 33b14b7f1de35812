"""waypost: a service registry and discovery server speaking Consul's /v1 API.

The names most programs need, importable from here; each is loaded on first
use, so `waypost agent` does not pay for the client at start-up::

    from waypost import Client, HashRing, NotFound
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name → module that defines it
_EXPORTS = {
    "AsyncClient": "waypost.client",
    "Balancer": "waypost.client.balancers",
    "Client": "waypost.client",
    "HashRing": "waypost.ring",
    "InvalidAddress": "waypost.exceptions",
    "InvalidRequest": "waypost.exceptions",
    "LeastInFlight": "waypost.client.balancers",
    "NoInstanceAvailable": "waypost.exceptions",
    "NotFound": "waypost.exceptions",
    "PermissionDenied": "waypost.exceptions",
    "Random": "waypost.client.balancers",
    "RegistryUnavailable": "waypost.exceptions",
    "RegistryUnreachable": "waypost.exceptions",
    "RequestRejected": "waypost.exceptions",
    "Ring": "waypost.ring",
    "RingBalancer": "waypost.client.balancers",
    "RoundRobin": "waypost.client.balancers",
    "WaypostError": "waypost.exceptions",
    "Weighted": "waypost.client.balancers",
}

__all__ = [
    "AsyncClient",
    "Balancer",
    "Client",
    "HashRing",
    "InvalidAddress",
    "InvalidRequest",
    "LeastInFlight",
    "NoInstanceAvailable",
    "NotFound",
    "PermissionDenied",
    "Random",
    "RegistryUnavailable",
    "RegistryUnreachable",
    "RequestRejected",
    "Ring",
    "RingBalancer",
    "RoundRobin",
    "WaypostError",
    "Weighted",
    "__version__",
]

if TYPE_CHECKING:
    from waypost.client import AsyncClient, Client
    from waypost.client.balancers import (
        Balancer,
        LeastInFlight,
        Random,
        RingBalancer,
        RoundRobin,
        Weighted,
    )
    from waypost.exceptions import (
        InvalidAddress,
        InvalidRequest,
        NoInstanceAvailable,
        NotFound,
        PermissionDenied,
        RegistryUnavailable,
        RegistryUnreachable,
        RequestRejected,
        WaypostError,
    )
    from waypost.ring import HashRing, Ring


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'waypost' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
