"""Eureka's wire format: InstanceInfo in (JSON or XML) and Applications out.

Read from Netflix/eureka: `EurekaJacksonCodec` (JSON) and XStream's
`Converters` (XML, the server's default). Field order, `@enabled` port
attributes, the `@class` of dataCenterInfo and of an empty metadata map,
and the `@Auto` fields written as strings all follow those classes.
`apps__hashcode` is `Applications.getReconcileHashCode`: status name, `_`,
count, `_`, for each status present, in name order (a TreeMap).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import msgspec

from waypost.exceptions import InvalidRequest

STATUSES = ("UP", "DOWN", "STARTING", "OUT_OF_SERVICE", "UNKNOWN")
DEFAULT_DATACENTER_CLASS = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
AMAZON_DATACENTER_CLASS = "com.netflix.appinfo.AmazonInfo"
EMPTY_MAP_CLASS = "java.util.Collections$EmptyMap"
#: LeaseInfo.DEFAULT_LEASE_RENEWAL_INTERVAL / DEFAULT_LEASE_DURATION.
DEFAULT_RENEWAL_INTERVAL = 30
DEFAULT_DURATION = 90


class Instance(msgspec.Struct, kw_only=True):
    """One InstanceInfo, as registered or as rendered."""

    instance_id: str
    app: str
    host_name: str = ""
    ip_addr: str = ""
    status: str = "UP"
    overridden_status: str = "UNKNOWN"
    port: int = 7001
    port_enabled: bool = True
    secure_port: int = 7002
    secure_port_enabled: bool = False
    country_id: int = 1
    datacenter_name: str = "MyOwn"
    datacenter_metadata: dict[str, str] = {}
    renewal_interval: int = DEFAULT_RENEWAL_INTERVAL
    duration: int = DEFAULT_DURATION
    registration_ts: int = 0
    last_renewal_ts: int = 0
    eviction_ts: int = 0
    service_up_ts: int = 0
    metadata: dict[str, str] = {}
    app_group_name: str = ""
    home_page_url: str = ""
    status_page_url: str = ""
    health_check_url: str = ""
    secure_health_check_url: str = ""
    vip_address: str = ""
    secure_vip_address: str = ""
    is_coordinating_discovery_server: bool = False
    last_updated_ts: int = 0
    last_dirty_ts: int = 0
    action_type: str = "ADDED"
    asg_name: str = ""


# ---------------------------------------------------------------- in


def wants_xml_body(content_type: str, body: bytes) -> bool:
    if "xml" in content_type:
        return True
    if "json" in content_type:
        return False
    return body.lstrip()[:1] == b"<"


def parse_instance(body: bytes, content_type: str) -> Instance:
    """A registration body → Instance; malformed input is a 400."""
    if not body.strip():
        raise InvalidRequest("Missing InstanceInfo body")
    if wants_xml_body(content_type, body):
        return _from_xml(body)
    return _from_json(body)


def _status(value: object) -> str:
    # InstanceStatus.toEnum: anything unknown is UNKNOWN.
    text = str(value or "").upper()
    return text if text in STATUSES else "UNKNOWN"


def _int(value: object, field: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidRequest(f"Invalid {field}: {value!r} is not an integer") from None


def _port(value: object, field: str) -> int:
    port = _int(value, field)
    if not 0 <= port <= 65535:
        raise InvalidRequest(f"Invalid {field} {port}: must be between 0 and 65535")
    return port


def _strings(value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid {field}: must be an object")
    return {
        str(k): "" if v is None else str(v) for k, v in value.items() if k != "@class"
    }


_FIELDS: dict[str, str] = {
    "instanceId": "instance_id",
    "hostName": "host_name",
    "app": "app",
    "ipAddr": "ip_addr",
    "appGroupName": "app_group_name",
    "homePageUrl": "home_page_url",
    "statusPageUrl": "status_page_url",
    "healthCheckUrl": "health_check_url",
    "secureHealthCheckUrl": "secure_health_check_url",
    "vipAddress": "vip_address",
    "secureVipAddress": "secure_vip_address",
    "asgName": "asg_name",
}


def _from_json(body: bytes) -> Instance:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Request decode failed: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("instance"), dict):
        data = data["instance"]
    if not isinstance(data, dict):
        raise InvalidRequest('Request decode failed: expected {"instance": {...}}')
    fields: dict[str, Any] = {}
    for name, attr in _FIELDS.items():
        if data.get(name) is not None:
            fields[attr] = str(data[name])
    fields.setdefault("instance_id", "")
    fields.setdefault("app", "")
    fields["status"] = _status(data.get("status", "UP"))
    overridden = data.get("overriddenStatus", data.get("overriddenstatus"))
    fields["overridden_status"] = _status(overridden or "UNKNOWN")
    for name, attr, default in (
        ("port", "port", True),
        ("securePort", "secure_port", False),
    ):
        value = data.get(name)
        if isinstance(value, dict):
            if "$" in value:
                fields[attr] = _port(value["$"], name)
            enabled = str(value.get("@enabled", "")).lower()
            fields[f"{attr}_enabled"] = (
                enabled != "false" if default else enabled == "true"
            )
        elif value is not None:
            fields[attr] = _port(value, name)
    if data.get("countryId") is not None:
        fields["country_id"] = _int(data["countryId"], "countryId")
    dc = data.get("dataCenterInfo")
    if isinstance(dc, dict):
        fields["datacenter_name"] = str(dc.get("name") or "")
        fields["datacenter_metadata"] = _strings(dc.get("metadata"), "metadata")
    elif dc is None:
        fields["datacenter_name"] = ""
    lease = data.get("leaseInfo")
    if isinstance(lease, dict):
        _lease(fields, lease)
    fields["metadata"] = _strings(data.get("metadata"), "metadata")
    return _finish(fields, data)


def _lease(fields: dict[str, Any], lease: Mapping[str, object]) -> None:
    for name, attr in (
        ("renewalIntervalInSecs", "renewal_interval"),
        ("durationInSecs", "duration"),
    ):
        if lease.get(name) not in (None, ""):
            fields[attr] = _int(lease[name], name)


def _finish(fields: dict[str, Any], data: Mapping[str, object]) -> Instance:
    for name, attr in (
        ("lastUpdatedTimestamp", "last_updated_ts"),
        ("lastDirtyTimestamp", "last_dirty_ts"),
    ):
        if data.get(name) not in (None, ""):
            fields[attr] = _int(data[name], name)
    if str(data.get("isCoordinatingDiscoveryServer", "")).lower() == "true":
        fields["is_coordinating_discovery_server"] = True
    # LeaseInfo.Builder: a non-positive interval or duration takes the default.
    if fields.get("renewal_interval", 1) <= 0:
        fields["renewal_interval"] = DEFAULT_RENEWAL_INTERVAL
    if fields.get("duration", 1) <= 0:
        fields["duration"] = DEFAULT_DURATION
    # InstanceInfo.Builder upper-cases the app name.
    fields["app"] = str(fields.get("app", "")).upper()
    return Instance(**fields)


def _from_xml(body: bytes) -> Instance:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise InvalidRequest("Request decode failed: DTDs are not accepted")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise InvalidRequest(f"Request decode failed: {exc}") from None
    if root.tag != "instance":
        raise InvalidRequest(
            f"Request decode failed: expected <instance>, got <{root.tag}>"
        )
    fields: dict[str, Any] = {"instance_id": "", "app": ""}
    data: dict[str, object] = {}
    for child in root:
        text = (child.text or "").strip()
        tag = child.tag
        if tag in _FIELDS:
            fields[_FIELDS[tag]] = text
        elif tag == "status":
            fields["status"] = _status(text)
        elif tag in ("overriddenstatus", "overriddenStatus"):
            fields["overridden_status"] = _status(text)
        elif tag == "port":
            fields["port"] = _port(text, "port")
            fields["port_enabled"] = child.get("enabled") != "false"
        elif tag == "securePort":
            fields["secure_port"] = _port(text, "securePort")
            fields["secure_port_enabled"] = child.get("enabled") == "true"
        elif tag == "countryId":
            fields["country_id"] = _int(text, "countryId")
        elif tag == "dataCenterInfo":
            fields["datacenter_name"] = (child.findtext("name") or "").strip()
            meta = child.find("metadata")
            if meta is not None:
                fields["datacenter_metadata"] = {m.tag: m.text or "" for m in meta}
        elif tag == "leaseInfo":
            _lease(fields, {c.tag: (c.text or "").strip() for c in child})
        elif tag == "metadata":
            fields["metadata"] = {m.tag: (m.text or "") for m in child}
        else:
            data[tag] = text
    if root.find("dataCenterInfo") is None:
        fields["datacenter_name"] = ""
    return _finish(fields, data)


# ---------------------------------------------------------------- out


def reconcile_hash_code(instances: Iterable[Instance]) -> str:
    """Applications.getReconcileHashCode: `DOWN_1_UP_2_` (names sorted)."""
    counts = Counter(i.status for i in instances)
    return "".join(f"{status}_{counts[status]}_" for status in sorted(counts))


def _auto_fields(i: Instance) -> list[tuple[str, str]]:
    """InstanceInfo's @Auto fields, in declaration order, only when set."""
    fields = [
        ("appGroupName", i.app_group_name),
        ("homePageUrl", i.home_page_url),
        ("statusPageUrl", i.status_page_url),
        ("healthCheckUrl", i.health_check_url),
        ("secureHealthCheckUrl", i.secure_health_check_url),
        ("vipAddress", i.vip_address),
        ("secureVipAddress", i.secure_vip_address),
    ]
    out = [(name, value) for name, value in fields if value]
    out += [
        ("isCoordinatingDiscoveryServer", _bool(i.is_coordinating_discovery_server)),
        ("lastUpdatedTimestamp", str(i.last_updated_ts)),
        ("lastDirtyTimestamp", str(i.last_dirty_ts)),
        ("actionType", i.action_type),
    ]
    if i.asg_name:
        out.append(("asgName", i.asg_name))
    return out


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _lease_fields(i: Instance) -> list[tuple[str, int]]:
    return [
        ("renewalIntervalInSecs", i.renewal_interval),
        ("durationInSecs", i.duration),
        ("registrationTimestamp", i.registration_ts),
        ("lastRenewalTimestamp", i.last_renewal_ts),
        ("evictionTimestamp", i.eviction_ts),
        ("serviceUpTimestamp", i.service_up_ts),
    ]


