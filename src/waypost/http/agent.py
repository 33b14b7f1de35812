"""`/v1/agent/*`: the local agent's services, checks, maintenance and self."""

from __future__ import annotations

import logging
import time
from sys import intern
from typing import TYPE_CHECKING

import msgspec

from waypost import __version__
from waypost.config import CONSUL_API_VERSION
from waypost.core import queries
from waypost.core.changes import (
    DeregisterCheck,
    DeregisterService,
    DeregisterServices,
    RegisterCheck,
    RegisterService,
    RegisterServices,
    SetMaintenance,
)
from waypost.core.model import (
    SERF_CHECK_ID,
    Check,
    HealthStatus,
    Service,
)
from waypost.exceptions import InvalidRequest, NotFound
from waypost.http import connect_wire, decode, filtering, limits, wire
from waypost.http.messages import (
    TEXT_TYPE,
    Request,
    Response,
    empty_response,
    json_response,
    text_response,
)

if TYPE_CHECKING:
    from waypost.registry import Registry

logger = logging.getLogger("waypost.http")

#: Consul truncates check output to 4 KiB unless OutputMaxSize says otherwise.
DEFAULT_OUTPUT_MAX = 4096

NUMERIC_ID_HEADER = b"x-waypost-warning"

# ---------------------------------------------------------------- self, members


def member_json(
    registry: Registry,
    *,
    wan: bool = False,
    node: str = "",
    address: str = "",
    node_id: str = "",
    is_alive: bool = True,
) -> wire.JSON:
    """serf.Member; the WAN pool names members `<node>.<datacenter>` on 8302.

    Without `node`: this agent. In cluster mode every agent is a member; a
    gone one has Status 4 (serf's StatusFailed).
    """
    config = registry.config
    node = node or config.node
    return {
        "Name": f"{node}.{config.datacenter}" if wan else node,
        "Addr": address or config.advertise_address,
        "Port": 8302 if wan else 8301,
        "Tags": {
            "acls": "0",
            "bootstrap": "0" if registry.cluster is not None else "1",
            "build": f"{CONSUL_API_VERSION}:waypost-{__version__}",
            "dc": config.datacenter,
            "id": node_id or registry.node_id,
            "port": "8300",
            "raft_vsn": "3",
            "role": "consul",
            "segment": "",
            "vsn": "2",
            "vsn_max": "3",
            "vsn_min": "2",
            "wan_join_port": "8302",
        },
        "Status": 1 if is_alive else 4,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    }


async def self_(registry: Registry, request: Request) -> Response:
    config = registry.config
    counts = registry.catalog.counts()
    # One agent is its own leader; in cluster mode the leader is etcd's, the
    # one /v1/status/leader names, and no agent is it.
    is_leader, leader_addr = True, f"{config.advertise_address}:8300"
    if registry.cluster is not None:
        view = await registry.cluster.etcd_view()
        is_leader = False
        leader_addr = next(
            (m.peer_address for m in view.members if m.is_leader and view.is_current),
            "",
        )
    return json_response(
        {
            "Config": {
                "Datacenter": config.datacenter,
                "PrimaryDatacenter": config.datacenter,
                "NodeName": config.node,
                "NodeID": registry.node_id,
                # Consul omits an empty Partition (`json:",omitempty"`).
                "Revision": "waypost",
                "Server": True,
                "Version": CONSUL_API_VERSION,
                "BuildDate": "2026-11-28T00:00:00Z",
            },
            "DebugConfig": {
                "Datacenter": config.datacenter,
                "NodeName": config.node,
                "DataDir": "" if config.dev else config.data_dir,
                "DevMode": config.dev,
                "ServerMode": True,
                "Bootstrap": True,
                "ClientAddrs": [config.http_host],
                "HTTPPort": registry.http_port,
            },
            "Coord": {
                "Vec": [0.0] * 8,
                "Error": 1.5,
                "Adjustment": 0.0,
                "Height": 1e-05,
            },
            "Member": member_json(registry),
            "Stats": {
                "agent": {
                    "check_monitors": "0",
                    "check_ttls": str(len(registry.catalog.ttl)),
                    "checks": str(counts["checks"]),
                    "services": str(counts["services"]),
                },
                "consul": {
                    "bootstrap": "true",
                    "known_datacenters": "1",
                    "leader": "true" if is_leader else "false",
                    # What /v1/status/leader answers, as on a Consul server.
                    "leader_addr": leader_addr,
                    "server": "true",
                },
                "raft": {
                    "state": "Leader" if is_leader else "Follower",
                    "num_peers": "0",
                },
                # waypost's own identity and state, apart from the Consul level
                # it claims. Consul's Stats is map[string]map[string]string (Go
                # clients decode it so), hence strings only, and no new
                # top-level key (clients check Self's exact key set).
                "waypost": {
                    "version": __version__,
                    "store": registry.store.description,
                    "index": str(registry.catalog.index),
                    "uptime_seconds": f"{time.time() - registry.started_at:.3f}",
                    "checks_running": str(registry.checks_running()),
                    **{name: str(count) for name, count in counts.items()},
                },
                "self_preservation": _strings(
                    msgspec.to_builtins(registry.brake.state(registry.now()))
                ),
            },
            "Meta": {"consul-network-segment": ""},
            # A dev-mode Consul (1.13.8+) lists xDS; py-consul's tests expect
            # the key. waypost serves no xDS, hence null.
            "xDS": None,
        }
    )


