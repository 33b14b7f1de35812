"""`/v1/coordinate/*` and `?near=` against real agents, and agents of a
cluster measuring their round trips to each other."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import pytest

from waypost.testing import EtcdCluster, run_agent

ORIGIN = {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}


def _coord(x: float) -> dict[str, object]:
    return {"Vec": [x] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5}


def _index(response: httpx.Response) -> int:
    return int(response.headers["X-Consul-Index"])


def _register(http: httpx.Client, node: str, x: float | None) -> None:
    http.put(
        "/v1/catalog/register",
        json={
            "Node": node,
            "Address": "10.1.1.1",
            "Service": {"Service": "web", "ID": f"web-{node}"},
            "Check": {"CheckID": f"c-{node}", "Name": "c", "ServiceID": f"web-{node}"},
        },
    ).raise_for_status()
    if x is not None:
        answer = http.put(
            "/v1/coordinate/update", json={"Node": node, "Coord": _coord(x)}
        )
        assert (answer.status_code, answer.json()) == (200, True)


def test_an_agent_has_a_coordinate_from_the_start(fresh_http: httpx.Client) -> None:
    node = fresh_http.get("/v1/agent/self").json()["Config"]["NodeName"]
    dcs = fresh_http.get("/v1/coordinate/datacenters").json()
    assert dcs == [
        {
            "Datacenter": "dc1",
            "AreaID": "WAN",
            "Coordinates": [{"Node": node, "Segment": "", "Coord": ORIGIN}],
        }
    ]
    listed = fresh_http.get("/v1/coordinate/nodes")
    assert listed.json() == [{"Node": node, "Segment": "", "Coord": ORIGIN}]
    assert fresh_http.get(f"/v1/coordinate/node/{node}").json() == listed.json()
    assert fresh_http.get("/v1/coordinate/node/nobody").status_code == 404


def test_update_is_a_write_that_wakes_blocking_reads(fresh_http: httpx.Client) -> None:
    _register(fresh_http, "n1", None)
    index = _index(fresh_http.get("/v1/coordinate/nodes"))
    answers: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            fresh_http.get(
                "/v1/coordinate/nodes", params={"index": index, "wait": "60s"}
            )
        )
    )
    waiter.start()
    time.sleep(0.3)  # let it park; the bound below is what is asserted
    started = time.monotonic()
    _register(fresh_http, "n1", 0.25)
    waiter.join(20)
    assert answers and time.monotonic() - started < 10
    assert _index(answers[0]) > index
    entry = fresh_http.get("/v1/coordinate/node/n1").json()[0]
    assert entry["Coord"] == _coord(0.25)
    # The same coordinate again writes nothing.
    same = _index(fresh_http.get("/v1/coordinate/nodes"))
    _register(fresh_http, "n1", 0.25)
    assert _index(fresh_http.get("/v1/coordinate/nodes")) == same
    # Its node deregistered, the coordinate goes too.
    fresh_http.put("/v1/catalog/deregister", json={"Node": "n1"}).raise_for_status()
    assert fresh_http.get("/v1/coordinate/node/n1").status_code == 404


def test_updates_for_unknown_nodes_are_dropped(fresh_http: httpx.Client) -> None:
    answer = fresh_http.put(
        "/v1/coordinate/update", json={"Node": "ghost", "Coord": _coord(1.0)}
    )
    assert (answer.status_code, answer.json()) == (200, True)
    assert fresh_http.get("/v1/coordinate/node/ghost").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Coord": _coord(1.0)}, "Missing node name"),
        ({"Node": "x"}, "Missing Coord"),
        ({"Node": "x", "Coord": {"Vec": [1, 2]}}, "dimensionality"),
        ({"Node": "x", "Coord": {"Vec": ["a"] * 8}}, "Coord.Vec"),
        ({"Node": "x", "Coord": {**_coord(1.0), "Error": "big"}}, "Coord.Error"),
        ('{"Node": "x", "Coord": {"Vec": [0,0,0,0,0,0,0,1e400]}}', "out of range"),
        ("[1, 2]", "not a JSON object"),
        ("{", "Request decode failed"),
    ],
)
def test_bad_updates_are_refused(
    fresh_http: httpx.Client, body: dict[str, object] | str, message: str
) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    answer = fresh_http.put("/v1/coordinate/update", content=content)
    assert answer.status_code == 400
    assert message in answer.text


def test_near_sorts_catalog_and_health_answers(fresh_http: httpx.Client) -> None:
    for node, x in (("far", 0.5), ("close", 0.001), ("mid", 0.05)):
        _register(fresh_http, node, x)
    _register(fresh_http, "unmeasured", None)
    paths = {
        "/v1/catalog/service/web": lambda e: e["Node"],
        "/v1/health/service/web": lambda e: e["Node"]["Node"],
        "/v1/health/checks/web": lambda e: e["Node"],
        "/v1/health/state/any": lambda e: e["Node"],
    }
    for path, node_of in paths.items():
        plain = [node_of(e) for e in fresh_http.get(path).json()]
        assert plain == sorted(plain), path  # by name without ?near
        for near, want in (
            ("_agent", ["close", "mid", "far", "unmeasured"]),
            ("far", ["far", "mid", "close", "unmeasured"]),
        ):
            got = [
                node_of(e) for e in fresh_http.get(path, params={"near": near}).json()
            ]
            got = [n for n in got if n in want]
            assert got == want, (path, near)
        # A source without a coordinate: the answer as it was.
        unsorted = fresh_http.get(path, params={"near": "unmeasured"}).json()
        assert [node_of(e) for e in unsorted] == plain, path
    nodes = fresh_http.get("/v1/catalog/nodes", params={"near": "_agent"}).json()
    assert [n["Node"] for n in nodes][1:] == ["close", "mid", "far", "unmeasured"]


def test_near_answers_follow_coordinate_changes(fresh_http: httpx.Client) -> None:
    _register(fresh_http, "a", 0.01)
    _register(fresh_http, "b", 0.5)
    first = fresh_http.get("/v1/catalog/service/web", params={"near": "_agent"})
    assert [e["Node"] for e in first.json()] == ["a", "b"]
    _register(fresh_http, "b", 0.001)
    second = fresh_http.get("/v1/catalog/service/web", params={"near": "_agent"})
    assert [e["Node"] for e in second.json()] == ["b", "a"]
    assert _index(second) > _index(first)


def test_coordinate_acls() -> None:
    token = str(uuid.uuid4())
    args = ["--acl-enabled", "--acl-default-policy", "deny"]
    with (
        run_agent(extra_args=[*args, "--acl-initial-management", token]) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        mgmt = {"X-Consul-Token": token}
        with httpx.Client(base_url=agent.url, headers=mgmt) as admin:
            _register(admin, "n1", 0.1)
        body = {"Node": "n1", "Coord": _coord(0.2)}
        assert http.put("/v1/coordinate/update", json=body).status_code == 403
        assert http.get("/v1/coordinate/nodes").json() == []
        assert http.get("/v1/coordinate/datacenters").status_code == 200
        assert len(http.get("/v1/coordinate/nodes", headers=mgmt).json()) == 2


def test_agents_of_a_cluster_measure_their_round_trips() -> None:
    """Each agent probes the others and writes its coordinate: within a
    deadline every agent has moved off the origin (lower error) and every
    agent sees every agent's coordinate."""
    with EtcdCluster(3) as etcd:
        args = ["--etcd", etcd.endpoints, "--etcd-prefix", "/rtt"]
        with (
            run_agent(node="rtt-a", extra_args=args) as one,
            run_agent(node="rtt-b", extra_args=args) as two,
            run_agent(node="rtt-c", extra_args=args) as three,
        ):
            deadline = time.monotonic() + 60
            for agent in (one, two, three):
                with httpx.Client(base_url=agent.url, timeout=30) as http:
                    while True:
                        listed = {
                            e["Node"]: e["Coord"]
                            for e in http.get("/v1/coordinate/nodes").json()
                        }
                        measured = {n for n, c in listed.items() if c["Error"] < 1.5}
                        if measured >= {"rtt-a", "rtt-b", "rtt-c"}:
                            break
                        assert time.monotonic() < deadline, listed
                        time.sleep(0.2)
                    dcs = http.get("/v1/coordinate/datacenters").json()
                    assert {c["Node"] for c in dcs[0]["Coordinates"]} == {
                        "rtt-a",
                        "rtt-b",
                        "rtt-c",
                    }
                    near = http.get("/v1/catalog/nodes", params={"near": "_agent"})
                    assert len(near.json()) == 3
