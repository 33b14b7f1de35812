"""Who may call what: ACL enforcement for every route, in one place.

`RULES` says, for each handler of the route table (`routes.py`), what the
token must be allowed before the handler runs (a refused write is refused
here, so it changes nothing) and how the answer of a list is filtered to
what the token may read (`X-Consul-Results-Filtered-By-ACLs: true` when
something was left out). The checks are Consul's (agent/agent_endpoint.go,
agent/consul/acl.go's filters, catalog/health/kvs endpoints). A guard test
checks that every route has a rule.

The token: `?token=`, else `X-Consul-Token`, else `Authorization: Bearer`
(Consul's parseToken order); none is the agent's `default` token, else the
anonymous one. An unknown or expired token is 403 `ACL not found`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from waypost.compact import (
    compact_catalog,
    compact_health,
    expand_catalog,
    expand_health,
)
from waypost.core.acl.authorizer import Authorizer, access_name
from waypost.core.acl.model import ANONYMOUS_SECRET, ANONYMOUS_TOKEN_ID
from waypost.core.acl.rules import LIST, READ, WRITE
from waypost.eureka import handlers as eureka, mapping as eureka_mapping
from waypost.exceptions import AclDisabled, InvalidRequest, PermissionDenied
from waypost.http import (
    acl,
    agent,
    catalog,
    compact,
    config_entries,
    connect,
    connect_ca,
    coordinate,
    discovery_chain,
    events,
    health,
    intentions,
    kv,
    operator,
    session as session_,
    snapshot as snapshots,
    status,
    telemetry,
    txn as txn_,
)
from waypost.http.blocking import request_token
from waypost.http.decode import decode_json
from waypost.http.messages import Query, Request, Response, encode
from waypost.ui import assets as ui_assets, handlers as ui

if TYPE_CHECKING:
    from waypost.http.routes import Handler
    from waypost.registry import Registry

Need = Callable[["Registry", Request, Authorizer], None]
#: (authorizer, decoded JSON) -> (what the token may see, whether it is less)
Filter = Callable[[Authorizer, Any], tuple[Any, bool]]

FILTERED_HEADER = (b"x-consul-results-filtered-by-acls", b"true")
ACL_NOT_FOUND = "ACL not found"


class Rule(NamedTuple):
    need: Need | None = None
    filter: Filter | None = None
    #: An ACL endpoint: 401 `ACL support disabled` while ACLs are off.
    acl_only: bool = False


def denied(
    authz: Authorizer, resource: str, access: int, name: str
) -> PermissionDenied:
    """Consul's PermissionDeniedError text (acl/errors.go)."""
    anonymous = authz.accessor_id == ANONYMOUS_TOKEN_ID
    who = (
        "anonymous token"
        if anonymous
        else f"token with AccessorID '{authz.accessor_id}'"
    )
    message = (
        f"Permission denied: {who} lacks permission '{resource}:{access_name(access)}'"
    )
    if name:
        message += f' on "{name}"'
    if anonymous:
        message += (
            ". The anonymous token is used implicitly when a request does not"
            " specify a token."
        )
    return PermissionDenied(message)


def require(authz: Authorizer, resource: str, name: str, access: int) -> None:
    if not authz.allows(resource, name, access):
        raise denied(authz, resource, access, name)


# ---------------------------------------------------------------- resolving


def resolve(registry: Registry, request: Request) -> Authorizer:
    """Find the request's token; remember it on the request."""
    state = registry.catalog.acl
    secret = request.get("token") or request_token(request).decode("latin-1")
    if not secret:
        secret = registry.agent_tokens.get("default") or ANONYMOUS_SECRET
        request.caller_is_default = True
    token = state.token_by_secret(secret)
    if token is None or (
        token.expiration_time is not None and token.expiration_time <= time.time()
    ):
        raise PermissionDenied(ACL_NOT_FOUND)
    authz = state.authorizer(token)
    request.caller = token
    request.authorizer = authz
    return authz


def guard(registry: Registry, request: Request, handler: Handler) -> Filter | None:
    """Refuse what the token may not do; say how to filter the answer."""
    rule = RULES.get(handler, _NOTHING)
    if not registry.config.acl.enabled:
        if rule.acl_only:
            raise AclDisabled("ACL support disabled")
        return None
    authz = resolve(registry, request)
    if rule.need is not None:
        rule.need(registry, request, authz)
    if rule.filter is None or authz.allows_all:
        return None
    return rule.filter


