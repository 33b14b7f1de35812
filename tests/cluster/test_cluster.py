"""Three agents, one catalog in a real 3-member etcd: what a user sees.

A write through one agent is read through the others (and wakes their
blocking queries); every agent gives the same X-Consul-Index for the same
data; racing CAS writes through two agents never both win; active checks of
catalog-registered services are run by exactly one live agent.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.cluster.conftest import failed
from tests.cluster.support import Agents, index_of, needs_etcd, wait_for
from tests.runner.targets import HttpTarget
from waypost.testing import EtcdCluster

pytestmark = [needs_etcd, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def agents(etcd: EtcdCluster, request: pytest.FixtureRequest) -> Iterator[Agents]:
    with Agents(etcd) as started:
        yield started
        started.show_logs = failed(request)


def test_a_registration_through_a_is_seen_through_b_and_c_and_wakes_c(
    agents: Agents,
) -> None:
    a, b, c = agents["a"], agents["b"], agents["c"]
    before = c.get("/v1/health/service/seen-everywhere")
    assert before.json() == []
    woken: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: woken.append(
            c.get(
                "/v1/health/service/seen-everywhere",
                params={"index": index_of(before), "wait": "30s"},
            )
        )
    )
    waiter.start()
    registered = a.put(
        "/v1/agent/service/register",
        json={"Name": "seen-everywhere", "ID": "s1", "Port": 8080},
    )
    assert registered.status_code == 200
    # Read-your-writes on the agent written to: no wait at all.
    assert [
        e["Service"]["ID"] for e in a.get("/v1/health/service/seen-everywhere").json()
    ] == ["s1"]
    waiter.join(30)
    assert woken and [e["Service"]["ID"] for e in woken[0].json()] == ["s1"]
    assert woken[0].json()[0]["Node"]["Node"] == "a"
    wait_for(lambda: b.get("/v1/catalog/service/seen-everywhere").json() != [])


def test_every_agent_reports_the_same_index_for_the_same_data(agents: Agents) -> None:
    a = agents["a"]
    a.put(
        "/v1/agent/service/register",
        json={"Name": "same-index", "ID": "x1", "Check": {"TTL": "60s"}},
    ).raise_for_status()
    a.put("/v1/kv/same/key", content=b"v").raise_for_status()
    a.put("/v1/kv/same/gone", content=b"v").raise_for_status()
    a.delete("/v1/kv/same/gone").raise_for_status()
    # ?consistent on the last agent: every agent has caught up after it.
    paths = [
        "/v1/health/service/same-index",
        "/v1/catalog/service/same-index",
        "/v1/catalog/services",
        "/v1/catalog/nodes",
        "/v1/kv/same/key",
        "/v1/kv/same/gone",
        "/v1/kv/same/?recurse",
        "/v1/kv/never-written",
        "/v1/health/state/critical",
    ]
    for name in ("a", "b", "c"):
        agents[name].get("/v1/kv/same/key", params={"consistent": ""})
    seen = {
        path: {name: index_of(agents[name].get(path)) for name in ("a", "b", "c")}
        for path in paths
    }
    for path, indexes in seen.items():
        assert len(set(indexes.values())) == 1, (path, indexes)
        # And bodies agree too.
    for path in paths:
        bodies = {agents[name].get(path).content for name in ("a", "b", "c")}
        assert len(bodies) == 1, path


def _kv(client: httpx.Client, key: str) -> tuple[int, bytes]:
    answer = client.get(f"/v1/kv/{key}", params={"consistent": ""})
    answer.raise_for_status()
    entry = answer.json()[0]
    return entry["ModifyIndex"], base64.b64decode(entry["Value"] or "")


def test_two_agents_racing_cas_writes_on_one_key_never_both_win(
    agents: Agents,
) -> None:
    """100 rounds: both read the same ModifyIndex, both CAS on it, at once."""
    a, b = agents["a"], agents["b"]
    a.put("/v1/kv/race", content=b"start").raise_for_status()
    wins = {"a": 0, "b": 0}
    for round_ in range(100):
        index, _ = _kv(a, "race")
        results = _race(
            {"a": a, "b": b}, index=index, values={n: f"{n}-{round_}" for n in "ab"}
        )
        assert sorted(results.values()) == [False, True], (round_, results)
        winner = next(name for name, won in results.items() if won)
        wins[winner] += 1
        new_index, value = _kv(b, "race")
        assert new_index > index
        assert value == f"{winner}-{round_}".encode()
    assert sum(wins.values()) == 100


def _race(
    clients: dict[str, httpx.Client], *, index: int, values: dict[str, str]
) -> dict[str, bool]:
    """Every client CASes `index` at the same moment; who won."""
    results: dict[str, bool] = {}
    barrier = threading.Barrier(len(clients))

    def write(name: str) -> None:
        barrier.wait()
        answer = clients[name].put(
            "/v1/kv/race", params={"cas": index}, content=values[name].encode()
        )
        answer.raise_for_status()
        results[name] = answer.json()

    threads = [threading.Thread(target=write, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _running(client: httpx.Client) -> int:
    stats = client.get("/v1/agent/self").json()["Stats"]["waypost"]
    return int(stats["checks_running"])


def test_catalog_registered_checks_are_run_by_exactly_one_live_agent(
    agents: Agents,
) -> None:
    with HttpTarget() as web:
        for i in range(30):
            agents["a"].put(
                "/v1/catalog/register",
                json={
                    "Node": f"external-{i}",
                    "Address": "10.1.0.1",
                    "Service": {"ID": f"ext-{i}", "Service": "external"},
                    "Check": {
                        "CheckID": f"ext-{i}:http",
                        "ServiceID": f"ext-{i}",
                        "Definition": {
                            "HTTP": f"{web.url}/ext/{i}",
                            "Interval": "500ms",
                        },
                    },
                },
            ).raise_for_status()
        # Each runs its share: the 30 are all run, none twice.
        wait_for(lambda: sum(_running(agents[n]) for n in ("a", "b", "c")) == 30)
        counts = {name: _running(agents[name]) for name in ("a", "b", "c")}
        assert all(count > 0 for count in counts.values()), counts
        wait_for(lambda: all(_probed(web, i) >= 1 for i in range(30)), timeout=10)
        start = {i: _probed(web, i) for i in range(30)}
        began = time.monotonic()
        threading.Event().wait(3.0)
        counted = {i: _probed(web, i) - start[i] for i in range(30)}
        elapsed = time.monotonic() - began
        # One prober every 500 ms: at most one probe per interval, plus one
        # at each end of the window (two probers would make twice as many).
        for i in range(30):
            assert counted[i] <= elapsed / 0.5 + 2, (i, counted[i], elapsed)

        # Each probe's result reached etcd and every replica: all pass on B.
        # (A status change is one etcd transaction each; on a loaded machine
        # the last ones land after the probes counted above.)
        def passing_on_b() -> int:
            answer = agents["b"].get(
                "/v1/health/service/external", params={"passing": ""}
            )
            return len(answer.json())

        wait_for(lambda: passing_on_b() == 30)


def _probed(web: HttpTarget, i: int) -> int:
    return sum(1 for r in web.requests if r[1] == f"/ext/{i}")


def test_members_and_status_describe_agents_and_etcd(
    agents: Agents, etcd: EtcdCluster
) -> None:
    members = agents["b"].get("/v1/agent/members").json()
    assert sorted(m["Name"] for m in members) == ["a", "b", "c"]
    assert {m["Status"] for m in members} == {1}
    peers = agents["c"].get("/v1/status/peers").json()
    assert sorted(peers) == sorted(f"127.0.0.1:{m.peer_port}" for m in etcd.members)
    leader = agents["a"].get("/v1/status/leader").json()
    assert leader in peers
    config = agents["a"].get("/v1/operator/raft/configuration").json()
    assert sorted(s["Address"] for s in config["Servers"]) == sorted(peers)
    assert [s["Address"] for s in config["Servers"] if s["Leader"]] == [leader]
    assert config["Index"] > 0


def test_waypost_members_shows_the_agents_and_the_etcd_members(
    agents: Agents, etcd: EtcdCluster
) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "waypost", "members", "--http-addr",
         agents.process("c").address],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    for name in ("a", "b", "c"):
        assert any(line.split()[:1] == [name] and "alive" in line for line in lines)
    servers = [line for line in lines if line.startswith("etcd")]
    assert sorted(line.split()[0] for line in servers) == ["etcd0", "etcd1", "etcd2"]
    assert sum("leader" in line for line in servers) == 1


def _metrics(client: httpx.Client) -> dict[str, float]:
    """Prometheus samples of one agent, by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    text = client.get("/v1/agent/metrics", params={"format": "prometheus"}).text
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_show_etcd_round_trips_and_replica_lag(agents: Agents) -> None:
    a, b = agents["a"], agents["b"]
    a.put("/v1/agent/service/register", json={"Name": "metered"}).raise_for_status()
    written = index_of(a.get("/v1/catalog/service/metered"))
    round_trips = {
        name: count
        for name, count in _metrics(a).items()
        if name.startswith("waypost_etcd_request_duration_seconds_count")
    }
    assert (
        "waypost_etcd_request_duration_seconds_count[('method', 'Txn')]" in round_trips
    )
    assert all(count >= 1 for count in round_trips.values())

    def caught_up() -> bool:
        seen = _metrics(b)
        return (
            seen["waypost_etcd_replica_revision[]"] >= written
            and seen["waypost_etcd_revision[]"] >= written
            and seen["waypost_etcd_replica_lag_revisions[]"] == 0
        )

    wait_for(caught_up)
