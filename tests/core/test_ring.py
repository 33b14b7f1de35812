"""HashRing: minimal movement, determinism, failover order, bounded loads, weights."""

from __future__ import annotations

import ast
import inspect
import math
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping
from itertools import pairwise

import pytest
from hypothesis import given, settings, strategies as st
from xxhash import xxh3_64_intdigest

import waypost.core.ring as ring_module
from waypost.core.ring import (
    HASH_SPACE,
    MAX_NODES,
    EmptyRingError,
    HashRing,
    hash_key,
)

# Small point counts keep every example in milliseconds; the code paths are the
# same as with the default (the jump table and buckets scale with the points).
VNODES = 64
SETTINGS = settings(max_examples=40, deadline=None)

names = st.text(alphabet="abcdefghij0123456789-.", min_size=1, max_size=8)
members = st.sets(names, min_size=4, max_size=12)
keys = st.lists(
    st.one_of(st.text(max_size=12), st.binary(max_size=12)), min_size=1, max_size=60
)
SAMPLE = [f"user-{i}" for i in range(400)]


def owners(ring: HashRing, sample: list[str] | list[str | bytes]) -> list[str]:
    return [ring.get(key) for key in sample]


def reference_owner(weights: Mapping[str, float], vnodes: int, key: str | bytes) -> str:
    """The documented rule, written out: first point at or after the key's hash."""
    points = []
    for name, weight in weights.items():
        count = max(1, round(vnodes * weight)) if weight > 0 else 0
        data = name.encode()
        points += [(xxh3_64_intdigest(data, seed), name) for seed in range(count)]
    points.sort()
    data = key.encode() if isinstance(key, str) else key
    index = bisect_left(points, (xxh3_64_intdigest(data), ""))
    return points[index % len(points)][1]


# -- public surface --------------------------------------------------------


def test_public_module_exports_the_ring() -> None:
    from waypost.ring import EmptyRingError as PublicEmpty, HashRing as Public, Ring

    assert Public is HashRing
    assert Ring is HashRing
    assert issubclass(PublicEmpty, LookupError)


def test_core_ring_imports_nothing_that_does_io() -> None:
    tree = ast.parse(inspect.getsource(ring_module))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"asyncio", "socket", "sqlite3", "time", "os", "random"}


def test_empty_ring_lookup_raises_empty_ring_error() -> None:
    ring = HashRing(vnodes=VNODES)
    with pytest.raises(EmptyRingError):
        ring.get("user-1")
    with pytest.raises(EmptyRingError):
        ring.get_bounded("user-1", {})
    assert ring.get_n("user-1", 3) == []
    assert list(ring.arcs()) == []


def test_ring_of_only_zero_weight_nodes_is_empty_for_lookups() -> None:
    ring = HashRing({"a": 0, "b": 0}, vnodes=VNODES)
    assert len(ring) == 2
    with pytest.raises(EmptyRingError):
        ring.get("user-1")


def test_membership_is_reported_sorted_with_weights() -> None:
    ring = HashRing({"b": 2, "a": 1, "c": 0}, vnodes=VNODES)
    assert ring.nodes == ("a", "b", "c")
    assert list(ring) == ["a", "b", "c"]
    assert "c" in ring
    assert "d" not in ring
    assert ring.weights == {"b": 2, "a": 1, "c": 0}
    ring.remove("b")
    assert list(ring) == ["a", "c"]


def test_bad_arguments_are_rejected() -> None:
    ring = HashRing(["a"], vnodes=VNODES)
    with pytest.raises(KeyError):
        ring.remove("missing")
    with pytest.raises(ValueError, match="weight"):
        ring.add("b", -1)
    with pytest.raises(ValueError, match="weight"):
        ring.add("b", math.nan)
    with pytest.raises(ValueError, match="too large"):
        ring.add("b", 1e12)
    with pytest.raises(ValueError, match="non-empty"):
        ring.add("")
    with pytest.raises(ValueError, match="vnodes"):
        HashRing(vnodes=0)
    with pytest.raises(ValueError, match="n must"):
        ring.get_n("k", -1)
    with pytest.raises(ValueError, match="balance_factor"):
        ring.get_bounded("k", {}, balance_factor=0.9)
    with pytest.raises(ValueError, match="balance_factor"):
        ring.get_bounded("k", {}, balance_factor=math.inf)
    with pytest.raises(ValueError, match="load"):
        ring.get_bounded("k", {"a": -1})


def test_ring_refuses_more_weighted_nodes_than_owner_ids() -> None:
    ring = HashRing(vnodes=1)
    for i in range(MAX_NODES):
        ring.add(f"n{i}")
    with pytest.raises(ValueError, match="at most"):
        ring.add("one-too-many")
    ring.add("idle", 0)  # weight 0 needs no owner id
    ring.remove("n0")
    ring.add("one-too-many")


# -- determinism -----------------------------------------------------------


