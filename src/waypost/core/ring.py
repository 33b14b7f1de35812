"""Consistent-hash ring: which node owns a key, for sticky routing and check duty.

Pure: no I/O, no clock, no asyncio. Every process that holds the same members
and weights computes the same owner for every key, whatever the order of the
changes that led there, on any Python version (no builtin ``hash()``).

How it works, and why:

- Node ``name`` with weight ``w`` places ``round(vnodes * w)`` points on a
  64-bit circle, point ``i`` at ``xxh3_64(utf8(name), seed=i)``. A key hashes
  to ``xxh3_64(key)`` and belongs to the first point at or after that hash
  (clockwise), ties between points going to the smaller node name. Points
  depend only on their own node, so a join only takes keys for the newcomer
  and a leave only hands out the leaver's keys: movement is minimal. Raising a
  weight adds points and keeps the old ones, so it too only moves keys in.
- Balance comes from many points per node. A node's share is a sum of
  ``vnodes`` gaps, so its spread is about ``1/sqrt(vnodes)``; the busiest of
  100 nodes sits about 2.5 of those above the mean. The default of 4096 keeps
  the busiest of 100 nodes at or under 1.05x the mean (see bench/RESULTS.md).
- Lookups stay O(1) whatever the point count: a jump table indexed by the top
  bits of the key hash holds the owner of every slot that no point splits.
  Only keys in a split slot (9 % of them at 100 nodes) bisect, and only
  within their bucket of 8-16 points.
- Many points make a full build slow in pure Python, so after the first build
  a change merges or cuts only the changed nodes' points (array slices copied
  in C) and patches only the table slots around them. The mapping never
  depends on the table: it is only a cache of the exact ring.

Bounded loads (``get_bounded``) follows Mirrokni, Thorup and Zadimoghaddam,
"Consistent Hashing with Bounded Loads" (2016), as HAProxy's
``hash-balance-factor`` does.
"""

from __future__ import annotations

import math
import operator
import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from itertools import accumulate, repeat
from typing import NamedTuple

import msgspec
from xxhash import xxh3_64_intdigest

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

DEFAULT_VNODES = 4096
"""Points per unit of weight: the busiest of 100 nodes stays <= 1.05x the mean.

Measured over 40 random sets of 100 node names, exact arc shares, as median /
90th percentile / worst max-over-mean: 2048 points 1.055 / 1.071 / 1.088,
3072 points 1.044 / 1.054 / 1.058, 4096 points 1.038 / 1.048 / 1.050, 5120
points 1.033 / 1.043 / 1.048. 4096 is the least that kept every set <= 1.05.
Lookup time does not grow with it (jump table); build time and memory do.
"""

DEFAULT_BALANCE_FACTOR = 1.25
"""``1 + epsilon`` for bounded loads: HAProxy's suggested 125 %."""

HASH_SPACE = 1 << 64
"""Keys and points live on the circle ``[0, HASH_SPACE)``."""

MAX_NODES = 0xFFFE
"""Nodes of positive weight one ring can hold: owners are stored in 16 bits."""

# Key hash, chosen by measurement on short str keys ("user-123"), CPython 3.11,
# 2 cores; bench/ring.py repeats it on every run. Bare calls: xxh3_64 42-63 ns,
# mmh3.hash64 125-177 ns, mmh3.hash128 100-130 ns. Through a lambda with
# .encode(), as the bench times them: xxh3_64 91 ns, mmh3.hash64 156 ns,
# mmh3.hash128 105 ns, md5 (uhashring) 845 ns. xxhash is also already a
# runtime dependency; mmh3 is not.
_hash = xxh3_64_intdigest

_MIXED = 0xFFFF  # a table slot split by a point: bisect instead
# Table size, measured at 100 nodes (409,600 points) while choosing it:
# 2^20 slots (2 MiB, 32 % split) ~550 ns a lookup, 2^21 (4 MiB, 18 %) ~460 ns,
# 2^22 (8 MiB, 9 %) ~400 ns; 2^23 and up gained nothing (cache misses).
_TABLE_EXTRA_BITS = 3  # 8 to 16 slots a point
_MIN_TABLE_BITS = 8
_MAX_TABLE_BITS = 23  # 16 MiB of uint16: at 1000 nodes 39 % of slots split
_MAX_NODE_POINTS = 1 << 24  # 128 MiB of points for one node is surely a mistake
_FULL_REBUILD_RATIO = 4  # changes above 1/4 of the points: rebuild from scratch


