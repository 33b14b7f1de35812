"""`/v1/event/*` against real agents: Consul's wire format, filters, the
256-event buffer, blocking lists, ACLs, and delivery to every agent of a
cluster."""

from __future__ import annotations

import base64
import threading
import time
import uuid

import httpx
import pytest

from waypost.core.events import uuid_to_uint64
from waypost.testing import EtcdCluster, run_agent


def _index(response: httpx.Response) -> int:
    return int(response.headers["X-Consul-Index"])


def test_fire_answers_the_event_and_list_shows_it(fresh_http: httpx.Client) -> None:
    empty = fresh_http.get("/v1/event/list")
    assert empty.json() == []
    assert _index(empty) == 1  # Consul: never 0, no hot loop
    fired = fresh_http.put("/v1/event/fire/deploy", content=b"v1.2.3")
    assert fired.status_code == 200
    event = fired.json()
    assert set(event) == {
        "ID",
        "Name",
        "Payload",
        "NodeFilter",
        "ServiceFilter",
        "TagFilter",
        "Version",
        "LTime",
    }
    assert str(uuid.UUID(event["ID"])) == event["ID"]
    assert event["Name"] == "deploy"
    assert base64.b64decode(event["Payload"]) == b"v1.2.3"
    assert (event["Version"], event["LTime"]) == (1, 0)
    bare = fresh_http.put("/v1/event/fire/bare").json()
    assert bare["Payload"] is None
    listed = fresh_http.get("/v1/event/list")
    events = listed.json()
    assert [e["Name"] for e in events] == ["deploy", "bare"]
    assert events[0]["ID"] == event["ID"]
    assert 0 < events[0]["LTime"] < events[1]["LTime"]
    assert _index(listed) == uuid_to_uint64(bare["ID"])
    named = fresh_http.get("/v1/event/list", params={"name": "deploy"})
    assert [e["ID"] for e in named.json()] == [event["ID"]]
    assert _index(named) == uuid_to_uint64(event["ID"])


def test_an_agent_keeps_the_last_256_events(fresh_http: httpx.Client) -> None:
    ids = [
        fresh_http.put(f"/v1/event/fire/e{i}", content=str(i).encode()).json()["ID"]
        for i in range(300)
    ]
    listed = fresh_http.get("/v1/event/list").json()
    assert [e["ID"] for e in listed] == ids[-256:]


def test_filters_decide_which_agents_keep_the_event(fresh_http: httpx.Client) -> None:
    node = fresh_http.get("/v1/agent/self").json()["Config"]["NodeName"]
    fresh_http.put(
        "/v1/agent/service/register", json={"Name": "web", "Tags": ["blue"]}
    ).raise_for_status()
    cases = {
        "node-yes": ({"node": f"^{node}$"}, True),
        "node-no": ({"node": "^nobody$"}, False),
        "service-yes": ({"service": "we."}, True),
        "service-no": ({"service": "^db$"}, False),
        "tag-yes": ({"service": "web", "tag": "blu"}, True),
        "tag-no": ({"service": "web", "tag": "^green$"}, False),
    }
    for name, (params, _kept) in cases.items():
        fired = fresh_http.put(f"/v1/event/fire/{name}", params=params)
        assert fired.status_code == 200, fired.text
        assert fired.json()["NodeFilter"] == params.get("node", "")
    listed = {e["Name"] for e in fresh_http.get("/v1/event/list").json()}
    assert listed == {name for name, (_, kept) in cases.items() if kept}


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({"tag": "x"}, b"", "Cannot provide tag filter without service filter"),
        ({"node": "("}, b"", "Invalid node filter"),
        ({"service": "[a"}, b"", "Invalid service filter"),
        ({}, b"x" * 600, "exceeds configured limit of 512 bytes"),
        ({"dc": "other"}, b"", "No path to datacenter"),
    ],
)
def test_bad_events_are_refused(
    fresh_http: httpx.Client, params: dict[str, str], body: bytes, message: str
) -> None:
    answer = fresh_http.put("/v1/event/fire/bad", params=params, content=body)
    assert answer.status_code == 400
    assert message in answer.text
    assert fresh_http.get("/v1/event/list").json() == []


