"""`/v1/config`: Consul's config entries (agent/config_endpoint.go).

An entry's top-level fields are Consul's for its kind (structs and api
config_entry*.go), matched case-insensitively and by their snake_case
aliases, and written back in Consul's spelling; an unknown top-level field
is a 400, as Consul's decoder (ErrorUnused) refuses it. Below the top level
an entry is kept as it was sent (difference: Consul re-spells nested fields
too, and drops unknown ones). Entries are data: waypost runs no proxies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from waypost.core.config.changes import (
    DeleteConfigEntry,
    PutConfigEntry,
    kind_topic,
)
from waypost.core.config.model import ConfigEntry
from waypost.core.config.planner import FIXED_NAMES, check_kind, normalized_name
from waypost.exceptions import InvalidRequest, NotFound
from waypost.http.decode import decode_json
from waypost.http.messages import (
    Query,
    Request,
    Response,
    json_response,
    text_response,
)

if TYPE_CHECKING:
    from waypost.registry import Registry

_COMMON = ("Namespace", "Partition", "Meta")
_PROXY = (
    "Mode",
    "TransparentProxy",
    "MutualTLSMode",
    "MeshGateway",
    "Expose",
    "EnvoyExtensions",
)
#: Each kind's top-level fields (beyond Kind, Name and the indexes).
FIELDS: dict[str, tuple[str, ...]] = {
    "service-defaults": (
        "Protocol",
        *_PROXY,
        "ExternalSNI",
        "UpstreamConfig",
        "Destination",
        "MaxInboundConnections",
        "LocalConnectTimeoutMs",
        "LocalRequestTimeoutMs",
        "BalanceInboundConnections",
        "RateLimits",
    ),
    "proxy-defaults": (
        "Config",
        *_PROXY,
        "AccessLogs",
        "FailoverPolicy",
        "PrioritizeByLocality",
    ),
    "service-router": ("Routes",),
    "service-splitter": ("Splits",),
    "service-resolver": (
        "DefaultSubset",
        "Subsets",
        "Redirect",
        "Failover",
        "ConnectTimeout",
        "RequestTimeout",
        "LoadBalancer",
        "PrioritizeByLocality",
    ),
    "ingress-gateway": ("TLS", "Listeners", "Defaults"),
    "terminating-gateway": ("Services",),
    "service-intentions": ("Sources", "JWT"),
    "mesh": (
        "TransparentProxy",
        "AllowEnablingPermissiveMutualTLS",
        "ValidateClusters",
        "TLS",
        "HTTP",
        "Peering",
    ),
    "exported-services": ("Services",),
    "sameness-group": ("DefaultForFailover", "IncludeLocal", "Members"),
    "api-gateway": ("Listeners", "Status"),
    "tcp-route": ("Parents", "Services", "Status"),
    "http-route": ("Parents", "Rules", "Hostnames", "Status"),
    "inline-certificate": ("Certificate", "PrivateKey"),
    "file-system-certificate": ("Certificate", "PrivateKey"),
    "jwt-provider": (
        "JSONWebKeySet",
        "Issuer",
        "Audiences",
        "Locations",
        "Forwarding",
        "ClockSkewSeconds",
        "CacheConfig",
    ),
}
#: Struct-valued fields Consul always writes (no omitempty on a struct).
_ALWAYS: dict[str, dict[str, Any]] = {
    "service-defaults": {"TransparentProxy": {}, "MeshGateway": {}, "Expose": {}},
    "proxy-defaults": {"TransparentProxy": {}, "MeshGateway": {}, "Expose": {}},
}


def _fold(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


_LOOKUP: dict[str, dict[str, str]] = {
    kind: {_fold(f): f for f in (*fields, *_COMMON)} for kind, fields in FIELDS.items()
}


def decode_entry(data: object) -> ConfigEntry:
    """structs.DecodeConfigEntry: the kind first, then its fields."""
    if not isinstance(data, dict):
        raise InvalidRequest("Request decoding failed: body is not a JSON object")
    kind = data.get("Kind", data.get("kind"))
    if kind is None:
        raise InvalidRequest(
            "Request decoding failed: Payload does not contain a kind/Kind key at"
            " the top level"
        )
    if not isinstance(kind, str):
        raise InvalidRequest(
            "Request decoding failed: Kind value in payload is not a string"
        )
    try:
        check_kind(kind)
    except InvalidRequest as exc:
        raise InvalidRequest(f"Request decoding failed: {exc}") from None
    lookup = _LOOKUP[kind]
    name: object = ""
    fields: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in data.items():
        folded = _fold(str(key))
        if folded == "kind" or folded in ("createindex", "modifyindex"):
            continue
        if folded == "name":
            name = value
            continue
        canonical = lookup.get(folded)
        if canonical is None:
            unknown.append(str(key))
            continue
        fields[canonical] = value
    if unknown:
        raise InvalidRequest(
            "Request decoding failed: 1 error(s) decoding:\n\n* '' has invalid"
            f" keys: {', '.join(sorted(unknown))}"
        )
    if not isinstance(name, str):
        raise InvalidRequest(
            "Request decoding failed: 'Name' expected type 'string', got"
            f" '{type(name).__name__}'"
        )
    _validate(kind, fields)
    return ConfigEntry(kind=kind, name=name, body=msgspec.json.encode(fields))


def _validate(kind: str, fields: dict[str, Any]) -> None:
    meta = fields.get("Meta")
    if meta is not None and (
        not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values())
    ):
        raise InvalidRequest(
            "Request decoding failed: 'Meta' must map strings to strings"
        )
    protocol = fields.get("Protocol")
    if protocol is not None:
        if not isinstance(protocol, str):
            raise InvalidRequest(
                "Request decoding failed: 'Protocol' expected a string"
            )
        fields["Protocol"] = protocol.lower()  # ServiceConfigEntry.Normalize
    config = fields.get("Config")
    if config is not None and not isinstance(config, dict):
        raise InvalidRequest("Request decoding failed: 'Config' expected a map")


def entry_json(entry: ConfigEntry) -> dict[str, Any]:
    """The entry as Consul answers it: Kind, Name, fields, indexes."""
    out: dict[str, Any] = {"Kind": entry.kind, "Name": entry.name}
    fields = entry_fields(entry)
    always = _ALWAYS.get(entry.kind, {})
    for name in (*FIELDS[entry.kind], *_COMMON):  # Consul's struct order
        if name in fields:
            out[name] = fields[name]
        elif name in always:
            out[name] = always[name]
    out["CreateIndex"] = entry.create_index
    out["ModifyIndex"] = entry.modify_index
    return out


def entry_fields(entry: ConfigEntry) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(entry.body)
    return decoded


def _cas(request: Request) -> int | None:
    if not request.has("cas"):
        return None
    text = request.get("cas")
    if not text.isdigit():
        raise InvalidRequest(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    return int(text)


async def apply(registry: Registry, request: Request) -> Response:
    """PUT /v1/config: create or replace; `true`, or `false` if ?cas failed."""
    entry = decode_entry(decode_json(request.body) if request.body.strip() else None)
    applied = await registry.apply(PutConfigEntry(entry=entry, cas=_cas(request)))
    return json_response(applied.ok)


async def dispatch(registry: Registry, request: Request) -> Response | Query:
    """GET or DELETE /v1/config/:kind[/:name]."""
    kind, _, name = request.tail.partition("/")
    if request.method == "DELETE":
        return await _delete(registry, request, kind, name)
    if not kind:
        raise NotFound("Must provide either a kind or both kind and name")
    check_kind(kind)
    state = registry.catalog.config
    if not name and "/" not in request.tail:

        def render_list() -> Response:
            return json_response([entry_json(e) for e in state.entries(kind)])

        return Query([kind_topic(kind)], render_list)
    lookup = FIXED_NAMES.get(kind) if kind == "mesh" else name

    def render_one() -> Response:
        found = state.entry(kind, lookup or name)
        if found is None:
            return text_response(f'Config entry not found for "{kind}" / "{name}"', 404)
        return json_response(entry_json(found))

    return Query([kind_topic(kind)], render_one)


async def _delete(
    registry: Registry, request: Request, kind: str, name: str
) -> Response:
    if not kind or not name:
        raise NotFound("Must provide both a kind and name to delete")
    try:
        check_kind(kind)
        if kind == "proxy-defaults":
            normalized_name(kind, name)
    except InvalidRequest as exc:
        raise InvalidRequest(str(exc)) from None
    cas = _cas(request)
    applied = await registry.apply(DeleteConfigEntry(kind=kind, name=name, cas=cas))
    # `deleted` for a CAS delete; Consul's empty object otherwise.
    return json_response(applied.ok if cas is not None else {})
