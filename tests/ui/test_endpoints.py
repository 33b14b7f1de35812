"""The dashboard's own reads over HTTP: the summaries' numbers, their
blocking behaviour, the ring, the static files."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from waypost.testing import AgentProcess


def _register(http: httpx.Client, name: str, sid: str, status: str) -> None:
    body = {"Name": name, "ID": sid, "Tags": [sid], "Check": {"TTL": "10m"}}
    assert http.put("/v1/agent/service/register", json=body).status_code == 200
    verb = {"passing": "pass", "warning": "warn", "critical": "fail"}[status]
    assert http.put(f"/v1/agent/check/{verb}/service:{sid}").status_code == 200


def test_services_summary_counts_instances_by_status(
    http: httpx.Client, unique: str
) -> None:
    for i, status in enumerate(["passing", "passing", "warning", "critical"]):
        _register(http, unique, f"{unique}-{i}", status)
    http.put(f"/v1/agent/service/maintenance/{unique}-1?enable=true")
    rows = {r["Name"]: r for r in http.get("/v1/internal/ui/services").json()}
    row = rows[unique]
    assert row["InstanceCount"] == 4
    assert (
        row["InstancesPassing"],
        row["InstancesWarning"],
        row["InstancesCritical"],
        row["InstancesMaintenance"],
    ) == (1, 1, 1, 1)
    assert row["Tags"] == sorted(f"{unique}-{i}" for i in range(4))
    # Consul's check counts: every distinct check once (serfHealth included).
    assert row["ChecksCritical"] == 2  # one TTL check, one maintenance check
    assert row["Datacenter"] == "dc1" and row["Kind"] == ""


def test_services_summary_is_one_blocking_query_woken_by_a_status_change(
    http: httpx.Client, unique: str
) -> None:
    _register(http, unique, f"{unique}-0", "passing")
    first = http.get("/v1/internal/ui/services")
    index = int(first.headers["X-Consul-Index"])

    def fail_soon() -> None:
        time.sleep(0.2)  # the change must come while the query waits
        # Its own connection: httpx's pool is not shared across threads.
        with httpx.Client(base_url=http.base_url, headers=http.headers) as own:
            own.put(f"/v1/agent/check/fail/service:{unique}-0").raise_for_status()

    started = time.monotonic()
    failer = threading.Thread(target=fail_soon)
    failer.start()
    woken = http.get(f"/v1/internal/ui/services?index={index}&wait=30s")
    failer.join(10)  # never outlives the test (and its client)
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed  # woken by the change, not by the 30 s wait
    assert int(woken.headers["X-Consul-Index"]) > index
    row = next(r for r in woken.json() if r["Name"] == unique)
    assert row["InstancesCritical"] == 1


def test_nodes_summary_lists_services_and_checks(
    http: httpx.Client, unique: str, shared_agent: AgentProcess
) -> None:
    _register(http, unique, f"{unique}-0", "passing")
    nodes = {n["Node"]: n for n in http.get("/v1/internal/ui/nodes").json()}
    node = nodes[shared_agent.node]
    assert f"{unique}-0" in [s["ID"] for s in node["Services"]]
    assert f"service:{unique}-0" in [c["CheckID"] for c in node["Checks"]]


def test_the_ring_of_one_agent_is_the_whole_circle(
    http: httpx.Client, shared_agent: AgentProcess
) -> None:
    ring = http.get("/ui/api/ring").json()
    assert ring["Mode"] == "single"
    assert ring["Arcs"] == [[0.0, 1.0, shared_agent.node]]
    (member,) = ring["Members"]
    assert member["Name"] == shared_agent.node and member["Share"] == 1.0
    checks = len(http.get("/v1/health/state/any").json())
    assert member["Checks"] == checks


@pytest.mark.parametrize("path", ["/v1/internal/ui/services", "/v1/internal/ui/nodes"])
def test_another_datacenter_is_a_400(http: httpx.Client, path: str) -> None:
    response = http.get(f"{path}?dc=elsewhere")
    assert response.status_code == 400
    assert response.text == "No path to datacenter"


def test_unknown_internal_paths_stay_404(http: httpx.Client) -> None:
    response = http.get("/v1/internal/ui/catalog-overview")
    assert response.status_code == 404


def test_the_page_and_its_files_are_served_with_a_strict_policy(
    http: httpx.Client,
) -> None:
    page = http.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<script type="module" src="app.js">' in page.text
    script = http.get("/ui/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    again = http.get("/ui/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # A page's address (routed in the browser) is the page; a file is not.
    assert http.get("/ui/services/web").text == page.text
    assert http.get("/ui/nope.js").status_code == 404
    moved = http.get("/ui")
    assert moved.status_code == 301 and moved.headers["location"] == "/ui/"
    assert http.post("/ui/").status_code == 405


def test_a_summary_row_follows_its_nodes_checks(agent: AgentProcess) -> None:
    """Rows are reused while their service is unchanged; a node-level check
    (node maintenance) changes every instance on the node, and the row."""
    with httpx.Client(base_url=agent.url, timeout=30) as http:
        _register(http, "steady", "steady-1", "passing")
        _register(http, "other", "other-1", "passing")

        def row(name: str) -> dict[str, object]:
            rows = http.get("/v1/internal/ui/services").json()
            return next(r for r in rows if r["Name"] == name)

        assert row("steady")["InstancesPassing"] == 1
        http.put("/v1/agent/check/fail/service:other-1")
        assert row("other")["InstancesCritical"] == 1
        assert row("steady")["InstancesPassing"] == 1
        assert http.put("/v1/agent/maintenance?enable=true").status_code == 200
        assert row("steady")["InstancesMaintenance"] == 1
        assert http.put("/v1/agent/maintenance?enable=false").status_code == 200
        assert row("steady")["InstancesPassing"] == 1
        http.put("/v1/agent/service/deregister/steady-1")
        names = [r["Name"] for r in http.get("/v1/internal/ui/services").json()]
        assert "steady" not in names

        def node_checks() -> dict[str, str]:
            (node,) = http.get("/v1/internal/ui/nodes").json()
            return {c["CheckID"]: c["Status"] for c in node["Checks"]}

        assert node_checks()["service:other-1"] == "critical"
        http.put("/v1/agent/check/pass/service:other-1")
        assert node_checks()["service:other-1"] == "passing"
        http.put("/v1/agent/service/deregister/other-1")
        assert "service:other-1" not in node_checks()
