"""Sessions and locks over HTTP on a real agent: Consul's wire shapes,
blocking queries, acquire/release, lock-delay, invalidation, restarts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import consul
import httpx
import pytest

from waypost.testing import AgentProcess, run_agent, wait_until


def _kv(http: httpx.Client, key: str) -> dict[str, object] | None:
    response = http.get(f"/v1/kv/{key}")
    if response.status_code == 404:
        return None
    entry: dict[str, object] = response.json()[0]
    return entry


def test_a_session_reads_back_in_consuls_shape(fresh_http: httpx.Client) -> None:
    body = {"Name": "web-lock", "LockDelay": "2s", "TTL": "15s", "Behavior": "delete"}
    created = fresh_http.put("/v1/session/create", json=body)
    assert created.status_code == 200
    session_id = created.json()["ID"]
    info = fresh_http.get(f"/v1/session/info/{session_id}")
    [session] = info.json()
    assert session == {
        "ID": session_id,
        "Name": "web-lock",
        "Node": "waypost-test",
        "LockDelay": 2_000_000_000,
        "Behavior": "delete",
        "TTL": "15s",
        "NodeChecks": ["serfHealth"],
        "ServiceChecks": None,
        "CreateIndex": session["CreateIndex"],
        "ModifyIndex": session["CreateIndex"],
    }
    assert info.headers["X-Consul-Index"] == str(session["CreateIndex"])
    assert fresh_http.get("/v1/session/node/waypost-test").json() == [session]
    assert fresh_http.get("/v1/session/node/other").json() == []
    renewed = fresh_http.put(f"/v1/session/renew/{session_id}")
    assert renewed.json() == [session]
    assert fresh_http.put("/v1/session/renew/nope").status_code == 404
    assert fresh_http.put(f"/v1/session/destroy/{session_id}").json() is True
    assert fresh_http.get(f"/v1/session/info/{session_id}").json() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"TTL": "5s"}, "Invalid Session TTL '5000000000', must be between"),
        ({"TTL": "25h"}, "Invalid Session TTL"),
        ({"TTL": "ten"}, "Session TTL 'ten' invalid"),
        ({"Behavior": "keep"}, "Invalid Behavior setting 'keep'"),
        ({"Node": "elsewhere"}, "Missing node registration"),
        ({"NodeChecks": ["nope"]}, "Missing check 'nope' registration"),
        ({"LockDelay": True}, "Request decode failed"),
        ({"Bogus": 1}, "Request decode failed"),
    ],
)
def test_bad_sessions_are_refused_with_a_400(
    http: httpx.Client, body: dict[str, object], message: str
) -> None:
    response = http.put("/v1/session/create", json=body)
    assert response.status_code == 400
    assert message in response.text


def test_a_blocking_session_list_wakes_on_create(fresh_http: httpx.Client) -> None:
    first = fresh_http.get("/v1/session/list")
    index = first.headers["X-Consul-Index"]
    created: list[str] = []

    def create() -> None:
        # Before or after the query parks, it must answer with the session.
        created.append(fresh_http.put("/v1/session/create").json()["ID"])

    thread = threading.Thread(target=create)
    started = time.monotonic()
    thread.start()
    blocked = fresh_http.get("/v1/session/list", params={"index": index, "wait": "10s"})
    thread.join()
    assert time.monotonic() - started < 5
    assert [s["ID"] for s in blocked.json()] == created
    assert int(blocked.headers["X-Consul-Index"]) > int(index)


def test_acquire_and_release_keep_consuls_lock_index(
    http: httpx.Client, shared_agent: AgentProcess, unique: str
) -> None:
    c = consul.Consul(port=shared_agent.port)
    s1 = c.session.create()
    s2 = c.session.create()
    key = f"{unique}/lock"
    assert c.kv.put(key, "a", acquire=s1) is True
    assert (_kv(http, key) or {})["LockIndex"] == 1
    assert c.kv.put(key, "b", acquire=s2) is False
    assert c.kv.put(key, "c", acquire=s1) is True  # re-acquire: same LockIndex
    entry = _kv(http, key) or {}
    assert (entry["LockIndex"], entry["Session"]) == (1, s1)
    assert c.kv.put(key, "d", release=s2) is False
    assert c.kv.put(key, "d", release=s1) is True
    entry = _kv(http, key) or {}
    assert (entry["LockIndex"], "Session" in entry) == (1, False)
    assert c.kv.put(key, "e", acquire=s2) is True  # no lock-delay after release
    assert (_kv(http, key) or {})["LockIndex"] == 2
    for sid in (s1, s2):
        c.session.destroy(sid)
    assert http.put(f"/v1/kv/{key}", params={"acquire": ""}).status_code == 400
    conflicting = http.put(f"/v1/kv/{key}", params={"acquire": s1, "cas": "0"})
    assert conflicting.status_code == 400


def test_lock_delay_refuses_the_key_after_its_session_ends(
    http: httpx.Client, unique: str
) -> None:
    holder = http.put("/v1/session/create", json={"LockDelay": "1s"}).json()["ID"]
    other = http.put("/v1/session/create", json={"LockDelay": "1s"}).json()["ID"]
    key = f"{unique}/lock"
    assert http.put(f"/v1/kv/{key}", params={"acquire": holder}).json() is True
    ended = time.monotonic()
    http.put(f"/v1/session/destroy/{holder}")
    assert http.put(f"/v1/kv/{key}", params={"acquire": other}).json() is False
    wait_until(
        lambda: http.put(f"/v1/kv/{key}", params={"acquire": other}).json() is True,
        timeout=10,
    )
    assert time.monotonic() - ended >= 1.0
    http.put(f"/v1/session/destroy/{other}")


def test_a_failing_check_invalidates_its_session(
    http: httpx.Client, unique: str
) -> None:
    http.put(
        "/v1/agent/service/register",
        json={"Name": unique, "Check": {"TTL": "30s", "Status": "passing"}},
    )
    check = f"service:{unique}"
    body = {"Checks": ["serfHealth", check], "LockDelay": "0s"}
    session = http.put("/v1/session/create", json=body).json()["ID"]
    assert http.get(f"/v1/session/info/{session}").json()[0]["Checks"] == [
        "serfHealth",
        check,
    ]
    key = f"{unique}/leader"
    assert http.put(f"/v1/kv/{key}", params={"acquire": session}).json() is True
    http.put(f"/v1/agent/check/fail/{check}")
    assert http.get(f"/v1/session/info/{session}").json() == []
    entry = _kv(http, key) or {}
    assert (entry["LockIndex"], "Session" in entry) == (1, False)
    # A critical check refuses new sessions, in Consul's words.
    refused = http.put("/v1/session/create", json=body)
    assert refused.status_code == 400
    assert refused.text == f"Check '{check}' is in critical state"
    http.put(f"/v1/agent/service/deregister/{unique}")


def test_deregistering_a_node_deletes_its_delete_sessions_keys(
    http: httpx.Client, unique: str
) -> None:
    node = f"{unique}-node"
    http.put("/v1/catalog/register", json={"Node": node, "Address": "10.1.1.1"})
    body = {"Node": node, "Checks": [], "Behavior": "delete"}
    session = http.put("/v1/session/create", json=body).json()["ID"]
    key = f"{unique}/k"
    assert http.put(f"/v1/kv/{key}", params={"acquire": session}).json() is True
    http.put("/v1/catalog/deregister", json={"Node": node})
    assert http.get(f"/v1/session/info/{session}").json() == []
    assert _kv(http, key) is None


def test_sessions_and_locks_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with (
        run_agent(dev=False, data_dir=data) as first,
        httpx.Client(base_url=first.url, timeout=30) as http,
    ):
        session = http.put("/v1/session/create", json={"TTL": "60s"}).json()["ID"]
        assert http.put("/v1/kv/leader", params={"acquire": session}).json() is True
        before = http.get(f"/v1/session/info/{session}").json()
    with (
        run_agent(dev=False, data_dir=data) as second,
        httpx.Client(base_url=second.url, timeout=30) as http,
    ):
        assert http.get(f"/v1/session/info/{session}").json() == before
        entry = _kv(http, "leader") or {}
        assert (entry["Session"], entry["LockIndex"]) == (session, 1)
        other = http.put("/v1/session/create").json()["ID"]
        assert http.put("/v1/kv/leader", params={"acquire": other}).json() is False
        assert http.put(f"/v1/session/renew/{session}").status_code == 200
