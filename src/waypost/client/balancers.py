"""Pick one instance from a set: round robin, random, weighted, least in
flight, or a consistent-hash ring (sticky by key, optionally bounded loads).

Pure: no I/O and no clock. A watcher calls `update()` with each new set;
`pick()` may run on any thread meanwhile. An instance whose `weight` is 0
(drained, critical) is never picked.

    balancer = Weighted()
    balancer.update(instances)
    with balancer.acquire() as instance:   # counted in flight until the end
        call(instance.endpoint)
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
from bisect import bisect_right
from collections.abc import Iterator, Sequence

from waypost.client.model import Instance
from waypost.exceptions import NoInstanceAvailable
from waypost.ring import DEFAULT_BALANCE_FACTOR, EmptyRingError, HashRing

#: Ring points per unit of weight on the client: enough for about ±6 % of
#: balance, cheap to rebuild on every change. Processes that must agree on
#: owners need the same value.
CLIENT_VNODES = 256

__all__ = [
    "CLIENT_VNODES",
    "Balancer",
    "LeastInFlight",
    "Random",
    "RingBalancer",
    "RoundRobin",
    "Weighted",
]


class Balancer:
    """Base of every balancer: holds the pickable instances.

    Subclasses implement `pick()`; those that count load also `release()`.
    """

    def __init__(self) -> None:
        self._instances: tuple[Instance, ...] = ()
        #: The service picked from, named in errors: a watcher sets it, and
        #: `update()` learns it from the instances it is given.
        self.service = ""

    def update(self, instances: Sequence[Instance]) -> None:
        """Replace the set; instances of weight 0 are kept out (drained).

        Args:
            instances: the latest healthy set, in any order.
        """
        if instances:
            self.service = instances[0].name
        chosen = [i for i in instances if i.weight > 0]
        self._instances = tuple(sorted(chosen, key=lambda i: i.key))

    def instances(self) -> tuple[Instance, ...]:
        """The pickable instances, sorted by `Instance.key`.

        A method, as `Watcher.instances()` is: both iterate as instances.
        """
        return self._instances

    def pick(self, key: str | None = None) -> Instance:
        """One instance.

        Args:
            key: what to be sticky on; only `RingBalancer` uses it.

        Raises:
            NoInstanceAvailable: nothing of positive weight to pick.
        """
        raise NotImplementedError

    def release(self, instance: Instance) -> None:
        """Say that a request `pick()` placed on `instance` has finished."""

    @contextlib.contextmanager
    def acquire(self, key: str | None = None) -> Iterator[Instance]:
        """`pick()`, then `release()` when the block ends, even on error."""
        instance = self.pick(key)
        try:
            yield instance
        finally:
            self.release(instance)

    def _candidates(self) -> tuple[Instance, ...]:
        instances = self._instances
        if not instances:
            raise self._nothing_to_pick()
        return instances

    def _nothing_to_pick(self) -> NoInstanceAvailable:
        of = f" of {self.service!r}" if self.service else ""
        return NoInstanceAvailable(
            f"no instance{of} to pick: none has a positive weight (none is"
            " registered and passing, or all are drained)"
        )


class RoundRobin(Balancer):
    """Each instance in turn, ignoring weights (but never a drained one)."""

    def __init__(self) -> None:
        super().__init__()
        self._counter = itertools.count()

    def pick(self, key: str | None = None) -> Instance:
        instances = self._candidates()
        return instances[next(self._counter) % len(instances)]


class Random(Balancer):
    """Uniformly at random, ignoring weights.

    Args:
        rng: a `random.Random` to draw from (seed it in tests).
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__()
        self._rng = rng or random.Random()

    def pick(self, key: str | None = None) -> Instance:
        return self._rng.choice(self._candidates())


