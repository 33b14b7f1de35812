"""Config entries, intentions, the Connect CA and the raft/autopilot views in
cluster mode: one state in etcd, whichever agent is asked."""

from __future__ import annotations

from tests.cluster.support import Agents, needs_etcd
from waypost.testing import EtcdCluster, wait_until

pytestmark = needs_etcd


def test_config_entries_and_their_cas_are_shared_by_every_agent(
    agents: Agents,
) -> None:
    a, b, c = agents["a"], agents["b"], agents["c"]
    entry = {"Kind": "service-defaults", "Name": "web", "Protocol": "http"}
    assert a.put("/v1/config?cas=0", json=entry).json() is True
    # c may not have applied a's write yet: a failed CAS waits for it.
    assert c.put("/v1/config?cas=0", json=entry).json() is False
    seen = b.get("/v1/config/service-defaults/web", params={"consistent": ""})
    assert seen.json()["Protocol"] == "http"
    intention = {"source": "api", "destination": "web"}
    exact = "/v1/connect/intentions/exact"
    assert b.put(exact, params=intention, json={"Action": "deny"}).json() is True
    check = "/v1/connect/intentions/check"
    wait_until(lambda: c.get(check, params=intention).json()["Allowed"] is False)


def test_one_ca_root_whichever_agent_asks_first(agents: Agents) -> None:
    a, b, c = agents["a"], agents["b"], agents["c"]
    answers = [x.get("/v1/connect/ca/roots").json() for x in (a, b, c)]
    wait_until(
        lambda: (
            len(
                {
                    x.get("/v1/connect/ca/roots").json()["ActiveRootID"]
                    for x in (a, b, c)
                }
            )
            == 1
        )
    )
    final = a.get("/v1/connect/ca/roots", params={"consistent": ""}).json()
    assert len(final["Roots"]) == 1
    assert all(answer["TrustDomain"] == final["TrustDomain"] for answer in answers)


def test_autopilot_health_shows_the_etcd_members(
    agents: Agents, etcd: EtcdCluster
) -> None:
    health = agents["a"].get("/v1/operator/autopilot/health")
    assert health.status_code == 200
    body = health.json()
    assert body["Healthy"] is True
    assert len(body["Servers"]) == len(etcd.members)
    assert sum(1 for s in body["Servers"] if s["Leader"]) == 1
    assert body["FailureTolerance"] == 1
    state = agents["b"].get("/v1/operator/autopilot/state").json()
    assert state["Leader"] in state["Servers"]
