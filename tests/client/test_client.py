"""Every client method against a real agent, on both twins (sync, async)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import warnings

import pytest

from tests.client.conftest import Twin, free_port, open_twin
from tests.stores import STATUS_IS_ETCD
from waypost.client import (
    AsyncClient,
    Client,
    InvalidRequest,
    NotFound,
    RegistryConnectError,
    RegistryUnavailable,
    RoundRobin,
)
from waypost.client.model import InstanceSet
from waypost.core.model import HealthStatus
from waypost.exceptions import RegistryUnreachable
from waypost.testing import AgentProcess, wait_until


async def test_services_lists_a_registered_service_with_its_tags(
    twin: Twin, unique: str
) -> None:
    await twin("register_service", unique, port=80, tags=["blue", "v1"])
    services = await twin("services")
    assert sorted(services[unique]) == ["blue", "v1"]


async def test_instances_decode_address_port_tags_meta_and_weights(
    twin: Twin, unique: str
) -> None:
    service_id = await twin(
        "register_service",
        unique,
        port=8080,
        address="10.0.0.7",
        service_id=f"{unique}-a",
        tags=["v1"],
        meta={"zone": "a"},
        weight=3,
    )
    found = await twin("instances", unique)
    assert isinstance(found, InstanceSet) and found.index > 0
    (instance,) = found
    assert instance.service_id == service_id == f"{unique}-a"
    assert (instance.address, instance.port, instance.tags) == (
        "10.0.0.7",
        8080,
        ("v1",),
    )
    assert instance.meta == {"zone": "a", "weight": "3"}
    assert instance.weight == 3.0 and instance.endpoint == "10.0.0.7:8080"
    assert instance.node == "waypost-test" and instance.node_address == "127.0.0.1"


async def test_instances_without_address_use_the_node_address(
    twin: Twin, unique: str
) -> None:
    await twin("register_service", unique, port=81)
    (instance,) = await twin("instances", unique)
    assert instance.address == "127.0.0.1"


async def test_instances_passing_drops_a_critical_instance(
    twin: Twin, unique: str
) -> None:
    await twin("register_service", unique, port=1, service_id=f"{unique}-ok", ttl="1m")
    await twin("register_service", unique, port=2, service_id=f"{unique}-bad", ttl="1m")
    await twin("fail_check", f"service:{unique}-bad", "disk full")
    everyone = await twin("instances", unique)
    assert everyone.ids == [f"{unique}-bad", f"{unique}-ok"]
    statuses = {i.service_id: i.status for i in everyone}
    assert statuses[f"{unique}-bad"] is HealthStatus.CRITICAL
    passing = await twin("instances", unique, passing=True)
    assert passing.ids == [f"{unique}-ok"]


async def test_check_calls_move_a_ttl_check_through_its_states(
    twin: Twin, unique: str
) -> None:
    await twin("register_service", unique, port=1, ttl="1m")
    check_id = f"service:{unique}-{_host()}-1"
    await twin("warn_check", check_id, "slow")
    (instance,) = await twin("instances", unique)
    assert instance.status is HealthStatus.WARNING
    assert instance.weight == 1.0  # Weights.Warning
    await twin("fail_check", check_id)
    (instance,) = await twin("instances", unique)
    assert instance.status is HealthStatus.CRITICAL and instance.weight == 0.0
    await twin("pass_check", check_id)
    (instance,) = await twin("instances", unique)
    assert instance.status is HealthStatus.PASSING


def _host() -> str:
    import socket

    return socket.gethostname()


async def test_instances_filter_by_every_tag_given(twin: Twin, unique: str) -> None:
    await twin("register_service", unique, port=1, service_id="a", tags=["x", "y"])
    await twin("register_service", unique, port=2, service_id="b", tags=["x"])
    assert (await twin("instances", unique, tags=["x"])).ids == ["a", "b"]
    assert (await twin("instances", unique, tags=["x", "y"])).ids == ["a"]


async def test_instances_with_an_index_wait_when_nothing_changes(
    twin: Twin, unique: str
) -> None:
    first = await twin("instances", unique)
    started = time.monotonic()
    same = await twin("instances", unique, index=first.index, wait="300ms")
    assert time.monotonic() - started >= 0.3
    assert same.index == first.index and len(same) == 0


async def test_instances_with_an_index_return_with_the_change(
    twin: Twin, unique: str
) -> None:
    first = await twin("instances", unique)
    with Client(twin.client.address) as other:
        # Blocked or not yet sent when the registration lands, the query
        # answers with the change either way.
        registering = asyncio.to_thread(other.register_service, unique, port=5)
        if twin.is_async:
            waiting = twin("instances", unique, index=first.index, wait="10s")
        else:
            waiting = asyncio.to_thread(
                twin.client.instances, unique, index=first.index, wait="10s"
            )
        started = time.monotonic()
        changed, _ = await asyncio.gather(waiting, registering)
        # Woken by the change, well before its 10 s wait.
        assert time.monotonic() - started < 5.0
    assert changed.index > first.index and len(changed) == 1


async def test_register_keeps_the_instance_passing_and_deregisters_on_exit(
    twin: Twin, unique: str
) -> None:
    async with twin.register(unique, port=9000, ttl="1s", tags=["t"]) as reg:
        assert reg.check_id == f"service:{reg.service_id}"
        (instance,) = await twin("instances", unique, passing=True)
        assert instance.tags == ("t",)
        # Past two TTLs, still passing: the background heartbeats ran.
        await asyncio.to_thread(wait_until, lambda: reg.heartbeat.beats >= 6, 5)
        assert len(await twin("instances", unique, passing=True)) == 1
    assert len(await twin("instances", unique)) == 0


async def test_register_registers_again_when_the_registry_forgets_the_service(
    twin: Twin, unique: str
) -> None:
    """A reaped or hand-deregistered instance comes back on the next heartbeat."""
    async with twin.register(unique, port=9001, ttl="30s") as reg:
        await twin("deregister", reg.service_id)
        assert await twin.beat(reg)
        assert reg.heartbeat.reregistrations == 1
        found = await twin("instances", unique, passing=True)
        assert found.ids == [reg.service_id]


async def test_register_weight_zero_drains_without_hiding_the_instance(
    twin: Twin, unique: str
) -> None:
    async with twin.register(unique, port=9002, weight=0):
        (instance,) = await twin("instances", unique, passing=True)
        assert instance.weight == 0.0
        balancer = RoundRobin()
        balancer.update([instance])
        assert balancer.instances() == ()


async def test_a_registration_never_started_warns_and_registered_nothing(
    twin: Twin, unique: str
) -> None:
    """`client.register(...)` without `with` is a mistake that must not be silent."""
    how = "async with" if twin.is_async else "with"
    registration = twin.client.register(unique, port=9003, service_id=f"{unique}-1")
    with pytest.warns(RuntimeWarning) as caught:
        del registration  # its last reference: collected at once
    assert str(caught[0].message) == (
        f"the registration of '{unique}-1' was never started, so nothing was"
        f" registered: use `{how} client.register(...):`"
    )
    assert unique not in await twin("services")


async def test_a_registration_that_ran_does_not_warn(twin: Twin, unique: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with twin.register(unique, port=9004) as registration:
            pass
        del registration
        gc.collect()


async def test_a_registration_shows_its_service_id_and_state_in_repr(
    twin: Twin, unique: str
) -> None:
    kind = "AsyncServiceRegistration" if twin.is_async else "ServiceRegistration"
    registration = twin.client.register(unique, port=9005, service_id=f"{unique}-r")
    shown = f"<{kind} service_id='{unique}-r' name='{unique}' port=9005"
    assert repr(registration) == f"{shown} not started>"
    if twin.is_async:
        async with registration:
            assert repr(registration) == f"{shown} running>"
    else:
        with registration:
            assert repr(registration) == f"{shown} running>"
    assert repr(registration) == f"{shown} stopped>"


async def test_deregister_of_an_unknown_id_raises_not_found(twin: Twin) -> None:
    with pytest.raises(NotFound, match="Unknown service ID"):
        await twin("deregister", "no-such-service")


async def test_bad_meta_is_rejected_as_a_bad_request(twin: Twin, unique: str) -> None:
    with pytest.raises(InvalidRequest, match="Invalid Service Meta"):
        await twin("register_service", unique, port=1, meta={"bad key!": "x"})
    assert unique not in await twin("services")


async def test_bad_arguments_are_refused_before_sending(twin: Twin) -> None:
    with pytest.raises(InvalidRequest, match="ttl"):
        twin.client.register("x", port=1, ttl="ten")
    with pytest.raises(InvalidRequest, match="port"):
        await twin("register_service", "x", port=70000)
    with pytest.raises(InvalidRequest, match="tags"):
        await twin("instances", "x", tags="web")


async def test_unreachable_registry_raises_registry_connect_error(kind: str) -> None:
    port = free_port()
    async with open_twin(kind, f"127.0.0.1:{port}", timeout=2) as twin:
        with pytest.raises(RegistryConnectError, match=f"127.0.0.1:{port}") as caught:
            await twin("services")
    assert isinstance(caught.value, RegistryUnavailable)
    assert isinstance(caught.value, RegistryUnreachable)


async def test_maintenance_turns_an_instance_critical_until_disabled(
    twin: Twin, unique: str
) -> None:
    service_id = await twin("register_service", unique, port=3)
    await twin("maintenance", True, reason="deploy", service_id=service_id)
    checks = {c.check_id: c for c in await twin("checks")}
    maint = checks[f"_service_maintenance:{service_id}"]
    assert maint.notes == "deploy" and maint.status is HealthStatus.CRITICAL
    assert len(await twin("instances", unique, passing=True)) == 0
    await twin("maintenance", False, service_id=service_id)
    assert len(await twin("instances", unique, passing=True)) == 1


async def test_node_maintenance_hides_every_instance_of_the_node(
    twin: Twin, unique: str
) -> None:
    agent = AgentProcess().start()
    try:
        async with open_twin("async" if twin.is_async else "sync", agent.address) as t:
            await t("register_service", unique, port=3)
            await t("maintenance", True)
            assert len(await t("instances", unique, passing=True)) == 0
            await t("maintenance", False)
            assert len(await t("instances", unique, passing=True)) == 1
    finally:
        agent.stop()


async def test_kv_put_get_list_and_delete_round_trip(twin: Twin, unique: str) -> None:
    assert await twin("kv_get", f"{unique}/a") is None
    assert await twin("kv_put", f"{unique}/a", "one", flags=7)
    assert await twin("kv_put", f"{unique}/b", b"\x00two")
    entry = await twin("kv_get", f"{unique}/a")
    assert (entry.value, entry.flags) == (b"one", 7)
    listed = await twin("kv_list", unique)
    assert [e.key for e in listed] == [f"{unique}/a", f"{unique}/b"]
    assert listed[1].value == b"\x00two"
    assert await twin("kv_delete", f"{unique}/a")
    assert await twin("kv_get", f"{unique}/a") is None
    assert await twin("kv_delete", unique, recurse=True)
    assert await twin("kv_list", unique) == []


async def test_kv_put_with_a_stale_cas_changes_nothing(twin: Twin, unique: str) -> None:
    assert await twin("kv_put", unique, "v1", cas=0)
    assert not await twin("kv_put", unique, "v2", cas=0)
    entry = await twin("kv_get", unique)
    assert await twin("kv_put", unique, "v2", cas=entry.modify_index)
    assert (await twin("kv_get", unique)).value == b"v2"


@STATUS_IS_ETCD
async def test_members_and_leader_describe_the_agent(twin: Twin) -> None:
    (member,) = await twin("members")
    assert member.name == "waypost-test" and member.status == 1
    assert member.datacenter == "dc1"
    assert await twin("leader") == "127.0.0.1:8300"


async def test_address_and_token_come_from_the_environment(
    kind: str, shared_agent: AgentProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
    monkeypatch.setenv("WAYPOST_HTTP_ADDR", f"http://{shared_agent.address}")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "secret")
    client = AsyncClient() if kind == "async" else Client()
    twin = Twin(client)
    assert client.address == shared_agent.address
    assert client.settings.token == "secret"
    assert await twin("leader")
    await twin("aclose" if kind == "async" else "close")


async def test_watcher_follows_registrations_and_feeds_its_balancer(
    twin: Twin, unique: str
) -> None:
    seen: list[InstanceSet] = []
    balancer = RoundRobin()
    async with twin.watch(unique, balancer=balancer, on_change=seen.append) as watcher:
        assert len(watcher.instances()) == 0
        await twin("register_service", unique, port=1, service_id="w1")
        await twin.wait_for(watcher, lambda s: s.ids == ["w1"])
        assert watcher.pick().service_id == "w1"
        await twin("register_service", unique, port=2, service_id="w2")
        await twin.wait_for(watcher, lambda s: len(s) == 2)
        assert {watcher.pick().service_id for _ in range(4)} == {"w1", "w2"}
        await twin("deregister", "w1")
        current = await twin.wait_for(watcher, lambda s: s.ids == ["w2"])
        assert not current.is_stale and not watcher.is_stale
    assert [s.ids for s in seen][-1] == ["w2"]


async def test_cached_instances_start_one_watcher_per_query(
    twin: Twin, unique: str
) -> None:
    await twin("register_service", unique, port=1, service_id="c1", tags=["a"])
    first = await twin("instances", unique, cached=True)
    again = await twin("instances", unique, cached=True)
    assert first.ids == again.ids == ["c1"]
    tagged = await twin("instances", unique, tags=["zzz"], cached=True)
    assert tagged.ids == []
    with pytest.raises(InvalidRequest):
        await twin("instances", unique, cached=True, index=5)


async def test_heartbeat_failures_are_logged_and_passed_to_the_callback(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    failures: list[Exception] = []
    port = free_port()
    async with open_twin(kind, f"127.0.0.1:{port}", timeout=1) as twin:
        registration = twin.client.register(
            "lonely",
            port=1,
            handle_sigterm=False,
            on_heartbeat_failure=lambda reg, exc: failures.append(exc),
        )
        with caplog.at_level(logging.WARNING, logger="waypost.client"):
            assert not await twin.beat(registration)
    assert isinstance(failures[0], RegistryUnavailable)
    assert registration.heartbeat.consecutive_failures == 1
    assert "heartbeat of 'lonely-" in caplog.text


async def test_stopping_a_watcher_ends_its_blocked_query_at_once(
    twin: Twin, unique: str
) -> None:
    for _ in range(5):  # stop at different moments of the loop
        async with twin.watch(unique, wait=300) as watcher:
            watcher.instances()
        started = time.monotonic()
        async with twin.watch(unique, wait=300):
            pass
        assert time.monotonic() - started < 2
