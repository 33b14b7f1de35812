"""Blocking queries (`?index=N&wait=D`) and the X-Consul-* headers.

A waiting query sleeps on exactly the topics it reads, so a change to another
service or key never wakes it. Rendered bodies are cached by (query, index,
output generation): identical waiting queries woken by the same change share
one computation, and hot reads skip rendering altogether.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from typing import TYPE_CHECKING

from waypost.http import compact
from waypost.http.messages import Query, Request, Response
from waypost.metrics import BLOCKING_QUERIES

if TYPE_CHECKING:
    from waypost.registry import Registry

DEFAULT_WAIT = 300.0  # Consul: 5 minutes
MAX_WAIT = 600.0  # Consul: 10 minutes
CACHE_SIZE = 4096

# Query parameters that do not change an answer's body. The token does
# (ACLs filter answers), so it stays in the key wherever it was sent:
# `?token=` is part of the query string, the headers' token is added.
_CACHE_IGNORED = frozenset({"index", "wait", "stale", "consistent", "cached"})


class ResponseCache:
    """Rendered responses keyed by the query, valid for one catalog state."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, tuple[int, int, Response]] = OrderedDict()

    def get(self, key: bytes, index: int, generation: int) -> Response | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != index or entry[1] != generation:
            return None
        return entry[2]

    def put(self, key: bytes, index: int, generation: int, response: Response) -> None:
        self._entries[key] = (index, generation, response)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


def cache_key(request: Request) -> bytes:
    query = request.query_string
    if query and not request.params.keys().isdisjoint(_CACHE_IGNORED):
        query = b"&".join(
            part
            for part in query.split(b"&")
            if part.partition(b"=")[0].decode("latin-1") not in _CACHE_IGNORED
        )
    return request.path.encode() + b"?" + query + b"|" + request_token(request) + b"|"


def request_token(request: Request) -> bytes:
    """The ACL token a request carries in a header (Consul's precedence:
    X-Consul-Token, then Authorization: Bearer; `?token=` is in the query)."""
    bearer = b""
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == b"x-consul-token":
            return value
        if lowered == b"authorization" and value[:7].lower() == b"bearer ":
            bearer = value[7:].strip()
    return bearer


async def answer(
    registry: Registry, cache: ResponseCache, request: Request, query: Query
) -> Response:
    """Wait if asked to, then render (or reuse) the query's response."""
    catalog = registry.catalog
    consistency = _consistency(request)
    if consistency == b"consistent":
        # Cluster mode: first catch up with every write committed anywhere.
        await registry.consistent()
    index = catalog.query_index(query.topics)
    wanted = request.integer("index")
    # Parsed even without ?index (a bad one is a 400 either way, as Consul's
    # parseWait).
    wait = request.duration("wait")
    if wanted and index <= wanted:
        wait = DEFAULT_WAIT if wait is None or wait <= 0 else min(wait, MAX_WAIT)
        wait += random.uniform(0, wait / 16)  # Consul's jitter, spreads the herd
        await _wait_for_change(registry, query, wait)
        index = catalog.query_index(query.topics)
    health = registry.store.health()
    if not health.known_leader:
        # The store is out of reach: answer from this replica, and say how
        # stale it may be (never cached: the contact age grows).
        rendered = query.render()
        return Response(
            rendered.status,
            rendered.body,
            [
                *rendered.headers,
                (b"x-consul-index", str(index).encode()),
                (b"x-consul-knownleader", b"false"),
                (
                    b"x-consul-lastcontact",
                    str(int(health.last_contact * 1000)).encode(),
                ),
                (b"x-consul-effective-consistency", consistency),
            ],
        )
    key = cache_key(request) + consistency + compact.variant(request)
    # Both only grow: their sum changes when either does. An ACL change
    # (a policy edited, a token deleted) retires every cached answer.
    generation = catalog.output_generation + catalog.acl.epoch
    cached = cache.get(key, index, generation)
    if cached is None:
        rendered = query.render()
        # The whole response, X-Consul-* headers included, is cached: the
        # protocol then writes its serialized bytes as they are.
        cached = Response(
            rendered.status,
            rendered.body,
            [
                *rendered.headers,
                (b"x-consul-index", str(index).encode()),
                (b"x-consul-knownleader", b"true"),
                (b"x-consul-lastcontact", b"0"),
                (b"x-consul-effective-consistency", consistency),
            ],
        )
        cache.put(key, index, generation, cached)
    return cached


async def _wait_for_change(registry: Registry, query: Query, wait: float) -> None:
    # No asyncio.timeout here: the protocol runs handlers inline, outside
    # any task, until they first wait; a timer resolving the future works
    # in both places.
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    if registry.is_shutting_down:
        return
    registry.watchers.add(query.topics, wake)
    timer = loop.call_later(wait, wake)
    BLOCKING_QUERIES.inc()
    try:
        await woken
    finally:
        BLOCKING_QUERIES.dec()
        timer.cancel()
        registry.watchers.discard(query.topics, wake)


def _consistency(request: Request) -> bytes:
    if request.has("stale"):
        return b"stale"
    if request.has("consistent"):
        return b"consistent"
    return b"leader"