def _datacenter_class(i: Instance) -> str:
    if i.datacenter_name == "Amazon":
        return AMAZON_DATACENTER_CLASS
    return DEFAULT_DATACENTER_CLASS


def instance_json(i: Instance) -> dict[str, object]:
    """EurekaJacksonCodec.InstanceInfoSerializer, field for field."""
    out: dict[str, object] = {
        "instanceId": i.instance_id,
        "hostName": i.host_name,
        "app": i.app,
        "ipAddr": i.ip_addr,
        "status": i.status,
        "overriddenStatus": i.overridden_status,
        "port": {"$": i.port, "@enabled": _bool(i.port_enabled)},
        "securePort": {"$": i.secure_port, "@enabled": _bool(i.secure_port_enabled)},
        "countryId": i.country_id,
    }
    dc: dict[str, object] = {"@class": _datacenter_class(i), "name": i.datacenter_name}
    if i.datacenter_name == "Amazon":
        dc["metadata"] = i.datacenter_metadata
    out["dataCenterInfo"] = dc
    out["leaseInfo"] = dict(_lease_fields(i))
    out["metadata"] = i.metadata or {"@class": EMPTY_MAP_CLASS}
    out.update(_auto_fields(i))
    return out


def application_json(name: str, instances: list[Instance]) -> dict[str, object]:
    return {"name": name, "instance": [instance_json(i) for i in instances]}


