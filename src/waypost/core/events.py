"""User events (Consul's `/v1/event/*`): the event, its filters, the buffer.

An event is fired once and delivered to every agent (one agent: itself;
cluster mode: through etcd). Each agent keeps the last `BUFFER_SIZE`
events whose filters match it, oldest first, as Consul's agent keeps its
`eventBuf` (agent/user_event.go). Events are not part of the catalog: they
take no index and are not persisted, as Consul's live in gossip only.
No I/O.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable

import msgspec

from waypost.core.watch import Topic
from waypost.exceptions import InvalidRequest

#: Consul's userEventMaxVersion.
USER_EVENT_VERSION = 1
#: Consul's agent keeps this many recent events (agent.go, eventBuf).
BUFFER_SIZE = 256
#: serf's UserEventSizeLimit: the name and the encoded event together.
SIZE_LIMIT = 512
#: What a blocking `/v1/event/list` waits on.
T_EVENTS: Topic = ("events", "")


class UserEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Consul's UserEvent; `ltime` is set when an agent receives it."""

    id: str
    name: str
    payload: bytes | None = None
    node_filter: str = ""
    service_filter: str = ""
    tag_filter: str = ""
    version: int = USER_EVENT_VERSION
    ltime: int = 0


def validate(event: UserEvent) -> None:
    """Consul's validateUserEventParams and serf's size limit, in their
    words (Consul answers them with a 500; a caller's mistake is a 400)."""
    if not event.name:
        raise InvalidRequest("User event missing name")
    if event.tag_filter and not event.service_filter:
        raise InvalidRequest("Cannot provide tag filter without service filter")
    for what, pattern in (
        ("node", event.node_filter),
        ("service", event.service_filter),
        ("tag", event.tag_filter),
    ):
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidRequest(f"Invalid {what} filter: {exc}") from None
    size = len(event.name.encode()) + len(encode(event))
    if size > SIZE_LIMIT:
        raise InvalidRequest(
            f"user event exceeds configured limit of {SIZE_LIMIT} bytes before encoding"
        )


def matches(
    event: UserEvent, *, node: str, services: Iterable[tuple[str, Iterable[str]]]
) -> bool:
    """Consul's shouldProcessUserEvent: the node filter matches this agent's
    node name, the service filter one of its services (and the tag filter
    one of that service's tags). Go's MatchString: unanchored."""
    try:
        if event.node_filter and not re.search(event.node_filter, node):
            return False
        if not event.service_filter:
            return True
        service_re = re.compile(event.service_filter)
        tag_re = re.compile(event.tag_filter) if event.tag_filter else None
    except re.error:
        return False  # Consul logs it and skips the event
    for name, tags in services:
        if not service_re.search(name):
            continue
        if tag_re is None or any(tag_re.search(tag) for tag in tags):
            return True
    return False


def uuid_to_uint64(event_id: str) -> int:
    """Consul's uuidToUint64: the event list's X-Consul-Index (the two halves
    of the UUID XORed; not monotonic, only "did it change")."""
    lower = event_id[0:8] + event_id[9:13] + event_id[14:18]
    upper = event_id[19:23] + event_id[24:36]
    return int(lower, 16) ^ int(upper, 16)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(UserEvent)


def encode(event: UserEvent) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> UserEvent | None:
    """An event as another agent encoded it; None if it does not decode."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError:
        return None


class EventBuffer:
    """The last `BUFFER_SIZE` events this agent received, oldest first."""

    def __init__(self, size: int = BUFFER_SIZE) -> None:
        self._events: deque[UserEvent] = deque(maxlen=size)
        self._seen: set[str] = set()

    def add(self, event: UserEvent) -> bool:
        """Keep an event (False: already kept, a duplicate delivery)."""
        if event.id in self._seen:
            return False
        if len(self._events) == self._events.maxlen:
            self._seen.discard(self._events[0].id)
        self._events.append(event)
        self._seen.add(event.id)
        return True

    def events(self, name: str = "") -> list[UserEvent]:
        return [e for e in self._events if not name or e.name == name]


def list_index(events: list[UserEvent]) -> int:
    """Consul's event list index: 1 when empty (no hot loop), else the last
    event's ID as a number."""
    return uuid_to_uint64(events[-1].id) if events else 1
