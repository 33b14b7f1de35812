"""`/v1/event/*`: fire a user event to every agent, list the ones received.

Consul's agent/event_endpoint.go: the list is this agent's buffer of recent
events (oldest first), its X-Consul-Index the last event's ID folded to 64
bits (1 when empty); a blocking list (`?index=`) waits while the index is
still the one given, for `?wait` or Consul's 10-minute maximum. Events take
no catalog index and are not persisted (Consul's live in gossip only).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from waypost.core.events import T_EVENTS, UserEvent, list_index
from waypost.exceptions import InvalidRequest
from waypost.http import wire
from waypost.http.blocking import MAX_WAIT
from waypost.http.catalog import require_local_datacenter
from waypost.http.messages import Request, Response, json_response

if TYPE_CHECKING:
    from waypost.registry import Registry


async def fire(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    name = request.tail
    if not name:
        raise InvalidRequest("Missing name")
    event = UserEvent(
        id=str(uuid.uuid4()),
        name=name,
        payload=request.body or None,
        node_filter=request.get("node"),
        service_filter=request.get("service"),
        tag_filter=request.get("tag"),
    )
    await registry.fire_event(event)
    # As Consul: the event as sent (LTime is given when an agent receives it).
    return json_response(wire.event_json(event))


async def list_(registry: Registry, request: Request) -> Response:
    name = request.get("name")
    wanted = request.integer("index") or 0
    wait = request.duration("wait") or MAX_WAIT
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, MAX_WAIT)
    while True:
        events = registry.events.events(name)
        index = list_index(events)
        # Not monotonic: only "is it still the one the caller has".
        remaining = deadline - loop.time()
        if index != wanted or remaining <= 0 or registry.is_shutting_down:
            break
        await _wait_for_event(registry, remaining)
    return json_response(
        [wire.event_json(e) for e in events],
        headers=[(b"x-consul-index", str(index).encode())],
    )


async def _wait_for_event(registry: Registry, wait: float) -> None:
    # A timer resolving a future: handlers may run outside any task.
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    registry.watchers.add([T_EVENTS], wake)
    timer = loop.call_later(wait, wake)
    try:
        await woken
    finally:
        timer.cancel()
        registry.watchers.discard([T_EVENTS], wake)