def test_missing_name_is_refused(fresh_http: httpx.Client) -> None:
    answer = fresh_http.put("/v1/event/fire/")
    assert (answer.status_code, answer.text) == (400, "Missing name")


def test_a_blocking_list_waits_for_the_next_event(fresh_http: httpx.Client) -> None:
    first = fresh_http.put("/v1/event/fire/one").json()
    index = _index(fresh_http.get("/v1/event/list"))
    assert index == uuid_to_uint64(first["ID"])
    # Another index than the current one: answered at once.
    started = time.monotonic()
    fresh_http.get("/v1/event/list", params={"index": "7", "wait": "30s"})
    assert time.monotonic() - started < 5
    # The current one and a short wait: answered after the wait.
    started = time.monotonic()
    timed = fresh_http.get("/v1/event/list", params={"index": index, "wait": "1s"})
    assert 0.9 <= time.monotonic() - started < 10
    assert _index(timed) == index
    answers: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            fresh_http.get("/v1/event/list", params={"index": index, "wait": "60s"})
        )
    )
    waiter.start()
    time.sleep(0.3)  # let it park; the bound below is what is asserted
    started = time.monotonic()
    second = fresh_http.put("/v1/event/fire/two").json()
    waiter.join(20)
    assert answers, "the blocking list was not woken"
    assert time.monotonic() - started < 10
    assert _index(answers[0]) == uuid_to_uint64(second["ID"])
    assert [e["Name"] for e in answers[0].json()] == ["one", "two"]


def test_events_need_event_rules() -> None:
    token = str(uuid.uuid4())
    args = ["--acl-enabled", "--acl-default-policy", "deny"]
    with (
        run_agent(extra_args=[*args, "--acl-initial-management", token]) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as http,
    ):
        mgmt = {"X-Consul-Token": token}
        policy = http.put(
            "/v1/acl/policy",
            headers=mgmt,
            json={
                "Name": "deployer",
                "Rules": 'event "deploy" { policy = "write" }\n'
                'event_prefix "" { policy = "deny" }',
            },
        ).json()
        secret = http.put(
            "/v1/acl/token",
            headers=mgmt,
            json={"Policies": [{"ID": policy["ID"]}]},
        ).json()["SecretID"]
        deployer = {"X-Consul-Token": secret}
        assert http.put("/v1/event/fire/deploy").status_code == 403
        assert http.put("/v1/event/fire/restart", headers=deployer).status_code == 403
        assert http.put("/v1/event/fire/deploy", headers=deployer).status_code == 200
        assert http.put("/v1/event/fire/restart", headers=mgmt).status_code == 200
        seen = http.get("/v1/event/list", headers=deployer)
        assert [e["Name"] for e in seen.json()] == ["deploy"]
        assert seen.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
        everything = http.get("/v1/event/list", headers=mgmt).json()
        assert [e["Name"] for e in everything] == ["deploy", "restart"]


def _names(http: httpx.Client) -> list[str]:
    return [e["Name"] for e in http.get("/v1/event/list").json()]


def test_an_event_fired_on_one_agent_reaches_every_agent() -> None:
    with EtcdCluster(3) as etcd:
        args = ["--etcd", etcd.endpoints, "--etcd-prefix", "/events"]
        with (
            run_agent(node="ev-a", extra_args=args) as one,
            run_agent(node="ev-b", extra_args=args) as two,
            httpx.Client(base_url=one.url, timeout=30) as a,
            httpx.Client(base_url=two.url, timeout=30) as b,
        ):
            fired = a.put("/v1/event/fire/everyone", content=b"hi").json()
            # The firing agent has it when fire answers (read-your-writes).
            assert _names(a) == ["everyone"]
            b.put("/v1/event/fire/only-b", params={"node": "^ev-b$"})
            deadline = time.monotonic() + 20
            while _names(b) != ["everyone", "only-b"]:
                assert time.monotonic() < deadline, _names(b)
                time.sleep(0.05)
            listed_b = b.get("/v1/event/list").json()
            assert listed_b[0]["ID"] == fired["ID"]
            assert listed_b[0]["LTime"] < listed_b[1]["LTime"]
            # The node filter kept it off agent a.
            a.put("/v1/event/fire/last")
            while _names(a) != ["everyone", "last"]:
                assert time.monotonic() < deadline, _names(a)
                time.sleep(0.05)
