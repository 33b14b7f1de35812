"""Eureka's REST operations (Netflix's `ApplicationsResource`,
`ApplicationResource`, `InstanceResource`) on the Registry.

Writes are Changes through `registry.apply`; a renew is a TTL heartbeat
through `registry.update_check(..., heartbeat=True)`. Reads are rendered
from the catalog in memory on each request: no 30 s response caches.
Answers are XML unless `Accept` names JSON (Eureka's rule: the header
contains "json").
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING

import msgspec

from waypost.core.catalog import is_maintenance_check
from waypost.core.changes import (
    CHECKS,
    SERVICES,
    DeregisterService,
    Entry,
    RegisterCheck,
    RegisterService,
    SetMaintenance,
    row_key,
)
from waypost.core.model import Check, HealthStatus, Node, Service
from waypost.eureka import mapping, wire
from waypost.eureka.wire import Instance
from waypost.exceptions import InvalidRequest, NotFound
from waypost.http.messages import Request, Response, encode
from waypost.http.wire import validate_meta

if TYPE_CHECKING:
    from waypost.registry import Registry

JSON = (b"content-type", b"application/json")
XML = (b"content-type", b"application/xml")
#: Eureka's retentionTimeInMSInDeltaQueue (3 minutes).
DELTA_RETENTION = 180.0
DELTA_MAX = 100_000
OVERRIDE_REASON = "Eureka status override: OUT_OF_SERVICE"


# ---------------------------------------------------------------- answers


def _wants_json(request: Request) -> bool:
    for name, value in request.headers:
        if name.lower() == b"accept" and b"json" in value.lower():
            return True
    return False


def _content_type(request: Request) -> str:
    for name, value in request.headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1").lower()
    return ""


def _empty(status: int) -> Response:
    return Response(status, b"", [(b"content-type", b"text/plain")])


def _applications(
    request: Request, apps: dict[str, list[Instance]], version: int, hashcode: str
) -> Response:
    if _wants_json(request):
        return Response(
            200, encode(wire.applications_json(apps, version, hashcode)), [JSON]
        )
    body = wire.applications_xml(apps, version, hashcode)
    return Response(200, body.encode(), [XML])


# ---------------------------------------------------------------- reading the catalog


def _now_ms() -> int:
    return int(time.time() * 1000)


def _started_ms(registry: Registry) -> int:
    return int(registry.started_at * 1000)


def _checks(registry: Registry, service: Service) -> list[Check]:
    catalog = registry.catalog
    return catalog.node_level_checks(service.node) + catalog.service_checks(
        service.node, service.service_id
    )


def _view(registry: Registry, service: Service) -> Instance | None:
    """The instance as Eureka shows it; None when its lease expired."""
    node = registry.catalog.nodes.get(service.node) or Node(name=service.node)
    checks = _checks(registry, service)
    if mapping.is_expired(service, checks):
        return None
    return mapping.to_instance(node, service, checks, _started_ms(registry))


def _all(registry: Registry) -> dict[str, list[Instance]]:
    apps: dict[str, list[Instance]] = {}
    started = _started_ms(registry)
    catalog = registry.catalog
    for name in catalog.service_names():
        if name == "consul":
            continue
        for node, service, checks in catalog.health_entries(name):
            if mapping.is_expired(service, checks):
                continue
            instance = mapping.to_instance(node, service, checks, started)
            apps.setdefault(instance.app, []).append(instance)
    return apps


def _hashcode(apps: dict[str, list[Instance]]) -> str:
    return wire.reconcile_hash_code(i for group in apps.values() for i in group)


def _find(registry: Registry, instance_id: str) -> Service | None:
    local = registry.catalog.node_service(registry.config.node, instance_id)
    if local is not None:
        return local
    for service in registry.catalog.all_services():
        if service.service_id == instance_id and service.name != "consul":
            return service
    return None


def _local(registry: Registry, app: str, instance_id: str) -> Service:
    service = registry.catalog.node_service(registry.config.node, instance_id)
    if service is None or service.name != mapping.service_name(app):
        raise NotFound(f"Instance {app}/{instance_id} is not registered")
    return service


# ---------------------------------------------------------------- delta


class Recent:
    """Eureka's recentlyChangedQueue: which instances changed in 3 minutes.

    Fed by the registry's applied entries (service and check rows), so it
    sees every write, whichever API made it. Kept per registry in memory.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.items: deque[tuple[float, str, str, str]] = deque()
        self.apps = {
            row_key(s.node, s.service_id): mapping.app_name(s.name)
            for s in registry.catalog.all_services()
        }
        registry.on_apply(self._on_entry)

    def _on_entry(self, entry: Entry) -> None:
        now = self.registry.now()
        # One change is one event per instance: a registration writes the
        # service and its checks, and is ADDED, not ADDED then MODIFIED.
        seen: set[str] = set()
        for table, key, value in entry.rows:
            if table == SERVICES:
                if value is None:
                    app = self.apps.pop(key, None)
                    if app is not None:
                        self._add(now, key, app, "DELETED")
                        seen.add(key)
                elif isinstance(value, Service):
                    action = "MODIFIED" if key in self.apps else "ADDED"
                    self.apps[key] = app = mapping.app_name(value.name)
                    self._add(now, key, app, action)
                    seen.add(key)
            elif table == CHECKS:
                node, _, check_id = key.partition("\x00")
                if isinstance(value, Check):
                    service_id = value.service_id
                else:
                    service_id = _owner(check_id)
                skey = row_key(node, service_id)
                if service_id and skey in self.apps and skey not in seen:
                    self._add(now, skey, self.apps[skey], "MODIFIED")
                    seen.add(skey)
        while self.items and (
            now - self.items[0][0] > DELTA_RETENTION or len(self.items) > DELTA_MAX
        ):
            self.items.popleft()

    def _add(self, now: float, key: str, app: str, action: str) -> None:
        self.items.append((now, key, app, action))

    def changed(self) -> dict[str, list[Instance]]:
        now = self.registry.now()
        latest: dict[str, tuple[str, str]] = {}
        for at, key, app, action in self.items:
            if now - at <= DELTA_RETENTION:
                latest.pop(key, None)
                latest[key] = (app, action)
        apps: dict[str, list[Instance]] = {}
        for key, (app, action) in latest.items():
            node, _, service_id = key.partition("\x00")
            service = self.registry.catalog.node_service(node, service_id)
            instance = _view(self.registry, service) if service is not None else None
            if instance is None:
                instance = Instance(instance_id=service_id, app=app, status="UNKNOWN")
                action = "DELETED"
            apps.setdefault(app, []).append(
                msgspec.structs.replace(instance, action_type=action)
            )
        return apps