def filtered(
    result: Response | Query, authz: Authorizer, keep: Filter
) -> Response | Query:
    if isinstance(result, Query):
        render = result.render
        return Query(result.topics, lambda: _filter_response(render(), authz, keep))
    return _filter_response(result, authz, keep)


def _filter_response(response: Response, authz: Authorizer, keep: Filter) -> Response:
    if response.status != 200:
        return response
    if _is_compact(response):
        return _filter_compact(response, authz, keep)
    if not response.body.startswith((b"[", b"{")):
        return response  # not a list (KV ?raw is checked before it is read)
    kept, removed = keep(authz, msgspec.json.decode(response.body))
    if not removed:
        return response
    if kept == [] and getattr(keep, "empty_is_404", False):
        return Response(404, b"", [FILTERED_HEADER])
    return Response(200, encode(kept), [*response.headers, FILTERED_HEADER])


def _is_compact(response: Response) -> bool:
    return compact.CONTENT_TYPE in response.headers


def _filter_compact(response: Response, authz: Authorizer, keep: Filter) -> Response:
    """The compact (msgpack) answer of a health or catalog list: expanded to
    Consul's rows, filtered like them, packed again."""
    if keep is _health_service:
        expand, pack = expand_health, compact_health
    else:
        expand, pack = expand_catalog, compact_catalog
    kept, removed = keep(authz, expand(response.body))
    if not removed:
        return response
    body = msgspec.msgpack.encode(pack(kept))
    return Response(200, body, [*response.headers, FILTERED_HEADER])


# ---------------------------------------------------------------- needs


def _agent_node(registry: Registry) -> str:
    return registry.config.node


def _agent_read(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "agent", _agent_node(registry), READ)


def _agent_write(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "agent", _agent_node(registry), WRITE)


def _node_write(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "node", _agent_node(registry), WRITE)


def _operator_read(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "operator", "", READ)


def _operator_write(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "operator", "", WRITE)


def _operator_by_method(
    registry: Registry, request: Request, authz: Authorizer
) -> None:
    require(authz, "operator", "", READ if request.method == "GET" else WRITE)


def _keyring_by_method(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "keyring", "", READ if request.method == "GET" else WRITE)


# Config entries: Consul's CanRead / CanWrite per kind (structs/config_entry*.go).
#: Kinds named after a service: service:read / service:write on the name.
#: Difference: Consul checks a service-intentions entry against the
#: service rule's `intentions` level; waypost's rules have no such field,
#: so the service's own level decides.
_SERVICE_KINDS = frozenset(
    {
        "service-defaults",
        "service-router",
        "service-splitter",
        "service-resolver",
        "service-intentions",
    }
)


def _mesh_write(authz: Authorizer) -> None:
    # acl.MeshWrite: `mesh` rules, else `operator` ones.
    if not (authz.allows("mesh", "", WRITE) or authz.allows("operator", "", WRITE)):
        raise denied(authz, "mesh", WRITE, "")


def _config_can(authz: Authorizer, kind: str, name: str, access: int) -> None:
    if kind in _SERVICE_KINDS:
        require(authz, "service", name, access)
    elif access == WRITE:
        _mesh_write(authz)
    elif kind in ("ingress-gateway", "terminating-gateway"):
        require(authz, "service", name, READ)
    # proxy-defaults, mesh and the others: anyone may read (CanRead true)


def _config_apply(registry: Registry, request: Request, authz: Authorizer) -> None:
    data = _body(request)
    kind = _field(data, "Kind")
    name = _field(data, "Name")
    if isinstance(kind, str) and isinstance(name, str):
        _config_can(authz, kind, name, WRITE)
    else:
        _mesh_write(authz)  # the handler's 400 for whoever may write


def _config_by_method(registry: Registry, request: Request, authz: Authorizer) -> None:
    kind, _, name = request.tail.partition("/")
    if request.method == "DELETE":
        _config_can(authz, kind, name, WRITE)
    elif name:
        _config_can(authz, kind, name, READ)


