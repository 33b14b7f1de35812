"""A Eureka instance as a waypost service instance, and back.

- app `ORDERS` ⇄ service `orders` (Eureka upper-cases app names; Consul and
  DNS users look names up in lower case). A Consul service `web` is app `WEB`.
- instanceId ⇄ service ID; ipAddr (else hostName) ⇄ Address; port ⇄ Port.
- metadata ⇄ Meta, verbatim when the key is a valid Consul meta key, else
  with each other character escaped as `_x<hex>_` (`management.port` →
  `management_x2e_port`). Keys starting `eureka-` are ours: the rest of
  InstanceInfo (hostName, securePort and the enabled flags, vip addresses,
  URLs, dataCenterInfo, lease settings, timestamps).
- the lease: a TTL check `eureka-lease:<id>` of leaseInfo.durationInSecs
  (once, not twice: no Lease.renew() doubling). Renew = a TTL heartbeat.
  An expired lease hides the instance from Eureka's reads at once (Eureka
  evicts); Consul's reads show it critical until it is reaped one more
  lease later.
- the status: a check `eureka-status:<id>` no one runs: UP passing,
  DOWN critical, STARTING and UNKNOWN warning (the name in its output). An
  OUT_OF_SERVICE override is the service's maintenance mode; other
  overrides are the status check with notes `override`.
- back: maintenance → OUT_OF_SERVICE; else the status check; an instance
  with no status check (registered through Consul) is DOWN when a check is
  critical, else UP.
"""

from __future__ import annotations

import re

from waypost.core.catalog import is_maintenance_check
from waypost.core.model import Check, CheckDefinition, HealthStatus, Node, Service
from waypost.eureka.wire import DEFAULT_DURATION, DEFAULT_RENEWAL_INTERVAL, Instance

LEASE_PREFIX = "eureka-lease:"
STATUS_PREFIX = "eureka-status:"
META_PREFIX = "eureka-"
OVERRIDE_NOTE = "override"

_STATUS_TO_HEALTH = {
    "UP": HealthStatus.PASSING,
    "DOWN": HealthStatus.CRITICAL,
    "STARTING": HealthStatus.WARNING,
    "UNKNOWN": HealthStatus.WARNING,
}

_VALID_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPE = re.compile(r"[^A-Za-z0-9_-]")
_UNESCAPE = re.compile(r"_x([0-9a-f]{1,6})_")


def lease_id(instance_id: str) -> str:
    return LEASE_PREFIX + instance_id


def status_id(instance_id: str) -> str:
    return STATUS_PREFIX + instance_id


def service_name(app: str) -> str:
    return app.lower()


def app_name(service: str) -> str:
    return service.upper()


def meta_key(key: str) -> str:
    if _VALID_KEY.match(key):
        return key
    return _ESCAPE.sub(lambda m: f"_x{ord(m.group()):x}_", key)


def metadata_key(key: str) -> str:
    return _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), key)


def health_of(status: str) -> HealthStatus:
    return _STATUS_TO_HEALTH.get(status, HealthStatus.WARNING)


def to_service(node: str, i: Instance, now_ms: int, registered_ms: int) -> Service:
    meta = {meta_key(k): v for k, v in i.metadata.items()}
    ours = {
        "hostname": i.host_name,
        "ip": i.ip_addr,
        "port-enabled": str(i.port_enabled).lower(),
        "secure-port": str(i.secure_port),
        "secure-port-enabled": str(i.secure_port_enabled).lower(),
        "vip": i.vip_address,
        "svip": i.secure_vip_address,
        "datacenter": i.datacenter_name,
        "app-group": i.app_group_name,
        "home-page-url": i.home_page_url,
        "status-page-url": i.status_page_url,
        "health-check-url": i.health_check_url,
        "secure-health-check-url": i.secure_health_check_url,
        "asg": i.asg_name,
        "country-id": str(i.country_id),
        "lease-renewal-interval": str(i.renewal_interval),
        "lease-duration": str(i.duration),
        "registered-ms": str(registered_ms),
        "updated-ms": str(now_ms),
        "dirty-ms": str(i.last_dirty_ts or now_ms),
    }
    for key, value in i.datacenter_metadata.items():
        ours[f"datacenter-{meta_key(key)}"] = value
    meta.update({META_PREFIX + k: v for k, v in ours.items() if v})
    return Service(
        node=node,
        service_id=i.instance_id,
        name=service_name(i.app),
        address=i.ip_addr or i.host_name,
        port=i.port,
        meta=meta,
    )


