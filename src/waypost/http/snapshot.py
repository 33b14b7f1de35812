"""`/v1/snapshot`: save the whole state as an archive, restore one.

GET answers the archive (`waypost/snapshot.py`) of the state at one index,
with that index as X-Consul-Index; `?stale` skips the catch-up with the
cluster, as Consul's lets any server answer. PUT restores an archive as one
change through the store (durable, all or nothing, in cluster mode
replacing etcd's state); an archive that does not decode or whose sums do
not match is a 400 and changes nothing. Both need `acl = "write"`
(`http/access.py`), as Consul's management-only snapshot endpoint.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING

from waypost import snapshot as archive
from waypost.exceptions import InvalidRequest
from waypost.http.catalog import require_local_datacenter
from waypost.http.messages import Request, Response

if TYPE_CHECKING:
    from waypost.registry import Registry

CONTENT_TYPE = (b"content-type", b"application/x-gzip")


async def snapshot(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    if request.method == "GET":
        return await _save(registry, request)
    return await _restore(registry, request)


async def _save(registry: Registry, request: Request) -> Response:
    stale = request.has("stale")
    state = await registry.snapshot(stale=stale)
    # The rows are immutable values: gzip them off the event loop.
    body = await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(archive.encode, state, now=time.time())
    )
    health = registry.store.health()
    return Response(
        200,
        body,
        [
            CONTENT_TYPE,
            (b"x-consul-index", str(state.index).encode()),
            (b"x-consul-knownleader", b"true" if health.known_leader else b"false"),
            (b"x-consul-lastcontact", str(int(health.last_contact * 1000)).encode()),
        ],
    )


async def _restore(registry: Registry, request: Request) -> Response:
    if not request.body:
        raise InvalidRequest("failed to read snapshot: the request body is empty")
    try:
        state = await asyncio.get_running_loop().run_in_executor(
            None, archive.decode, request.body
        )
    except archive.SnapshotError as exc:
        raise InvalidRequest(str(exc)) from None
    await registry.restore(state)
    return Response(200, b"", [])