_16 = repeat(16)  # endless operands for map(), which runs in C
_LOW16 = repeat(0xFFFF)


class EmptyRingError(LookupError):
    """Raised by a lookup when no node of positive weight is in the ring."""


class RingStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """How evenly a ring spreads keys; a share of 1.0 is the whole key space.

    ``max_over_mean`` compares each node's share with what its weight entitles
    it to, so a perfectly balanced ring reports 1.0 even with mixed weights.
    """

    shares: dict[str, float]
    max_over_mean: float
    min_over_mean: float
    points: int


def hash_key(key: str | bytes) -> int:
    """Where ``key`` lands on the circle: xxh3_64 of its UTF-8 bytes."""
    return _hash(key.encode()) if isinstance(key, str) else _hash(key)


def _node_points(name: str, count: int) -> list[int]:
    """The circle positions of a node's first ``count`` points."""
    data = name.encode()
    return [_hash(data, seed) for seed in range(count)]


class _Points(NamedTuple):
    """Sorted points, their owners, and where each bucket of them starts.

    ``starts[b]`` is the index of the first point in bucket ``b`` (the top
    bits of a hash; 8-16 points each), so a bisect probes a few neighbours
    instead of the whole array, where every probe is a cache miss.
    """

    positions: array[int]  # sorted uint64 positions
    owners: array[int]  # owner id of each point
    starts: array[int]  # 2^bits + 1 entries, the last is len(positions)
    bucket_shift: int  # the bucket of hash h is h >> bucket_shift

    def bisect(self, h: int, low: int = 0) -> int:
        """Index of the first point at or after ``h`` (``len`` past the end).

        ``low`` may skip points known to lie before ``h``.
        """
        bucket = h >> self.bucket_shift
        low = max(low, self.starts[bucket])
        return bisect_left(self.positions, h, low, self.starts[bucket + 1])


class _View:
    """One consistent snapshot of the built ring, swapped in whole.

    A lookup reads ``ring._view`` once, so a reader on another thread never
    mixes a table from one build with the names of another.
    """

    __slots__ = ("counts", "names", "owners", "points", "positions", "shift", "table")

    def __init__(
        self,
        *,
        counts: dict[str, int],
        names: list[str],
        points: _Points,
        table: array[int],
        shift: int,
    ) -> None:
        self.counts = counts  # node of positive weight -> its number of points
        self.names = names  # owner id -> node name ("" for a free id)
        self.points = points
        self.positions = points.positions
        self.owners = points.owners
        self.table = table  # owner id of each slot, or _MIXED if a point splits it
        self.shift = shift  # the slot of hash h is h >> shift

    def successor(self, h: int) -> int:
        """Index of the first point at or after ``h``, wrapping to 0."""
        i = self.points.bisect(h)
        return 0 if i == len(self.positions) else i


_NO_POINTS = _Points(array("Q"), array("H"), array("I", [0, 0]), 64)
_EMPTY_TABLE = array("H", [_MIXED])  # every hash lands in slot 0: "bisect"
_EMPTY_VIEW = _View(
    counts={}, names=[], points=_NO_POINTS, table=_EMPTY_TABLE, shift=64
)


