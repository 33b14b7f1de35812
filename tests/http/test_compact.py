"""The compact answer (`Accept: application/vnd.waypost.compact+msgpack`):
the same content as Consul's JSON, with the same index and blocking, for
random catalogs on a real agent."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from waypost.client._base import Answer
from waypost.client._calls import instances_call
from waypost.compact import MEDIA_TYPE, expand_catalog, expand_health
from waypost.testing import AgentProcess, run_agent

COMPACT = {"Accept": MEDIA_TYPE}
_examples = itertools.count()


@pytest.fixture(scope="module")
def catalog_agent() -> Iterator[AgentProcess]:
    """An agent of this module's own: maintenance and external nodes stay here."""
    with run_agent(extra_args=["--self-preservation", "off"]) as agent:
        yield agent


@pytest.fixture(scope="module")
def api(catalog_agent: AgentProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=catalog_agent.url, timeout=30) as client:
        yield client


# ------------------------------------------------------------ random catalogs

STATUS = st.sampled_from(["passing", "warning", "critical"])
WORD = st.text(alphabet="abcdefgh0123-", min_size=1, max_size=6)
INSTANCE = st.fixed_dictionaries(
    {
        "node": st.sampled_from([None, None, "a", "b"]),  # None: the agent's own
        "port": st.integers(1, 65535),
        "address": st.sampled_from(["", "10.0.0.7", "2001:db8::1", "api.example"]),
        "tags": st.lists(st.sampled_from(["a", "b", "v1", "blue"]), unique=True),
        "meta": st.dictionaries(st.sampled_from(["env", "zone", "weight"]), WORD),
        "weights": st.none() | st.tuples(st.integers(1, 9), st.integers(1, 9)),
        "checks": st.lists(STATUS, max_size=3),
        "later": st.none() | STATUS,  # the first check changes status afterwards
        "maintenance": st.booleans(),
    }
)
NODE = st.fixed_dictionaries(
    {
        "address": st.sampled_from(["192.0.2.1", "192.0.2.2", "node.example"]),
        "meta": st.dictionaries(
            st.sampled_from(["env", "rack"]), st.sampled_from(["a", "b"]) | WORD
        ),
        "tagged": st.booleans(),
        "check": st.none() | STATUS,  # a node-level check
    }
)
CATALOG = st.fixed_dictionaries(
    {
        "instances": st.lists(INSTANCE, max_size=6),
        "nodes": st.fixed_dictionaries({"a": NODE, "b": NODE}),
    }
)


def build(api: httpx.Client, plan: dict[str, Any]) -> str:
    """Register the plan under a fresh service name; return the name."""
    service = f"compact{next(_examples)}"
    nodes = {
        key: {**spec, "name": f"{service}-node-{key}"}
        for key, spec in plan["nodes"].items()
    }
    for key, spec in plan["nodes"].items():
        if spec["check"] is not None:
            _catalog_register(api, nodes[key], None, [("node-health", spec["check"])])
    for n, instance in enumerate(plan["instances"]):
        service_id = f"{service}-{n}"
        body: dict[str, Any] = {
            "Name": service,
            "ID": service_id,
            "Port": instance["port"],
            "Address": instance["address"],
            "Tags": instance["tags"],
            "Meta": instance["meta"],
        }
        if instance["weights"] is not None:
            passing, warning = instance["weights"]
            body["Weights"] = {"Passing": passing, "Warning": warning}
        checks = [f"{service_id}-check-{k}" for k in range(len(instance["checks"]))]
        if instance["node"] is None:
            body["Checks"] = [
                {"CheckID": check, "TTL": "10m", "Status": status}
                for check, status in zip(checks, instance["checks"], strict=True)
            ]
            api.put("/v1/agent/service/register", json=body).raise_for_status()
            if instance["later"] is not None and checks:
                verb = {"passing": "pass", "warning": "warn", "critical": "fail"}
                path = f"/v1/agent/check/{verb[instance['later']]}/{checks[0]}"
                api.put(path).raise_for_status()
            if instance["maintenance"]:
                path = f"/v1/agent/service/maintenance/{service_id}?enable=true"
                api.put(path).raise_for_status()
        else:
            node = nodes[instance["node"]]
            statuses = list(zip(checks, instance["checks"], strict=True))
            _catalog_register(api, node, body, statuses)
            if instance["later"] is not None and checks:
                statuses[0] = (checks[0], instance["later"])
                _catalog_register(api, node, body, statuses)
    return service


def _catalog_register(
    api: httpx.Client,
    node: dict[str, Any],
    service: dict[str, Any] | None,
    checks: list[tuple[str, str]],
) -> None:
    body: dict[str, Any] = {
        "Node": node["name"],
        "Address": node["address"],
        "NodeMeta": node["meta"],
    }
    if node["tagged"]:
        body["TaggedAddresses"] = {"lan": node["address"], "wan": "198.51.100.9"}
    if service is not None:
        body["Service"] = {
            ("Service" if key == "Name" else key): value
            for key, value in service.items()
        }
    body["Checks"] = [
        {
            "CheckID": check,
            "Name": check,
            "Status": status,
            "ServiceID": service["ID"] if service is not None else "",
        }
        for check, status in checks
    ]
    api.put("/v1/catalog/register", json=body).raise_for_status()