def applications_json(
    apps: Mapping[str, list[Instance]], version: int, hashcode: str
) -> dict[str, object]:
    return {
        "applications": {
            "versions__delta": str(version),
            "apps__hashcode": hashcode,
            "application": [application_json(n, v) for n, v in apps.items()],
        }
    }


_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")


def _element(tag: str, value: object, attrs: str = "") -> str:
    return f"<{tag}{attrs}>{escape(str(value))}</{tag}>"


def _map_xml(tag: str, values: Mapping[str, str]) -> str:
    if not values:
        return f'<{tag} class="{EMPTY_MAP_CLASS}"/>'
    # A key that is no XML name (possible through JSON) cannot be an element.
    inner = "".join(_element(k, v) for k, v in values.items() if _XML_NAME.match(k))
    return f"<{tag}>{inner}</{tag}>"


def instance_xml(i: Instance) -> str:
    """XStream's InstanceInfoConverter.marshal, element for element."""
    parts = [
        _element("instanceId", i.instance_id),
        _element("hostName", i.host_name),
        _element("app", i.app),
        _element("ipAddr", i.ip_addr),
        _element("status", i.status),
        _element("overriddenstatus", i.overridden_status),
        _element("port", i.port, f' enabled="{_bool(i.port_enabled)}"'),
        _element(
            "securePort", i.secure_port, f' enabled="{_bool(i.secure_port_enabled)}"'
        ),
        _element("countryId", i.country_id),
        f'<dataCenterInfo class="{_datacenter_class(i)}">'
        + _element("name", i.datacenter_name)
        + (
            _map_xml("metadata", i.datacenter_metadata)
            if i.datacenter_name == "Amazon"
            else ""
        )
        + "</dataCenterInfo>",
        "<leaseInfo>"
        + "".join(_element(k, v) for k, v in _lease_fields(i))
        + "</leaseInfo>",
        _map_xml("metadata", i.metadata),
    ]
    parts += [_element(k, v) for k, v in _auto_fields(i)]
    return "<instance>" + "".join(parts) + "</instance>"


def application_xml(name: str, instances: list[Instance]) -> str:
    inner = "".join(instance_xml(i) for i in instances)
    return f"<application>{_element('name', name)}{inner}</application>"


def applications_xml(
    apps: Mapping[str, list[Instance]], version: int, hashcode: str
) -> str:
    inner = "".join(application_xml(n, v) for n, v in apps.items())
    return (
        "<applications>"
        + _element("versions__delta", version)
        + _element("apps__hashcode", hashcode)
        + inner
        + "</applications>"
    )
