"""Catalog: one index, all-or-nothing changes, TTL expiry with an injected now."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from waypost.core.catalog import (
    TTL_EXPIRED,
    Catalog,
    kv_prefix_topic,
    kv_topic,
    service_topic,
)
from waypost.core.model import Check, CheckDefinition, HealthStatus, Node, Service
from waypost.exceptions import InvalidRequest, NotFound

from .support import Driven

NODE = "n1"


def make_catalog() -> Driven:
    catalog = Driven()
    catalog.upsert_node(Node(name=NODE, address="127.0.0.1"))
    return catalog


def web(
    sid: str = "web-1", name: str = "web", tags: list[str] | None = None
) -> Service:
    return Service(node=NODE, service_id=sid, name=name, tags=tags or [], port=80)


def ttl_check(sid: str = "web-1", ttl: float = 10.0, **extra: object) -> Check:
    return Check(
        node=NODE,
        check_id=f"service:{sid}",
        service_id=sid,
        type="ttl",
        definition=CheckDefinition(ttl=ttl, **extra),  # type: ignore[arg-type]
    )


def test_every_change_gets_the_next_index() -> None:
    catalog = make_catalog()
    first = catalog.register_service(web("a"), [], now=0)
    second = catalog.register_service(web("b"), [], now=0)
    assert second.index == first.index + 1
    assert catalog.query_index([service_topic("web")]) == second.index


def test_reregistering_the_same_instance_changes_nothing() -> None:
    catalog = make_catalog()
    catalog.register_service(web(), [ttl_check()], now=0)
    before = catalog.index
    again = catalog.register_service(web(), [ttl_check()], now=5)
    assert again is None
    assert catalog.index == before


def test_rejected_change_changes_nothing() -> None:
    catalog = make_catalog()
    before = catalog.index
    duplicate = [ttl_check(), ttl_check()]
    with pytest.raises(InvalidRequest):
        catalog.register_service(web(), duplicate, now=0)
    assert catalog.index == before
    assert catalog.service_instances("web") == []


def test_service_on_unknown_node_is_not_found() -> None:
    catalog = make_catalog()
    with pytest.raises(NotFound):
        catalog.register_service(
            Service(node="nope", service_id="x", name="x"), [], now=0
        )


def test_ttl_check_turns_critical_after_deadline() -> None:
    catalog = make_catalog()
    catalog.register_service(web(), [ttl_check(ttl=10.0)], now=100.0)
    catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "", now=100.0)
    assert catalog.expire(now=109.9) == []
    commits = catalog.expire(now=110.1)
    assert len(commits) == 1
    check = catalog.get_check(NODE, "service:web-1")
    assert check is not None
    assert check.status is HealthStatus.CRITICAL
    assert check.output == TTL_EXPIRED


def test_heartbeat_moves_the_deadline_without_a_write() -> None:
    catalog = make_catalog()
    catalog.register_service(web(), [ttl_check(ttl=10.0)], now=0.0)
    catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "", now=0.0)
    index = catalog.index
    assert (
        catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "", now=8.0)
        is None
    )
    assert catalog.index == index
    assert catalog.expire(now=15.0) == []
    assert len(catalog.expire(now=18.1)) == 1


def test_output_only_change_keeps_the_index() -> None:
    catalog = make_catalog()
    catalog.register_service(web(), [ttl_check()], now=0.0)
    catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "a", now=0.0)
    index, generation = catalog.index, catalog.output_generation
    assert (
        catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "b", now=1.0)
        is None
    )
    assert catalog.index == index
    assert catalog.output_generation == generation + 1
    check = catalog.get_check(NODE, "service:web-1")
    assert check is not None and check.output == "b"


def test_critical_service_is_reaped_after_deregister_critical_after() -> None:
    catalog = make_catalog()
    check = ttl_check(ttl=5.0, deregister_critical_service_after=3.0)
    catalog.register_service(web(), [check], now=0.0)
    catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "", now=0.0)
    catalog.expire(now=5.1)  # TTL expired: critical from 5.1
    assert catalog.service_instances("web") != []
    catalog.expire(now=8.0)
    assert catalog.service_instances("web") != []
    catalog.expire(now=8.2)
    assert catalog.service_instances("web") == []


def test_check_registered_critical_counts_toward_the_reap() -> None:
    catalog = make_catalog()
    check = ttl_check(ttl=5.0, deregister_critical_service_after=3.0)
    catalog.register_service(web(), [check], now=0.0)
    catalog.expire(now=2.9)
    assert catalog.service_instances("web") != []
    catalog.expire(now=3.1)
    assert catalog.service_instances("web") == []


def test_passing_again_cancels_the_reap() -> None:
    catalog = make_catalog()
    check = ttl_check(ttl=5.0, deregister_critical_service_after=3.0)
    catalog.register_service(web(), [check], now=0.0)
    catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "", now=0.0)
    catalog.expire(now=5.1)
    catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "", now=6.0)
    catalog.expire(now=9.0)
    assert catalog.service_instances("web") != []


def test_change_to_one_service_does_not_touch_another_topic() -> None:
    catalog = make_catalog()
    catalog.register_service(web("a", name="alpha"), [], now=0)
    alpha_index = catalog.topic_index(service_topic("alpha"))
    commit = catalog.register_service(web("b", name="beta"), [], now=0)
    assert service_topic("alpha") not in commit.topics
    assert catalog.topic_index(service_topic("alpha")) == alpha_index


def test_node_check_change_wakes_every_service_on_the_node() -> None:
    catalog = make_catalog()
    catalog.register_service(web("a", name="alpha"), [], now=0)
    node_check = Check(node=NODE, check_id="disk", status=HealthStatus.PASSING)
    commit = catalog.register_check(node_check, now=0)
    assert service_topic("alpha") in commit.topics


def test_kv_cas_only_applies_on_matching_modify_index() -> None:
    catalog = Driven()
    assert catalog.kv_put("k", b"1", cas=5) is None
    created = catalog.kv_put("k", b"1", cas=0)
    assert created is not None
    assert catalog.kv_put("k", b"2", cas=0) is None
    assert catalog.kv_put("k", b"2", cas=created.index) is not None
    entry = catalog.kv_get("k")
    assert entry is not None and entry.value == b"2"
    assert entry.create_index == created.index < entry.modify_index


def test_kv_prefix_index_sees_deletes() -> None:
    catalog = Driven()
    catalog.kv_put("app/a", b"1")
    before = catalog.query_index([kv_prefix_topic("app/")])
    deleted = catalog.kv_delete("app/a")
    assert deleted is not None
    assert catalog.query_index([kv_prefix_topic("app/")]) == deleted.index > before
    assert catalog.query_index([kv_topic("app/a")]) == deleted.index


def test_index_never_goes_backwards_across_restore() -> None:
    catalog = make_catalog()
    catalog.register_service(web(), [], now=0)
    gone = catalog.deregister_service(NODE, "web-1")
    rows = [(t, k, v) for t, k, v in _live_rows(catalog)]
    restored = Catalog()
    restored.restore(rows, catalog.index, now=0)
    assert restored.query_index([service_topic("web")]) >= gone.index


def _live_rows(catalog: Catalog) -> list[tuple[str, str, object]]:
    rows: list[tuple[str, str, object]] = [
        ("nodes", n, v) for n, v in catalog.nodes.items()
    ]
    for name in catalog.service_names():
        rows += [("services", s.service_id, s) for s in catalog.service_instances(name)]
    rows += [("checks", c.check_id, c) for c in catalog.all_checks()]
    return rows


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["register", "deregister", "pass", "fail", "put", "delete"]
            ),
            st.integers(min_value=0, max_value=4),
        ),
        max_size=40,
    )
)
def test_index_only_grows_and_create_never_exceeds_modify(
    ops: list[tuple[str, int]],
) -> None:
    catalog = make_catalog()
    last = catalog.index
    for op, n in ops:
        sid = f"s{n}"
        try:
            if op == "register":
                catalog.register_service(web(sid), [ttl_check(sid)], now=0)
            elif op == "deregister":
                catalog.deregister_service(NODE, sid)
            elif op in ("pass", "fail"):
                status = HealthStatus.PASSING if op == "pass" else HealthStatus.CRITICAL
                catalog.update_check(NODE, f"service:{sid}", status, "", now=0)
            elif op == "put":
                catalog.kv_put(f"k{n}", b"v")
            else:
                catalog.kv_delete(f"k{n}")
        except NotFound:
            pass
        assert catalog.index >= last
        last = catalog.index
        for check in catalog.all_checks():
            assert check.create_index <= check.modify_index <= catalog.index
        for name in catalog.service_names():
            for service in catalog.service_instances(name):
                assert service.create_index <= service.modify_index <= catalog.index


def test_ttl_check_reregistered_as_http_no_longer_expires() -> None:
    catalog = make_catalog()
    catalog.register_service(web(), [ttl_check(ttl=5.0)], now=0.0)
    catalog.update_check(NODE, "service:web-1", HealthStatus.PASSING, "", now=0.0)
    http = Check(
        node=NODE,
        check_id="service:web-1",
        service_id="web-1",
        status=HealthStatus.PASSING,
        type="http",
        definition=CheckDefinition(http="http://127.0.0.1:1/", interval=10.0),
    )
    catalog.register_service(web(), [http], now=1.0)
    assert catalog.expire(now=100.0) == []
    check = catalog.get_check(NODE, "service:web-1")
    assert check is not None and check.status is HealthStatus.PASSING
