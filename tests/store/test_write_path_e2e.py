"""One write path, seen from outside: a real agent on a real SQLite file.

- a refused write leaves what every read endpoint serves, the index and the
  disk as they were (the issue's reproduction among them);
- a store that cannot write (the data file may not grow: RLIMIT_FSIZE on the
  agent process) answers 503 and serves exactly what is on disk; once the
  disk is back, writes succeed again;
- after `kill -9`, a restarted agent serves what the agent served before.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from waypost.testing import AgentProcess

#: What a reader can see: every read endpoint of the catalog, health, KV and
#: the agent, for the nodes and services present.
Snapshot = dict[str, tuple[int, Any, int]]


def snapshot(url: str) -> Snapshot:
    """Every read endpoint's (status, body, X-Consul-Index or 0)."""
    seen: Snapshot = {}
    with httpx.Client(base_url=url, timeout=10) as http:

        def read(path: str) -> Any:
            response = http.get(path)
            body = response.json() if response.content else None
            index = int(response.headers.get("x-consul-index", 0))
            seen[path] = (response.status_code, body, index)
            return body

        nodes = read("/v1/catalog/nodes") or []
        services = read("/v1/catalog/services") or {}
        read("/v1/health/state/any")
        read("/v1/kv/?recurse")
        read("/v1/kv/?keys")
        read("/v1/agent/services")
        read("/v1/agent/checks")
        for node in nodes:
            name = node["Node"]
            read(f"/v1/catalog/node/{name}")
            read(f"/v1/catalog/node-services/{name}")
            read(f"/v1/health/node/{name}")
        for name in services:
            read(f"/v1/catalog/service/{name}")
            read(f"/v1/health/service/{name}")
            read(f"/v1/health/service/{name}?passing")
            read(f"/v1/health/checks/{name}")
    return seen


def bodies(seen: Snapshot) -> dict[str, tuple[int, Any]]:
    return {path: (status, body) for path, (status, body, _) in seen.items()}


def populate(http: httpx.Client) -> None:
    assert http.put(
        "/v1/catalog/register",
        json={
            "Node": "n1",
            "Address": "10.0.0.1",
            "Service": {"ID": "s1", "Service": "api", "Tags": ["v1"]},
            "Check": {
                "CheckID": "c1",
                "Name": "c",
                "ServiceID": "s1",
                "Status": "passing",
            },
        },
    ).json()
    for n in range(3):
        http.put(
            "/v1/agent/service/register",
            json={"Name": "web", "ID": f"web-{n}", "Port": 8000 + n, "Tags": ["a"]},
        ).raise_for_status()
    http.put(
        "/v1/agent/service/register",
        json={"Name": "ttl", "ID": "ttl-1", "Check": {"TTL": "30s"}},
    ).raise_for_status()
    http.put("/v1/agent/check/pass/service:ttl-1").raise_for_status()
    for key in ("app/a", "app/b", "other"):
        assert http.put(f"/v1/kv/{key}", content=key.encode()).json() is True


#: Writes every write endpoint refuses, and why.
REFUSALS: list[tuple[str, str, dict[str, Any] | bytes | None]] = [
    # The reproduction: c1 belongs to s1; nothing may change, not even
    # the node's address.
    (
        "PUT",
        "/v1/catalog/register",
        {
            "Node": "n1",
            "Address": "10.9.9.9",
            "Service": {"ID": "s2", "Service": "api"},
            "Check": {
                "CheckID": "c1",
                "Name": "c",
                "ServiceID": "s2",
                "Status": "passing",
            },
        },
    ),
    (
        "PUT",
        "/v1/catalog/register",
        {
            "Node": "n1",
            "Address": "10.9.9.9",
            "Check": {"CheckID": "x", "ServiceID": "nope", "Status": "passing"},
        },
    ),
    (
        "PUT",
        "/v1/agent/service/register",
        {"Name": "web", "ID": "web-0", "Checks": [{"TTL": "1s"}, {"Bogus": 1}]},
    ),
    (
        "PUT",
        "/v1/agent/service/register",
        {
            "Name": "web",
            "ID": "web-0",
            "Checks": [{"CheckID": "d", "TTL": "1s"}, {"CheckID": "d", "TTL": "2s"}],
        },
    ),
    ("PUT", "/v1/agent/check/register", {"Name": "x", "ServiceID": "missing"}),
    ("PUT", "/v1/agent/check/register", {"Name": "x", "TTL": "1s", "Status": "bad"}),
    ("PUT", "/v1/agent/service/deregister/missing", None),
    ("PUT", "/v1/agent/check/deregister/missing", None),
    ("PUT", "/v1/agent/check/pass/missing", None),
    ("PUT", "/v1/agent/check/update/service:ttl-1", {"Status": "bogus"}),
    ("PUT", "/v1/agent/service/maintenance/missing?enable=true", None),
    ("PUT", "/v1/agent/maintenance?enable=maybe", None),
    ("PUT", "/v1/catalog/deregister", {"Datacenter": "elsewhere", "Node": "n1"}),
    ("PUT", "/v1/kv/app/a?cas=1", b"changed"),  # CAS mismatch: false, no change
    ("DELETE", "/v1/kv/app/a?cas=1", None),
    ("PUT", "/v1/kv/app/a?acquire=x", b"changed"),
]


