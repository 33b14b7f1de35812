"""Blocking queries wake on their own change, and only on their own change."""

from __future__ import annotations

import asyncio
import threading
import time

import consul
import consul.aio
import httpx

from waypost.testing import AgentProcess

#: Every waiting query here asks for `wait=20s`; one that was woken by the
#: change returns well before that (a missed wake-up would take 20 s).
WAIT = "20s"
WOKEN_WITHIN = 10.0


def _index(response: httpx.Response) -> int:
    return int(response.headers["X-Consul-Index"])


def _register(http: httpx.Client, name: str, sid: str) -> None:
    http.put(
        "/v1/agent/service/register", json={"Name": name, "ID": sid}
    ).raise_for_status()


def test_wait_returns_on_a_change_to_what_it_reads(
    http: httpx.Client, unique: str
) -> None:
    index = _index(http.get(f"/v1/health/service/{unique}"))
    timer = threading.Timer(0.3, _register, (http, unique, f"{unique}-1"))
    timer.start()
    started = time.monotonic()
    response = http.get(
        f"/v1/health/service/{unique}", params={"index": index, "wait": WAIT}
    )
    elapsed = time.monotonic() - started
    timer.join()
    assert elapsed < WOKEN_WITHIN
    assert _index(response) > index
    assert [e["Service"]["ID"] for e in response.json()] == [f"{unique}-1"]


def test_wait_ignores_a_change_to_another_service(
    http: httpx.Client, unique: str
) -> None:
    _register(http, unique, f"{unique}-a")
    index = _index(http.get(f"/v1/health/service/{unique}"))
    timer = threading.Timer(0.2, _register, (http, f"{unique}-other", f"{unique}-b"))
    timer.start()
    started = time.monotonic()
    response = http.get(
        f"/v1/health/service/{unique}", params={"index": index, "wait": "1500ms"}
    )
    elapsed = time.monotonic() - started
    timer.join()
    assert elapsed >= 1.4, "woken by another service's change"
    assert _index(response) == index


def test_wait_ignores_another_kv_key(http: httpx.Client, unique: str) -> None:
    http.put(f"/v1/kv/{unique}/mine", content=b"1").raise_for_status()
    index = _index(http.get(f"/v1/kv/{unique}/mine"))
    timer = threading.Timer(
        0.2, lambda: http.put(f"/v1/kv/{unique}/other", content=b"x")
    )
    timer.start()
    started = time.monotonic()
    response = http.get(f"/v1/kv/{unique}/mine", params={"index": index, "wait": "1s"})
    timer.join()
    assert time.monotonic() - started >= 0.9
    assert _index(response) == index


def test_recursive_kv_wait_wakes_on_a_key_under_the_prefix(
    http: httpx.Client, unique: str
) -> None:
    http.put(f"/v1/kv/{unique}/a", content=b"1").raise_for_status()
    index = _index(http.get(f"/v1/kv/{unique}/", params={"recurse": ""}))
    timer = threading.Timer(0.2, lambda: http.put(f"/v1/kv/{unique}/b", content=b"2"))
    timer.start()
    started = time.monotonic()
    response = http.get(
        f"/v1/kv/{unique}/", params={"recurse": "", "index": index, "wait": WAIT}
    )
    timer.join()
    assert time.monotonic() - started < WOKEN_WITHIN
    assert _index(response) > index
    assert [e["Key"] for e in response.json()] == [f"{unique}/a", f"{unique}/b"]


def test_status_change_of_a_check_wakes_the_health_watcher(
    http: httpx.Client, unique: str
) -> None:
    body = {"Name": unique, "Check": {"TTL": "30s"}}
    http.put("/v1/agent/service/register", json=body).raise_for_status()
    index = _index(http.get(f"/v1/health/service/{unique}", params={"passing": ""}))
    timer = threading.Timer(
        0.2, lambda: http.put(f"/v1/agent/check/pass/service:{unique}")
    )
    timer.start()
    started = time.monotonic()
    response = http.get(
        f"/v1/health/service/{unique}",
        params={"passing": "1", "index": index, "wait": WAIT},
    )
    timer.join()
    assert time.monotonic() - started < WOKEN_WITHIN
    assert _index(response) > index
    assert len(response.json()) == 1


