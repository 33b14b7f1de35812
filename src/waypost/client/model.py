"""What the client hands back: instances, instance sets, members.

Frozen msgspec values, snake_case; decoded from Consul's JSON in `_base.py`.
No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import msgspec

from waypost.core.model import HealthStatus, Weights

#: Meta key an instance's weight may be read from; `"0"` drains it.
WEIGHT_META_KEY = "weight"


class Instance(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One instance of a service, as discovery returns it.

    `address` is the service's address, or its node's when it registered
    none (Consul's rule). `status` is the worst of its checks and its node's.
    """

    # gc=False: an Instance holds only strings, numbers, a tuple of strings
    # and a dict of strings, so it can never be part of a reference cycle;
    # untracked, a read of 1,000 instances does not trigger collections of
    # everything else (a third of the decode time when tracked).

    service_id: str
    name: str
    address: str
    port: int
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = {}
    weights: Weights = Weights()
    node: str = ""
    node_address: str = ""
    datacenter: str = ""
    status: HealthStatus = HealthStatus.PASSING
    modify_index: int = 0

    @property
    def key(self) -> str:
        """Unique across the catalog: `<node>/<service_id>`."""
        return f"{self.node}/{self.service_id}"

    @property
    def endpoint(self) -> str:
        """`host:port`, with brackets around an IPv6 host."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def weight(self) -> float:
        """How much traffic this instance should get; 0 means none (drained).

        `Meta["weight"]` wins when it is a number >= 0 (Consul's `Weights`
        cannot say 0); otherwise `Weights.Passing`, or `Weights.Warning` while
        a check warns. A critical instance weighs 0.
        """
        if self.status is HealthStatus.CRITICAL:
            return 0.0
        from_meta = _meta_weight(self.meta.get(WEIGHT_META_KEY))
        if from_meta == 0.0:
            return 0.0
        if self.status is HealthStatus.WARNING:
            return float(self.weights.warning)
        return from_meta if from_meta is not None else float(self.weights.passing)


def _meta_weight(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class InstanceSet(msgspec.Struct, frozen=True, kw_only=True):
    """A service's instances at one registry index; iterate it like a tuple.

    `is_stale` is true when the registry could not be reached and this is
    the last set it gave; `error` then says why.
    """

    instances: tuple[Instance, ...] = ()
    index: int = 0
    is_stale: bool = False
    error: str = ""

    def __len__(self) -> int:
        return len(self.instances)

    def __iter__(self) -> Iterator[Instance]:
        return iter(self.instances)

    def __getitem__(self, position: int) -> Instance:
        return self.instances[position]

    def __bool__(self) -> bool:
        return bool(self.instances)

    @property
    def ids(self) -> list[str]:
        """The service IDs, sorted: handy in assertions and logs."""
        return sorted(instance.service_id for instance in self.instances)


class RaftServer(msgspec.Struct, frozen=True, kw_only=True):
    """A server holding the data (`/v1/operator/raft/configuration`): the
    agent itself, or in cluster mode each etcd member."""

    id: str
    node: str
    address: str
    leader: bool
    voter: bool = True


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """A registry node, as `/v1/agent/members` lists it (Status 1 is alive)."""

    name: str
    address: str
    port: int
    status: int
    datacenter: str = ""
    build: str = ""
