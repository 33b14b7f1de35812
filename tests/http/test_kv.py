"""/v1/kv/*: Consul's key/value store, through py-consul and raw HTTP.

Behaviour follows Consul's agent/kvs_endpoint.go: base64 values, CAS on
ModifyIndex, ?raw, ?recurse, ?keys with a separator, and 404s that still
carry the X-Consul-* headers.
"""

from __future__ import annotations

import base64

import consul
import httpx
import pytest

from tests.http.support import assert_consul_read_headers, consul_index


def test_a_value_round_trips_through_python_consul(
    client: consul.Consul, unique: str
) -> None:
    assert client.kv.put(f"{unique}/greeting", "hello") is True
    index, entry = client.kv.get(f"{unique}/greeting")
    assert entry["Value"] == b"hello"
    assert entry["Key"] == f"{unique}/greeting"
    assert int(index) == entry["ModifyIndex"]


def test_values_travel_base64_encoded_on_the_wire(
    http: httpx.Client, unique: str
) -> None:
    payload = bytes(range(256))
    assert http.put(f"/v1/kv/{unique}", content=payload).json() is True
    [entry] = http.get(f"/v1/kv/{unique}").json()
    assert entry["Value"] == base64.b64encode(payload).decode()


def test_entries_carry_indexes_lock_index_and_flags(
    http: httpx.Client, unique: str
) -> None:
    http.put(f"/v1/kv/{unique}", content=b"one")
    [first] = http.get(f"/v1/kv/{unique}").json()
    assert first["CreateIndex"] == first["ModifyIndex"]
    assert (first["LockIndex"], first["Flags"]) == (0, 0)
    assert "Session" not in first

    http.put(f"/v1/kv/{unique}", content=b"two")
    [second] = http.get(f"/v1/kv/{unique}").json()
    assert second["CreateIndex"] == first["CreateIndex"]
    assert second["ModifyIndex"] > first["ModifyIndex"]


def test_flags_are_stored_and_a_put_without_flags_resets_them(
    client: consul.Consul, unique: str
) -> None:
    client.kv.put(unique, "v", flags=42)
    _, entry = client.kv.get(unique)
    assert entry["Flags"] == 42
    # Consul's KVSPut starts from Flags: 0 unless ?flags= is given.
    client.kv.put(unique, "v2")
    _, entry = client.kv.get(unique)
    assert entry["Flags"] == 0


def test_raw_returns_the_bytes_as_inert_text(http: httpx.Client, unique: str) -> None:
    http.put(f"/v1/kv/{unique}", content=b"<script>x</script>")
    response = http.get(f"/v1/kv/{unique}", params={"raw": ""})
    assert response.status_code == 200
    assert response.content == b"<script>x</script>"
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert_consul_read_headers(response)


def test_an_empty_value_reads_back_as_none(client: consul.Consul, unique: str) -> None:
    client.kv.put(unique, "")
    _, entry = client.kv.get(unique)
    assert entry["Value"] is None


def test_recurse_returns_the_prefix_in_key_order(
    client: consul.Consul, unique: str
) -> None:
    for key in ("b/2", "a", "b/1"):
        client.kv.put(f"{unique}/{key}", key)
    client.kv.put(f"{unique}-sibling", "not under the prefix")
    _, entries = client.kv.get(f"{unique}/", recurse=True)
    assert [(e["Key"], e["Value"]) for e in entries] == [
        (f"{unique}/a", b"a"),
        (f"{unique}/b/1", b"b/1"),
        (f"{unique}/b/2", b"b/2"),
    ]


def test_keys_with_a_separator_rolls_up_folders(
    client: consul.Consul, unique: str
) -> None:
    for key in ("a", "b/1", "b/2", "c/d/e"):
        client.kv.put(f"{unique}/{key}", "x")
    _, keys = client.kv.get(f"{unique}/", keys=True, separator="/")
    assert keys == [f"{unique}/a", f"{unique}/b/", f"{unique}/c/"]
    _, everything = client.kv.get(f"{unique}/", keys=True)
    assert everything == [
        f"{unique}/a",
        f"{unique}/b/1",
        f"{unique}/b/2",
        f"{unique}/c/d/e",
    ]