def test_heartbeat_without_status_change_does_not_wake_watchers(
    http: httpx.Client, unique: str
) -> None:
    body = {"Name": unique, "Check": {"TTL": "30s", "Status": "passing"}}
    http.put("/v1/agent/service/register", json=body).raise_for_status()
    index = _index(http.get(f"/v1/health/service/{unique}"))
    timer = threading.Timer(
        0.2, lambda: http.put(f"/v1/agent/check/pass/service:{unique}")
    )
    timer.start()
    started = time.monotonic()
    response = http.get(
        f"/v1/health/service/{unique}", params={"index": index, "wait": "1s"}
    )
    timer.join()
    assert time.monotonic() - started >= 0.9
    assert _index(response) == index


def test_missing_key_404_carries_an_index_usable_for_blocking(
    http: httpx.Client, unique: str
) -> None:
    missing = http.get(f"/v1/kv/{unique}")
    assert missing.status_code == 404
    index = _index(missing)
    assert index >= 1
    timer = threading.Timer(0.2, lambda: http.put(f"/v1/kv/{unique}", content=b"now"))
    timer.start()
    started = time.monotonic()
    response = http.get(f"/v1/kv/{unique}", params={"index": index, "wait": WAIT})
    timer.join()
    assert time.monotonic() - started < WOKEN_WITHIN
    assert response.status_code == 200
    assert _index(response) > index


def test_py_consul_blocking_health_query(client: consul.Consul, unique: str) -> None:
    index, nodes = client.health.service(unique)
    assert nodes == []
    timer = threading.Timer(0.2, client.agent.service.register, (unique,))
    timer.start()
    started = time.monotonic()
    new_index, nodes = client.health.service(unique, index=index, wait=WAIT)
    timer.join()
    assert time.monotonic() - started < WOKEN_WITHIN
    assert int(new_index) > int(index)
    assert [n["Service"]["Service"] for n in nodes] == [unique]


async def test_py_consul_asyncio_blocking_kv_query(
    shared_agent: AgentProcess, unique: str
) -> None:
    client = consul.aio.Consul(host=shared_agent.host, port=shared_agent.port)
    try:
        index, value = await client.kv.get(unique)
        assert value is None

        async def later() -> None:
            await asyncio.sleep(0.2)
            await client.kv.put(unique, "hello")

        writer = asyncio.create_task(later())
        started = time.monotonic()
        index2, value = await client.kv.get(unique, index=index, wait=WAIT)
        await writer
        assert time.monotonic() - started < WOKEN_WITHIN
        assert int(index2) > int(index)
        assert value["Value"] == b"hello"
    finally:
        await client.close()


def test_many_identical_waiters_all_wake(
    http: httpx.Client, shared_agent: AgentProcess, unique: str
) -> None:
    index = _index(http.get(f"/v1/health/service/{unique}"))

    async def watch_all() -> list[int]:
        async with httpx.AsyncClient(base_url=shared_agent.url, timeout=30) as client:

            async def one() -> int:
                r = await client.get(
                    f"/v1/health/service/{unique}",
                    params={"index": index, "wait": WAIT},
                )
                return _index(r)

            tasks = [asyncio.create_task(one()) for _ in range(50)]
            await asyncio.sleep(0.5)
            async with httpx.AsyncClient(base_url=shared_agent.url) as writer:
                await writer.put("/v1/agent/service/register", json={"Name": unique})
            return await asyncio.gather(*tasks)

    started = time.monotonic()
    indexes = asyncio.run(watch_all())
    assert time.monotonic() - started < WOKEN_WITHIN
    assert len(set(indexes)) == 1 and indexes[0] > index
