"""Rows from elsewhere: derived topics wake what the plan would have woken; a
relist's difference turns one catalog into the other; ownership of deadlines."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings, strategies as st

from waypost.core.brake import Brake
from waypost.core.catalog import Catalog, kv_topic
from waypost.core.changes import (
    CatalogRegister,
    Change,
    DeregisterCheck,
    DeregisterNode,
    DeregisterService,
    Entry,
    KVDelete,
    KVPut,
    RegisterCheck,
    RegisterNode,
    RegisterService,
    SetMaintenance,
    UpdateCheck,
    stamp,
)
from waypost.core.model import Check, CheckDefinition, HealthStatus, Node, Service
from waypost.core.planner import plan
from waypost.core.replica import current_rows, diff, topics_of
from waypost.exceptions import InvalidRequest, NotFound

NODES = ["n1", "n2"]
SERVICES = ["web", "db"]


def _check(node: str, sid: str, ttl: float | None = 10.0) -> Check:
    return Check(
        node=node,
        check_id=f"service:{sid}",
        service_id=sid,
        definition=CheckDefinition(ttl=ttl),
    )


changes = st.one_of(
    st.builds(
        lambda n: RegisterNode(node=Node(name=n, address="10.0.0.1")),
        st.sampled_from(NODES),
    ),
    st.builds(
        lambda n, a: RegisterNode(node=Node(name=n, address=a)),
        st.sampled_from(NODES),
        st.sampled_from(["10.0.0.1", "10.0.0.2"]),
    ),
    st.builds(
        lambda n, sid, name, with_check: RegisterService(
            service=Service(node=n, service_id=sid, name=name, port=80),
            checks=[_check(n, sid)] if with_check else [],
        ),
        st.sampled_from(NODES),
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(SERVICES),
        st.booleans(),
    ),
    st.builds(
        lambda n, sid: DeregisterService(node=n, service_id=sid, missing_ok=True),
        st.sampled_from(NODES),
        st.sampled_from(["s1", "s2", "s3"]),
    ),
    st.builds(
        lambda n, status: UpdateCheck(node=n, check_id="node-check", status=status),
        st.sampled_from(NODES),
        st.sampled_from(list(HealthStatus)),
    ),
    st.builds(
        lambda n, sid, status: UpdateCheck(
            node=n, check_id=f"service:{sid}", status=status
        ),
        st.sampled_from(NODES),
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(list(HealthStatus)),
    ),
    st.builds(
        lambda n: RegisterCheck(check=Check(node=n, check_id="node-check")),
        st.sampled_from(NODES),
    ),
    st.builds(
        lambda n: DeregisterCheck(node=n, check_id="node-check", missing_ok=True),
        st.sampled_from(NODES),
    ),
    st.builds(
        lambda n, on: SetMaintenance(node=n, enable=on),
        st.sampled_from(NODES),
        st.booleans(),
    ),
    st.builds(
        lambda n: DeregisterNode(node=n, missing_ok=True), st.sampled_from(NODES)
    ),
    st.builds(
        lambda n, sid: CatalogRegister(
            node=Node(name=n, address="10.0.0.3"),
            service=Service(node=n, service_id=sid, name="ext", port=1),
            checks=[Check(node=n, check_id=f"ext:{sid}", service_id=sid)],
        ),
        st.sampled_from(NODES),
        st.sampled_from(["s1", "x1"]),
    ),
    st.builds(
        lambda k, v: KVPut(key=k, value=v),
        st.sampled_from(["a", "a/b", "a/c", "b"]),
        st.binary(max_size=3),
    ),
    st.builds(lambda k: KVDelete(key=k), st.sampled_from(["a", "a/b", "a/c", "b"])),
)


def _plan(catalog: Catalog, change: Change, index: int) -> Entry | None:
    try:
        planned = plan(catalog, change)
    except (InvalidRequest, NotFound):
        return None
    if planned.is_noop:
        return None
    return stamp(planned, index)


@settings(max_examples=300, deadline=None)
@given(st.lists(changes, min_size=1, max_size=25))
def test_derived_topics_wake_everything_the_plan_names(batch: list[Change]) -> None:
    """An agent that only sees rows wakes every waiter the writer woke."""
    catalog = Catalog()
    for index, change in enumerate(batch, start=1):
        entry = _plan(catalog, change, index)
        if entry is None:
            continue
        derived = topics_of(catalog, entry.rows)
        assert entry.topics <= derived, (change, entry.topics - derived)
        catalog.apply(entry, now=0.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(changes, min_size=0, max_size=20),
    st.lists(changes, min_size=0, max_size=20),
)
def test_a_relist_difference_turns_one_state_into_the_other(
    first: list[Change], second: list[Change]
) -> None:
    """A stale replica plus `diff` equals a replica that saw every change."""
    seen_all = Catalog()
    index = 0
    for change in first:
        index += 1
        entry = _plan(seen_all, change, index)
        if entry is not None:
            seen_all.apply(entry, now=0.0)
    stale = Catalog()
    for table, key, value in _rows(seen_all):
        stale.apply(Entry(index=1, rows=[(table, key, value)], topics=set()), now=0.0)
    for change in second:
        index += 1
        entry = _plan(seen_all, change, index)
        if entry is not None:
            seen_all.apply(entry, now=0.0)
    changed = diff(stale, _rows(seen_all))
    stale.apply(Entry(index=index + 1, rows=changed, topics=set()), now=0.0)
    assert current_rows(stale) == current_rows(seen_all)
    assert diff(stale, _rows(seen_all)) == []


def _rows(catalog: Catalog) -> list[tuple[str, str, msgspec.Struct | None]]:
    return [
        (table, key, value)  # type: ignore[misc]
        for (table, key), value in current_rows(catalog).items()
    ]


def test_a_kv_delete_from_elsewhere_wakes_the_key_and_its_prefixes() -> None:
    catalog = Catalog()
    entry = _plan(catalog, KVPut(key="a/b", value=b"1"), 1)
    assert entry is not None
    catalog.apply(entry, now=0.0)
    assert topics_of(catalog, [("kv", "a/b", None)]) == {kv_topic("a/b")}


# ---------------------------------------------------------------- ownership


class Owner:
    """Owns its own node's checks and those of node "orphan"."""

    def __init__(self, node: str, extra: set[str]) -> None:
        self.node = node
        self.extra = extra

    def owns(self, node: str, check_id: str) -> bool:
        return node == self.node or node in self.extra

    def is_local(self, node: str) -> bool:
        return node == self.node