def _owner(check_id: str) -> str:
    for prefix in (
        mapping.LEASE_PREFIX,
        mapping.STATUS_PREFIX,
        "_service_maintenance:",
    ):
        if check_id.startswith(prefix):
            return check_id[len(prefix) :]
    return ""


_recent: weakref.WeakKeyDictionary[Registry, Recent] = weakref.WeakKeyDictionary()


def recent(registry: Registry) -> Recent:
    found = _recent.get(registry)
    if found is None:
        found = _recent[registry] = Recent(registry)
    return found


# ---------------------------------------------------------------- reads


async def all_apps(registry: Registry, request: Request) -> Response:
    recent(registry)
    apps = _all(registry)
    # A full fetch answers version 1, as AbstractInstanceRegistry does.
    return _applications(request, apps, 1, _hashcode(apps))


async def delta(registry: Registry, request: Request) -> Response:
    changed = recent(registry).changed()
    # versions__delta: Eureka counts cache regenerations; the catalog's index
    # moves exactly when something changed, which is what a client compares.
    return _applications(
        request, changed, registry.catalog.index, _hashcode(_all(registry))
    )


def _instance_answer(request: Request, instance: Instance) -> Response:
    if _wants_json(request):
        return Response(200, encode({"instance": wire.instance_json(instance)}), [JSON])
    return Response(200, wire.instance_xml(instance).encode(), [XML])


async def app(registry: Registry, request: Request, name: str) -> Response:
    instances = _all(registry).get(name.upper())
    if not instances:
        raise NotFound(f"Application {name.upper()} is not registered")
    if _wants_json(request):
        body = encode({"application": wire.application_json(name.upper(), instances)})
        return Response(200, body, [JSON])
    return Response(200, wire.application_xml(name.upper(), instances).encode(), [XML])