def _strings(values: dict[str, object]) -> dict[str, str]:
    """Go-style string rendering of a flat dict (bools as true/false)."""
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for key, value in values.items()
    }


async def members(registry: Registry, request: Request) -> Response:
    # Consul: any non-empty ?wan= asks for the WAN pool (AgentMembers).
    wan = bool(request.get("wan"))
    cluster = registry.cluster
    if cluster is None:
        found = [member_json(registry, wan=wan)]
    else:
        found = [
            member_json(
                registry,
                wan=wan,
                node=agent.node,
                address=agent.address,
                node_id=agent.node_id,
                is_alive=agent.is_alive,
            )
            for agent in cluster.agents()
        ]
    return json_response(filtering.apply(request, found))


async def leave(registry: Registry, request: Request) -> Response:
    registry.request_shutdown()
    return empty_response()


# ---------------------------------------------------------------- services


def _local_services(registry: Registry) -> list[Service]:
    # The "consul" service is the server's own catalog entry, not something
    # registered with the agent: Consul leaves it out of /v1/agent/services.
    return [
        s
        for s in registry.catalog.node_services(registry.config.node)
        if s.service_id != "consul"
    ]


async def services(registry: Registry, request: Request) -> Response:
    dc = registry.config.datacenter
    items = [wire.agent_service_json(s, dc) for s in _local_services(registry)]
    items = filtering.apply(request, items)
    return json_response({item["ID"]: item for item in items})


async def service(registry: Registry, request: Request) -> Response:
    found = registry.catalog.node_service(registry.config.node, request.tail)
    if found is None or found.service_id == "consul":
        raise NotFound(f"unknown service ID: {request.tail}")
    body = wire.agent_service_json(found, registry.config.datacenter)
    content_hash = f"{found.modify_index:016x}"
    body["ContentHash"] = content_hash
    # Consul sends the hash as a header too (agent_endpoint.go AgentService).
    return json_response(
        body, headers=[(b"x-consul-contenthash", content_hash.encode())]
    )


async def register_service(registry: Registry, request: Request) -> Response:
    """Validate in Consul's order (AgentRegisterService), then apply whole."""
    data = decode.decode_body(request.body, decode.SERVICE_REGISTRATION)
    change, service, numeric_id = service_registration(
        registry, data, replace_existing_checks=_replace_existing_checks(request)
    )
    await registry.apply(change)
    headers = [TEXT_TYPE]
    if numeric_id and not service.port and _could_be_port(service.service_id):
        warning = (
            f"ID {service.service_id} was a number and no Port was given:"
            f" did you mean port={service.service_id}?"
        )
        logger.warning("service %r: %s", service.name, warning)
        headers.append((NUMERIC_ID_HEADER, warning.encode()))
    return Response(200, b"", headers)