def send(http: httpx.Client, method: str, path: str, body: object) -> int:
    if isinstance(body, bytes):
        response = http.request(method, path, content=body)
    elif body is None:
        response = http.request(method, path)
    else:
        response = http.request(method, path, json=body)
    return response.status_code


def test_refused_writes_change_no_read_no_index_and_no_disk(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    agent = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        with httpx.Client(base_url=agent.url, timeout=10) as http:
            populate(http)
            before = snapshot(agent.url)
            for method, path, body in REFUSALS:
                status = send(http, method, path, body)
                # 4xx, or 200 `false` for a CAS that did not hold.
                assert 400 <= status < 500 or "cas=" in path, (path, status)
            assert snapshot(agent.url) == before  # bodies and indexes
    finally:
        assert agent.stop() == 0
    restarted = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        assert bodies(snapshot(restarted.url)) == bodies(before)
    finally:
        restarted.stop()


def test_after_kill_9_a_restarted_agent_serves_the_same(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    agent = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        with httpx.Client(base_url=agent.url, timeout=10) as http:
            populate(http)
            http.put("/v1/agent/service/deregister/web-2").raise_for_status()
            http.put("/v1/kv/other", content=b"second").raise_for_status()
        before = snapshot(agent.url)
    finally:
        agent.kill()
    restarted = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        after = snapshot(restarted.url)
    finally:
        restarted.stop()
    assert bodies(after) == bodies(before)
    # A topic's index is never lower than before (it may be the store's last
    # index: per-query indexes are not persisted, see ARCHITECTURE.md).
    for path, (_, _, index) in before.items():
        assert after[path][2] >= index, path


@pytest.mark.skipif(sys.platform != "linux", reason="prlimit is Linux's")
def test_a_store_that_cannot_write_answers_503_and_serves_the_disk(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    agent = AgentProcess(dev=False, data_dir=data_dir).start()
    assert agent.process is not None
    pid = agent.process.pid
    try:
        with httpx.Client(base_url=agent.url, timeout=10) as http:
            populate(http)
            before = snapshot(agent.url)
            # The disk is full: no file of the agent may grow any more.
            wal = data_dir / "state.db-wal"
            size = max(wal.stat().st_size, (data_dir / "state.db").stat().st_size)
            _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, hard))
            big = b"x" * (400 * 1024)
            refused = http.put("/v1/kv/big", content=big)
            assert refused.status_code == 503, refused.text
            assert "could not persist" in refused.text
            # Served from memory, equal to what is on disk: nothing changed.
            assert snapshot(agent.url) == before
            # The disk is back: writes succeed again.
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
            assert http.put("/v1/kv/big", content=big).json() is True
            http.put(
                "/v1/agent/service/register", json={"Name": "late", "ID": "late-1"}
            ).raise_for_status()
            served = bodies(snapshot(agent.url))
        agent.wait_for_log("store write failed")
    finally:
        agent.kill()
    restarted = AgentProcess(dev=False, data_dir=data_dir).start()
    try:
        assert bodies(snapshot(restarted.url)) == served
    finally:
        restarted.stop()


def test_racing_cas_writes_on_a_durable_store_have_exactly_one_winner(
    tmp_path: Path,
) -> None:
    """Plans made against the same state before either is durable: the store
    refuses the stale ones, which plan again and see the CAS fail."""
    agent = AgentProcess(dev=False, data_dir=tmp_path / "data").start()
    try:
        with httpx.Client(base_url=agent.url, timeout=10) as http:
            assert http.put("/v1/kv/race", content=b"0").json() is True
            index = http.get("/v1/kv/race").json()[0]["ModifyIndex"]

        async def race() -> list[bool]:
            limits = httpx.Limits(max_connections=40)
            async with httpx.AsyncClient(
                base_url=agent.url, limits=limits, timeout=30
            ) as client:

                async def attempt(n: int) -> bool:
                    response = await client.put(
                        f"/v1/kv/race?cas={index}", content=str(n).encode()
                    )
                    return bool(response.json())

                return list(await asyncio.gather(*(attempt(n) for n in range(40))))

        for _round in range(5):
            results = asyncio.run(race())
            assert results.count(True) == 1, results
            with httpx.Client(base_url=agent.url, timeout=10) as http:
                index = http.get("/v1/kv/race").json()[0]["ModifyIndex"]
    finally:
        agent.stop()
