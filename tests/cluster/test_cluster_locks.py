"""The lock test (issue 15) across three agents on one etcd cluster: 20
contender processes spread over agents a, b and c, SIGKILLed at random and
restarted; sessions and locks live in etcd. The verdict in
tests/locks/harness.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.cluster.support import Agents, needs_etcd
from tests.locks import harness
from waypost.testing import wait_until

pytestmark = needs_etcd

SECONDS = float(os.environ.get("WAYPOST_CLUSTER_LOCK_SECONDS", "45"))


def test_a_lock_is_held_by_at_most_one_contender_across_agents(
    agents: Agents, tmp_path: Path
) -> None:
    processes = [agents.process(name) for name in ("a", "b", "c")]
    report = harness.run(processes, SECONDS, tmp_path)
    print("\nlock test, three agents:", report.summary())
    assert not report.problems, "\n".join(report.problems[:20])
    assert report.acquisitions >= 3
    assert report.expired_holders >= 1


def test_sessions_locks_and_lock_delays_are_shared_by_every_agent(
    agents: Agents,
) -> None:
    a, b, c = agents["a"], agents["b"], agents["c"]
    body = {"LockDelay": "2s", "TTL": "30s"}
    s1 = a.put("/v1/session/create", json=body).json()["ID"]
    s2 = b.put("/v1/session/create", json=body).json()["ID"]
    assert a.put("/v1/kv/shared-lock", params={"acquire": s1}).json() is True
    # c may not have applied a's write yet: the refusal waits for it.
    assert c.put("/v1/kv/shared-lock", params={"acquire": s2}).json() is False
    seen = b.get("/v1/kv/shared-lock", params={"consistent": ""}).json()[0]
    assert (seen["Session"], seen["LockIndex"]) == (s1, 1)
    assert [s["ID"] for s in c.get("/v1/session/node/a").json()] == [s1]

    ended = time.monotonic()
    assert c.put(f"/v1/session/destroy/{s1}").json() is True
    wait_until(
        lambda: "Session" not in b.get("/v1/kv/shared-lock").json()[0], timeout=10
    )
    # b derived the lock-delay from the same write: s2 must wait it out.
    assert b.put("/v1/kv/shared-lock", params={"acquire": s2}).json() is False
    wait_until(
        lambda: b.put("/v1/kv/shared-lock", params={"acquire": s2}).json() is True,
        timeout=10,
    )
    assert time.monotonic() - ended >= 2.0
    entry = a.get("/v1/kv/shared-lock", params={"consistent": ""}).json()[0]
    assert (entry["Session"], entry["LockIndex"]) == (s2, 2)