def test_key_hash_is_pinned_xxh3_64_of_utf8() -> None:
    """A changed hash would silently reshuffle every deployed ring."""
    assert hash_key("user-42") == 0x50FE4B21CF7B09CD
    assert hash_key(b"user-42") == hash_key("user-42")
    assert hash_key("é") == xxh3_64_intdigest("é".encode())


def test_owners_are_pinned_across_processes_and_versions() -> None:
    """Default vnodes: every client and registry node must agree, forever."""
    ring = HashRing(["alpha", "bravo", "charlie", "delta", "echo"])
    got = {key: ring.get(key) for key in ("user-1", "user-2", "user-3", "cart:9")}
    assert got == {
        "user-1": "alpha",
        "user-2": "echo",
        "user-3": "bravo",
        "cart:9": "charlie",
    }
    assert ring.get_n("user-1", 5) == ["alpha", "delta", "bravo", "echo", "charlie"]


def test_str_and_utf8_bytes_keys_share_an_owner() -> None:
    ring = HashRing(["a", "b", "c"], vnodes=VNODES)
    for key in ("é", "user-1", "", "🙂"):
        assert ring.get(key) == ring.get(key.encode())


def test_readers_on_other_threads_see_whole_rings_while_it_changes() -> None:
    """A lookup racing a change answers from the ring before or after it."""
    stable = [f"n{i}" for i in range(6)]
    ring = HashRing(stable, vnodes=VNODES)
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                for key in SAMPLE[:50]:
                    assert ring.get(key) in {*stable, "extra"}
                    assert len(set(ring.get_n(key, 3))) == 3
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for _ in range(20):
        ring.add("extra")
        ring.get("apply")
        ring.remove("extra")
        ring.get("apply")
    done.set()
    for reader in readers:
        reader.join()
    assert errors == []


@SETTINGS
@given(members=members, sample=keys)
def test_lookup_follows_the_documented_rule(
    members: set[str], sample: list[str | bytes]
) -> None:
    weights = {name: 1 + (len(name) % 3) for name in members}
    ring = HashRing(weights, vnodes=VNODES)
    for key in sample:
        assert ring.get(key) == reference_owner(weights, VNODES, key)


@SETTINGS
@given(
    first=members,
    ops=st.lists(
        st.tuples(st.booleans(), names, st.sampled_from([0, 0.5, 1, 2])), max_size=8
    ),
)
def test_changed_ring_matches_one_built_fresh(
    first: set[str], ops: list[tuple[bool, str, float]]
) -> None:
    """Owners depend only on members and weights, not on the order of changes."""
    ring = HashRing(first, vnodes=VNODES)
    ring.get("warm")  # build now, so later changes take the incremental path
    for is_add, name, weight in ops:
        if is_add or name not in ring:
            ring.add(name, weight)
        else:
            ring.remove(name)
        fresh = HashRing(ring.weights, vnodes=VNODES)
        assert list(ring.arcs()) == list(fresh.arcs())
        if any(w > 0 for w in ring.weights.values()):
            assert owners(ring, SAMPLE[:100]) == owners(fresh, SAMPLE[:100])


# -- minimal movement ------------------------------------------------------


@SETTINGS
@given(members=members, newcomer=names)
def test_join_moves_keys_only_to_the_newcomer(members: set[str], newcomer: str) -> None:
    ring = HashRing(members - {newcomer}, vnodes=VNODES)
    before = owners(ring, SAMPLE)
    ring.add(newcomer)
    after = owners(ring, SAMPLE)
    assert all(new in (old, newcomer) for old, new in zip(before, after, strict=True))
    assert newcomer in after


@SETTINGS
@given(members=members, data=st.data())
def test_leave_moves_only_the_leavers_keys(
    members: set[str], data: st.DataObject
) -> None:
    leaver = data.draw(st.sampled_from(sorted(members)))
    ring = HashRing(members, vnodes=VNODES)
    before = owners(ring, SAMPLE)
    ring.remove(leaver)
    after = owners(ring, SAMPLE)
    for old, new in zip(before, after, strict=True):
        assert new == old if old != leaver else new != leaver


@SETTINGS
@given(members=members, data=st.data())
def test_remove_then_readd_restores_every_owner(
    members: set[str], data: st.DataObject
) -> None:
    node = data.draw(st.sampled_from(sorted(members)))
    ring = HashRing(members, vnodes=VNODES)
    arcs, before = list(ring.arcs()), owners(ring, SAMPLE)
    ring.remove(node)
    ring.get("rebuild now")
    ring.add(node)
    assert owners(ring, SAMPLE) == before
    assert list(ring.arcs()) == arcs


def test_raising_a_weight_moves_keys_only_to_that_node() -> None:
    ring = HashRing([f"n{i}" for i in range(8)], vnodes=VNODES)
    before = owners(ring, SAMPLE)
    ring.add("n3", 2)
    after = owners(ring, SAMPLE)
    assert all(new in (old, "n3") for old, new in zip(before, after, strict=True))
    assert after.count("n3") > before.count("n3")


# -- failover order --------------------------------------------------------


