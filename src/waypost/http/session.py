"""`/v1/session/*`: Consul's sessions (agent/session_endpoint.go).

create, destroy, info, node, list (blocking on the sessions table's index,
as Consul's) and renew (a TTL timer reset in memory, no write). The JSON
shape is Consul's structs.Session; LockDelay goes out in nanoseconds.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from waypost.core.model import SERF_CHECK_ID
from waypost.core.sessions import (
    BEHAVIOR_DELETE,
    BEHAVIOR_RELEASE,
    DEFAULT_LOCK_DELAY,
    T_SESSIONS,
    TTL_MAX,
    TTL_MIN,
    CreateSession,
    DestroySession,
    ServiceCheckRef,
    Session,
)
from waypost.durations import parse_duration
from waypost.exceptions import InvalidRequest, NotFound
from waypost.http import decode
from waypost.http.catalog import require_local_datacenter
from waypost.http.messages import Query, Request, Response, json_response, text_response
from waypost.http.wire import JSON

if TYPE_CHECKING:
    from waypost.registry import Registry

#: session_endpoint.go lockDelayMinThreshold: a LockDelay under 1000 (ns)
#: is taken as seconds ("users often send 5, meaning seconds").
_LOCK_DELAY_MIN_NS = 1000


def lock_delay_field(value: object, path: str) -> object:
    """structs.Session.UnmarshalJSON: a Go duration string or nanoseconds."""
    if isinstance(value, bool) or value is None:
        raise InvalidRequest(f"Request decode failed: {path}: invalid LockDelay")
    if isinstance(value, str):
        try:
            nanos = parse_duration(value) * 1e9
        except ValueError:
            raise InvalidRequest(
                f'Request decode failed: time: invalid duration "{value}"'
            ) from None
    elif isinstance(value, int | float):
        nanos = float(value)
    else:
        raise InvalidRequest(f"Request decode failed: {path}: invalid LockDelay")
    if abs(nanos) >= 2**63:
        raise InvalidRequest(f"Request decode failed: {path}: LockDelay overflows")
    if nanos < _LOCK_DELAY_MIN_NS:
        return nanos  # seconds
    return nanos / 1e9


_SERVICE_CHECK = decode.Obj(
    "ServiceCheck", {"ID": decode.string, "Namespace": decode.string}
)
SESSION = decode.Obj(
    "Session",
    {
        "ID": decode.string,
        "Name": decode.string,
        "Node": decode.string,
        "LockDelay": lock_delay_field,
        "Behavior": decode.string,
        "TTL": decode.string,
        "Checks": decode.list_of(decode.string),
        "NodeChecks": decode.list_of(decode.string),
        "ServiceChecks": decode.list_of(_SERVICE_CHECK),
        "Namespace": decode.string,
        "Partition": decode.string,
        "CreateIndex": decode.integer,
        "ModifyIndex": decode.integer,
    },
)


def session_json(session: Session) -> JSON:
    """Consul's structs.Session, field for field (OSS: no Namespace)."""
    body: JSON = {
        "ID": session.id,
        "Name": session.name,
        "Node": session.node,
        "LockDelay": round(session.lock_delay * 1e9),
        "Behavior": session.behavior,
        "TTL": session.ttl,
        "NodeChecks": list(session.node_checks)
        if session.node_checks is not None
        else None,
        "ServiceChecks": [
            {"ID": c.id, "Namespace": c.namespace} for c in session.service_checks
        ]
        if session.service_checks is not None
        else None,
    }
    if session.checks:
        body["Checks"] = list(session.checks)
    body["CreateIndex"] = session.create_index
    body["ModifyIndex"] = session.modify_index
    return body


def _validate_ttl(ttl: str) -> None:
    """consul/session_endpoint.go Apply's TTL checks."""
    if not ttl:
        return
    try:
        seconds = parse_duration(ttl)
    except ValueError:
        raise InvalidRequest(
            f"Session TTL '{ttl}' invalid: time: invalid duration \"{ttl}\""
        ) from None
    if seconds != 0 and not TTL_MIN <= seconds <= TTL_MAX:
        raise InvalidRequest(
            f"Invalid Session TTL '{round(seconds * 1e9)}', must be between"
            " [10s=24h0m0s]"
        )


