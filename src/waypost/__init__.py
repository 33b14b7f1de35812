"""waypost: a service registry and discovery server speaking Consul's /v1 API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
