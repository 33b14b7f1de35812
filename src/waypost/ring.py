"""Public home of the consistent-hash ring; the code lives in ``waypost.core.ring``.

Re-exports only: applications import ``waypost.ring``, never ``waypost.core``.
"""

from __future__ import annotations

from waypost.core.ring import (
    DEFAULT_BALANCE_FACTOR,
    DEFAULT_VNODES,
    HASH_SPACE,
    MAX_NODES,
    EmptyRingError,
    HashRing,
    Ring,
    RingStatistics,
    hash_key,
)

__all__ = [
    "DEFAULT_BALANCE_FACTOR",
    "DEFAULT_VNODES",
    "HASH_SPACE",
    "MAX_NODES",
    "EmptyRingError",
    "HashRing",
    "Ring",
    "RingStatistics",
    "hash_key",
]