def queries(service: str) -> list[str]:
    health = f"/v1/health/service/{service}"
    catalog = f"/v1/catalog/service/{service}"
    return [
        health,
        f"{health}?passing",
        f"{health}?tag=a&tag=v1",
        f"{health}?filter=%22a%22%20in%20Service.Tags",
        f"{health}?node-meta=env:a",
        catalog,
        f"{catalog}?tag=blue",
        f"{catalog}?filter=ServiceMeta.zone%20%21%3D%20%22a%22",
    ]


def both(api: httpx.Client, path: str) -> tuple[httpx.Response, httpx.Response]:
    """The JSON and the compact answer, read at one index (retried if a TTL
    or the registry moved between the two reads)."""
    for _ in range(5):
        plain = api.get(path)
        compact = api.get(path, headers=COMPACT)
        if plain.headers["x-consul-index"] == compact.headers["x-consul-index"]:
            return plain, compact
    raise AssertionError(f"{path}: the index kept moving")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=CATALOG)
def test_compact_answers_hold_the_json_answers_content(
    api: httpx.Client, plan: dict[str, Any]
) -> None:
    service = build(api, plan)
    for path in queries(service):
        plain, compact = both(api, path)
        assert plain.status_code == compact.status_code == 200
        assert compact.headers["content-type"] == MEDIA_TYPE
        assert plain.headers["content-type"] == "application/json"
        assert compact.headers["vary"] == plain.headers["vary"] == "Accept"
        expand = expand_catalog if "/catalog/" in path else expand_health
        assert expand(compact.content) == plain.json(), path


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=CATALOG)
def test_the_client_decodes_the_same_instances_from_either_answer(
    api: httpx.Client, plan: dict[str, Any]
) -> None:
    service = build(api, plan)
    decode = instances_call(service).decode
    for path in queries(service)[:5]:
        plain, compact = both(api, path)
        from_json, from_compact = (
            decode(
                Answer(
                    status=r.status_code,
                    body=r.content,
                    index=int(r.headers["x-consul-index"]),
                    content_type=r.headers["content-type"].encode(),
                )
            )
            for r in (plain, compact)
        )
        assert from_compact == from_json, path
        assert len(from_json) == len(plain.json())


# ------------------------------------------------------------ negotiation


def test_consul_clients_get_json_and_q_zero_refuses_the_compact_answer(
    api: httpx.Client,
) -> None:
    service = build(api, {"instances": [], "nodes": {}})
    path = f"/v1/health/service/{service}"
    api.put(
        "/v1/agent/service/register", json={"Name": service, "Port": 1}
    ).raise_for_status()
    for accept in (None, "application/json", f"{MEDIA_TYPE};q=0", "*/*"):
        headers = {"Accept": accept} if accept else {}
        answer = api.get(path, headers=headers)
        assert answer.headers["content-type"] == "application/json", accept
        assert answer.json()[0]["Service"]["Service"] == service
    for accept in (MEDIA_TYPE, f"application/json;q=0.5, {MEDIA_TYPE};q=0.9"):
        answer = api.get(path, headers={"Accept": accept})
        assert answer.headers["content-type"] == MEDIA_TYPE, accept
        assert msgspec.msgpack.decode(answer.content)["Entries"][0]["name"] == service


def test_a_compact_and_a_json_reader_at_one_index_each_get_their_own_format(
    api: httpx.Client,
) -> None:
    """The response cache keys on the format as well as the query."""
    service = build(api, {"instances": [], "nodes": {}})
    api.put(
        "/v1/agent/service/register", json={"Name": service, "Port": 2}
    ).raise_for_status()
    path = f"/v1/health/service/{service}"
    for _ in range(2):
        compact = api.get(path, headers=COMPACT)
        plain = api.get(path)
        assert compact.headers["x-consul-index"] == plain.headers["x-consul-index"]
        assert compact.headers["content-type"] == MEDIA_TYPE
        assert plain.headers["content-type"] == "application/json"


def test_a_blocking_compact_query_wakes_with_the_change_at_the_json_index(
    api: httpx.Client,
) -> None:
    service = build(api, {"instances": [], "nodes": {}})
    api.put(
        "/v1/agent/service/register", json={"Name": service, "Port": 3, "ID": "one"}
    ).raise_for_status()
    path = f"/v1/health/service/{service}"
    index = api.get(path, headers=COMPACT).headers["x-consul-index"]
    woken: list[tuple[float, httpx.Response]] = []

    def block() -> None:
        answer = api.get(f"{path}?index={index}&wait=30s", headers=COMPACT)
        woken.append((time.monotonic(), answer))

    waiter = threading.Thread(target=block)
    waiter.start()
    time.sleep(0.3)  # the query is parked at the agent
    assert not woken
    changed = time.monotonic()
    api.put(
        "/v1/agent/service/register", json={"Name": service, "Port": 4, "ID": "two"}
    ).raise_for_status()
    waiter.join(10)
    at, answer = woken[0]
    assert at - changed < 2, "the change did not wake the compact query"
    assert int(answer.headers["x-consul-index"]) > int(index)
    assert answer.headers["x-consul-index"] == api.get(path).headers["x-consul-index"]
    rows = expand_health(answer.content)
    assert sorted(row["Service"]["ID"] for row in rows) == ["one", "two"]
