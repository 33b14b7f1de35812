"""`/v1/txn` on a real agent: Consul's result and error shapes, all or
nothing, one index per transaction, the limits, locks inside a txn."""

from __future__ import annotations

import base64

import httpx

from waypost.testing import AgentProcess


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _kv(verb: str, key: str, **fields: object) -> dict[str, object]:
    return {"KV": {"Verb": verb, "Key": key, **fields}}


def test_a_write_txn_takes_one_index_and_answers_consuls_shape(
    http: httpx.Client, unique: str
) -> None:
    a, b = f"{unique}/a", f"{unique}/b"
    response = http.put(
        "/v1/txn",
        json=[
            _kv("set", a, Value=_b64(b"1"), Flags=7),
            _kv("cas", b, Value=_b64(b"2"), Index=0),
            _kv("get", a),
            _kv("check-not-exists", f"{unique}/c"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["Errors"] is None
    results = [r["KV"] for r in body["Results"]]
    index = results[0]["ModifyIndex"]
    assert results == [
        {
            "LockIndex": 0,
            "Key": a,
            "Flags": 7,
            "Value": None,
            "CreateIndex": index,
            "ModifyIndex": index,
        },
        {
            "LockIndex": 0,
            "Key": b,
            "Flags": 0,
            "Value": None,
            "CreateIndex": index,
            "ModifyIndex": index,
        },
        {
            "LockIndex": 0,
            "Key": a,
            "Flags": 7,
            "Value": _b64(b"1"),
            "CreateIndex": index,
            "ModifyIndex": index,
        },
    ]
    assert http.get(f"/v1/kv/{b}").json()[0]["ModifyIndex"] == index


def test_a_failing_op_refuses_the_whole_txn_with_every_error(
    http: httpx.Client, unique: str
) -> None:
    a = f"{unique}/a"
    http.put(f"/v1/kv/{a}", content=b"old")
    before = http.get(f"/v1/kv/{a}").json()[0]
    response = http.put(
        "/v1/txn",
        json=[
            _kv("set", a, Value=_b64(b"new")),
            _kv("cas", f"{unique}/b", Value=_b64(b"x"), Index=1),
            _kv("check-index", f"{unique}/c", Index=3),
            _kv("frobnicate", a),
        ],
    )
    assert response.status_code == 409
    assert response.json() == {
        "Results": None,
        "Errors": [
            {"OpIndex": 1, "What": f'failed to set key "{unique}/b", index is stale'},
            {
                "OpIndex": 2,
                "What": f'failed to check index, key "{unique}/c" doesn\'t exist',
            },
            {"OpIndex": 3, "What": 'unknown KV verb "frobnicate"'},
        ],
    }
    assert http.get(f"/v1/kv/{a}").json()[0] == before
    assert http.get(f"/v1/kv/{unique}/b").status_code == 404


def test_a_read_only_txn_is_answered_with_results(
    http: httpx.Client, unique: str
) -> None:
    for name in ("x", "y"):
        http.put(f"/v1/kv/{unique}/{name}", content=name.encode())
    response = http.put("/v1/txn", json=[_kv("get-tree", f"{unique}/")])
    assert response.status_code == 200
    assert [(r["KV"]["Key"], r["KV"]["Value"]) for r in response.json()["Results"]] == [
        (f"{unique}/x", _b64(b"x")),
        (f"{unique}/y", _b64(b"y")),
    ]
    missing = http.put("/v1/txn", json=[_kv("get", f"{unique}/none")])
    assert missing.status_code == 409
    assert missing.json()["Errors"] == [
        {"OpIndex": 0, "What": f'key "{unique}/none" doesn\'t exist'}
    ]


def test_locks_inside_a_txn(http: httpx.Client, unique: str) -> None:
    session = http.put("/v1/session/create", json={"LockDelay": "0s"}).json()["ID"]
    other = http.put("/v1/session/create").json()["ID"]
    key = f"{unique}/lock"
    locked = http.put("/v1/txn", json=[_kv("lock", key, Session=session)])
    assert locked.json()["Results"][0]["KV"]["Session"] == session
    assert locked.json()["Results"][0]["KV"]["LockIndex"] == 1
    taken = http.put("/v1/txn", json=[_kv("lock", key, Session=other)])
    assert taken.status_code == 409
    assert taken.json()["Errors"][0]["What"] == (
        f'failed to lock key "{key}", lock is already held'
    )
    checked = http.put(
        "/v1/txn",
        json=[
            _kv("check-session", key, Session=session),
            _kv("unlock", key, Session=session),
        ],
    )
    assert checked.status_code == 200, checked.text
    assert "Session" not in http.get(f"/v1/kv/{key}").json()[0]
    for sid in (session, other):
        http.put(f"/v1/session/destroy/{sid}")


def test_node_service_and_check_ops(http: httpx.Client, unique: str) -> None:
    node = f"{unique}-node"
    response = http.put(
        "/v1/txn",
        json=[
            {"Node": {"Verb": "set", "Node": {"Node": node, "Address": "10.2.2.2"}}},
            {
                "Service": {
                    "Verb": "set",
                    "Node": node,
                    "Service": {"ID": "w1", "Service": unique, "Port": 80},
                }
            },
            {
                "Check": {
                    "Verb": "set",
                    "Check": {
                        "Node": node,
                        "CheckID": "c1",
                        "ServiceID": "w1",
                        "Status": "passing",
                    },
                }
            },
        ],
    )
    assert response.status_code == 200, response.text
    node_result, service_result, check_result = response.json()["Results"]
    assert node_result["Node"]["Node"] == node
    assert service_result["Service"]["Service"] == unique
    assert check_result["Check"]["ServiceName"] == unique
    index = node_result["Node"]["ModifyIndex"]
    assert service_result["Service"]["ModifyIndex"] == index
    entries = http.get(f"/v1/health/service/{unique}", params={"passing": ""}).json()
    assert [e["Service"]["ID"] for e in entries] == ["w1"]

    stale = http.put(
        "/v1/txn",
        json=[
            {
                "Node": {
                    "Verb": "delete-cas",
                    "Node": {"Node": node, "ModifyIndex": index - 1},
                }
            }
        ],
    )
    assert stale.json()["Errors"] == [
        {"OpIndex": 0, "What": f'failed to delete node "{node}", index is stale'}
    ]
    gone = http.put(
        "/v1/txn",
        json=[
            {
                "Node": {
                    "Verb": "delete-cas",
                    "Node": {"Node": node, "ModifyIndex": index},
                }
            }
        ],
    )
    assert gone.json() == {"Results": [], "Errors": None}
    assert http.get(f"/v1/health/service/{unique}").json() == []


def test_bad_transactions_get_a_4xx(http: httpx.Client) -> None:
    too_many = http.put("/v1/txn", json=[_kv("get", "k")] * 65)
    assert too_many.status_code == 413
    assert too_many.text == "Transaction contains too many operations (65 > 64)"
    for body in (b"{", b"[1]", b'[{"KV": {"Value": "!!"}}]', b'{"KV": {}}'):
        response = http.put("/v1/txn", content=body)
        assert response.status_code == 400, body
        assert response.text.startswith("Failed to parse body: "), response.text
    empty_key = http.put("/v1/txn", json=[_kv("set", "")])
    assert empty_key.json()["Errors"] == [{"OpIndex": 0, "What": "Must provide key"}]


def test_txn_results_on_a_fresh_agent_need_no_shared_state(agent: AgentProcess) -> None:
    with httpx.Client(base_url=agent.url) as http:
        assert http.put("/v1/txn", json=[]).json() == {"Results": [], "Errors": None}
