"""No input produces a 5xx: random bodies, paths and queries against a real agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.http.support import registry_index
from waypost.http.routes import ROUTES
from waypost.testing import run_agent

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


# ------------------------------------------------- every route that takes a body

# Where a prefix route needs a name: a check that exists, so the check routes
# get past "unknown check" to their body; nothing that exists for deregister.
_TAILS = {
    "/v1/agent/check/deregister/": "nope",
    "/v1/agent/check/": "fuzz-check",
    "/v1/kv/": "fuzz/key",
}


def _tail(prefix: str) -> str:
    for start, tail in _TAILS.items():
        if prefix.startswith(start):
            return tail
    return "nope"


# Every route that accepts PUT, read from the route table so a new one is
# fuzzed too. `/v1/agent/leave` would stop the agent under test.
BODY_ROUTES = sorted(
    path + (_tail(path) if path.endswith("/") else "")
    for path, methods, _ in ROUTES
    if "PUT" in methods and path != "/v1/agent/leave"
)


def test_every_route_that_decodes_a_body_is_fuzzed() -> None:
    assert {
        "/v1/agent/service/register",
        "/v1/agent/check/register",
        "/v1/agent/check/update/fuzz-check",
        "/v1/catalog/register",
        "/v1/catalog/deregister",
        "/v1/kv/fuzz/key",
    } <= set(BODY_ROUTES)


@pytest.fixture(scope="module")
def fuzz_http() -> Iterator[httpx.Client]:
    """An agent of its own: random writes must not disturb other tests."""
    with (
        run_agent(extra_args=["--self-preservation", "off"]) as agent,
        httpx.Client(base_url=agent.url, timeout=30) as client,
    ):
        body = {"Name": "fuzz", "Check": {"CheckID": "fuzz-check", "TTL": "1h"}}
        client.put("/v1/agent/service/register", json=body).raise_for_status()
        yield client


# Openers of one nesting level each, and what closes them: arrays, objects
# under known field names (decoded by a schema) and under unknown ones.
_LEVELS = {
    "[": "]",
    '{"Check":': "}",
    '{"Checks":': "}",
    '{"Service":': "}",
    '{"Proxy":': "}",
    '{"Meta":': "}",
    '{"Definition":': "}",
    '{"x":': "}",
}


@st.composite
def nested_bodies(draw: st.DrawFn) -> bytes:
    """A JSON body nested 0 to 1,500 levels deep, with a random core."""
    # Shallow, around the 64-level bound, and past Python's recursion limit.
    depth = draw(
        st.integers(0, 70) | st.integers(900, 1500) | st.sampled_from([63, 64, 65])
    )
    pattern = draw(st.lists(st.sampled_from(sorted(_LEVELS)), min_size=1, max_size=4))
    openers = [pattern[n % len(pattern)] for n in range(depth)]
    core = json.dumps(draw(json_values))
    inner = "".join(openers) + core + "".join(_LEVELS[o] for o in reversed(openers))
    if draw(st.booleans()):  # beside fields a registration needs
        inner = f'{{"Name": "fuzz-deep", "Status": "passing", "Extra": {inner}}}'
    return inner.encode()


any_bodies = (
    st.builds(lambda body: json.dumps(body).encode(), bodies)
    | st.builds(lambda value: json.dumps(value).encode(), json_values)
    | nested_bodies()
    | st.binary(max_size=64)
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(path=st.sampled_from(BODY_ROUTES), body=any_bodies)
def test_no_body_of_any_shape_or_depth_makes_a_write_route_answer_5xx(
    fuzz_http: httpx.Client, path: str, body: bytes
) -> None:
    before = registry_index(fuzz_http)
    response = fuzz_http.put(path, content=body)
    assert response.status_code < 500, (path, body[:200], response.text)
    if response.status_code >= 400:
        assert registry_index(fuzz_http) == before, (path, body[:200])