def _sidecar(
    registry: Registry, data: decode.Decoded, parent: Service
) -> RegisterService | None:
    """Connect.SidecarService: the proxy registration Consul's agent adds
    beside the service (agent/sidecar_service.go), or None."""
    raw = connect_wire.decode_connect(data).sidecar
    if raw is None:
        return None
    body = decode.SERVICE_REGISTRATION(raw, "Connect.SidecarService")
    node = registry.config.node
    sidecar_id = parent.service_id + connect_wire.SIDECAR_SUFFIX
    used = {
        s.port
        for s in registry.catalog.node_services(node)
        if s.kind == connect_wire.CONNECT_PROXY and s.service_id != sidecar_id
    }
    existing = registry.catalog.node_service(node, sidecar_id)
    body = connect_wire.sidecar_registration(
        dict(data),
        parent.service_id,
        dict(body),
        used,
        existing.port if existing is not None else None,
    )
    limits.check_lengths(body)
    service, _ = wire.to_service(body, node=node)
    service = msgspec.structs.replace(service, agent_tagged_defaults=True)
    return RegisterService(
        service=service,
        checks=_service_checks(registry, body, service),
        keep_status=True,
    )


def service_registration(
    registry: Registry, data: decode.Decoded, *, replace_existing_checks: bool
) -> tuple[RegisterService | RegisterServices, Service, bool]:
    """A decoded service definition (the register endpoint's body, or a
    configuration file's `service`) as one change (with its sidecar, if it
    asks for one), validated in Consul's order; the service; and whether
    its ID was a JSON number."""
    limits.check_lengths(data)
    if not data.get("Name"):
        raise InvalidRequest("Missing service name")
    if wire.is_any_address(str(data.get("Address") or "")):
        raise InvalidRequest("Invalid service address")
    node = registry.config.node
    service, numeric_id = wire.to_service(data, node=node)
    service = msgspec.structs.replace(service, agent_tagged_defaults=True)
    checks = _service_checks(registry, data, service)
    registration = RegisterService(
        service=service,
        checks=checks,
        replace_existing_checks=replace_existing_checks,
        keep_status=True,
    )
    sidecar = _sidecar(registry, data, service)
    if sidecar is None:
        return registration, service, numeric_id
    return RegisterServices(items=[registration, sidecar]), service, numeric_id


def _could_be_port(service_id: str) -> bool:
    return service_id.isdigit() and 0 < int(service_id) <= 65535


def _replace_existing_checks(request: Request) -> bool:
    # Consul: present and either empty or exactly "true"; anything else is off.
    return request.has("replace-existing-checks") and request.get(
        "replace-existing-checks"
    ) in ("", "true")


def _service_checks(
    registry: Registry, data: decode.Decoded, service: Service
) -> list[Check]:
    """Check, then Checks, as Consul's ServiceDefinition.CheckTypes() orders them."""
    bodies: list[dict[str, object]] = []
    single = data.get("Check")
    if isinstance(single, dict) and not wire.is_empty_check(single):
        bodies.append(single)
    many = data.get("Checks")
    if isinstance(many, list):
        bodies.extend(
            b for b in many if isinstance(b, dict) and not wire.is_empty_check(b)
        )
    for body in bodies:
        wire.validate_check_type(body)
    for body in bodies:
        if not _is_valid_status(body):
            raise InvalidRequest(
                "Status for checks must 'passing', 'warning', 'critical'"
            )
    checks = []
    for number, body in enumerate(bodies, start=1):
        default_id = (
            f"service:{service.service_id}"
            if len(bodies) == 1
            else f"service:{service.service_id}:{number}"
        )
        check_id = str(body.get("CheckID") or "") or default_id
        check = wire.to_check(
            body,
            node=service.node,
            check_id=check_id,
            default_name=intern(f"Service '{service.name}' check"),
            service_id=service.service_id,
        )
        registry.validate_check(check)
        checks.append(check)
    return checks


def _is_valid_status(body: dict[str, object]) -> bool:
    status = body.get("Status") or ""
    return status == "" or status in HealthStatus.__members__.values()


async def deregister_service(registry: Registry, request: Request) -> Response:
    node = registry.config.node
    change = DeregisterService(node=node, service_id=request.tail)
    # Consul's agent removes the sidecar a Connect.SidecarService added.
    sidecar_id = request.tail + connect_wire.SIDECAR_SUFFIX
    sidecar = registry.catalog.node_service(node, sidecar_id)
    parent = registry.catalog.node_service(node, request.tail)
    if (
        parent is not None
        and sidecar is not None
        and sidecar.kind == connect_wire.CONNECT_PROXY
        and sidecar.proxy_destination == parent.name
    ):
        also = DeregisterService(node=node, service_id=sidecar_id, missing_ok=True)
        await registry.apply(DeregisterServices(items=[change, also]))
    else:
        await registry.apply(change)
    return empty_response()