def to_session(registry: Registry, data: decode.Decoded, session_id: str) -> Session:
    """The body over SessionCreate's defaults, then fixupEmptySessionChecks."""
    checks: list[str] | None = [SERF_CHECK_ID]
    node_checks: list[str] | None = [SERF_CHECK_ID]
    if "Checks" in data:
        checks = list(data["Checks"])  # type: ignore[call-overload]
    if "NodeChecks" in data:
        node_checks = list(data["NodeChecks"])  # type: ignore[call-overload]
    if not checks:
        node_checks = []
    elif checks == [SERF_CHECK_ID] or not node_checks:
        checks = None
    service_checks = None
    if "ServiceChecks" in data:
        refs: list[decode.Decoded] = data["ServiceChecks"]  # type: ignore[assignment]
        service_checks = tuple(
            ServiceCheckRef(
                id=str(c.get("ID") or ""), namespace=str(c.get("Namespace") or "")
            )
            for c in refs
        )
    behavior = str(data.get("Behavior") or BEHAVIOR_RELEASE)
    if behavior not in (BEHAVIOR_RELEASE, BEHAVIOR_DELETE):
        raise InvalidRequest(f"Invalid Behavior setting '{behavior}'")
    ttl = str(data.get("TTL") or "")
    _validate_ttl(ttl)
    node = str(data["Node"]) if "Node" in data else registry.config.node
    if not node:
        raise InvalidRequest("Must provide Node")
    lock_delay = data.get("LockDelay")
    return Session(
        id=session_id,
        name=str(data.get("Name") or ""),
        node=node,
        lock_delay=DEFAULT_LOCK_DELAY if lock_delay is None else float(lock_delay),  # type: ignore[arg-type]
        behavior=behavior,
        ttl=ttl,
        node_checks=tuple(node_checks) if node_checks is not None else None,
        service_checks=service_checks,
        checks=tuple(checks or ()),
    )


async def create(registry: Registry, request: Request) -> Response:
    data = decode.decode_body(request.body, SESSION)
    require_local_datacenter(registry, request)
    session = to_session(registry, data, str(uuid.uuid4()))
    await registry.apply(CreateSession(session=session))
    return json_response({"ID": session.id})


def _missing(what: str) -> Response:
    return text_response(f"Missing {what}", 400)


async def destroy(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    if not request.tail:
        return _missing("session")
    await registry.apply(DestroySession(session_id=request.tail))
    return json_response(True)


async def renew(registry: Registry, request: Request) -> Response:
    require_local_datacenter(registry, request)
    if not request.tail:
        return _missing("session")
    session = registry.renew_session(request.tail)
    if session is None:
        raise NotFound(f"Session id '{request.tail}' not found")
    return json_response([session_json(session)])


async def info(registry: Registry, request: Request) -> Response | Query:
    require_local_datacenter(registry, request)
    session_id = request.tail
    if not session_id:
        return _missing("session")
    sessions = registry.catalog.sessions

    def render() -> Response:
        found = sessions.get(session_id)
        return json_response([session_json(found)] if found else [])

    return Query([T_SESSIONS], render)


async def node(registry: Registry, request: Request) -> Response | Query:
    require_local_datacenter(registry, request)
    name = request.tail
    if not name:
        return _missing("node name")
    sessions = registry.catalog.sessions

    def render() -> Response:
        return json_response([session_json(s) for s in sessions.of_node(name)])

    return Query([T_SESSIONS], render)


async def list_(registry: Registry, request: Request) -> Response | Query:
    require_local_datacenter(registry, request)
    sessions = registry.catalog.sessions

    def render() -> Response:
        return json_response([session_json(s) for s in sessions.all()])

    return Query([T_SESSIONS], render)