async def instance(
    registry: Registry, request: Request, name: str, instance_id: str
) -> Response:
    service = _find(registry, instance_id)
    view = _view(registry, service) if service is not None else None
    if view is None or (name and view.app != name.upper()):
        raise NotFound(f"Instance {instance_id} is not registered")
    return _instance_answer(request, view)


async def instance_by_id(registry: Registry, request: Request) -> Response:
    return await instance(registry, request, "", request.tail)


def _by_vip(registry: Registry, request: Request, secure: bool) -> Response:
    wanted = request.tail
    apps: dict[str, list[Instance]] = {}
    for name, instances in _all(registry).items():
        for i in instances:
            vips = i.secure_vip_address if secure else i.vip_address
            if wanted in (v.strip() for v in vips.split(",")):
                apps.setdefault(name, []).append(i)
    return _applications(request, apps, 1, _hashcode(apps))


async def vips(registry: Registry, request: Request) -> Response:
    return _by_vip(registry, request, secure=False)


async def svips(registry: Registry, request: Request) -> Response:
    return _by_vip(registry, request, secure=True)


# ---------------------------------------------------------------- writes


async def register(registry: Registry, request: Request, name: str) -> Response:
    """ApplicationResource.addInstance: validate in its order, then 204."""
    info = wire.parse_instance(request.body, _content_type(request))
    if not info.instance_id:
        # InstanceInfo.getId(): the instanceId, else the hostName.
        info = msgspec.structs.replace(info, instance_id=info.host_name)
    if not info.instance_id:
        raise InvalidRequest("Missing instanceId")
    if not info.host_name:
        raise InvalidRequest("Missing hostname")
    if not info.ip_addr:
        raise InvalidRequest("Missing ip address")
    if not info.app:
        raise InvalidRequest("Missing appName")
    if info.app != name.upper():
        raise InvalidRequest(
            f"Mismatched appName, expecting {name.upper()} but was {info.app}"
        )
    if not info.datacenter_name:
        raise InvalidRequest("Missing dataCenterInfo Name")
    node = registry.config.node
    existing = registry.catalog.node_service(node, info.instance_id)
    registered = _now_ms()
    if existing is not None:
        with contextlib.suppress(ValueError):
            registered = int(existing.meta.get("eureka-registered-ms", registered))
    service = mapping.to_service(node, info, _now_ms(), registered)
    _validate(service)
    state = registry.catalog.get_check(node, mapping.status_id(info.instance_id))
    if state is not None and state.notes == mapping.OVERRIDE_NOTE:
        status = msgspec.structs.replace(state, service_name=service.name)
    else:
        status = mapping.status_check(service, info.status)
    recent(registry)
    await registry.apply(
        RegisterService(
            service=service,
            checks=[mapping.lease_check(service, info.duration), status],
        )
    )
    if info.overridden_status == "OUT_OF_SERVICE":
        await registry.apply(
            SetMaintenance(
                node=node, service_id=info.instance_id, reason=OVERRIDE_REASON
            )
        )
    return _empty(204)


def _validate(service: Service) -> None:
    validate_meta(service.meta, "service")


async def renew(
    registry: Registry, request: Request, name: str, instance_id: str
) -> Response:
    """InstanceResource.renewLease: 200, or 404 so the client registers again."""
    node = registry.config.node
    try:
        service = _local(registry, name, instance_id)
    except NotFound:
        return _empty(404)
    lease = registry.catalog.get_check(node, mapping.lease_id(instance_id))
    state = registry.catalog.get_check(node, mapping.status_id(instance_id))
    if lease is None or (state is not None and state.output == "UNKNOWN"):
        # No lease (registered through Consul), or UNKNOWN after an override
        # was deleted: Eureka answers 404 and the client re-registers.
        return _empty(404)
    await registry.update_check(
        node, lease.check_id, HealthStatus.PASSING, "", heartbeat=True
    )
    dirty = request.get("lastDirtyTimestamp")
    if dirty:
        try:
            theirs = int(dirty)
            ours = int(service.meta.get("eureka-dirty-ms", "0"))
        except ValueError:
            raise InvalidRequest(f"Invalid lastDirtyTimestamp: {dirty!r}") from None
        if theirs > ours:
            # validateDirtyTimestamp: the client has newer data; ask for it.
            return _empty(404)
    return _empty(200)


