"""The asyncio py-consul client (consul.aio) against a real agent."""

from __future__ import annotations

import consul
import consul.aio


async def test_async_client_registers_heartbeats_and_discovers(
    aclient: consul.aio.Consul, unique: str
) -> None:
    assert await aclient.agent.service.register(
        unique, service_id=f"{unique}-1", port=9100, check=consul.Check.ttl("30s")
    )
    _, healthy = await aclient.health.service(unique, passing=True)
    assert healthy == []

    assert await aclient.agent.check.ttl_pass(f"service:{unique}-1", "ok")
    _, healthy = await aclient.health.service(unique, passing=True)
    assert [(e["Service"]["ID"], e["Service"]["Port"]) for e in healthy] == [
        (f"{unique}-1", 9100)
    ]
    _, services = await aclient.catalog.services()
    assert unique in services

    assert await aclient.agent.service.deregister(f"{unique}-1")
    _, entries = await aclient.health.service(unique)
    assert entries == []


async def test_async_client_uses_the_kv_store(
    aclient: consul.aio.Consul, unique: str
) -> None:
    assert await aclient.kv.put(f"{unique}/a", "1", flags=7)
    assert await aclient.kv.put(f"{unique}/b", "2")
    index, entry = await aclient.kv.get(f"{unique}/a")
    assert (entry["Value"], entry["Flags"]) == (b"1", 7)
    assert int(index) >= entry["ModifyIndex"]

    _, keys = await aclient.kv.get(f"{unique}/", keys=True)
    assert keys == [f"{unique}/a", f"{unique}/b"]
    assert await aclient.kv.put(f"{unique}/a", "3", cas=entry["ModifyIndex"])
    assert not await aclient.kv.put(f"{unique}/a", "4", cas=entry["ModifyIndex"])
    assert await aclient.kv.delete(f"{unique}/", recurse=True)
    assert (await aclient.kv.get(f"{unique}/a"))[1] is None


async def test_async_client_reads_agent_self_and_status(
    aclient: consul.aio.Consul,
) -> None:
    me = await aclient.agent.self()
    assert me["Config"]["Version"] == "1.22.0"
    assert await aclient.status.leader() == me["Stats"]["consul"]["leader_addr"]
    assert await aclient.catalog.datacenters() == ["dc1"]