def _enable_flag(request: Request) -> bool:
    """`?enable=`, parsed like Consul's strconv.ParseBool (agent_endpoint.go)."""
    if not request.has("enable"):
        raise InvalidRequest("Missing value for enable")
    raw = request.get("enable")
    enable = decode.parse_bool(raw)
    if enable is None:
        raise InvalidRequest(f'Invalid value for enable: "{raw}"')
    return enable


async def service_maintenance(registry: Registry, request: Request) -> Response:
    """Consul's AgentServiceMaintenance: enabling twice keeps the first reason."""
    service_id = request.tail
    if not service_id:
        raise InvalidRequest("Missing service ID")
    await registry.apply(
        SetMaintenance(
            node=registry.config.node,
            service_id=service_id,
            enable=_enable_flag(request),
            reason=request.get("reason"),
        )
    )
    return empty_response()


async def node_maintenance(registry: Registry, request: Request) -> Response:
    """Consul's AgentNodeMaintenance: enabling twice keeps the first reason."""
    await registry.apply(
        SetMaintenance(
            node=registry.config.node,
            enable=_enable_flag(request),
            reason=request.get("reason"),
        )
    )
    return empty_response()


# ---------------------------------------------------------------- checks


def _local_checks(registry: Registry) -> list[Check]:
    """The checks the agent itself holds: serfHealth is not one of them.

    In Consul the leader writes serfHealth straight into the catalog; the
    agent's local state (/v1/agent/checks, agent health) never lists it.
    """
    node_checks = registry.catalog.node_checks(registry.config.node)
    return [c for c in node_checks if c.check_id != SERF_CHECK_ID]


def _local_check(registry: Registry, check_id: str) -> Check | None:
    if check_id == SERF_CHECK_ID:
        return None
    return registry.catalog.get_check(registry.config.node, check_id)


def _unknown_check(check_id: str) -> NotFound:
    return NotFound(
        f'Unknown check ID "{check_id}". Ensure that the check ID is passed,'
        " not the check name."
    )


async def checks(registry: Registry, request: Request) -> Response:
    items = [wire.check_json(c) for c in _local_checks(registry)]
    items = filtering.apply(request, items)
    return json_response({item["CheckID"]: item for item in items})


async def register_check(registry: Registry, request: Request) -> Response:
    """Validate in Consul's order (AgentRegisterCheck), then apply."""
    data = decode.decode_body(request.body, decode.CHECK)
    await registry.apply(check_registration(registry, data))
    return empty_response()


def check_registration(registry: Registry, data: decode.Decoded) -> RegisterCheck:
    """A decoded check definition (the register endpoint's body, or a
    configuration file's `check`) as one change, validated as Consul does."""
    limits.check_lengths(data)
    name = str(data.get("Name") or "")
    if not name:
        raise InvalidRequest("Missing check name")
    if not _is_valid_status(data):
        raise InvalidRequest("Bad check status")
    wire.validate_check_type(data)
    check_id = str(data.get("CheckID") or "") or name
    check = wire.to_check(
        data,
        node=registry.config.node,
        check_id=check_id,
        default_name=name,
        service_id=str(data.get("ServiceID") or ""),
    )
    registry.validate_check(check)
    return RegisterCheck(check=check, keep_status=True)


async def deregister_check(registry: Registry, request: Request) -> Response:
    if _local_check(registry, request.tail) is None:
        raise _unknown_check(request.tail)
    await registry.apply(
        DeregisterCheck(node=registry.config.node, check_id=request.tail)
    )
    return empty_response()


