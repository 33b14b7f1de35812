"""Bad input gets a clear 4xx and changes nothing; no input gets a 5xx.

Every case runs on one quiet agent (no TTL checks ticking), so "nothing
changed" is exact: the registry's index, its services and its checks are the
same before and after the rejected request.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.http.support import agent_checks, agent_services, registry_index

MiB = 1024 * 1024


def _state(http: httpx.Client) -> tuple[int, dict[str, Any], dict[str, Any], object]:
    return (
        registry_index(http),
        agent_services(http),
        agent_checks(http),
        http.get("/v1/catalog/services").json(),
    )


@pytest.fixture(scope="module")
def seeded(quiet_http: httpx.Client) -> httpx.Client:
    """The quiet agent with one service and one check a bad request could harm."""
    body = {"Name": "web", "Port": 80, "Check": {"TTL": "1h", "Status": "passing"}}
    quiet_http.put("/v1/agent/service/register", json=body).raise_for_status()
    return quiet_http


_OK_CHECK = {"TTL": "1h"}

# (case id, method, path, JSON body or raw bytes, status, text the message holds)
# fmt: off
BAD_REQUESTS: list[tuple[str, str, str, object, int, str]] = [
    # malformed JSON
    ("truncated-json", "PUT", "/v1/agent/service/register", b'{"Name": "x",', 400,
     "Request decode failed"),
    ("not-json", "PUT", "/v1/agent/check/register", b"name=x", 400,
     "Request decode failed"),
    ("not-utf8", "PUT", "/v1/catalog/register", b"\xff\xfe{}", 400,
     "Request decode failed"),
    ("array-body", "PUT", "/v1/agent/service/register", [], 400,
     "Request decode failed: cannot unmarshal array into ServiceDefinition"),
    # wrong types, named as the caller wrote them
    ("port-string", "PUT", "/v1/agent/service/register", {"Name": "x", "Port": "abc"},
     400, "Request decode failed: Port: cannot unmarshal string"),
    ("lowercase-port-string", "PUT", "/v1/agent/service/register",
     {"name": "x", "port": "abc"}, 400, "Request decode failed: port:"),
    ("tags-string", "PUT", "/v1/agent/service/register", {"Name": "x", "Tags": "web"},
     400, "Tags: cannot unmarshal string into an array"),
    ("tag-number", "PUT", "/v1/agent/service/register", {"Name": "x", "Tags": [1]},
     400, "Tags[0]: cannot unmarshal number"),
    ("meta-number", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Meta": {"a": 1}}, 400, "Meta.a: cannot unmarshal number"),
    ("catalog-port-string", "PUT", "/v1/catalog/register",
     {"Node": "n", "Address": "10.0.0.1", "Service": {"Service": "s", "Port": "x"}},
     400, "Service.Port: cannot unmarshal string"),
    ("port-fraction", "PUT", "/v1/agent/service/register", {"Name": "x", "Port": 1.5},
     400, "Port: cannot unmarshal number 1.5"),
    ("port-range", "PUT", "/v1/agent/service/register", {"Name": "x", "Port": 70000},
     400, "Invalid Port 70000"),
    ("id-fraction", "PUT", "/v1/agent/service/register", {"Name": "x", "ID": 1.5},
     400, "ID: cannot unmarshal number 1.5 into a string"),
    ("id-bool", "PUT", "/v1/agent/service/register", {"Name": "x", "ID": True},
     400, "ID: cannot unmarshal bool into a string"),
    # unknown fields
    ("unknown-field", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Colour": "red"}, 400, "Colour: unknown field"),
    ("unknown-check-field", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Check": {"TTL": "10s", "Colour": 1}}, 400,
     "Check.Colour: unknown field"),
    ("unknown-catalog-field", "PUT", "/v1/catalog/register",
     {"Node": "n", "Address": "a", "Colour": 1}, 400, "Colour: unknown field"),
    ("unknown-update-field", "PUT", "/v1/agent/check/update/service:web",
     {"Status": "passing", "Colour": 1}, 400, "Colour: unknown field"),
    # bad durations
    ("ttl-ten", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Check": {"TTL": "ten"}}, 400, 'Check.TTL: "ten" is not a duration'),
    ("check-ttl-ten", "PUT", "/v1/agent/check/register", {"Name": "c", "TTL": "ten"},
     400, 'TTL: "ten" is not a duration'),
    ("ttl-overflow", "PUT", "/v1/agent/check/register",
     {"Name": "c", "TTL": "99999999999h"}, 400, "TTL:"),
    ("ttl-negative", "PUT", "/v1/agent/check/register", {"Name": "c", "TTL": "-1s"},
     400, "Invalid check: TTL must be > 0 for TTL checks"),
    # bad statuses
    ("service-check-status", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Check": {"TTL": "10s", "Status": "green"}}, 400,
     "Status for checks must 'passing', 'warning', 'critical'"),
    ("check-status", "PUT", "/v1/agent/check/register",
     {"Name": "c", "TTL": "10s", "Status": "green"}, 400, "Bad check status"),
    ("catalog-check-status", "PUT", "/v1/catalog/register",
     {"Node": "n", "Address": "a", "Check": {"Name": "c", "Status": "green"}}, 400,
     'Invalid check status: "green"'),
    ("update-status", "PUT", "/v1/agent/check/update/service:web", {"Status": "green"},
     400, "Invalid check status: 'green'"),
    # missing names and invalid definitions
    ("missing-service-name", "PUT", "/v1/agent/service/register", {"Port": 80}, 400,
     "Missing service name"),
    ("empty-body", "PUT", "/v1/agent/service/register", b"", 400,
     "Missing service name"),
    ("missing-check-name", "PUT", "/v1/agent/check/register", {"TTL": "10s"}, 400,
     "Missing check name"),
    ("missing-catalog-address", "PUT", "/v1/catalog/register", {"Node": "n"}, 400,
     "Must provide node and address"),
    ("check-without-ttl", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Check": {"Interval": "10s"}}, 400,
     "Invalid check: TTL must be > 0 for TTL checks"),
    ("ttl-and-interval", "PUT", "/v1/agent/check/register",
     {"Name": "c", "TTL": "10s", "Interval": "10s"}, 400,
     "Invalid check: Interval and TTL cannot both be specified"),
    ("http-without-interval", "PUT", "/v1/agent/check/register",
     {"Name": "c", "HTTP": "http://127.0.0.1/"}, 400,
     "Invalid check: Interval must be"),
    ("any-address", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Address": "0.0.0.0"}, 400, "Invalid service address"),
    ("zero-weight", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Weights": {"Passing": 0}}, 400,
     "Invalid Weights: Passing must be greater than 0"),
    ("reserved-meta", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Meta": {"consul-x": "1"}}, 400,
     "Invalid Service Meta: Couldn't load metadata pair ('consul-x', '1'): Key prefix"
     " 'consul-' is reserved for internal use"),
    ("third-check-invalid", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Checks": [_OK_CHECK, _OK_CHECK, {"TTL": "ten"}]}, 400,
     'Checks[2].TTL: "ten"'),
    ("duplicate-check-ids", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Checks": [{"CheckID": "a", **_OK_CHECK},
                              {"CheckID": "a", **_OK_CHECK}]},
     400, 'Duplicate check ID "a"'),
    ("catalog-check-unknown-service", "PUT", "/v1/catalog/register",
     {"Node": "n", "Address": "a", "Check": {"Name": "c", "ServiceID": "nope"}}, 400,
     '"nope"'),
    # unknown services and checks, in Consul's words
    ("deregister-unknown-service", "PUT", "/v1/agent/service/deregister/nope", b"", 404,
     'Unknown service ID "nope". Ensure that the service ID is passed, not the'
     " service name."),
    ("deregister-unknown-check", "PUT", "/v1/agent/check/deregister/nope", b"", 404,
     'Unknown check ID "nope". Ensure that the check ID is passed, not the check'
     " name."),
    ("pass-unknown-check", "PUT", "/v1/agent/check/pass/nope", b"", 404,
     'Unknown check ID "nope".'),
    ("update-unknown-check", "PUT", "/v1/agent/check/update/nope",
     {"Status": "passing"}, 404, 'Unknown check ID "nope".'),
    ("maintenance-unknown-service", "PUT",
     "/v1/agent/service/maintenance/nope?enable=1", b"", 404,
     'No service registered with ID "nope"'),
    ("check-for-unknown-service", "PUT", "/v1/agent/check/register",
     {"Name": "c", "TTL": "10s", "ServiceID": "nope"}, 404,
     'ServiceID "nope" does not exist'),
    # bad query parameters
    ("kv-flags-not-a-number", "PUT", "/v1/kv/k?flags=abc", b"v", 400, "flags"),
    ("kv-cas-negative", "PUT", "/v1/kv/k?cas=-1", b"v", 400, "cas"),
    ("kv-other-dc", "PUT", "/v1/kv/k?dc=dc2", b"v", 400, "No path to datacenter"),
    ("catalog-other-dc", "PUT", "/v1/catalog/register",
     {"Node": "n", "Address": "a", "Datacenter": "dc2"}, 400, "No path to datacenter"),
    ("maintenance-bad-bool", "PUT", "/v1/agent/service/maintenance/web?enable=on",
     b"", 400, 'Invalid value for enable: "on"'),
]
# fmt: on

# JSON nested 1,000 deep (2 KB) once made every body-decoding route answer
# 500 (a RecursionError); bodies nest at most MAX_DEPTH (64) levels.
_DEEP = b"[" * 1000 + b"]" * 1000
_BODY_ROUTES = [
    "/v1/agent/service/register",
    "/v1/catalog/register",
    "/v1/catalog/deregister",
    "/v1/agent/check/register",
    "/v1/agent/check/update/service:web",
]
BAD_REQUESTS += [
    (f"nested-1000{path.replace('/', '-')}", "PUT", path, _DEEP, 400,
     "Request decode failed: JSON nested deeper than 64 levels")
    for path in _BODY_ROUTES
]  # fmt: skip

# Names, IDs and tags have a length limit (256 and 512 characters; meta has
# Consul's: keys 128, values 512, 64 pairs), so everything registered can be
# named in a URL again.
_LONG = "x" * 257
_NODE = {"Node": "n", "Address": "10.0.0.1"}
BAD_REQUESTS += [
    ("long-name", "PUT", "/v1/agent/service/register", {"Name": _LONG}, 400,
     "Name is too long: 257 characters (limit: 256 characters)"),
    ("long-id", "PUT", "/v1/agent/service/register", {"Name": "x", "ID": _LONG},
     400, "ID is too long: 257 characters (limit: 256 characters)"),
    ("long-tag", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Tags": ["ok", "t" * 513]}, 400,
     "Tags[1] is too long: 513 characters (limit: 512 characters)"),
    ("long-service-check-id", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Checks": [_OK_CHECK, {"CheckID": _LONG, **_OK_CHECK}]}, 400,
     "Checks[1].CheckID is too long"),
    ("long-check-name", "PUT", "/v1/agent/check/register",
     {"Name": _LONG, "TTL": "10s"}, 400, "Name is too long"),
    ("long-check-id", "PUT", "/v1/agent/check/register",
     {"Name": "c", "CheckID": _LONG, "TTL": "10s"}, 400, "CheckID is too long"),
    ("long-node", "PUT", "/v1/catalog/register", {**_NODE, "Node": _LONG}, 400,
     "Node is too long"),
    ("long-catalog-service", "PUT", "/v1/catalog/register",
     {**_NODE, "Service": {"Service": _LONG}}, 400, "Service.Service is too long"),
    ("long-catalog-tag", "PUT", "/v1/catalog/register",
     {**_NODE, "Service": {"Service": "s", "Tags": ["t" * 513]}}, 400,
     "Service.Tags[0] is too long"),
    ("long-catalog-check-id", "PUT", "/v1/catalog/register",
     {**_NODE, "Checks": [{"CheckID": _LONG}]}, 400, "Checks[0].CheckID is too long"),
    ("long-meta-key", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Meta": {"k" * 129: "v"}}, 400,
     "Key is too long (limit: 128 characters)"),
    ("long-meta-value", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Meta": {"k": "v" * 513}}, 400,
     "Value is too long (limit: 512 characters)"),
    ("too-many-meta-pairs", "PUT", "/v1/agent/service/register",
     {"Name": "x", "Meta": {f"k{i}": "v" for i in range(65)}}, 400,
     "cannot contain more than 64 key/value pairs"),
    ("long-node-meta-value", "PUT", "/v1/catalog/register",
     {**_NODE, "NodeMeta": {"k": "v" * 513}}, 400,
     "Invalid Node Meta: Couldn't load metadata pair"),
]  # fmt: skip


def test_names_ids_and_tags_at_their_limits_register_and_deregister(
    seeded: httpx.Client,
) -> None:
    """At the limit, in 4-byte characters: the URL that names it still works."""
    long_id = "\U0001f600" * 256
    body = {
        "Name": "n" * 256,
        "ID": long_id,
        "Tags": ["t" * 512],
        "Meta": {"k" * 128: "v" * 512, **{f"k{i}": "v" for i in range(63)}},
        "Check": {"CheckID": "c" * 256, "Name": "c" * 256, "TTL": "1h"},
    }
    assert seeded.put("/v1/agent/service/register", json=body).status_code == 200
    assert seeded.put(f"/v1/agent/check/pass/{'c' * 256}").status_code == 200
    deregister = seeded.put(f"/v1/agent/service/deregister/{quote(long_id)}")
    assert deregister.status_code == 200, deregister.text
    assert long_id not in agent_services(seeded)


def _nested(levels: int) -> bytes:
    """A registration whose opaque `Proxy.Config` makes the body `levels` deep."""
    inner = levels - 3  # the body, Proxy and Config are the first three levels
    nested = b"[" * inner + b"]" * inner
    return b'{"Name": "deep", "Proxy": {"Config": {"x": ' + nested + b"}}}"


def test_a_body_64_levels_deep_is_accepted_65_is_400(seeded: httpx.Client) -> None:
    before = _state(seeded)
    refused = seeded.put("/v1/agent/service/register", content=_nested(65))
    assert refused.status_code == 400
    assert refused.text == "Request decode failed: JSON nested deeper than 64 levels"
    assert _state(seeded) == before
    accepted = seeded.put("/v1/agent/service/register", content=_nested(64))
    assert accepted.status_code == 200, accepted.text
    assert seeded.put("/v1/agent/service/deregister/deep").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_is_rejected_and_changes_nothing(
    seeded: httpx.Client,
    method: str,
    path: str,
    body: object,
    status: int,
    message: str,
) -> None:
    before = _state(seeded)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = seeded.request(method, path, content=content)
    assert response.status_code == status, response.text
    assert message in response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    assert _state(seeded) == before


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        # Found by schemathesis (bench/fuzz_api.py): Go's ParseUint(_, 10, 64)
        ("GET", f"/v1/catalog/nodes?index={2**64}", "out of range (uint64)"),
        ("PUT", f"/v1/kv/fuzz?flags={2**64}", "out of range (uint64)"),
        ("PUT", f"/v1/kv/fuzz?cas={2**70}", "out of range (uint64)"),
        ("GET", "/v1/catalog/nodes?index=%D9%A5", "is not an integer"),  # Arabic 5
        ("GET", "/v1/catalog/nodes?index=+5", "is not an integer"),
        ("GET", "/v1/catalog/nodes?index=1_0", "is not an integer"),
        # ?wait= is read even without ?index= (Consul's parseWait)
        ("GET", "/v1/catalog/nodes?wait=soon", "Invalid wait time"),
        ("GET", "/v1/catalog/nodes?wait=%205s", "Invalid wait time"),
        ("GET", "/v1/health/service/web?index=1&wait=%D9%A1s", "Invalid wait time"),
        # /v1/status and the raft configuration refuse another datacenter
        ("GET", "/v1/status/leader?dc=elsewhere", "No path to datacenter"),
        ("GET", "/v1/status/peers?dc=elsewhere", "No path to datacenter"),
        (
            "GET",
            "/v1/operator/raft/configuration?dc=elsewhere",
            "No path to datacenter",
        ),
        ("GET", "/v1/operator/autopilot/health?dc=elsewhere", "No path to"),
        ("GET", "/v1/operator/usage?dc=elsewhere", "No path to datacenter"),
        ("GET", "/v1/connect/intentions?dc=elsewhere", "No path to datacenter"),
        ("GET", "/v1/connect/ca/roots?dc=elsewhere", "No path to datacenter"),
    ],
)
def test_bad_query_values_are_400_and_change_nothing(
    seeded: httpx.Client, method: str, path: str, message: str
) -> None:
    before = _state(seeded)
    response = seeded.request(method, path, content=b"v")
    assert response.status_code == 400, response.text
    assert message in response.text
    assert _state(seeded) == before


@pytest.mark.parametrize("name", ["%C2%B3x", "x" * 65])
def test_a_leaf_certificate_for_a_name_no_certificate_holds_is_400(
    seeded: httpx.Client, name: str
) -> None:
    """Was a 500 (found by bench/fuzz_api.py)."""
    seeded.get("/v1/agent/connect/ca/leaf/web").raise_for_status()  # the CA exists
    before = _state(seeded)
    response = seeded.get(f"/v1/agent/connect/ca/leaf/{name}")
    assert response.status_code == 400, response.text
    assert "for a certificate" in response.text
    assert _state(seeded) == before


def test_a_body_of_other_whitespace_is_not_an_empty_body(seeded: httpx.Client) -> None:
    """Only JSON's whitespace makes an empty body; a vertical tab is a 400."""
    before = _state(seeded)
    response = seeded.put("/v1/agent/check/register", content=b"\x0b\t")
    assert response.status_code == 400, response.text
    assert "Request decode failed" in response.text
    assert _state(seeded) == before


