"""No input produces a 5xx: random bodies, paths and queries against a real agent."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings, strategies as st

FIELDS = [
    "Name",
    "ID",
    "Port",
    "Address",
    "Tags",
    "Meta",
    "Weights",
    "Check",
    "Checks",
    "TTL",
    "HTTP",
    "Interval",
    "Status",
    "CheckID",
    "ServiceID",
    "Node",
    "Service",
    "name",
    "port",
    "ttl",
    "enable_tag_override",
    "DeregisterCriticalServiceAfter",
    "TaggedAddresses",
    "Kind",
    "Output",
    "Notes",
    "Definition",
    "NodeMeta",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["10s", "1m30s", "-1s", "passing", "critical", "http://x", ""]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5
        )
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)

WRITE_PATHS = [
    "/v1/agent/service/register",
    "/v1/agent/check/register",
    "/v1/catalog/register",
    "/v1/catalog/deregister",
    "/v1/agent/check/update/x",
]
READ_PATHS = [
    "/v1/health/service/",
    "/v1/catalog/service/",
    "/v1/health/state/",
    "/v1/kv/",
    "/v1/agent/service/",
    "/v1/agent/health/service/name/",
    "/v1/catalog/node/",
]
QUERY_KEYS = [
    "index",
    "wait",
    "passing",
    "tag",
    "filter",
    "cas",
    "flags",
    "recurse",
    "keys",
    "separator",
    "node-meta",
    "replace-existing-checks",
    "enable",
    "note",
    "raw",
]

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(path=st.sampled_from(WRITE_PATHS), body=bodies)
def test_random_json_bodies_never_get_a_5xx(
    http: httpx.Client, path: str, body: dict
) -> None:
    response = http.put(path, content=json.dumps(body))
    assert response.status_code < 500, (body, response.text)


@SETTINGS
@given(path=st.sampled_from(WRITE_PATHS), raw=st.binary(max_size=64))
def test_random_bytes_never_get_a_5xx(
    http: httpx.Client, path: str, raw: bytes
) -> None:
    response = http.put(path, content=raw)
    assert response.status_code < 500, (raw, response.text)


@SETTINGS
@given(
    path=st.sampled_from(READ_PATHS),
    tail=st.text(max_size=10),
    query=st.dictionaries(
        st.sampled_from(QUERY_KEYS), st.text(max_size=12), max_size=3
    ),
)
def test_random_reads_never_get_a_5xx(
    http: httpx.Client, path: str, tail: str, query: dict[str, str]
) -> None:
    query.pop("index", None)  # a valid index with wait would block: not the point here
    response = http.get(path + quote(tail, safe=""), params=query)
    assert response.status_code < 500, (path, tail, query, response.text)