async def _update_ttl(
    registry: Registry, check_id: str, status: HealthStatus, output: str
) -> Response:
    node = registry.config.node
    check = _local_check(registry, check_id)
    if check is None:
        raise _unknown_check(check_id)
    if check.definition.ttl is None:
        # Deliberate difference: Consul answers 500 here; it is the caller's
        # mistake, so waypost answers 400 with Consul's words.
        raise InvalidRequest(f'CheckID "{check_id}" does not have associated TTL')
    limit = check.definition.output_max_size or DEFAULT_OUTPUT_MAX
    await registry.update_check(
        node, check_id, status, _truncate_output(output, limit), heartbeat=True
    )
    return empty_response()


def _truncate_output(output: str, limit: int) -> str:
    """Consul's CheckTTL.SetStatus: cut at `limit` bytes and say so."""
    if len(output) * 4 <= limit:  # even all 4-byte characters would fit
        return output
    raw = output.encode()
    if len(raw) <= limit:
        return output
    kept = raw[:limit].decode(errors="ignore")
    return f"{kept} ... (captured {limit} of {len(raw)} bytes)"


async def check_pass(registry: Registry, request: Request) -> Response:
    return await _update_ttl(
        registry, request.tail, HealthStatus.PASSING, request.get("note")
    )


async def check_warn(registry: Registry, request: Request) -> Response:
    return await _update_ttl(
        registry, request.tail, HealthStatus.WARNING, request.get("note")
    )


async def check_fail(registry: Registry, request: Request) -> Response:
    return await _update_ttl(
        registry, request.tail, HealthStatus.CRITICAL, request.get("note")
    )


async def check_update(registry: Registry, request: Request) -> Response:
    data = decode.decode_body(request.body, decode.CHECK_UPDATE)
    raw = str(data.get("Status") or "")
    if raw not in HealthStatus.__members__.values():
        raise InvalidRequest(f"Invalid check status: '{raw}'")
    return await _update_ttl(
        registry, request.tail, HealthStatus(raw), str(data.get("Output") or "")
    )


# ---------------------------------------------------------------- local health

_STATUS_CODES = {"passing": 200, "warning": 429, "critical": 503, "maintenance": 503}


def _local_health(registry: Registry, service: Service) -> tuple[str, wire.JSON]:
    checks = queries.local_health_checks(registry.catalog, service)
    status = queries.aggregate_status(checks)
    return status, {
        "AggregatedStatus": status,
        "Service": wire.agent_service_json(service, registry.config.datacenter),
        "Checks": [wire.check_json(c) for c in checks],
    }


def _wants_text(request: Request) -> bool:
    """Consul's returnTextPlain: an Accept of text/plain, or ?format=text."""
    for name, value in request.headers:
        if name.lower() == b"accept" and value.startswith(b"text/plain"):
            return True
    return request.get("format") == "text"


def _health_answer(request: Request, body: object, status: str, code: int) -> Response:
    """Consul's CodeWithPayloadError: the body, the code, X-Consul-Reason."""
    reason = [(b"x-consul-reason", status.encode())]
    if _wants_text(request):
        return text_response(status, code, reason)
    return json_response(body, code, reason)


async def health_by_id(registry: Registry, request: Request) -> Response:
    service_id = request.tail
    if not service_id:
        raise InvalidRequest("Missing serviceID")
    found = registry.catalog.node_service(registry.config.node, service_id)
    if found is None or found.service_id == "consul":
        # Consul still answers a body here: critical, no service, no checks.
        reason = f"ServiceId {service_id} not found"
        empty = {"AggregatedStatus": "critical", "Service": None, "Checks": None}
        return _health_answer(request, empty, reason, 404)
    status, body = _local_health(registry, found)
    return _health_answer(request, body, status, _STATUS_CODES[status])


async def health_by_name(registry: Registry, request: Request) -> Response:
    name = request.tail
    if not name:
        raise InvalidRequest("Missing service Name")
    results = [
        _local_health(registry, s) for s in _local_services(registry) if s.name == name
    ]
    if not results:
        return _health_answer(request, [], f"ServiceName {name} Not Found", 404)
    worst = queries.worst_status(status for status, _ in results)
    bodies = [body for _, body in results]
    return _health_answer(request, bodies, worst, _STATUS_CODES[worst])


# ---------------------------------------------------------------- issue 15b


async def reload(registry: Registry, request: Request) -> Response:
    """`PUT /v1/agent/reload`: re-read the configuration files (their
    services and checks); a bad file is a 400 and the old ones stay."""
    await registry.reload_config()
    return empty_response()