async def cancel(
    registry: Registry, request: Request, name: str, instance_id: str
) -> Response:
    _local(registry, name, instance_id)
    await registry.apply(
        DeregisterService(node=registry.config.node, service_id=instance_id)
    )
    return _empty(200)


def _status_value(request: Request, default: str | None) -> str:
    value = request.get("value") or default
    if value is None:
        raise InvalidRequest("Missing value")
    if value not in wire.STATUSES:
        raise InvalidRequest(f"Invalid status value: {value!r}")
    return value


async def put_status(
    registry: Registry, request: Request, name: str, instance_id: str
) -> Response:
    """A status override: OUT_OF_SERVICE is maintenance; others set the status."""
    service = _local(registry, name, instance_id)
    value = _status_value(request, None)
    node = registry.config.node
    if value == "OUT_OF_SERVICE":
        await registry.apply(
            SetMaintenance(node=node, service_id=instance_id, reason=OVERRIDE_REASON)
        )
        return _empty(200)
    if _in_maintenance(registry, service):
        await registry.apply(
            SetMaintenance(node=node, service_id=instance_id, enable=False)
        )
    check = mapping.status_check(service, value, override=True)
    await registry.apply(RegisterCheck(check=check))
    return _empty(200)


async def delete_status(
    registry: Registry, request: Request, name: str, instance_id: str
) -> Response:
    """deleteStatusOverride: no override; the status is `value` or UNKNOWN."""
    service = _local(registry, name, instance_id)
    value = _status_value(request, "UNKNOWN")
    node = registry.config.node
    if _in_maintenance(registry, service):
        await registry.apply(
            SetMaintenance(node=node, service_id=instance_id, enable=False)
        )
    if value != "OUT_OF_SERVICE":
        await registry.apply(RegisterCheck(check=mapping.status_check(service, value)))
    return _empty(200)


def _in_maintenance(registry: Registry, service: Service) -> bool:
    return any(is_maintenance_check(c.check_id) for c in _checks(registry, service))


async def put_metadata(
    registry: Registry, request: Request, name: str, instance_id: str
) -> Response:
    """InstanceResource.updateMetadata: each query parameter is put."""
    service = _local(registry, name, instance_id)
    meta = dict(service.meta)
    for key, values in request.params.items():
        if key.startswith(mapping.META_PREFIX):
            raise InvalidRequest(
                f"Metadata keys starting {mapping.META_PREFIX!r} are reserved"
            )
        meta[mapping.meta_key(key)] = values[-1] if values else ""
    meta["eureka-dirty-ms"] = meta["eureka-updated-ms"] = str(_now_ms())
    service = msgspec.structs.replace(service, meta=meta)
    _validate(service)
    await registry.apply(RegisterService(service=service, keep_status=True))
    return _empty(200)


# ---------------------------------------------------------------- dispatch


async def apps(registry: Registry, request: Request) -> Response:
    """Everything under `/eureka/apps/` (and `/eureka/v2/apps/`)."""
    parts = request.tail.split("/") if request.tail else []
    if parts and parts[-1] == "":
        parts.pop()
    method = request.method
    if not parts:
        if method == "GET":
            return await all_apps(registry, request)
    elif len(parts) == 1:
        if parts[0] == "delta" and method == "GET":
            return await delta(registry, request)
        if method == "GET":
            return await app(registry, request, parts[0])
        if method == "POST":
            return await register(registry, request, parts[0])
    elif len(parts) == 2:
        name, instance_id = parts
        if method == "GET":
            return await instance(registry, request, name, instance_id)
        if method == "PUT":
            return await renew(registry, request, name, instance_id)
        if method == "DELETE":
            return await cancel(registry, request, name, instance_id)
    elif len(parts) == 3 and parts[2] in ("status", "metadata"):
        name, instance_id, what = parts
        if what == "status" and method == "PUT":
            return await put_status(registry, request, name, instance_id)
        if what == "status" and method == "DELETE":
            return await delete_status(registry, request, name, instance_id)
        if what == "metadata" and method == "PUT":
            return await put_metadata(registry, request, name, instance_id)
    else:
        return _empty(404)
    return Response(405, b"", [(b"content-type", b"text/plain")])