def test_keys_accepts_consul_historic_seperator_spelling(
    http: httpx.Client, unique: str
) -> None:
    http.put(f"/v1/kv/{unique}/x/y", content=b"1")
    keys = http.get(f"/v1/kv/{unique}/", params={"keys": "", "seperator": "/"})
    assert keys.json() == [f"{unique}/x/"]


def test_cas_put_creates_only_when_absent_and_updates_only_at_its_index(
    client: consul.Consul, unique: str
) -> None:
    assert client.kv.put(unique, "first", cas=0) is True
    assert client.kv.put(unique, "again", cas=0) is False
    _, entry = client.kv.get(unique)
    assert entry["Value"] == b"first"

    assert client.kv.put(unique, "stale", cas=entry["ModifyIndex"] + 1000) is False
    assert client.kv.put(unique, "second", cas=entry["ModifyIndex"]) is True
    _, entry = client.kv.get(unique)
    assert entry["Value"] == b"second"


def test_cas_delete_deletes_only_at_its_index(
    client: consul.Consul, unique: str
) -> None:
    client.kv.put(unique, "v")
    _, entry = client.kv.get(unique)
    assert client.kv.delete(unique, cas=entry["ModifyIndex"] - 1) is False
    assert client.kv.get(unique)[1] is not None
    assert client.kv.delete(unique, cas=entry["ModifyIndex"]) is True
    assert client.kv.get(unique)[1] is None


def test_delete_and_recursive_delete(client: consul.Consul, unique: str) -> None:
    for key in ("a", "b/c", "b/d"):
        client.kv.put(f"{unique}/{key}", "x")
    client.kv.put(f"{unique}-keep", "x")
    assert client.kv.delete(f"{unique}/a") is True
    assert client.kv.get(f"{unique}/a")[1] is None
    assert client.kv.delete(f"{unique}/", recurse=True) is True
    assert client.kv.get(f"{unique}/", recurse=True)[1] is None
    assert client.kv.get(f"{unique}-keep")[1] is not None
    # Deleting what is not there is still a success, as in Consul.
    assert client.kv.delete(f"{unique}/never") is True


@pytest.mark.parametrize(
    "params", [{}, {"raw": ""}, {"recurse": ""}, {"keys": ""}], ids=str
)
def test_a_missing_key_is_404_with_the_index_headers(
    http: httpx.Client, unique: str, params: dict[str, str]
) -> None:
    response = http.get(f"/v1/kv/{unique}/missing", params=params)
    assert response.status_code == 404
    assert response.content == b""
    assert_consul_read_headers(response)


def test_python_consul_reads_a_missing_key_as_none_with_an_index(
    client: consul.Consul, unique: str
) -> None:
    index, entry = client.kv.get(unique)
    assert entry is None
    assert int(index) >= 1


def test_keys_at_the_root_is_a_list_not_a_404(quiet_http: httpx.Client) -> None:
    response = quiet_http.get("/v1/kv/", params={"keys": ""})
    assert (response.status_code, response.json()) == (200, [])


def test_a_deleted_key_moves_the_prefix_index(http: httpx.Client, unique: str) -> None:
    http.put(f"/v1/kv/{unique}/a", content=b"x")
    before = consul_index(http.get(f"/v1/kv/{unique}/", params={"recurse": ""}))
    http.delete(f"/v1/kv/{unique}/a")
    after = consul_index(http.get(f"/v1/kv/{unique}/", params={"recurse": ""}))
    assert after > before


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("PUT", "cas=0&acquire=abc"),
        ("PUT", "acquire=a&release=b"),
        ("DELETE", "recurse&cas=3"),
    ],
)
def test_conflicting_flags_are_400(
    http: httpx.Client, unique: str, method: str, params: str
) -> None:
    response = http.request(method, f"/v1/kv/{unique}?{params}", content=b"x")
    assert response.status_code == 400
    assert response.text == f"Conflicting flags: {params}"


def test_a_key_name_is_required(http: httpx.Client) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = http.request(method, "/v1/kv/")
        assert (response.status_code, response.text) == (400, "Missing key name")


def test_another_datacenter_has_no_path(client: consul.Consul, unique: str) -> None:
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        client.kv.put(unique, "x", dc="dc2")
    assert client.kv.get(unique)[1] is None