def _register(catalog: Catalog, node: str, sid: str, *, now: float) -> None:
    index = catalog.index + 1
    for change in (
        RegisterNode(node=Node(name=node)),
        RegisterService(
            service=Service(node=node, service_id=sid, name="web"),
            checks=[
                msgspec.structs.replace(
                    _check(node, sid, ttl=5.0),
                    definition=CheckDefinition(
                        ttl=5.0, deregister_critical_service_after=1.0
                    ),
                    status=HealthStatus.PASSING,
                )
            ],
        ),
    ):
        entry = _plan(catalog, change, index)
        if entry is not None:
            catalog.apply(entry, now=now)
            index += 1


def test_only_owned_checks_expire_and_a_takeover_gets_a_full_ttl() -> None:
    catalog = Catalog()
    owner = Owner("me", set())
    catalog.ownership = owner
    _register(catalog, "me", "a", now=0.0)
    _register(catalog, "other", "b", now=0.0)
    due = catalog.due(10.0)
    assert [(c.node, c.check_id) for c in due] == [("me", "service:a")]  # type: ignore[attr-defined]
    # "other" died: its checks are ours now, with a full TTL from the takeover.
    owner.extra.add("other")
    catalog.reassign(20.0)
    assert catalog.due(24.0) == []
    assert [c.node for c in catalog.due(25.0)] == ["other"]  # type: ignore[attr-defined]


def test_the_brake_counts_only_local_checks() -> None:
    catalog = Catalog()
    catalog.ownership = Owner("me", {"other"})
    for i in range(20):
        _register(catalog, "other", f"s{i}", now=0.0)
    _register(catalog, "me", "mine", now=0.0)
    brake = Brake()
    census = catalog.ttl_census(4.5, brake)
    assert (census.live, census.quiet) == (1, 1)


def test_a_hold_suspends_expiry_until_released() -> None:
    catalog = Catalog()
    _register(catalog, "me", "a", now=0.0)
    brake = Brake()
    brake.hold(1.0, "the store is unavailable")
    assert catalog.due(10.0, brake) == []
    assert brake.state(10.0).engaged
    assert brake.release_hold(11.0)
    catalog.grant_grace(11.0)
    assert catalog.due(15.0, brake) == []
    assert len(catalog.due(16.0, brake)) == 1
    assert any("engaged" in n for n in brake.drain_notices())