@SETTINGS
@given(members=members, key=st.text(max_size=12), n=st.integers(0, 15))
def test_get_n_gives_distinct_nodes_led_by_the_owner(
    members: set[str], key: str, n: int
) -> None:
    ring = HashRing(members, vnodes=VNODES)
    chosen = ring.get_n(key, n)
    assert len(chosen) == min(n, len(members))
    assert len(set(chosen)) == len(chosen)
    if n:
        assert chosen[0] == ring.get(key)


def test_get_n_follows_owners_when_the_owner_leaves() -> None:
    """The second choice is exactly where the key goes if its owner dies."""
    ring = HashRing([f"n{i}" for i in range(10)], vnodes=VNODES)
    for key in SAMPLE[:50]:
        first, second, third = ring.get_n(key, 3)
        ring.remove(first)
        assert ring.get_n(key, 2) == [second, third]
        ring.add(first)


def test_get_n_skips_zero_weight_nodes() -> None:
    ring = HashRing({"a": 1, "b": 0, "c": 1}, vnodes=VNODES)
    assert sorted(ring.get_n("user-1", 5)) == ["a", "c"]


# -- weights ---------------------------------------------------------------


def test_zero_weight_member_owns_no_keys() -> None:
    ring = HashRing({"a": 1, "b": 1, "idle": 0}, vnodes=VNODES)
    assert "idle" in ring
    assert "idle" not in owners(ring, SAMPLE)
    assert set(ring.statistics().shares) == {"a", "b"}


def test_weights_scale_the_share_of_the_key_space() -> None:
    ring = HashRing({"small": 1, "big": 3, "mid": 2}, vnodes=512)
    shares = ring.statistics().shares
    assert shares["big"] / shares["small"] == pytest.approx(3, rel=0.15)
    assert shares["mid"] / shares["small"] == pytest.approx(2, rel=0.15)


# -- statistics and arcs ---------------------------------------------------


@SETTINGS
@given(members=members)
def test_arcs_tile_the_hash_space_in_order(members: set[str]) -> None:
    ring = HashRing(members, vnodes=VNODES)
    arcs = list(ring.arcs())
    assert arcs[0][0] == 0
    assert arcs[-1][1] == HASH_SPACE
    for (_, end, owner), (start, _, next_owner) in pairwise(arcs):
        assert end == start
        assert owner != next_owner
    assert all(start < end and owner in members for start, end, owner in arcs)
    starts = [start for start, _, _ in arcs]
    for key in SAMPLE[:50]:
        _, _, owner = arcs[bisect_left(starts, hash_key(key) + 1) - 1]
        assert ring.get(key) == owner


def test_statistics_shares_sum_to_one_and_compare_with_the_mean() -> None:
    ring = HashRing([f"n{i}" for i in range(10)], vnodes=256)
    exact = ring.statistics()
    assert sum(exact.shares.values()) == pytest.approx(1.0)
    assert exact.min_over_mean < 1 < exact.max_over_mean
    assert exact.points == 2560
    sampled = ring.statistics(SAMPLE)
    assert sum(sampled.shares.values()) == pytest.approx(1.0)
    counts = Counter(owners(ring, SAMPLE))
    assert sampled.shares == {node: counts[node] / len(SAMPLE) for node in ring.nodes}


def test_default_vnodes_keep_a_small_ring_even() -> None:
    ring = HashRing([f"node-{i}" for i in range(10)])
    assert ring.statistics().max_over_mean < 1.05


# -- bounded loads ---------------------------------------------------------


@SETTINGS
@given(
    members=members,
    stream=st.lists(st.text(max_size=6), min_size=1, max_size=200),
    factor=st.sampled_from([1.0, 1.1, 1.25, 2.0]),
)
def test_bounded_loads_never_exceed_the_cap(
    members: set[str], stream: list[str], factor: float
) -> None:
    ring = HashRing(members, vnodes=VNODES)
    loads: Counter[str] = Counter()
    for placed, key in enumerate(stream, start=1):
        node = ring.get_bounded(key, loads, balance_factor=factor)
        loads[node] += 1
        assert loads[node] <= math.ceil(factor * placed / len(members) - 1e-9)


def test_bounded_loads_keep_the_owner_while_it_has_room() -> None:
    ring = HashRing([f"n{i}" for i in range(5)], vnodes=VNODES)
    for key in SAMPLE[:50]:
        assert ring.get_bounded(key, {}) == ring.get(key)


def test_bounded_loads_skip_a_full_owner_to_the_next_clockwise() -> None:
    ring = HashRing([f"n{i}" for i in range(5)], vnodes=VNODES)
    owner, second = ring.get_n("hot", 2)
    loads = {owner: 10, second: 0}  # cap = ceil(1.25 * 11 / 5) = 3
    assert ring.get_bounded("hot", loads) == second


def test_bounded_loads_respect_weights() -> None:
    ring = HashRing({"small": 1, "big": 3}, vnodes=VNODES)
    loads: Counter[str] = Counter()
    for key in SAMPLE:
        loads[ring.get_bounded(key, loads, balance_factor=1.0)] += 1
    assert loads == {"small": 100, "big": 300}
