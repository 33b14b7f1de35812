"""waypost: a service registry and discovery server speaking Consul's /v1 API.

The names most programs need, importable from here; each is loaded on first
use, so `waypost agent` does not pay for the client (and httpx) at start-up::

    from waypost import Client, HashRing, NotFound
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name → module that defines it
_EXPORTS = {
    "AsyncClient": "waypost.client",
    "Client": "waypost.client",
    "HashRing": "waypost.ring",
    "InvalidRequest": "waypost.exceptions",
    "NotFound": "waypost.exceptions",
    "PermissionDenied": "waypost.exceptions",
    "RegistryUnavailable": "waypost.exceptions",
    "RegistryUnreachable": "waypost.exceptions",
    "RequestRejected": "waypost.exceptions",
    "Ring": "waypost.ring",
    "WaypostError": "waypost.exceptions",
}

__all__ = [
    "AsyncClient",
    "Client",
    "HashRing",
    "InvalidRequest",
    "NotFound",
    "PermissionDenied",
    "RegistryUnavailable",
    "RegistryUnreachable",
    "RequestRejected",
    "Ring",
    "WaypostError",
    "__version__",
]

if TYPE_CHECKING:
    from waypost.client import AsyncClient, Client
    from waypost.exceptions import (
        InvalidRequest,
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