class HashRing:
    """A weighted consistent-hash ring of node names.

    Args:
        nodes: initial members, as names (weight 1) or a name -> weight map.
        vnodes: points per unit of weight; more is more even and slower to
            build. Every process that must agree on owners needs the same value.

    Reads are safe from any thread; ``add`` and ``remove`` are serialized by an
    internal lock. Changes are applied lazily, on the next read.

    Example::

        ring = HashRing(["a", "b", "c"])
        ring.get("user-42")  # "a", in every process, on every run
        ring.get_n("user-42", 2)  # ["a", "b"]: owner, then failover
        ring.get_bounded("user-42", {"a": 5, "b": 0, "c": 0})  # "b": a is full
    """

    def __init__(
        self,
        nodes: Iterable[str] | Mapping[str, float] = (),
        *,
        vnodes: int = DEFAULT_VNODES,
    ) -> None:
        if vnodes < 1:
            raise ValueError(f"vnodes must be at least 1, got {vnodes}")
        self._vnodes = vnodes
        self._lock = threading.Lock()  # serializes changes and the lazy build
        self._weights: dict[str, float] = {}  # wanted members
        self._positive = 0  # members of positive weight in _weights
        self._ids: dict[str, int] = {}  # members in _view -> owner id
        self._view = _EMPTY_VIEW
        self._dirty = False
        if isinstance(nodes, Mapping):
            for name, weight in nodes.items():
                self.add(name, weight)
        else:
            for name in nodes:
                self.add(name)

    # -- membership -------------------------------------------------------

    def add(self, node: str, weight: float = 1) -> None:
        """Add ``node``, or change its weight; weight 0 keeps it but owns no keys."""
        if not isinstance(node, str) or not node:
            raise ValueError(f"node must be a non-empty str, got {node!r}")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {node!r} must be >= 0, got {weight!r}")
        if self._point_count(weight) > _MAX_NODE_POINTS:
            raise ValueError(f"weight of {node!r} is too large: {weight!r}")
        with self._lock:
            was_positive = self._weights.get(node, 0) > 0
            if weight > 0 and not was_positive and self._positive >= MAX_NODES:
                raise ValueError(f"a ring holds at most {MAX_NODES} weighted nodes")
            self._positive += (weight > 0) - was_positive
            self._weights[node] = weight
            self._dirty = True

    def remove(self, node: str) -> None:
        """Remove ``node``; its keys go to the next node clockwise.

        Raises:
            KeyError: ``node`` is not in the ring.
        """
        with self._lock:
            self._positive -= self._weights.pop(node) > 0
            self._dirty = True

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every member, sorted, including those of weight 0."""
        return tuple(sorted(self._weights))

    @property
    def weights(self) -> dict[str, float]:
        """A copy of the member -> weight map."""
        return dict(self._weights)

    @property
    def vnodes(self) -> int:
        """Points per unit of weight."""
        return self._vnodes

    def __len__(self) -> int:
        return len(self._weights)

    def __contains__(self, node: object) -> bool:
        return node in self._weights

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __repr__(self) -> str:
        return f"HashRing({self._weights!r}, vnodes={self._vnodes})"

    # -- lookups ----------------------------------------------------------

    def get(self, key: str | bytes) -> str:
        """The node that owns ``key``.

        Raises:
            EmptyRingError: no node of positive weight.
        """
        if self._dirty:
            self._sync()
        view = self._view
        h = _hash(key.encode()) if isinstance(key, str) else _hash(key)
        owner = view.table[h >> view.shift]
        if owner != _MIXED:
            return view.names[owner]
        if not view.positions:
            raise EmptyRingError("the ring has no node of positive weight")
        return view.names[view.owners[view.successor(h)]]

    def get_n(self, key: str | bytes, n: int) -> list[str]:
        """Up to ``n`` distinct nodes for ``key``, clockwise from its owner.

        The first is ``get(key)``; the rest are where replicas go and where
        the key fails over, in order. Nodes of weight 0 are never returned, so
        the list holds ``min(n, nodes of positive weight)`` names.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return []
        if self._dirty:
            self._sync()
        view = self._view
        if not view.positions:
            return []
        result: list[str] = []
        start = view.successor(hash_key(key))
        for owner in _clockwise_owners(view, start):
            result.append(view.names[owner])
            if len(result) == n:
                break
        return result

    def get_bounded(
        self,
        key: str | bytes,
        loads: Mapping[str, int],
        *,
        balance_factor: float = DEFAULT_BALANCE_FACTOR,
    ) -> str:
        """The owner of ``key`` unless it is full, else the next node clockwise.

        Consistent hashing with bounded loads: with ``total`` requests already
        placed (the sum of ``loads`` over members), a node of weight ``w`` out
        of ``W`` may hold at most ``ceil(balance_factor * (total + 1) * w / W)``
        (the ``+ 1`` counts the request being placed). With equal weights that
        is ``ceil((1 + epsilon) * mean)``. The walk takes the first node under
        its cap, so no node ever passes it, and a key leaves its owner only
        while the owner is full. One always exists, as the caps add up to more
        than ``total``. Pass the live loads; count this request in them
        after placing it. Costs one pass over ``loads`` plus the walk.

        Args:
            key: what to place.
            loads: requests each node holds now; missing nodes hold 0.
            balance_factor: ``1 + epsilon``, at least 1; 1.25 lets a node run
                25 % above the mean.

        Raises:
            EmptyRingError: no node of positive weight.
        """
        if not 1 <= balance_factor < math.inf:
            raise ValueError(f"balance_factor must be >= 1, got {balance_factor}")
        if self._dirty:
            self._sync()
        view = self._view
        counts = view.counts
        if not counts:
            raise EmptyRingError("the ring has no node of positive weight")
        total = 0
        for name, load in loads.items():
            if load < 0:
                raise ValueError(f"load of {name!r} must be >= 0, got {load}")
            if name in counts:
                total += load
        # Integer arithmetic: caps must not wobble with float rounding.
        factor, scale = balance_factor.as_integer_ratio()
        numerator = factor * (total + 1)
        denominator = scale * len(view.positions)
        start = view.successor(hash_key(key))
        for owner in _clockwise_owners(view, start):
            name = view.names[owner]
            cap = -(-numerator * counts[name] // denominator)
            if loads.get(name, 0) < cap:
                return name
        raise AssertionError("caps sum above the total load; unreachable")

    def arcs(self) -> Iterator[tuple[int, int, str]]:
        """The circle as ``(start, end, node)``: hashes in ``[start, end)`` map to node.

        Arcs come in hash order, cover ``[0, HASH_SPACE)`` exactly, and
        neighbours with the same owner are merged (the first and last arc may
        share one, across the wrap). One step per point: ~1 s per million.
        """
        if self._dirty:
            self._sync()
        return _arcs(self._view)

    def statistics(self, keys: Iterable[str | bytes] | None = None) -> RingStatistics:
        """Each node's share of the key space, or of ``keys`` when given.

        Without ``keys`` the shares are exact arc lengths over the 64-bit
        circle, so they carry no sampling noise. ``max_over_mean`` is the
        largest share over the share the node's weight entitles it to.
        """
        if self._dirty:
            self._sync()
        view = self._view
        built = view.counts
        counts: dict[str, int] = dict.fromkeys(built, 0)
        if keys is None:
            total = HASH_SPACE
            for start, end, node in _arcs(view):
                counts[node] += end - start
        else:
            total = 0
            for key in keys:
                counts[self.get(key)] += 1
                total += 1
        points = len(view.positions)
        if not points or not total:
            return RingStatistics(
                shares={}, max_over_mean=0.0, min_over_mean=0.0, points=points
            )
        shares = {node: count / total for node, count in counts.items()}
        ratios = [shares[node] * points / built[node] for node in built]
        return RingStatistics(
            shares=shares,
            max_over_mean=max(ratios),
            min_over_mean=min(ratios),
            points=points,
        )

    # -- building ---------------------------------------------------------

    def _point_count(self, weight: float) -> int:
        if weight <= 0:
            return 0
        return max(1, round(self._vnodes * weight))

    def _sync(self) -> None:
        """Bring ``_view`` up to ``_weights``: patch if the change is small."""
        with self._lock:
            if not self._dirty:
                return
            wanted: dict[str, int] = {}
            for name, weight in self._weights.items():
                count = self._point_count(weight)
                if count:
                    wanted[name] = count
            built = self._view.counts
            gone = [name for name, count in built.items() if wanted.get(name) != count]
            new = [name for name, count in wanted.items() if built.get(name) != count]
            changed = sum(built[name] for name in gone)
            changed += sum(wanted[name] for name in new)
            if changed * _FULL_REBUILD_RATIO > len(self._view.positions):
                self._view = self._rebuild(wanted)
            elif changed:
                self._view = self._patch(gone, new, wanted)
            self._dirty = False

    def _rebuild(self, wanted: dict[str, int]) -> _View:
        """Build every array from scratch: one sort of all points."""
        names = sorted(wanted)
        self._ids = {name: owner for owner, name in enumerate(names)}
        # Point and owner in one int, so one sort orders ties by name. Each
        # node's points go in presorted: merging runs is ~3x faster.
        encoded: list[int] = []
        for owner, name in enumerate(names):
            own = sorted(_node_points(name, wanted[name]))
            shifted = map(operator.lshift, own, _16)
            encoded.extend(map(operator.or_, shifted, repeat(owner)))
        encoded.sort()
        positions = array("Q", map(operator.rshift, encoded, _16))
        owners = array("H", map(operator.and_, encoded, _LOW16))
        points, table, shift = _index(positions, owners)
        return _View(
            counts=wanted, names=names, points=points, table=table, shift=shift
        )

    def _patch(self, gone: list[str], new: list[str], wanted: dict[str, int]) -> _View:
        """Cut the points of ``gone``, merge those of ``new``, fix their slots.

        Builds new arrays (readers may still hold the old view) in one Python
        step per changed point plus C copies of the rest.
        """
        view = self._view
        names = list(view.names)
        points = view.points
        removed: list[int] = []
        if gone:
            points, removed = self._cut(gone, names, points)
        added: list[int] = []
        if new:
            points, added = self._merge(new, wanted, names, points)
        positions, owners = points.positions, points.owners
        # The table size follows the point count loosely: the mapping never
        # depends on it, so hysteresis only saves rebuilds.
        bits = _table_bits(len(positions))
        if not positions or abs(bits - (64 - view.shift)) > 1:
            points, table, shift = _index(positions, owners)
        else:
            table = view.table[:]
            for point in removed:
                successor = points.bisect(point)
                successor = 0 if successor == len(positions) else successor
                _claim(table, view.shift, positions, owners, successor)
            for successor in added:
                _claim(table, view.shift, positions, owners, successor)
            shift = view.shift
        return _View(
            counts=wanted, names=names, points=points, table=table, shift=shift
        )

    def _cut(
        self, gone: list[str], names: list[str], points: _Points
    ) -> tuple[_Points, list[int]]:
        """The points without those of ``gone``, and the positions cut."""
        positions, owners = points.positions, points.owners
        drop: list[int] = []
        removed: list[int] = []
        for name in gone:
            owner = self._ids.pop(name)
            for point in _node_points(name, self._view.counts[name]):
                index = points.bisect(point)
                while owners[index] != owner:  # a tie with another node's point
                    index += 1
                drop.append(index)
                removed.append(point)
            names[owner] = ""
        drop.sort()
        kept_positions, kept_owners = array("Q"), array("H")
        start = 0
        for index in drop:
            kept_positions += positions[start:index]
            kept_owners += owners[start:index]
            start = index + 1
        kept_positions += positions[start:]
        kept_owners += owners[start:]
        removed.sort()
        starts = _shift_starts(points.starts, points.bucket_shift, removed, -1)
        kept = _Points(kept_positions, kept_owners, starts, points.bucket_shift)
        return kept, removed

    def _merge(
        self, new: list[str], wanted: dict[str, int], names: list[str], points: _Points
    ) -> tuple[_Points, list[int]]:
        """The points with those of ``new``, and the indices they landed at."""
        incoming: list[tuple[int, str, int]] = []
        for name in new:
            owner = self._allocate(name, names)
            incoming.extend((p, name, owner) for p in _node_points(name, wanted[name]))
        incoming.sort()
        positions, owners = points.positions, points.owners
        merged_positions, merged_owners = array("Q"), array("H")
        landed: list[int] = []
        start, count = 0, len(positions)
        for point, name, owner in incoming:
            index = points.bisect(point, start)
            while (
                index < count
                and positions[index] == point
                and names[owners[index]] < name
            ):
                index += 1  # ties go to the smaller name, as in _rebuild
            merged_positions += positions[start:index]
            merged_owners += owners[start:index]
            landed.append(len(merged_positions))
            merged_positions.append(point)
            merged_owners.append(owner)
            start = index
        merged_positions += positions[start:]
        merged_owners += owners[start:]
        starts = _shift_starts(
            points.starts, points.bucket_shift, [p for p, _, _ in incoming], 1
        )
        merged = _Points(merged_positions, merged_owners, starts, points.bucket_shift)
        return merged, landed

    def _allocate(self, name: str, names: list[str]) -> int:
        """An owner id for ``name``: a freed one if any, else a new one."""
        try:
            owner = names.index("")
        except ValueError:
            owner = len(names)
            names.append(name)
        else:
            names[owner] = name
        self._ids[name] = owner
        return owner


def _arcs(view: _View) -> Iterator[tuple[int, int, str]]:
    """The arcs of one snapshot; see ``HashRing.arcs``."""
    names, positions, owners = view.names, view.positions, view.owners
    if not positions:
        return
    # Point j owns the hashes after point j-1 up to itself: [p[j-1]+1, p[j]+1).
    run_start, run_end, run_owner = 0, 0, owners[0]
    for position, owner in zip(positions, owners, strict=True):
        end = position + 1
        if end == run_end:
            continue  # a point tied with the one before owns nothing
        if owner != run_owner:
            yield run_start, run_end, names[run_owner]
            run_start, run_owner = run_end, owner
        run_end = end
    # Past the last point the circle wraps to the first point's owner.
    if run_end < HASH_SPACE and owners[0] != run_owner:
        yield run_start, run_end, names[run_owner]
        run_start, run_owner = run_end, owners[0]
    yield run_start, HASH_SPACE, names[run_owner]


def _clockwise_owners(view: _View, start: int) -> Iterator[int]:
    """Distinct owner ids in clockwise order from point ``start``.

    Scans in doubling chunks so the common case (a few owners wanted) touches a
    handful of points, and a walk round the whole ring stays in C
    (``dict.fromkeys``) rather than a Python step per point.
    """
    owners = view.owners
    count, distinct = len(owners), len(view.counts)
    seen: set[int] = set()
    scanned, chunk, index = 0, 8, start
    while scanned < count and len(seen) < distinct:
        size = min(chunk, count - scanned)
        end = index + size
        piece = owners[index:end]
        if end > count:
            piece += owners[: end - count]
        for owner in dict.fromkeys(piece):
            if owner not in seen:
                seen.add(owner)
                yield owner
        scanned += size
        index = end % count
        chunk *= 2


def _table_bits(points: int) -> int:
    """log2 of the jump-table size for ``points`` points."""
    bits = points.bit_length() + _TABLE_EXTRA_BITS
    return min(max(bits, _MIN_TABLE_BITS), _MAX_TABLE_BITS)


def _bucket_bits(points: int) -> int:
    """log2 of the bucket count: 8 to 16 points a bucket."""
    return max(points.bit_length() - 4, 0)


def _index(
    positions: array[int], owners: array[int]
) -> tuple[_Points, array[int], int]:
    """Bucket starts and jump table for sorted points, in one pass over them."""
    count = len(positions)
    if not count:
        return _NO_POINTS, _EMPTY_TABLE, 64
    bits, bucket_bits = _table_bits(count), _bucket_bits(count)
    shift = 64 - bits
    per_bucket = bits - bucket_bits  # slot >> per_bucket is the bucket
    slots: list[int] = []
    starts: list[int] = []
    previous = -1  # the last slot that holds a point
    for index, slot in enumerate(map(operator.rshift, positions, repeat(shift))):
        if slot != previous:
            # Slots between two points belong to the later point; a slot that
            # holds a point is split.
            slots.extend([owners[index]] * (slot - previous - 1))
            slots.append(_MIXED)
            bucket = slot >> per_bucket
            if bucket >= len(starts):
                starts.extend([index] * (bucket + 1 - len(starts)))
            previous = slot
    slots.extend([owners[0]] * ((1 << bits) - 1 - previous))  # wraps to the first
    starts.extend([count] * ((1 << bucket_bits) + 1 - len(starts)))
    points = _Points(positions, owners, array("I", starts), 64 - bucket_bits)
    return points, array("H", slots), shift


def _claim(
    table: array[int], shift: int, positions: array[int], owners: array[int], point: int
) -> None:
    """Give the slots between point ``point`` and the one before it to its owner.

    Only slots wholly inside the arc; the slot holding the point is split.
    """
    count = len(positions)
    predecessor = (point - 1) % count  # the arc wraps when point is 0
    owner = owners[point]
    low = (positions[predecessor] >> shift) + 1
    high = positions[point] >> shift
    if predecessor < point:
        if low < high:
            table[low:high] = array("H", [owner]) * (high - low)
    else:
        if low < len(table):
            table[low:] = array("H", [owner]) * (len(table) - low)
        if high > 0:
            table[:high] = array("H", [owner]) * high
    table[high] = _MIXED


def _shift_starts(
    starts: array[int], bucket_shift: int, changed: list[int], change: int
) -> array[int]:
    """Bucket starts after the points ``changed`` were added (+1) or removed (-1).

    A point moves the start of every later bucket, so mark each point's next
    bucket and let a running sum (in C) carry the offsets along.
    """
    marks = array("l", bytes(len(starts) * array("l").itemsize))
    for position in changed:
        marks[(position >> bucket_shift) + 1] += change
    return array("I", map(operator.add, starts, accumulate(marks)))


Ring = HashRing
"""Short alias of :class:`HashRing`."""