def lease_check(service: Service, duration: int) -> Check:
    return Check(
        node=service.node,
        check_id=lease_id(service.service_id),
        name="Eureka lease",
        status=HealthStatus.PASSING,
        notes="renewed by PUT /eureka/apps/{app}/{instanceId}",
        service_id=service.service_id,
        service_name=service.name,
        type="ttl",
        definition=CheckDefinition(
            ttl=float(duration), deregister_critical_service_after=float(duration)
        ),
    )


def status_check(service: Service, status: str, *, override: bool = False) -> Check:
    return Check(
        node=service.node,
        check_id=status_id(service.service_id),
        name="Eureka status",
        status=health_of(status),
        notes=OVERRIDE_NOTE if override else "",
        output=status,
        service_id=service.service_id,
        service_name=service.name,
    )


def _int(meta: dict[str, str], key: str, default: int) -> int:
    try:
        return int(meta.get(META_PREFIX + key, ""))
    except ValueError:
        return default


def is_expired(service: Service, checks: list[Check]) -> bool:
    """The lease ran out: Eureka would have evicted this instance."""
    lease = lease_id(service.service_id)
    return any(c.check_id == lease and not c.is_passing for c in checks)


def status_of(service: Service, checks: list[Check]) -> tuple[str, str]:
    """(status, overriddenStatus) as Eureka would show them."""
    own = status_id(service.service_id)
    lease = lease_id(service.service_id)
    state: Check | None = None
    critical = False
    for check in checks:
        if is_maintenance_check(check.check_id):
            return "OUT_OF_SERVICE", "OUT_OF_SERVICE"
        if check.check_id == own:
            state = check
        elif check.check_id != lease and check.status is HealthStatus.CRITICAL:
            critical = True
    if state is None:
        return ("DOWN" if critical else "UP"), "UNKNOWN"
    if state.status is HealthStatus.PASSING:
        status = "UP"
    elif state.status is HealthStatus.CRITICAL:
        status = "DOWN"
    else:
        status = state.output if state.output in ("STARTING", "UNKNOWN") else "STARTING"
    if critical and status == "UP":
        status = "DOWN"
    overridden = status if state.notes == OVERRIDE_NOTE else "UNKNOWN"
    return status, overridden


def to_instance(
    node: Node, service: Service, checks: list[Check], started_ms: int
) -> Instance:
    """A service instance (Eureka's or Consul's) as an InstanceInfo."""
    meta = service.meta
    mine = {
        k[len(META_PREFIX) :]: v for k, v in meta.items() if k.startswith(META_PREFIX)
    }
    metadata = {
        metadata_key(k): v for k, v in meta.items() if not k.startswith(META_PREFIX)
    }
    address = service.address or node.address
    status, overridden = status_of(service, checks)
    registered = _int(meta, "registered-ms", started_ms)
    updated = _int(meta, "updated-ms", registered)
    datacenter = mine.get("datacenter", "MyOwn")
    dc_meta = {
        metadata_key(k[len("datacenter-") :]): v
        for k, v in mine.items()
        if k.startswith("datacenter-")
    }
    return Instance(
        instance_id=service.service_id,
        app=app_name(service.name),
        host_name=mine.get("hostname", address),
        ip_addr=mine.get("ip", address),
        status=status,
        overridden_status=overridden,
        port=service.port,
        port_enabled=mine.get("port-enabled", "true") == "true",
        secure_port=_int(meta, "secure-port", 443),
        secure_port_enabled=mine.get("secure-port-enabled") == "true",
        country_id=_int(meta, "country-id", 1),
        datacenter_name=datacenter,
        datacenter_metadata=dc_meta,
        renewal_interval=_int(meta, "lease-renewal-interval", DEFAULT_RENEWAL_INTERVAL),
        duration=_int(meta, "lease-duration", DEFAULT_DURATION),
        registration_ts=registered,
        last_renewal_ts=updated,
        service_up_ts=registered,
        metadata=metadata,
        app_group_name=mine.get("app-group", ""),
        home_page_url=mine.get("home-page-url", ""),
        status_page_url=mine.get("status-page-url", ""),
        health_check_url=mine.get("health-check-url", ""),
        secure_health_check_url=mine.get("secure-health-check-url", ""),
        vip_address=mine.get("vip", service.name),
        secure_vip_address=mine.get("svip", ""),
        last_updated_ts=updated,
        last_dirty_ts=_int(meta, "dirty-ms", updated),
        asg_name=mine.get("asg", ""),
    )
