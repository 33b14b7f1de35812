"""`/v1/agent/*`: the local agent's services, checks, maintenance and self."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from waypost import __version__
from waypost.config import CONSUL_API_VERSION
from waypost.core.model import (
    NODE_MAINTENANCE_CHECK_ID,
    SERVICE_MAINTENANCE_PREFIX,
    Check,
    HealthStatus,
    Service,
)
from waypost.exceptions import InvalidRequest, NotFound
from waypost.http import decode, filtering, wire
from waypost.http.messages import (
    Request,
    Response,
    empty_response,
    json_response,
    text_response,
)

if TYPE_CHECKING:
    from waypost.server import Agent

logger = logging.getLogger("waypost.http")

#: Consul truncates check output to 4 KiB unless OutputMaxSize says otherwise.
DEFAULT_OUTPUT_MAX = 4096

NUMERIC_ID_HEADER = b"x-waypost-warning"

# Consul's default maintenance notes, word for word.
_NODE_MAINT_NOTE = (
    "Maintenance mode is enabled for this node, but no reason was provided."
    " This is a default message."
)
_SERVICE_MAINT_NOTE = (
    "Maintenance mode is enabled for this service, but no reason was provided."
    " This is a default message."
)


# ---------------------------------------------------------------- self, members


def member_json(agent: Agent) -> wire.JSON:
    config = agent.config
    return {
        "Name": config.node,
        "Addr": config.advertise_address,
        "Port": 8301,
        "Tags": {
            "acls": "0",
            "bootstrap": "1",
            "build": f"{CONSUL_API_VERSION}:waypost-{__version__}",
            "dc": config.datacenter,
            "id": agent.node_id,
            "port": "8300",
            "raft_vsn": "3",
            "role": "consul",
            "segment": "",
            "vsn": "2",
            "vsn_max": "3",
            "vsn_min": "2",
            "wan_join_port": "8302",
        },
        "Status": 1,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    }


async def self_(agent: Agent, request: Request) -> Response:
    config = agent.config
    counts = agent.catalog.counts()
    return json_response(
        {
            "Config": {
                "Datacenter": config.datacenter,
                "PrimaryDatacenter": config.datacenter,
                "NodeName": config.node,
                "NodeID": agent.node_id,
                "Partition": "",
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
                "HTTPPort": agent.bound_port,
            },
            "Coord": {
                "Vec": [0.0] * 8,
                "Error": 1.5,
                "Adjustment": 0.0,
                "Height": 1e-05,
            },
            "Member": member_json(agent),
            "Stats": {
                "agent": {
                    "check_monitors": "0",
                    "check_ttls": str(len(agent.catalog.ttl)),
                    "checks": str(counts["checks"]),
                    "services": str(counts["services"]),
                },
                "consul": {
                    "bootstrap": "true",
                    "known_datacenters": "1",
                    "leader": "true",
                    "server": "true",
                },
                "raft": {"state": "Leader", "num_peers": "0"},
            },
            "Meta": {"consul-network-segment": ""},
            "xDS": None,
            # waypost's own identity, apart from the Consul level it claims.
            "Waypost": {
                "Version": __version__,
                "Store": agent.store.description,
                "Index": agent.catalog.index,
                "UptimeSeconds": round(time.time() - agent.started_at, 3),
                "Counts": counts,
            },
        }
    )


async def members(agent: Agent, request: Request) -> Response:
    return json_response(filtering.apply(request, [member_json(agent)]))


async def leave(agent: Agent, request: Request) -> Response:
    agent.request_shutdown()
    return empty_response()


# ---------------------------------------------------------------- services


def _local_services(agent: Agent) -> list[Service]:
    # The "consul" service is the server's own catalog entry, not something
    # registered with the agent: Consul leaves it out of /v1/agent/services.
    return [
        s for s in agent.catalog.node_services(agent.config.node) if s.service_id != "consul"
    ]


async def services(agent: Agent, request: Request) -> Response:
    dc = agent.config.datacenter
    items = [wire.agent_service_json(s, dc) for s in _local_services(agent)]
    items = filtering.apply(request, items, _schema("AGENT_SERVICE"))
    return json_response({item["ID"]: item for item in items})


async def service(agent: Agent, request: Request) -> Response:
    found = agent.catalog.node_service(agent.config.node, request.tail)
    if found is None or found.service_id == "consul":
        raise NotFound(f"unknown service ID: {request.tail}")
    body = wire.agent_service_json(found, agent.config.datacenter)
    body["ContentHash"] = f"{found.modify_index:016x}"
    return json_response(body)


async def register_service(agent: Agent, request: Request) -> Response:
    data = decode.decode_body(request.body, decode.SERVICE_REGISTRATION)
    node = agent.config.node
    service, numeric_id = wire.to_service(data, node=node)
    checks = _service_checks(agent, data, service)
    commit = agent.catalog.register_service(
        service,
        checks,
        now=agent.now(),
        replace_existing_checks=request.flag("replace-existing-checks"),
    )
    await agent.persist(commit)
    headers = []
    if numeric_id and not service.port:
        warning = (
            f"ID {service.service_id} was a number and no Port was given:"
            f" did you mean port={service.service_id}?"
        )
        logger.warning("service %r: %s", service.name, warning)
        headers.append((NUMERIC_ID_HEADER, warning.encode()))
    return Response(200, b"", [(b"content-type", b"text/plain; charset=utf-8"), *headers])


def _service_checks(agent: Agent, data: decode.Decoded, service: Service) -> list[Check]:
    bodies: list[dict[str, object]] = []
    single = data.get("Check")
    if isinstance(single, dict) and single:
        bodies.append(single)
    many = data.get("Checks")
    if isinstance(many, list):
        bodies.extend(b for b in many if isinstance(b, dict) and b)
    checks = []
    for number, body in enumerate(bodies, start=1):
        default_id = (
            f"service:{service.service_id}"
            if len(bodies) == 1
            else f"service:{service.service_id}:{number}"
        )
        check_id = str(body.get("CheckID") or "") or default_id
        checks.append(
            _preserving_status(
                agent,
                wire.to_check(
                    body,
                    node=service.node,
                    check_id=check_id,
                    default_name=f"Service '{service.name}' check",
                    service_id=service.service_id,
                ),
                body,
            )
        )
    return checks


def _preserving_status(agent: Agent, check: Check, body: dict[str, object]) -> Check:
    """A re-registered check keeps its current status unless Status is given.

    Consul does the same, so a client re-asserting its registration does not
    flap its instance to critical.
    """
    if body.get("Status"):
        return check
    existing = agent.catalog.get_check(check.node, check.check_id)
    if existing is None or existing.definition != check.definition:
        return check
    import msgspec

    return msgspec.structs.replace(check, status=existing.status, output=existing.output)


async def deregister_service(agent: Agent, request: Request) -> Response:
    await agent.persist(agent.catalog.deregister_service(agent.config.node, request.tail))
    return empty_response()


async def service_maintenance(agent: Agent, request: Request) -> Response:
    node = agent.config.node
    service_id = request.tail
    if not request.has("enable"):
        raise InvalidRequest("Missing value for enable")
    enable = request.flag("enable")
    found = agent.catalog.node_service(node, service_id)
    if found is None or not service_id:
        raise NotFound(f'Unknown service ID "{service_id}"')
    check_id = SERVICE_MAINTENANCE_PREFIX + service_id
    if enable:
        check = Check(
            node=node,
            check_id=check_id,
            name="Service Maintenance Mode",
            notes=request.get("reason") or _SERVICE_MAINT_NOTE,
            status=HealthStatus.CRITICAL,
            service_id=service_id,
            type="maintenance",
        )
        await agent.persist(agent.catalog.register_check(check, now=agent.now()))
    elif agent.catalog.get_check(node, check_id) is not None:
        await agent.persist(agent.catalog.deregister_check(node, check_id))
    return empty_response()


async def node_maintenance(agent: Agent, request: Request) -> Response:
    node = agent.config.node
    if not request.has("enable"):
        raise InvalidRequest("Missing value for enable")
    if request.flag("enable"):
        check = Check(
            node=node,
            check_id=NODE_MAINTENANCE_CHECK_ID,
            name="Node Maintenance Mode",
            notes=request.get("reason") or _NODE_MAINT_NOTE,
            status=HealthStatus.CRITICAL,
            type="maintenance",
        )
        await agent.persist(agent.catalog.register_check(check, now=agent.now()))
    elif agent.catalog.get_check(node, NODE_MAINTENANCE_CHECK_ID) is not None:
        await agent.persist(agent.catalog.deregister_check(node, NODE_MAINTENANCE_CHECK_ID))
    return empty_response()


# ---------------------------------------------------------------- checks


async def checks(agent: Agent, request: Request) -> Response:
    items = [wire.check_json(c) for c in agent.catalog.node_checks(agent.config.node)]
    items = filtering.apply(request, items, _schema("HEALTH_CHECK"))
    return json_response({item["CheckID"]: item for item in items})


async def register_check(agent: Agent, request: Request) -> Response:
    data = decode.decode_body(request.body, decode.CHECK)
    name = str(data.get("Name") or "")
    if not name:
        raise InvalidRequest("Missing check name")
    check_id = str(data.get("CheckID") or "") or name
    check = wire.to_check(
        data,
        node=agent.config.node,
        check_id=check_id,
        default_name=name,
        service_id=str(data.get("ServiceID") or ""),
    )
    check = _preserving_status(agent, check, data)
    await agent.persist(agent.catalog.register_check(check, now=agent.now()))
    return empty_response()


async def deregister_check(agent: Agent, request: Request) -> Response:
    await agent.persist(agent.catalog.deregister_check(agent.config.node, request.tail))
    return empty_response()


async def _update_ttl(agent: Agent, check_id: str, status: HealthStatus, output: str) -> Response:
    node = agent.config.node
    check = agent.catalog.get_check(node, check_id)
    if check is None:
        raise NotFound(
            f'Unknown check ID "{check_id}". Ensure that the check ID is passed,'
            " not the check name."
        )
    if check.definition.ttl is None:
        raise InvalidRequest(f'CheckID "{check_id}" does not have associated TTL')
    limit = check.definition.output_max_size or DEFAULT_OUTPUT_MAX
    commit = agent.catalog.update_check(
        node, check_id, status, output[:limit], now=agent.now()
    )
    await agent.persist(commit)
    return empty_response()


async def check_pass(agent: Agent, request: Request) -> Response:
    return await _update_ttl(agent, request.tail, HealthStatus.PASSING, request.get("note"))


async def check_warn(agent: Agent, request: Request) -> Response:
    return await _update_ttl(agent, request.tail, HealthStatus.WARNING, request.get("note"))


async def check_fail(agent: Agent, request: Request) -> Response:
    return await _update_ttl(agent, request.tail, HealthStatus.CRITICAL, request.get("note"))


async def check_update(agent: Agent, request: Request) -> Response:
    data = decode.decode_body(request.body, decode.CHECK_UPDATE)
    raw = str(data.get("Status") or "")
    if raw not in ("passing", "warning", "critical"):
        raise InvalidRequest(f'Invalid check status: "{raw}"')
    return await _update_ttl(
        agent, request.tail, HealthStatus(raw), str(data.get("Output") or "")
    )


# ---------------------------------------------------------------- local health

_STATUS_CODES = {"passing": 200, "warning": 429, "critical": 503, "maintenance": 503}


def _aggregate(checks: list[Check]) -> str:
    """Consul's AggregatedStatus: maintenance > critical > warning > passing."""
    if any(c.check_id.startswith(("_node_maintenance", SERVICE_MAINTENANCE_PREFIX)) for c in checks):
        return "maintenance"
    statuses = {c.status for c in checks}
    for status in (HealthStatus.CRITICAL, HealthStatus.WARNING):
        if status in statuses:
            return status.value
    return "passing"


