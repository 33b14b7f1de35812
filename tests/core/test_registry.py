"""The registry in-process: write path over a store that can fail, and TTL
expiry, reaping and the brake driven by a manual clock (no sleeping)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from waypost.config import AgentConfig
from waypost.core.changes import (
    Entry,
    KVPut,
    Plan,
    RegisterNode,
    RegisterService,
)
from waypost.core.model import Check, CheckDefinition, HealthStatus, Node, Service
from waypost.exceptions import StoreUnavailable
from waypost.registry import Registry
from waypost.store.memory import MemoryStore
from waypost.testing import ManualClock

NODE = "n1"


class FlakyStore(MemoryStore):
    """A memory store whose commits fail while `failing` is set: like a disk
    that is full, nothing is applied and the caller gets a 503."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    async def commit(self, plan: Plan) -> Entry:
        await asyncio.sleep(0)  # a real store answers later, not inline
        if self.failing:
            raise StoreUnavailable("could not persist the change: disk full")
        return self.commit_now(plan)


def registry(
    clock: ManualClock, store: MemoryStore | None = None, **config: object
) -> Registry:
    settings = AgentConfig(node=NODE, dev=True, **config)  # type: ignore[arg-type]
    return Registry(settings, store or MemoryStore(), clock=clock)


async def with_node(reg: Registry) -> Registry:
    await reg.apply(RegisterNode(node=Node(name=NODE, address="127.0.0.1")))
    return reg


def ttl_instance(
    sid: str, *, ttl: float = 10.0, reap_after: float | None = None
) -> RegisterService:
    return RegisterService(
        service=Service(node=NODE, service_id=sid, name="web"),
        checks=[
            Check(
                node=NODE,
                check_id=f"service:{sid}",
                service_id=sid,
                status=HealthStatus.PASSING,
                definition=CheckDefinition(
                    ttl=ttl, deregister_critical_service_after=reap_after
                ),
            )
        ],
    )


def status(reg: Registry, sid: str) -> HealthStatus | None:
    check = reg.catalog.get_check(NODE, f"service:{sid}")
    return None if check is None else check.status


async def tick(reg: Registry, clock: ManualClock, seconds: float) -> None:
    """Advance the clock and run what is due, as the agent's timer does."""
    clock.advance(seconds)
    reg.run_due()
    await reg.drain()


# ---------------------------------------------------------------- store faults


async def test_a_failed_commit_applies_nothing_and_writes_resume_after() -> None:
    store = FlakyStore()
    reg = await with_node(registry(ManualClock(), store))
    await reg.apply(KVPut(key="k", value=b"1"))
    before = (reg.catalog.index, reg.catalog.kv_get("k"))
    woken: list[int] = []
    reg.watchers.add([("kv", "k")], lambda: woken.append(1))

    store.failing = True
    with pytest.raises(StoreUnavailable):
        await reg.apply(KVPut(key="k", value=b"2"))
    with pytest.raises(StoreUnavailable):
        await reg.apply(ttl_instance("s1"))
    assert (reg.catalog.index, reg.catalog.kv_get("k")) == before
    assert reg.catalog.service_instances("web") == []
    assert woken == []

    store.failing = False
    applied = await reg.apply(KVPut(key="k", value=b"3"))
    assert applied.index == before[0] + 1
    entry = reg.catalog.kv_get("k")
    assert entry is not None and entry.value == b"3"
    assert woken == [1]


async def test_every_accepted_change_takes_exactly_one_index() -> None:
    reg = await with_node(registry(ManualClock()))
    start = reg.catalog.index
    applied = [await reg.apply(ttl_instance(f"s{i}")) for i in range(5)]
    assert [a.index for a in applied] == list(range(start + 1, start + 6))
    # The same registration again writes nothing and takes no index.
    again = await reg.apply(ttl_instance("s0"))
    assert again.index is None and reg.catalog.index == start + 5


async def test_a_failed_cas_answers_false_and_takes_no_index() -> None:
    reg = await with_node(registry(ManualClock()))
    index = reg.catalog.index
    applied = await reg.apply(KVPut(key="k", value=b"1", cas=7))
    assert not applied.ok and applied.index is None
    assert reg.catalog.index == index


