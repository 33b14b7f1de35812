"""Cluster mode in the dashboard: the registry's members on the ring, their
share of the check duty, and etcd's state, from three real agents on a real
three-member etcd."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.support import Agents, needs_etcd, wait_for
from tests.ui.conftest import DESKTOP
from tests.ui.test_dashboard import Tab

from waypost.testing import EtcdCluster

pw = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
expect = pw.expect

pytestmark = needs_etcd

EXTERNAL = 30  # external nodes, one check each: the ring shares them out


@pytest.fixture(scope="module")
def cluster() -> Iterator[Agents]:
    with EtcdCluster(3) as etcd, Agents(etcd) as agents:
        for i in range(EXTERNAL):
            body = {
                "Node": f"ext-{i:02d}",
                "Address": f"10.2.0.{i}",
                "Service": {"Service": "legacy", "ID": f"legacy-{i}", "Port": 80},
                "Check": {
                    "CheckID": f"legacy-{i}-alive",
                    "ServiceID": f"legacy-{i}",
                    "Status": "passing",
                },
            }
            assert agents["a"].put("/v1/catalog/register", json=body).status_code == 200
        wait_for(lambda: len(agents["a"].get("/ui/api/ring").json()["Members"]) == 3)
        yield agents


def test_the_ring_splits_the_circle_and_the_checks_among_live_members(
    cluster: Agents,
) -> None:
    ring = cluster["b"].get("/ui/api/ring").json()
    assert ring["Mode"] == "cluster" and ring["Self"] == "b"
    members = {m["Name"]: m for m in ring["Members"]}
    assert set(members) == {"a", "b", "c"}
    assert all(m["Alive"] for m in members.values())
    assert sum(m["Share"] for m in members.values()) == pytest.approx(1.0, abs=1e-4)
    assert all(0.2 < m["Share"] < 0.47 for m in members.values()), members
    # The arcs cover the circle once, in order, each owned by a member.
    arcs = ring["Arcs"]
    assert arcs[0][0] == 0.0 and arcs[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in pairwise(arcs))
    assert {owner for _, _, owner in arcs} == {"a", "b", "c"}
    # Every check has one owner: each agent its own node's, the ring the rest.
    checks = cluster["a"].get("/v1/health/state/any").json()
    assert sum(m["Checks"] for m in members.values()) == len(checks)
    own = {name: sum(1 for c in checks if c["Node"] == name) for name in members}
    assert all(members[n]["Checks"] >= own[n] for n in members)
    assert sum(members[n]["Checks"] - own[n] for n in members) == EXTERNAL


def test_the_nodes_and_health_pages_draw_the_cluster(
    browser: Any, cluster: Agents, screenshots: Path
) -> None:
    agent = cluster.process("a")
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport=DESKTOP, color_scheme=scheme)
        try:
            tab = Tab(context.new_page(), agent)
            page = tab.open("#/nodes")
            legend = page.locator("tr[data-member]")
            expect(legend).to_have_count(3, timeout=10_000)
            for colour in ("m0", "m1", "m2"):
                expect(
                    page.locator(f"#ring-figure path.arc.{colour}").first
                ).to_be_attached()
            expect(page.locator('tr[data-member="a"]')).to_contain_text("this agent")
            suffix = "" if scheme == "light" else "-dark"
            page.screenshot(
                path=str(screenshots / f"nodes-cluster-desktop{suffix}.png"),
                full_page=True,
            )
            page.goto(f"{agent.url}/ui/#/health")
            etcd = page.locator("#cluster")
            expect(etcd).to_contain_text("etcd has a leader", timeout=10_000)
            expect(etcd.locator("tbody tr")).to_have_count(3)
            expect(etcd.get_by_text("leader", exact=True)).to_have_count(1)
            expect(page.locator("#beats-rate")).not_to_contain_text("measuring")
            page.screenshot(
                path=str(screenshots / f"health-cluster-desktop{suffix}.png"),
                full_page=True,
            )
            assert tab.errors == []
        finally:
            context.close()


def test_a_member_that_leaves_leaves_the_drawing(browser: Any, cluster: Agents) -> None:
    """Last: stops agent c. The page polls the ring every 5 s; c's lease
    is 3 s."""
    agent = cluster.process("a")
    context = browser.new_context(viewport=DESKTOP)
    try:
        tab = Tab(context.new_page(), agent)
        page = tab.open("#/nodes")
        expect(page.locator("tr[data-member]")).to_have_count(3, timeout=10_000)
        cluster.process("c").stop()
        expect(page.locator("tr[data-member]")).to_have_count(2, timeout=20_000)
        expect(page.locator('tr[data-member="c"]')).to_have_count(0)
        expect(page.locator("#ring-figure path.arc.m2")).to_have_count(0)
        assert tab.errors == []
    finally:
        context.close()
