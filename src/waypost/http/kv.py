"""`/v1/kv/*`: Consul's key/value store, with CAS, flags, recurse and keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.core.changes import KVDelete, KVPut
from waypost.core.sessions import KVLock, KVUnlock
from waypost.core.topics import kv_prefix_topic, kv_topic
from waypost.exceptions import InvalidRequest, PayloadTooLarge
from waypost.http import wire
from waypost.http.catalog import require_local_datacenter
from waypost.http.messages import (
    Query,
    Request,
    Response,
    json_response,
)

if TYPE_CHECKING:
    from waypost.registry import Registry

#: Consul's default `kv_max_value_size`.
MAX_VALUE = 512 * 1024

#: `?raw` answers as Consul does (kvs_endpoint.go KVSGet): text/plain that a
#: browser must neither sniff nor run, since KV values are user content.
_RAW_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"sandbox"),
]

_KV_SIZE_DOCS = "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size"


async def dispatch(registry: Registry, request: Request) -> Response | Query:
    require_local_datacenter(registry, request)
    if request.method == "GET":
        return _get(registry, request)
    if request.method == "DELETE":
        return await _delete(registry, request)
    return await _put(registry, request)


def _not_found() -> Response:
    return Response(404, b"", [])


def _get(registry: Registry, request: Request) -> Query:
    key = request.tail
    catalog = registry.catalog
    if request.has("keys"):
        # Consul still reads its historic misspelling, "seperator".
        separator = request.get("separator") or request.get("seperator")

        def render_keys() -> Response:
            keys: list[str] = []
            for entry in catalog.kv_list(key):
                name = entry.key
                if separator:
                    cut = name.find(separator, len(key))
                    if cut >= 0:
                        name = name[: cut + len(separator)]
                if not keys or keys[-1] != name:
                    keys.append(name)
            # Consul: no 404 for the root, just an empty list.
            return json_response(keys) if keys or not key else _not_found()

        return Query([kv_prefix_topic(key)], render_keys)
    if request.has("recurse"):

        def render_tree() -> Response:
            entries = catalog.kv_list(key)
            if not entries:
                return _not_found()
            return json_response([wire.kv_json(e) for e in entries])

        return Query([kv_prefix_topic(key)], render_tree)
    if not key:
        raise InvalidRequest("Missing key name")
    raw = request.has("raw")

    def render_one() -> Response:
        entry = catalog.kv_get(key)
        if entry is None:
            return _not_found()
        if raw:
            return Response(200, entry.value or b"", list(_RAW_HEADERS))
        return json_response([wire.kv_json(entry)])

    return Query([kv_topic(key)], render_one)


def _reject_conflicting(request: Request, *flags: str) -> None:
    """Consul's conflictingFlags: these query flags do not compose."""
    if sum(request.has(flag) for flag in flags) > 1:
        query = request.query_string.decode("latin-1")
        raise InvalidRequest(f"Conflicting flags: {query}")


async def _put(registry: Registry, request: Request) -> Response:
    key = request.tail
    if not key:
        raise InvalidRequest("Missing key name")
    _reject_conflicting(request, "cas", "acquire", "release")
    if len(request.body) > MAX_VALUE:
        raise PayloadTooLarge(
            f"Request body({len(request.body)} bytes) too large, max size:"
            f" {MAX_VALUE} bytes. See {_KV_SIZE_DOCS}."
        )
    # A PUT without ?flags stores 0: Consul's KVSPut builds a fresh DirEntry
    # (Flags: 0) and the state store keeps only the CreateIndex and session.
    flags = request.integer("flags", 0)
    if request.has("acquire"):
        change: KVPut | KVLock | KVUnlock = KVLock(
            key=key,
            value=request.body,
            flags=flags or 0,
            session=request.get("acquire"),
            now=registry.now(),
        )
        return json_response((await registry.apply(change)).ok)
    if request.has("release"):
        release = request.get("release")
        change = KVUnlock(
            key=key, value=request.body, flags=flags or 0, session=release
        )
        return json_response((await registry.apply(change)).ok)
    cas = request.integer("cas")
    applied = await registry.apply(
        KVPut(key=key, value=request.body, flags=flags, cas=cas)
    )
    return json_response(applied.ok)


async def _delete(registry: Registry, request: Request) -> Response:
    key = request.tail
    _reject_conflicting(request, "recurse", "cas")
    recurse = request.has("recurse")
    if not key and not recurse:
        raise InvalidRequest("Missing key name")
    cas = request.integer("cas")
    applied = await registry.apply(KVDelete(key=key, recurse=recurse, cas=cas))
    return json_response(applied.ok)
