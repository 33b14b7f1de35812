"""`/v1/kv/*`: Consul's key/value store, with CAS, flags, recurse and keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.core.catalog import kv_prefix_topic, kv_topic
from waypost.exceptions import InvalidRequest, PayloadTooLarge
from waypost.http import wire
from waypost.http.messages import (
    Query,
    Request,
    Response,
    json_response,
)

if TYPE_CHECKING:
    from waypost.server import Agent

#: Consul's default `kv_max_value_size`.
MAX_VALUE = 512 * 1024

_OCTETS = (b"content-type", b"application/octet-stream")


async def dispatch(agent: Agent, request: Request) -> Response | Query:
    if request.method == "GET":
        return _get(agent, request)
    if request.method == "DELETE":
        return await _delete(agent, request)
    return await _put(agent, request)


def _not_found() -> Response:
    return Response(404, b"", [])


def _get(agent: Agent, request: Request) -> Query:
    key = request.tail
    catalog = agent.catalog
    if request.has("keys"):
        separator = request.get("separator")

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
            return json_response(keys) if keys else _not_found()

        return Query([kv_prefix_topic(key)], render_keys)
    if request.has("recurse"):

        def render_tree() -> Response:
            entries = catalog.kv_list(key)
            if not entries:
                return _not_found()
            return json_response([wire.kv_json(e) for e in entries])

        return Query([kv_prefix_topic(key)], render_tree)
    raw = request.has("raw")

    def render_one() -> Response:
        entry = catalog.kv_get(key)
        if entry is None:
            return _not_found()
        if raw:
            return Response(200, entry.value or b"", [_OCTETS])
        return json_response([wire.kv_json(entry)])

    return Query([kv_topic(key)], render_one)


async def _put(agent: Agent, request: Request) -> Response:
    key = request.tail
    if not key:
        raise InvalidRequest("Missing key name")
    if request.has("acquire") or request.has("release"):
        raise InvalidRequest("Sessions are not supported by waypost: acquire/release")
    if len(request.body) > MAX_VALUE:
        raise PayloadTooLarge(
            f"Request body({len(request.body)} bytes) too large, max size:"
            f" {MAX_VALUE} bytes"
        )
    flags = request.integer("flags")
    cas = request.integer("cas")
    commit = agent.catalog.kv_put(key, request.body, flags=flags, cas=cas)
    if commit is None:
        return json_response(False)
    await agent.persist(commit)
    return json_response(True)


async def _delete(agent: Agent, request: Request) -> Response:
    key = request.tail
    recurse = request.flag("recurse")
    if not key and not recurse:
        raise InvalidRequest("Missing key name")
    cas = request.integer("cas")
    commit = agent.catalog.kv_delete(key, recurse=recurse, cas=cas)
    if commit is None:
        return json_response(False)
    await agent.persist(commit)
    return json_response(True)
