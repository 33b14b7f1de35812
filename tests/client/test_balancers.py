"""Balancers over instance sets: fairness, weights, draining, stickiness.

Pure: instances are built by hand (the balancers do no I/O); one test at the
end feeds a Weighted balancer from a real agent's watcher.
"""

from __future__ import annotations

import math
import random
import threading
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from tests.client.conftest import Twin
from waypost.client import (
    Instance,
    LeastInFlight,
    NoInstanceAvailable,
    Random,
    RingBalancer,
    RoundRobin,
    Weighted,
)
from waypost.core.model import HealthStatus, Weights


def instance(
    name: str,
    *,
    weight: int | None = None,
    meta_weight: str | None = None,
    status: HealthStatus = HealthStatus.PASSING,
) -> Instance:
    meta = {"weight": meta_weight} if meta_weight is not None else {}
    return Instance(
        service_id=name,
        name="api",
        address="10.0.0.1",
        port=80,
        node="n1",
        meta=meta,
        weights=Weights(passing=weight or 1, warning=1),
        status=status,
    )


def draws(balancer: object, n: int, key: str | None = None) -> Counter[str]:
    pick = balancer.pick  # type: ignore[attr-defined]
    return Counter(pick(key).service_id for _ in range(n))


def test_weight_comes_from_meta_then_weights_and_is_zero_when_critical() -> None:
    assert instance("a").weight == 1.0
    assert instance("a", weight=5).weight == 5.0
    assert instance("a", weight=5, meta_weight="2.5").weight == 2.5
    assert instance("a", weight=5, meta_weight="0").weight == 0.0
    assert instance("a", meta_weight="junk").weight == 1.0
    assert instance("a", weight=5, status=HealthStatus.WARNING).weight == 1.0
    assert instance("a", weight=5, status=HealthStatus.CRITICAL).weight == 0.0


def test_round_robin_takes_each_instance_in_turn() -> None:
    balancer = RoundRobin()
    balancer.update([instance("c"), instance("a"), instance("b")])
    assert [balancer.pick().service_id for _ in range(6)] == list("abcabc")


@pytest.mark.parametrize("cls", [RoundRobin, Random, Weighted, LeastInFlight])
def test_weight_zero_drains_an_instance_from_every_balancer(cls: type) -> None:
    balancer = cls()
    balancer.update([instance("a"), instance("drained", meta_weight="0")])
    assert set(draws(balancer, 200)) == {"a"}


@pytest.mark.parametrize(
    "balancer", [RoundRobin(), Random(), Weighted(), LeastInFlight(), RingBalancer()]
)
def test_an_empty_set_raises_no_instance_available_naming_the_service(
    balancer: object,
) -> None:
    balancer.update([instance("x", meta_weight="0")])  # type: ignore[attr-defined]
    with pytest.raises(NoInstanceAvailable) as caught:
        balancer.pick("key")  # type: ignore[attr-defined]
    assert str(caught.value) == (
        "no instance of 'api' to pick: none has a positive weight (none is"
        " registered and passing, or all are drained)"
    )


def test_balancers_are_importable_from_waypost_and_list_instances_by_method() -> None:
    """`instances()` is a method on balancers as on watchers: one shape."""
    import waypost
    from waypost.client import balancers

    for name in balancers.__all__:
        if name != "CLIENT_VNODES":
            assert getattr(waypost, name) is getattr(balancers, name)
    balancer = waypost.RoundRobin()
    balancer.update([instance("b"), instance("a"), instance("d", meta_weight="0")])
    assert [i.service_id for i in balancer.instances()] == ["a", "b"]


def test_random_reaches_every_instance_about_evenly() -> None:
    balancer = Random(random.Random(1))
    balancer.update([instance(n) for n in "abcd"])
    counts = draws(balancer, 8000)
    assert all(1800 < counts[n] < 2200 for n in "abcd")


def test_weighted_shares_stay_within_statistical_bounds() -> None:
    """Each share is within 4 standard deviations of weight / total."""
    balancer = Weighted(random.Random(7))
    weights = {"a": 1, "b": 2, "c": 3, "d": 10}
    balancer.update([instance(n, weight=w) for n, w in weights.items()])
    n = 40_000
    counts = draws(balancer, n)
    total = sum(weights.values())
    for name, weight in weights.items():
        p = weight / total
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[name] - n * p) < 4 * sigma, (name, counts)


def test_least_in_flight_sends_new_work_to_the_idlest_instance() -> None:
    balancer = LeastInFlight()
    a, b = instance("a"), instance("b", weight=2)
    balancer.update([a, b])
    held = [balancer.pick() for _ in range(3)]
    # b has twice a's weight, so it takes two of the first three.
    assert Counter(i.service_id for i in held) == {"a": 1, "b": 2}
    for picked in held:
        if picked.service_id == "b":
            balancer.release(picked)
    assert balancer.in_flight(b) == 0
    with balancer.acquire() as chosen:
        assert chosen.service_id == "b"
        assert balancer.in_flight(b) == 1
    assert balancer.in_flight(b) == 0