def _local_health(agent: Agent, service: Service) -> tuple[str, wire.JSON]:
    catalog = agent.catalog
    checks = catalog.node_level_checks(service.node) + catalog.service_checks(
        service.node, service.service_id
    )
    status = _aggregate(checks)
    return status, {
        "AggregatedStatus": status,
        "Service": wire.agent_service_json(service, agent.config.datacenter),
        "Checks": [wire.check_json(c) for c in checks],
    }


async def health_by_id(agent: Agent, request: Request) -> Response:
    found = agent.catalog.node_service(agent.config.node, request.tail)
    if found is None:
        message = f"ServiceId {request.tail} not found"
        if request.get("format") == "text":
            return text_response(message, 404)
        return json_response(message, 404)
    status, body = _local_health(agent, found)
    if request.get("format") == "text":
        return text_response(status, _STATUS_CODES[status])
    return json_response(body, _STATUS_CODES[status])


async def health_by_name(agent: Agent, request: Request) -> Response:
    name = request.tail
    found = [s for s in _local_services(agent) if s.name == name]
    if not found:
        message = f"ServiceName {name} Not Found"
        if request.get("format") == "text":
            return text_response(message, 404)
        return json_response(message, 404)
    results = [_local_health(agent, s) for s in found]
    order = ["passing", "warning", "critical", "maintenance"]
    worst = max((status for status, _ in results), key=order.index)
    if request.get("format") == "text":
        return text_response(worst, _STATUS_CODES[worst])
    return json_response([body for _, body in results], _STATUS_CODES[worst])


def _schema(name: str) -> object:
    """The filter schema for a response shape, once the filter module has it."""
    try:
        from waypost.core import filter_schemas
    except ImportError:  # pragma: no cover - during bring-up only
        return None
    return getattr(filter_schemas, name, None)