# ---------------------------------------------------------------- the clock


async def test_ttl_expires_at_its_deadline_and_a_heartbeat_moves_it() -> None:
    clock = ManualClock()
    reg = await with_node(registry(clock))
    await reg.apply(ttl_instance("s1", ttl=10.0))
    await tick(reg, clock, 9.0)
    await reg.update_check(NODE, "service:s1", HealthStatus.PASSING, "", heartbeat=True)
    index = reg.catalog.index
    await tick(reg, clock, 9.9)  # 18.9 s in: 9.9 s after the heartbeat
    assert status(reg, "s1") is HealthStatus.PASSING
    assert reg.catalog.index == index  # heartbeats are not writes
    await tick(reg, clock, 0.2)
    assert status(reg, "s1") is HealthStatus.CRITICAL
    check = reg.catalog.get_check(NODE, "service:s1")
    assert check is not None and check.output == "TTL expired"
    assert reg.catalog.index == index + 1


async def test_a_critical_instance_is_reaped_after_its_deadline() -> None:
    clock = ManualClock()
    reg = await with_node(registry(clock))
    await reg.apply(ttl_instance("s1", ttl=5.0, reap_after=3.0))
    await tick(reg, clock, 5.1)
    assert status(reg, "s1") is HealthStatus.CRITICAL
    await tick(reg, clock, 2.8)
    assert reg.catalog.service_instances("web") != []
    await tick(reg, clock, 0.3)
    assert reg.catalog.service_instances("web") == []


async def test_the_brake_holds_expiry_when_many_go_quiet_at_once() -> None:
    clock = ManualClock()
    reg = await with_node(registry(clock))
    for i in range(40):
        await reg.apply(ttl_instance(f"s{i}", ttl=10.0))
    # The registry loses its network: nobody's heartbeat arrives.
    for _ in range(150):
        await tick(reg, clock, 0.1)
    assert reg.brake.engaged
    assert all(status(reg, f"s{i}") is HealthStatus.PASSING for i in range(40))
    # Heartbeats come back: the brake releases and nobody was evicted.
    for _ in range(30):
        for i in range(40):
            await reg.update_check(
                NODE, f"service:s{i}", HealthStatus.PASSING, "", heartbeat=True
            )
        await tick(reg, clock, 0.1)
    assert not reg.brake.engaged
    assert all(status(reg, f"s{i}") is HealthStatus.PASSING for i in range(40))


async def test_one_dead_instance_still_expires_under_the_brake_threshold() -> None:
    clock = ManualClock()
    reg = await with_node(registry(clock))
    for i in range(40):
        await reg.apply(ttl_instance(f"s{i}", ttl=10.0))
    for _ in range(110):
        for i in range(1, 40):
            await reg.update_check(
                NODE, f"service:s{i}", HealthStatus.PASSING, "", heartbeat=True
            )
        await tick(reg, clock, 0.1)
    assert not reg.brake.engaged
    assert status(reg, "s0") is HealthStatus.CRITICAL
    assert all(status(reg, f"s{i}") is HealthStatus.PASSING for i in range(1, 40))


async def test_hysteresis_applies_to_every_source_in_one_place() -> None:
    clock = ManualClock()
    reg = await with_node(registry(clock))
    instance = ttl_instance("s1")
    check = msgspec.structs.replace(
        instance.checks[0],
        definition=CheckDefinition(ttl=10.0, failures_before_critical=2),
    )
    await reg.apply(msgspec.structs.replace(instance, checks=[check]))
    # A new check reports its first result at once; after a success, it
    # takes two failures in a row, from the runner (report_check) and from
    # HTTP (update_check) alike.
    await reg.update_check(NODE, "service:s1", HealthStatus.PASSING, "up")
    reg.report_check(NODE, "service:s1", HealthStatus.CRITICAL, "down")
    await reg.drain()
    assert status(reg, "s1") is HealthStatus.PASSING
    await reg.update_check(NODE, "service:s1", HealthStatus.CRITICAL, "down")
    assert status(reg, "s1") is HealthStatus.CRITICAL