def test_good_query_values_at_the_edges_are_accepted(seeded: httpx.Client) -> None:
    index = registry_index(seeded)
    for path in (
        f"/v1/catalog/nodes?index={index}&wait=1ms",
        "/v1/catalog/nodes?index=&wait=",
        "/v1/catalog/nodes?wait=2",
        "/v1/catalog/nodes?wait=1m30s",
        "/v1/status/leader?dc=dc1",
    ):
        assert seeded.get(path).status_code == 200, path
    put = seeded.put(f"/v1/kv/fuzz-edge?flags={2**64 - 1}", content=b"v")
    assert put.json() is True
    assert seeded.get("/v1/kv/fuzz-edge").json()[0]["Flags"] == 2**64 - 1
    seeded.delete("/v1/kv/fuzz-edge").raise_for_status()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/agent/service/register", {"PUT"}),
        ("DELETE", "/v1/agent/check/pass/service:web", {"PUT"}),
        ("POST", "/v1/catalog/services", {"GET"}),
        # Consul registers write endpoints for PUT only: POST is a 405 too.
        ("POST", "/v1/agent/service/register", {"PUT"}),
        ("PUT", "/v1/health/service/web", {"GET"}),
        ("PATCH", "/v1/kv/k", {"GET", "PUT", "DELETE"}),
        ("DELETE", "/v1/status/leader", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_an_allow_header(
    seeded: httpx.Client, method: str, path: str, allowed: set[str]
) -> None:
    before = _state(seeded)
    response = seeded.request(method, path, content=b"{}")
    assert response.status_code == 405
    assert response.text == f"method {method} not allowed"
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= allow
    assert _state(seeded) == before


# Endpoints Consul has and waypost does not serve, and paths nobody serves.
_UNSERVED = [
    "/v1/nope",
    "/v1/query",
    "/v1/acl/replication",
    "/v1/peerings",
    "/v1/agent/host",
    "/v1/catalog/nope",
    "/v1/agent/nope",
    "/v1/",
]


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", _UNSERVED)
def test_an_endpoint_we_do_not_serve_is_404_whatever_the_method(
    seeded: httpx.Client, method: str, path: str
) -> None:
    """Consul's words and status; never a 405 hinting at another method."""
    before = _state(seeded)
    response = seeded.request(method, path, content=b"{}")
    assert response.status_code == 404
    assert response.text == "Invalid URL path: not a recognized HTTP API endpoint\n"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "Allow" not in response.headers
    assert _state(seeded) == before


@pytest.mark.parametrize("path", ["/nope", "/web/", "/index.html"])
def test_a_path_outside_v1_is_404_and_says_where_the_api_is(
    seeded: httpx.Client, path: str
) -> None:
    response = seeded.get(path)
    assert response.status_code == 404
    assert response.text == (
        "Invalid URL path: if attempting to use the HTTP API, ensure the path"
        " starts with '/v1/'\n"
    )


def test_the_root_still_answers_200_for_load_balancer_checks(
    seeded: httpx.Client,
) -> None:
    response = seeded.get("/")
    assert response.status_code == 200
    assert seeded.put("/").status_code == 405


def test_options_answers_200_with_consuls_allow_list(seeded: httpx.Client) -> None:
    response = seeded.options("/v1/agent/service/register")
    assert response.status_code == 200
    assert response.headers["Allow"] == "OPTIONS,PUT"


def test_a_url_over_32_kib_is_414_and_says_so(seeded: httpx.Client) -> None:
    base = "/v1/catalog/services?pad="
    at_limit = base + "x" * (32 * 1024 - len(base))
    assert seeded.get(at_limit).status_code == 200
    response = seeded.get(at_limit + "x")
    assert response.status_code == 414
    assert response.text == (
        "Request URL too long: the limit is 32768 bytes (path and query string)"
    )
    # A name too long to register never needs such a URL: it was refused.
    name = "x" * 40_000
    refused = seeded.put("/v1/agent/service/register", json={"Name": name})
    assert refused.status_code == 400
    assert seeded.put(f"/v1/agent/service/deregister/{name}").status_code == 414


def test_a_body_over_one_mebibyte_is_413(seeded: httpx.Client) -> None:
    before = _state(seeded)
    body = b'{"Name": "big", "Meta": {"x": "' + b"a" * MiB + b'"}}'
    response = seeded.put("/v1/agent/service/register", content=body)
    assert response.status_code == 413
    assert "too large" in response.text
    assert _state(seeded) == before


def test_a_kv_value_over_512_kib_is_413(seeded: httpx.Client) -> None:
    before = _state(seeded)
    response = seeded.put("/v1/kv/too-big", content=b"v" * (512 * 1024 + 1))
    assert response.status_code == 413
    assert "too large, max size: 524288 bytes" in response.text
    assert _state(seeded) == before
    assert seeded.get("/v1/kv/too-big").status_code == 404


def test_a_kv_value_of_exactly_512_kib_is_stored(seeded: httpx.Client) -> None:
    response = seeded.put("/v1/kv/just-fits", content=b"v" * (512 * 1024))
    assert (response.status_code, response.json()) == (200, True)
    assert len(seeded.get("/v1/kv/just-fits", params={"raw": ""}).content) == 512 * 1024


# ---------------------------------------------------------------- no 5xx, ever

# fmt: off
_FIELDS = [
    "Name", "ID", "Port", "Tags", "Check", "Checks", "TTL", "Status", "Address",
    "Meta", "Weights", "Passing", "Warning", "Node", "Service", "ServiceID",
    "CheckID", "Interval", "HTTP", "TCP", "Args", "Output", "Notes", "Definition",
    "TaggedAddresses", "NodeMeta", "SkipNodeUpdate", "AliasService", "OutputMaxSize",
    "DeregisterCriticalServiceAfter", "enable_tag_override", "name", "id", "port",
]
# fmt: on
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        [
            "10s",
            "ten",
            "-1s",
            "0",
            "1h",
            "passing",
            "warning",
            "green",
            "",
            "0.0.0.0",
            "web",
            "http://127.0.0.1:1/",
            "x" * 600,
        ]
    )
    | st.text(max_size=20)
)
_keys = st.sampled_from(_FIELDS) | st.text(max_size=8)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=6)
    ),
    max_leaves=25,
)
_WRITES = [
    "/v1/agent/service/register",
    "/v1/agent/check/register",
    "/v1/catalog/register",
    "/v1/catalog/deregister",
    "/v1/agent/check/update/service:web",
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(path=st.sampled_from(_WRITES), body=_json)
def test_no_json_body_makes_a_write_answer_5xx(
    seeded: httpx.Client, path: str, body: object
) -> None:
    before = registry_index(seeded)
    response = seeded.put(path, content=json.dumps(body).encode())
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert registry_index(seeded) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from([*_WRITES, "/v1/kv/fuzz"]),
    body=st.binary(max_size=64),
)
def test_no_byte_body_makes_a_write_answer_5xx(
    seeded: httpx.Client, path: str, body: bytes
) -> None:
    assert seeded.put(path, content=body).status_code < 500


_QUERY = st.dictionaries(
    st.sampled_from(
        [
            "passing",
            "tag",
            "dc",
            "index",
            "wait",
            "keys",
            "separator",
            "recurse",
            "raw",
            "cas",
            "flags",
            "node-meta",
            "peer",
            "stale",
            "format",
            "enable",
        ]
    ),
    st.text(max_size=6),
    max_size=4,
)
_READS = [
    "/v1/health/service/web",
    "/v1/health/checks/web",
    "/v1/health/node/waypost-quiet",
    "/v1/health/state/any",
    "/v1/catalog/service/web",
    "/v1/catalog/nodes",
    "/v1/catalog/services",
    "/v1/catalog/node/waypost-quiet",
    "/v1/kv/fuzz",
    "/v1/agent/health/service/name/web",
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(_READS), params=_QUERY)
def test_no_query_string_makes_a_read_answer_5xx(
    seeded: httpx.Client, path: str, params: dict[str, str]
) -> None:
    # A valid ?index= would block: keep any wait short.
    params = {**params, "wait": "1ms"} if "index" in params else params
    assert seeded.get(path, params=params).status_code < 500
