"""Sessions in-process on a manual clock: TTL expiry at 2 x TTL, renew,
lock-delay after a session ends (not after a release), invalidation."""

from __future__ import annotations

import pytest

from tests.core.test_registry import NODE, registry, tick, ttl_instance, with_node
from waypost.core.changes import (
    DeregisterCheck,
    DeregisterNode,
    DeregisterService,
    UpdateCheck,
)
from waypost.core.model import HealthStatus
from waypost.core.sessions import (
    CreateSession,
    DestroySession,
    KVLock,
    KVUnlock,
    Session,
)
from waypost.exceptions import InvalidRequest
from waypost.registry import Registry
from waypost.testing import ManualClock


async def _lock(reg: Registry, key: str, session: str) -> bool:
    change = KVLock(key=key, value=b"v", session=session, now=reg.now())
    return (await reg.apply(change)).ok


def _holder(reg: Registry, key: str) -> str | None:
    entry = reg.catalog.kv_get(key)
    return None if entry is None else entry.session


async def test_a_ttl_session_ends_after_twice_its_ttl_and_renew_starts_over() -> None:
    clock = ManualClock()
    reg = await with_node(registry(clock))
    await reg.apply(CreateSession(session=Session(id="s", node=NODE, ttl="10s")))
    assert await _lock(reg, "k", "s")

    await tick(reg, clock, 15)
    assert reg.renew_session("s") is not None  # at 15 s: until 35 s
    await tick(reg, clock, 19)
    assert reg.catalog.sessions.get("s") is not None
    await tick(reg, clock, 2)
    assert reg.catalog.sessions.get("s") is None
    assert _holder(reg, "k") == ""
    assert reg.renew_session("s") is None


async def test_lock_delay_follows_an_ended_session_not_a_release() -> None:
    clock = ManualClock()
    reg = await with_node(registry(clock))
    for sid in ("a", "b"):
        await reg.apply(
            CreateSession(session=Session(id=sid, node=NODE, lock_delay=5.0))
        )
    assert await _lock(reg, "k", "a")
    assert not await _lock(reg, "k", "b")
    unlock = KVUnlock(key="k", value=b"", session="a")
    assert (await reg.apply(unlock)).ok
    assert await _lock(reg, "k", "b")  # a release leaves no delay

    await reg.apply(DestroySession(session_id="b"))
    entry = reg.catalog.kv_get("k")
    assert entry is not None and (entry.session, entry.lock_index) == ("", 2)
    assert not await _lock(reg, "k", "a")
    clock.advance(4.9)
    assert not await _lock(reg, "k", "a")
    clock.advance(0.2)
    assert await _lock(reg, "k", "a")


async def test_a_critical_check_ends_its_sessions_and_deletes_their_keys() -> None:
    clock = ManualClock()
    reg = await with_node(registry(clock))
    await reg.apply(ttl_instance("web1"))
    session = Session(
        id="s", node=NODE, behavior="delete", checks=("service:web1",), node_checks=()
    )
    await reg.apply(CreateSession(session=session))
    assert await _lock(reg, "k", "s")
    await reg.apply(
        UpdateCheck(node=NODE, check_id="service:web1", status=HealthStatus.CRITICAL)
    )
    assert reg.catalog.sessions.get("s") is None
    assert reg.catalog.kv_get("k") is None
    with pytest.raises(InvalidRequest, match="is in critical state"):
        await reg.apply(
            CreateSession(session=Session(id="t", node=NODE, checks=session.checks))
        )


async def test_deregistering_the_node_ends_its_sessions() -> None:
    reg = await with_node(registry(ManualClock()))
    await reg.apply(CreateSession(session=Session(id="s", node=NODE)))
    assert await _lock(reg, "k", "s")
    await reg.apply(DeregisterNode(node=NODE))
    assert len(reg.catalog.sessions) == 0
    assert _holder(reg, "k") == ""


async def test_deregistering_a_check_or_its_service_ends_its_sessions() -> None:
    reg = await with_node(registry(ManualClock()))
    await reg.apply(ttl_instance("web1"))
    await reg.apply(ttl_instance("web2"))
    for sid, check in (("s1", "service:web1"), ("s2", "service:web2")):
        session = Session(id=sid, node=NODE, checks=(check,), node_checks=())
        await reg.apply(CreateSession(session=session))
        assert await _lock(reg, f"k-{sid}", sid)
    await reg.apply(DeregisterCheck(node=NODE, check_id="service:web1"))
    assert reg.catalog.sessions.get("s1") is None
    assert _holder(reg, "k-s1") == ""
    assert reg.catalog.sessions.get("s2") is not None
    await reg.apply(DeregisterService(node=NODE, service_id="web2"))
    assert len(reg.catalog.sessions) == 0
    assert _holder(reg, "k-s2") == ""