def _config_list(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    if not isinstance(data, list):
        return data, False

    def readable(entry: dict[str, Any]) -> bool:
        try:
            _config_can(authz, entry["Kind"], entry["Name"], READ)
        except PermissionDenied:
            return False
        return True

    return _keep(data, readable)


def _service_write_tail(
    registry: Registry, request: Request, authz: Authorizer
) -> None:
    if request.tail:
        require(authz, "service", request.tail, WRITE)


def _intention_write_body(
    registry: Registry, request: Request, authz: Authorizer
) -> None:
    if request.method != "POST":
        return
    name = _field(_body(request), "DestinationName")
    if isinstance(name, str):
        require(authz, "service", name, WRITE)
    else:
        _mesh_write(authz)  # the handler's 400 for whoever may write


def _intention_exact(registry: Registry, request: Request, authz: Authorizer) -> None:
    destination = request.get("destination")
    access = READ if request.method == "GET" else WRITE
    require(authz, "service", destination, access)


def _authorize(registry: Registry, request: Request, authz: Authorizer) -> None:
    """Consul: service:write on the target."""
    target = _field(_body(request), "Target")
    require(authz, "service", target if isinstance(target, str) else "", WRITE)


def _intention_check(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "service", request.get("destination"), READ)


def _intention_list(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    if not isinstance(data, list):
        return data, False
    return _keep(
        data, lambda i: authz.allows("service", i.get("DestinationName", ""), READ)
    )


def _intention_match(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    if not isinstance(data, dict):
        return data, False
    removed = False
    out: dict[str, Any] = {}
    for name, found in data.items():
        kept, less = _intention_list(authz, found)
        out[name] = kept
        removed = removed or less
    return out, removed


def _gateway_services(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    return _keep(
        data,
        lambda row: authz.allows("service", row["Service"]["Name"], READ),
    )


def _acl_read(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "acl", "", READ)


def _acl_write(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "acl", "", WRITE)


def _acl_by_method(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "acl", "", READ if request.method == "GET" else WRITE)


def _service_read_tail(registry: Registry, request: Request, authz: Authorizer) -> None:
    if request.tail:
        require(authz, "service", request.tail, READ)


def _node_read_tail(registry: Registry, request: Request, authz: Authorizer) -> None:
    if request.tail:
        require(authz, "node", request.tail, READ)


def _local_service_name(registry: Registry, service_id: str) -> str | None:
    found = registry.catalog.node_service(_agent_node(registry), service_id)
    return found.name if found is not None else None


def _service_by_id(access: int) -> Need:
    def need(registry: Registry, request: Request, authz: Authorizer) -> None:
        name = _local_service_name(registry, request.tail)
        if name is not None:  # unknown: the handler's 404
            require(authz, "service", name, access)

    return need


def _check_write(registry: Registry, request: Request, authz: Authorizer) -> None:
    check = registry.catalog.get_check(_agent_node(registry), request.tail)
    if check is None:
        return  # the handler's 404
    if check.service_id:
        require(authz, "service", check.service_name, WRITE)
    else:
        require(authz, "node", check.node, WRITE)


def _body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    data = decode_json(request.body)
    if not isinstance(data, dict):
        raise InvalidRequest("Request decode failed: the body is not a JSON object")
    return data


def _field(data: dict[str, Any], *names: str) -> Any:
    """Go's case-insensitive field match, with Consul's snake_case aliases."""
    wanted = {n.lower().replace("_", "") for n in names}
    for key, value in data.items():
        if isinstance(key, str) and key.lower().replace("_", "") in wanted:
            return value
    return None


def _register_service(registry: Registry, request: Request, authz: Authorizer) -> None:
    name = _field(_body(request), "Name")
    if isinstance(name, str) and name:
        require(authz, "service", name, WRITE)


def _register_check(registry: Registry, request: Request, authz: Authorizer) -> None:
    service_id = _field(_body(request), "ServiceID")
    if isinstance(service_id, str) and service_id:
        name = _local_service_name(registry, service_id)
        if name is not None:
            require(authz, "service", name, WRITE)
            return
    require(authz, "node", _agent_node(registry), WRITE)


def _catalog_register(registry: Registry, request: Request, authz: Authorizer) -> None:
    """Consul's vetRegisterWithACL: node:write unless the node is there and
    unchanged; service:write for the service and each service check."""
    data = _body(request)
    node = str(_field(data, "Node") or "")
    existing = registry.catalog.nodes.get(node)
    address = _field(data, "Address")
    changes_node = existing is None or (
        not _field(data, "SkipNodeUpdate")
        and (address != existing.address or bool(_field(data, "NodeMeta")))
    )
    if changes_node:
        require(authz, "node", node, WRITE)
    service = _field(data, "Service")
    if isinstance(service, dict):
        name = _field(service, "Service")
        if isinstance(name, str) and name:
            require(authz, "service", name, WRITE)
    checks = [_field(data, "Check"), *(_field(data, "Checks") or [])]
    for check in checks:
        if not isinstance(check, dict):
            continue
        service_id = _field(check, "ServiceID")
        owner = registry.catalog.node_service(node, service_id) if service_id else None
        if owner is not None:
            require(authz, "service", owner.name, WRITE)
        elif not service_id:
            require(authz, "node", node, WRITE)


def _catalog_deregister(
    registry: Registry, request: Request, authz: Authorizer
) -> None:
    data = _body(request)
    node = str(_field(data, "Node") or "")
    service_id = _field(data, "ServiceID")
    check_id = _field(data, "CheckID")
    if service_id:
        found = registry.catalog.node_service(node, str(service_id))
        if found is not None:
            require(authz, "service", found.name, WRITE)
        return
    if check_id:
        check = registry.catalog.get_check(node, str(check_id))
        if check is not None and check.service_id:
            require(authz, "service", check.service_name, WRITE)
            return
    require(authz, "node", node, WRITE)


def _kv(registry: Registry, request: Request, authz: Authorizer) -> None:
    key = request.tail
    if request.method == "GET":
        if not (request.has("recurse") or request.has("keys")):
            require(authz, "key", key, READ)
    elif request.method == "DELETE" and request.has("recurse"):
        if not authz.allows_key_write_prefix(key):
            raise denied(authz, "key", WRITE, key)
    else:
        require(authz, "key", key, WRITE)


# ---------------------------------------------------------------- filters


def _keep(items: list[Any], allowed: Callable[[Any], bool]) -> tuple[list[Any], bool]:
    kept = [item for item in items if allowed(item)]
    return kept, len(kept) != len(items)


def _check_visible(authz: Authorizer, check: dict[str, Any]) -> bool:
    if check.get("ServiceName"):
        return authz.allows("node", check.get("Node", ""), READ) and authz.allows(
            "service", check["ServiceName"], READ
        )
    return authz.allows("node", check.get("Node", ""), READ)


def _checks(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    return _keep(data, lambda c: _check_visible(authz, c))


def _catalog_services(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    kept = {k: v for k, v in data.items() if authz.allows("service", k, READ)}
    return kept, len(kept) != len(data)


def _catalog_nodes(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    return _keep(data, lambda n: authz.allows("node", n.get("Node", ""), READ))


def _catalog_service(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    return _keep(
        data,
        lambda s: (
            authz.allows("service", s.get("ServiceName", ""), READ)
            and authz.allows("node", s.get("Node", ""), READ)
        ),
    )


def _health_service(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    kept: list[Any] = []
    removed = False
    for entry in data:
        node = (entry.get("Node") or {}).get("Node", "")
        name = (entry.get("Service") or {}).get("Service", "")
        if not (
            authz.allows("node", node, READ) and authz.allows("service", name, READ)
        ):
            removed = True
            continue
        checks, less = _checks(authz, entry.get("Checks") or [])
        removed = removed or less
        kept.append({**entry, "Checks": checks})
    return kept, removed


def _catalog_node(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    if not isinstance(data, dict):
        return data, False
    node = (data.get("Node") or {}).get("Node", "")
    if not authz.allows("node", node, READ):
        return None, True
    services = data.get("Services")
    if isinstance(services, dict):
        kept = {
            k: v
            for k, v in services.items()
            if authz.allows("service", v.get("Service", ""), READ)
        }
        removed = len(kept) != len(services)
    elif isinstance(services, list):
        kept_list = [
            s for s in services if authz.allows("service", s.get("Service", ""), READ)
        ]
        removed = len(kept_list) != len(services)
        return {**data, "Services": kept_list}, removed
    else:
        return data, False
    return {**data, "Services": kept}, removed


def _agent_services(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    kept = {
        k: v
        for k, v in data.items()
        if authz.allows("service", v.get("Service", ""), READ)
    }
    return kept, len(kept) != len(data)


def _agent_checks(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    kept = {k: v for k, v in data.items() if _check_visible(authz, v)}
    return kept, len(kept) != len(data)


def _members(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    return _keep(data, lambda m: authz.allows("node", m.get("Name", ""), READ))


def _kv_entries(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    # ?keys answers strings, ?recurse entries; both are filtered by key:read
    # (Consul without acl.enable_key_list_policy).
    return _keep(
        data,
        lambda e: authz.allows(
            "key", e if isinstance(e, str) else e.get("Key", ""), READ
        ),
    )


_kv_entries.empty_is_404 = True  # type: ignore[attr-defined]


def _ui_services(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    return _keep(data, lambda s: authz.allows("service", s.get("Name", ""), READ))


def _ui_nodes(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    """Consul's NodeDump filter: the node, then its services and checks."""
    nodes, removed = _catalog_nodes(authz, data)
    kept = []
    for node in nodes:
        services, fewer = _keep(
            node.get("Services") or [],
            lambda s: authz.allows("service", s.get("Service", ""), READ),
        )
        checks, less = _checks(authz, node.get("Checks") or [])
        removed = removed or fewer or less
        kept.append({**node, "Services": services, "Checks": checks})
    return kept, removed


def _agent_health(registry: Registry, request: Request, authz: Authorizer) -> None:
    require(authz, "service", request.tail, READ)


def _every_service(registry: Registry, authz: Authorizer) -> None:
    for name in sorted({s.name for s in registry.catalog.all_services()}):
        require(authz, "service", name, READ)


def _eureka_list(registry: Registry, request: Request, authz: Authorizer) -> None:
    """Eureka's lists are XML or JSON documents of every app: rather than
    filter them, they need read on every service (`service_prefix ""`).
    # differs: Eureka has no ACLs; waypost applies Consul's to its API."""
    _every_service(registry, authz)


def _eureka_apps(registry: Registry, request: Request, authz: Authorizer) -> None:
    """/eureka/apps/NAME[/ID[/status|metadata]]: the app is a service."""
    parts = [part for part in request.tail.split("/") if part]
    if not parts or parts[0] == "delta":
        _every_service(registry, authz)
        return
    access = READ if request.method == "GET" else WRITE
    require(authz, "service", eureka_mapping.service_name(parts[0]), access)


# ---------------------------------------------------------------- sessions


def _session_create(registry: Registry, request: Request, authz: Authorizer) -> None:
    """Consul's Session.Apply: session write on the session's node."""
    data = _body(request)
    node = _field(data, "Node")
    require(authz, "session", str(node or registry.config.node), WRITE)


def _session_by_id(registry: Registry, request: Request, authz: Authorizer) -> None:
    """destroy, renew: session write on the node of the session named."""
    found = registry.catalog.sessions.get(request.tail)
    if found is not None:
        require(authz, "session", found.node, WRITE)


def _sessions(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    return _keep(data, lambda s: authz.allows("session", s.get("Node", ""), READ))


# ---------------------------------------------------------------- issue 15b
def _event_write(registry: Registry, request: Request, authz: Authorizer) -> None:
    """Consul's Internal.EventFire: event:write on the event's name."""
    require(authz, "event", request.tail, WRITE)


def _events(authz: Authorizer, data: Any) -> tuple[Any, bool]:
    """Consul's EventList: only the events the token may read (event:read)."""
    return _keep(data, lambda e: authz.allows("event", e.get("Name", ""), READ))


def _txn(registry: Registry, request: Request, authz: Authorizer) -> None:
    """Every operation's own rule (Consul's Txn.preCheck and read filter).

    # differs: Consul answers a refused operation as a 409 TxnError
    # "Permission denied"; here the whole request is a 403, before anything
    # is planned, as for every other route."""
    catalog_ = registry.catalog
    for op in txn_.to_ops(registry, request.body):
        if isinstance(op, txn_.KVOp):
            if op.verb == "delete-tree":
                if not authz.allows_key_write_prefix(op.key):
                    raise denied(authz, "key", WRITE, op.key)
            else:
                access = WRITE if txn_.is_write(op) else READ
                require(authz, "key", op.key, access)
        elif isinstance(op, txn_.NodeOp):
            require(authz, "node", op.node.name, READ if op.verb == txn_.GET else WRITE)
        elif isinstance(op, txn_.ServiceOp):
            found = catalog_.node_service(op.node, op.service.service_id)
            name = op.service.name or (found.name if found else "")
            require(authz, "service", name, READ if op.verb == txn_.GET else WRITE)
        else:
            check = op.check
            access = READ if op.verb == txn_.GET else WRITE
            if check.service_id:
                found = catalog_.node_service(check.node, check.service_id)
                name = found.name if found else check.service_id
                require(authz, "service", name, access)
            else:
                require(authz, "node", check.node, access)


def _coordinate_update(registry: Registry, request: Request, authz: Authorizer) -> None:
    """Consul's Coordinate.Update: node:write on the body's node."""
    node = _field(_body(request), "Node")
    require(authz, "node", str(node or ""), WRITE)


# ---------------------------------------------------------------- the table

_NOTHING = Rule()
_ACL_READ = Rule(_acl_read, acl_only=True)
_ACL_WRITE = Rule(_acl_write, acl_only=True)
_ACL_CRUD = Rule(_acl_by_method, acl_only=True)
_ACL_ANY_TOKEN = Rule(None, acl_only=True)

RULES: dict[Handler, Rule] = {
    # agent
    agent.self_: Rule(_agent_read),
    agent.members: Rule(None, _members),
    agent.services: Rule(None, _agent_services),
    agent.service: Rule(_service_by_id(READ)),
    agent.register_service: Rule(_register_service),
    agent.deregister_service: Rule(_service_by_id(WRITE)),
    agent.service_maintenance: Rule(_service_by_id(WRITE)),
    agent.checks: Rule(None, _agent_checks),
    agent.register_check: Rule(_register_check),
    agent.deregister_check: Rule(_check_write),
    agent.check_pass: Rule(_check_write),
    agent.check_warn: Rule(_check_write),
    agent.check_fail: Rule(_check_write),
    agent.check_update: Rule(_check_write),
    agent.node_maintenance: Rule(_node_write),
    agent.leave: Rule(_agent_write),
    telemetry.metrics: Rule(_agent_read),
    telemetry.monitor: Rule(_agent_read),
    agent.health_by_name: Rule(_agent_health),
    agent.health_by_id: Rule(_service_by_id(READ)),
    acl.agent_token: Rule(_agent_write, acl_only=True),
    # catalog
    catalog.register: Rule(_catalog_register),
    catalog.deregister: Rule(_catalog_deregister),
    catalog.datacenters: _NOTHING,
    catalog.nodes: Rule(None, _catalog_nodes),
    catalog.services: Rule(None, _catalog_services),
    catalog.service: Rule(None, _catalog_service),
    catalog.node: Rule(None, _catalog_node),
    catalog.node_services: Rule(None, _catalog_node),
    # health
    health.node: Rule(None, _checks),
    health.checks: Rule(None, _checks),
    health.service: Rule(None, _health_service),
    health.state: Rule(None, _checks),
    # kv
    kv.dispatch: Rule(_kv, _kv_entries),
    # status: no ACL in Consul; operator: operator:read
    status.leader: _NOTHING,
    status.peers: _NOTHING,
    status.raft_configuration: Rule(_operator_read),
    # Eureka's API on the same catalog
    eureka.all_apps: Rule(_eureka_list),
    eureka.apps: Rule(_eureka_apps),
    eureka.instance_by_id: Rule(_eureka_list),
    eureka.vips: Rule(_eureka_list),
    eureka.svips: Rule(_eureka_list),
    # acl
    acl.bootstrap: Rule(None, acl_only=True),
    acl.token_list: _ACL_READ,
    acl.token_self: _ACL_ANY_TOKEN,
    acl.token_create: _ACL_WRITE,
    acl.token_crud: _ACL_CRUD,
    acl.policy_list: _ACL_READ,
    acl.policy_create: _ACL_WRITE,
    acl.policy_crud: _ACL_CRUD,
    acl.policy_by_name: _ACL_READ,
    acl.role_list: _ACL_READ,
    acl.role_create: _ACL_WRITE,
    acl.role_crud: _ACL_CRUD,
    acl.role_by_name: _ACL_READ,
    acl.auth_method_list: _ACL_READ,
    acl.auth_method_create: _ACL_WRITE,
    acl.auth_method_crud: _ACL_CRUD,
    acl.binding_rule_list: _ACL_READ,
    acl.binding_rule_create: _ACL_WRITE,
    acl.binding_rule_crud: _ACL_CRUD,
    acl.login: Rule(None, acl_only=True),
    acl.logout: Rule(None, acl_only=True),
    acl.templated_policy_list: _ACL_READ,
    acl.templated_policy_read: _ACL_READ,
    acl.templated_policy_preview: _ACL_READ,
    # operator and usage (issue 15): Consul's operator and keyring rules
    operator.raft_peer: Rule(_operator_write),
    operator.raft_transfer_leader: Rule(_operator_write),
    operator.keyring: Rule(_keyring_by_method),
    operator.autopilot_configuration: Rule(_operator_by_method),
    operator.autopilot_health: Rule(_operator_read),
    operator.autopilot_state: Rule(_operator_read),
    operator.usage: Rule(_operator_read),
    # config entries (issue 15)
    config_entries.apply: Rule(_config_apply),
    config_entries.dispatch: Rule(_config_by_method, _config_list),
    # issue 15b: snapshots (Consul: a management token, acl = "write"),
    # events, agent reload, coordinates
    snapshots.snapshot: Rule(_acl_write),
    # sessions (issue 15)
    session_.create: Rule(_session_create),
    session_.destroy: Rule(_session_by_id),
    session_.renew: Rule(_session_by_id),
    session_.info: Rule(None, _sessions),
    session_.node: Rule(None, _sessions),
    session_.list_: Rule(None, _sessions),
    # the web dashboard: its files need no token (they hold no data); what
    # the pages read is filtered as Consul's internal UI endpoints filter it
    ui_assets.redirect: _NOTHING,
    ui_assets.static: _NOTHING,
    ui.ring: Rule(_operator_read),
    ui.services: Rule(None, _ui_services),
    ui.nodes: Rule(None, _ui_nodes),
    agent.reload: Rule(_agent_write),
    events.fire: Rule(_event_write),
    events.list_: Rule(None, _events),
    coordinate.datacenters: _NOTHING,
    coordinate.nodes: Rule(None, _catalog_nodes),
    coordinate.node: Rule(_node_read_tail, _catalog_nodes),
    coordinate.update: Rule(_coordinate_update),
    # transactions (issue 15)
    txn_.txn: Rule(_txn),
    # Connect data (issue 15): service:read on the name asked about, and the
    # answer filtered as the catalog's and health's are
    connect.catalog_connect: Rule(_service_read_tail, _catalog_service),
    connect.health_connect: Rule(_service_read_tail, _health_service),
    connect.health_ingress: Rule(_service_read_tail, _health_service),
    connect.catalog_gateway_services: Rule(_service_read_tail, _gateway_services),
    # intentions (service rules, see _SERVICE_KINDS), the CA (anyone reads
    # the roots; operator rules for its configuration; service:write for a
    # leaf, as Consul), the discovery chain (service:read), force-leave
    intentions.list_or_create: Rule(_intention_write_body, _intention_list),
    intentions.exact: Rule(_intention_exact),
    intentions.check: Rule(_intention_check),
    intentions.match: Rule(None, _intention_match),
    intentions.by_id: Rule(_operator_by_method),
    connect_ca.roots: _NOTHING,
    connect_ca.configuration: Rule(_operator_by_method),
    connect_ca.leaf: Rule(_service_write_tail),
    discovery_chain.read: Rule(_service_read_tail),
    operator.force_leave: Rule(_operator_write),
    intentions.authorize: Rule(_authorize),
    operator.version: _NOTHING,  # Consul checks no ACL here
}

__all__ = ["LIST", "RULES", "Rule", "filtered", "guard", "resolve"]