class Weighted(Balancer):
    """At random, each instance in proportion to its `weight`.

    Args:
        rng: a `random.Random` to draw from (seed it in tests).
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__()
        self._rng = rng or random.Random()
        self._table: tuple[tuple[Instance, ...], list[float]] = ((), [])

    def update(self, instances: Sequence[Instance]) -> None:
        super().update(instances)
        chosen = self._instances
        cumulative = list(itertools.accumulate(i.weight for i in chosen))
        self._table = (chosen, cumulative)  # swapped whole: pick sees one state

    def pick(self, key: str | None = None) -> Instance:
        chosen, cumulative = self._table
        if not chosen:
            raise self._nothing_to_pick()
        point = self._rng.random() * cumulative[-1]
        return chosen[min(bisect_right(cumulative, point), len(chosen) - 1)]


class LeastInFlight(Balancer):
    """The instance with the fewest requests in flight per unit of weight.

    Ties go round robin. Each `pick()` counts one request until `release()`
    (or use `acquire()`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._counter = itertools.count()

    def in_flight(self, instance: Instance) -> int:
        """Requests placed on `instance` and not released yet."""
        return self._in_flight.get(instance.key, 0)

    def pick(self, key: str | None = None) -> Instance:
        instances = self._candidates()
        with self._lock:
            start = next(self._counter)
            count = len(instances)
            best = min(
                range(count),
                key=lambda n: (
                    self._in_flight.get(instances[(start + n) % count].key, 0)
                    / instances[(start + n) % count].weight,
                    n,
                ),
            )
            chosen = instances[(start + best) % count]
            self._in_flight[chosen.key] = self._in_flight.get(chosen.key, 0) + 1
        return chosen

    def release(self, instance: Instance) -> None:
        with self._lock:
            left = self._in_flight.get(instance.key, 0) - 1
            if left > 0:
                self._in_flight[instance.key] = left
            else:
                self._in_flight.pop(instance.key, None)


class RingBalancer(Balancer):
    """Sticky: the same key goes to the same instance while it is there.

    A consistent-hash ring (`waypost.ring.HashRing`) over `Instance.key`,
    each instance weighted by its `weight`. When an instance joins or
    leaves, only about 1/N of the keys move. With `bounded=True` a key
    skips an instance already carrying more than `balance_factor` times the
    mean load of requests in flight (Mirrokni et al., as HAProxy's
    `hash-balance-factor`); count requests with `acquire()` or
    `pick()`/`release()`.

    Args:
        vnodes: ring points per unit of weight; every process that must
            agree on owners needs the same value.
        bounded: cap each instance's in-flight load.
        balance_factor: the cap, as a multiple of the mean (>= 1).
    """

    def __init__(
        self,
        *,
        vnodes: int = CLIENT_VNODES,
        bounded: bool = False,
        balance_factor: float = DEFAULT_BALANCE_FACTOR,
    ) -> None:
        super().__init__()
        self._ring = HashRing(vnodes=vnodes)
        self._by_key: dict[str, Instance] = {}
        self._bounded = bounded
        self._balance_factor = balance_factor
        self._lock = threading.Lock()
        self._loads: dict[str, int] = {}

    @property
    def ring(self) -> HashRing:
        """The underlying ring (members are `Instance.key`)."""
        return self._ring

    def update(self, instances: Sequence[Instance]) -> None:
        super().update(instances)
        wanted = {i.key: i for i in self._instances}
        with self._lock:
            # Only the difference: a ring change moves only the changed keys.
            for gone in set(self._by_key) - set(wanted):
                self._ring.remove(gone)
                self._loads.pop(gone, None)
            for name, instance in wanted.items():
                old = self._by_key.get(name)
                if old is None or old.weight != instance.weight:
                    self._ring.add(name, instance.weight)
            self._by_key = wanted

    def pick(self, key: str | None = None) -> Instance:
        if key is None:
            raise ValueError("RingBalancer.pick() needs a key (pick(key=user_id))")
        self._candidates()
        with self._lock:  # ring and map change together in update()
            try:
                if not self._bounded:
                    return self._by_key[self._ring.get(key)]
                name = self._ring.get_bounded(
                    key, self._loads, balance_factor=self._balance_factor
                )
            except EmptyRingError as exc:
                raise self._nothing_to_pick() from exc
            self._loads[name] = self._loads.get(name, 0) + 1
            return self._by_key[name]

    def release(self, instance: Instance) -> None:
        if not self._bounded:
            return
        with self._lock:
            left = self._loads.get(instance.key, 0) - 1
            if left > 0:
                self._loads[instance.key] = left
            else:
                self._loads.pop(instance.key, None)