def test_least_in_flight_counts_stay_exact_across_threads() -> None:
    balancer = LeastInFlight()
    balancer.update([instance(n) for n in "abc"])

    def work() -> None:
        for _ in range(500):
            with balancer.acquire():
                pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(balancer.in_flight(instance(n)) == 0 for n in "abc")


def test_ring_sends_a_key_to_the_same_instance_every_time_and_everywhere() -> None:
    members = [instance(f"api-{i}") for i in range(5)]
    one, other = RingBalancer(), RingBalancer()
    one.update(members)
    other.update(list(reversed(members)))
    for key in (f"user-{k}" for k in range(500)):
        assert one.pick(key) == one.pick(key) == other.pick(key)


def test_ring_needs_a_key() -> None:
    balancer = RingBalancer()
    balancer.update([instance("a")])
    with pytest.raises(ValueError, match="needs a key"):
        balancer.pick()


def test_ring_join_moves_about_one_nth_of_keys_and_only_to_the_newcomer() -> None:
    members = [instance(f"api-{i}") for i in range(9)]
    balancer = RingBalancer()
    balancer.update(members)
    keys = [f"user-{k}" for k in range(20_000)]
    before = {k: balancer.pick(k).service_id for k in keys}
    balancer.update([*members, instance("api-new")])
    after = {k: balancer.pick(k).service_id for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert all(after[k] == "api-new" for k in moved)
    assert 0.06 < len(moved) / len(keys) < 0.14  # 1/10, within vnode noise


def test_ring_leave_moves_only_the_leavers_keys() -> None:
    members = [instance(f"api-{i}") for i in range(10)]
    balancer = RingBalancer()
    balancer.update(members)
    keys = [f"user-{k}" for k in range(10_000)]
    before = {k: balancer.pick(k).service_id for k in keys}
    balancer.update(members[1:])
    after = {k: balancer.pick(k).service_id for k in keys}
    assert all(before[k] == "api-0" for k in keys if before[k] != after[k])


def test_ring_weight_zero_drains_and_weights_scale_shares() -> None:
    balancer = RingBalancer()
    balancer.update(
        [
            instance("heavy", weight=3),
            instance("light"),
            instance("off", meta_weight="0"),
        ]
    )
    counts = draws_ring(balancer, 20_000)
    assert "off" not in counts
    assert 2.4 < counts["heavy"] / counts["light"] < 3.6


def draws_ring(balancer: RingBalancer, n: int) -> Counter[str]:
    return Counter(balancer.pick(f"k{i}").service_id for i in range(n))


def test_bounded_ring_never_loads_an_instance_past_its_cap() -> None:
    balancer = RingBalancer(bounded=True, balance_factor=1.25)
    balancer.update([instance(f"api-{i}") for i in range(4)])
    held = [balancer.pick("the-same-hot-key") for _ in range(40)]
    loads = Counter(i.service_id for i in held)
    assert max(loads.values()) <= math.ceil(1.25 * 40 / 4)
    for picked in held:
        balancer.release(picked)
    # Released: the hot key goes back to its owner.
    assert balancer.pick("the-same-hot-key") == held[0]


@settings(max_examples=50, deadline=None)
@given(
    names=st.lists(
        st.text("abcdefgh", min_size=1, max_size=6), min_size=1, max_size=8, unique=True
    ),
    key=st.text(max_size=12),
)
def test_ring_always_picks_a_live_instance(names: list[str], key: str) -> None:
    balancer = RingBalancer(vnodes=16)
    balancer.update([instance(n) for n in names])
    assert balancer.pick(key).service_id in names


async def test_weighted_balancer_fed_by_a_watcher_follows_registered_weights(
    twin: Twin, unique: str
) -> None:
    await twin("register_service", unique, port=1, service_id="one", weight=1)
    await twin("register_service", unique, port=2, service_id="four", weight=4)
    await twin("register_service", unique, port=3, service_id="none", weight=0)
    balancer = Weighted(random.Random(3))
    async with twin.watch(unique, balancer=balancer) as watcher:
        await twin.wait_for(watcher, lambda s: len(s) == 3)
        counts = draws(watcher, 10_000)
        assert [i.service_id for i in watcher.instances()] == ["four", "none", "one"]
        assert [i.service_id for i in balancer.instances()] == ["four", "one"]
    assert "none" not in counts
    assert 3.4 < counts["four"] / counts["one"] < 4.7


async def test_a_watcher_with_nothing_to_pick_names_its_service(
    twin: Twin, unique: str
) -> None:
    async with twin.watch(unique) as watcher:
        await twin.wait_for(watcher, lambda s: s.index > 0)
        with pytest.raises(NoInstanceAvailable, match=f"no instance of '{unique}'"):
            watcher.pick()
