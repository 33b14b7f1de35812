"""`/v1/connect/intentions/*`, kept as modern Consul keeps them: as the
Sources of `service-intentions` config entries (one entry per destination).

Served as data: waypost runs no proxies, so nothing enforces them; `check`
and `match` answer what a proxy would be told (Consul's precedence, then
the default: allow unless ACLs are on with default deny).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.core.config.changes import (
    DeleteConfigEntry,
    PutConfigEntry,
    kind_topic,
)
from waypost.core.config.model import ConfigEntry
from waypost.exceptions import InvalidRequest, NotFound
from waypost.http.catalog import require_local_datacenter
from waypost.http.config_entries import entry_fields
from waypost.http.connect_wire import fold
from waypost.http.decode import decode_json
from waypost.http.messages import Query, Request, Response, json_response

if TYPE_CHECKING:
    from waypost.registry import Registry

KIND = "service-intentions"
TOPICS = [kind_topic(KIND)]
WILDCARD = "*"
ACTIONS = ("allow", "deny")


def precedence(source: str, destination: str) -> int:
    """structs.Intention.UpdatePrecedence, without namespaces (CE)."""
    if destination != WILDCARD:
        return 9 if source != WILDCARD else 8
    return 6 if source != WILDCARD else 5


def _sources(entry: ConfigEntry) -> list[dict[str, Any]]:
    sources = entry_fields(entry).get("Sources")
    return (
        [s for s in sources if isinstance(s, dict)] if isinstance(sources, list) else []
    )


def _get(data: dict[str, Any], name: str, default: Any = None) -> Any:
    wanted = fold(name)
    for key, value in data.items():
        if fold(str(key)) == wanted:
            return value
    return default


def intention_json(entry: ConfigEntry, source: dict[str, Any]) -> dict[str, Any]:
    """api.Intention from one source of a service-intentions entry."""
    name = str(_get(source, "Name", ""))
    out: dict[str, Any] = {
        "ID": str(_get(source, "LegacyID", "") or ""),
        "SourceNS": "default",
        "SourceName": name,
        "DestinationNS": "default",
        "DestinationName": entry.name,
        "SourcePartition": "default",
        "DestinationPartition": "default",
        "SourceType": str(_get(source, "Type", "") or "consul"),
    }
    description = _get(source, "Description")
    if description:
        out["Description"] = description
    action = _get(source, "Action")
    if action:
        out["Action"] = action
    permissions = _get(source, "Permissions")
    if permissions:
        out["Permissions"] = permissions
    out["Meta"] = _get(source, "LegacyMeta") or {}
    out["Precedence"] = precedence(name, entry.name)
    out["CreateIndex"] = entry.create_index
    out["ModifyIndex"] = entry.modify_index
    return out


def all_intentions(registry: Registry) -> list[dict[str, Any]]:
    """Every intention, highest precedence first (Consul's list order)."""
    found = [
        intention_json(entry, source)
        for entry in registry.catalog.config.entries(KIND)
        for source in _sources(entry)
    ]
    found.sort(key=lambda i: (-i["Precedence"], i["SourceName"], i["DestinationName"]))
    return found


# ---------------------------------------------------------------- reads


async def list_or_create(registry: Registry, request: Request) -> Response | Query:
    require_local_datacenter(registry, request)
    if request.method == "POST":
        return await _create(registry, request)

    def render() -> Response:
        return json_response(all_intentions(registry))

    return Query(TOPICS, render)


def _pair(request: Request) -> tuple[str, str]:
    source, destination = request.get("source"), request.get("destination")
    if not request.has("source"):
        raise InvalidRequest("required query parameter 'source' not set")
    if not request.has("destination"):
        raise InvalidRequest("required query parameter 'destination' not set")
    for label, value in (("source", source), ("destination", destination)):
        if not value:
            raise InvalidRequest(f"{label} name must not be empty")
    return source, destination


async def exact(registry: Registry, request: Request) -> Response | Query:
    require_local_datacenter(registry, request)
    source, destination = _pair(request)
    if request.method == "PUT":
        return await _upsert(registry, request, source, destination)
    if request.method == "DELETE":
        return await _delete(registry, source, destination)

    def render() -> Response:
        entry = registry.catalog.config.entry(KIND, destination)
        for found in _sources(entry) if entry is not None else []:
            if _get(found, "Name") == source:
                return json_response(intention_json(entry, found))  # type: ignore[arg-type]
        return Response(
            404,
            b"Intention not found",
            [(b"content-type", b"text/plain; charset=utf-8")],
        )

    return Query(TOPICS, render)


def matches(pattern: str, name: str) -> bool:
    return pattern in (WILDCARD, name)


def decide(registry: Registry, source: str, destination: str) -> bool:
    """What a proxy would be told: the highest-precedence matching
    intention, else the default (allow, but deny under ACL default deny)."""
    candidates = [
        i
        for i in all_intentions(registry)
        if matches(i["DestinationName"], destination)
        and matches(i["SourceName"], source)
    ]
    if candidates:
        # L7 permissions make a proxy decide per request; a connection is
        # allowed to reach it (Consul's check answers the same).
        return bool(candidates[0].get("Action", "allow") != "deny")
    acl = registry.config.acl
    return not (acl.enabled and acl.default_policy == "deny")


def _matching(
    registry: Registry, source: str, destination: str
) -> dict[str, Any] | None:
    candidates = [
        i
        for i in all_intentions(registry)
        if matches(i["DestinationName"], destination)
        and matches(i["SourceName"], source)
    ]
    return candidates[0] if candidates else None


async def authorize(registry: Registry, request: Request) -> Response:
    """POST /v1/agent/connect/authorize: Consul's ConnectAuthorize, from the
    client certificate's SPIFFE ID and the intentions. Answered as data: no
    proxy of waypost's asks."""
    data = decode_json(request.body) if request.body.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("Request decode failed: body is not a JSON object")
    target = _get(data, "Target", "")
    uri = _get(data, "ClientCertURI", "")
    if not isinstance(target, str) or not target:
        raise InvalidRequest("Target service must be specified.")
    if not isinstance(uri, str) or not uri:
        raise InvalidRequest("ClientCertURI must be specified.")
    source = _spiffe_service(uri)
    if source is None:
        raise InvalidRequest("ClientCertURI not a valid Connect identifier")
    found = _matching(registry, source, target)
    if found is not None:
        allowed = found.get("Action", "allow") != "deny"
        reason = (
            f"Matched L4 intention: {found['SourceName']} =>"
            f" {found['DestinationName']} (Precedence: {found['Precedence']})"
        )
    else:
        allowed = decide(registry, source, target)
        reason = "Default behavior configured by ACLs"
    return json_response({"Authorized": allowed, "Reason": reason})


def _spiffe_service(uri: str) -> str | None:
    """The service of `spiffe://<domain>/ns/<ns>/dc/<dc>/svc/<service>`."""
    if not uri.startswith("spiffe://"):
        return None
    parts = uri.removeprefix("spiffe://").split("/")
    if len(parts) == 7 and parts[1::2] == ["ns", "dc", "svc"] and parts[6]:
        return parts[6]
    if len(parts) == 9 and parts[1::2] == ["ap", "ns", "dc", "svc"] and parts[8]:
        return parts[8]
    return None


async def check(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    source, destination = _pair(request)
    source_type = request.get("source-type", "consul")
    if source_type != "consul":
        raise InvalidRequest(f"unsupported source type: {source_type!r}")

    def render() -> Response:
        return json_response({"Allowed": decide(registry, source, destination)})

    return Query(TOPICS, render)


async def match(registry: Registry, request: Request) -> Query:
    require_local_datacenter(registry, request)
    by = request.get("by")
    if not by:
        raise InvalidRequest("required query parameter 'by' not set")
    if by not in ("source", "destination"):
        raise InvalidRequest("'by' parameter must be one of 'source' or 'destination'")
    names = request.get_all("name")
    if not names:
        raise InvalidRequest("required query parameter 'name' not set")
    field = "SourceName" if by == "source" else "DestinationName"

    def render() -> Response:
        everything = all_intentions(registry)
        return json_response(
            {n: [i for i in everything if matches(i[field], n)] for n in names}
        )

    return Query(TOPICS, render)


# ---------------------------------------------------------------- writes

_FIELDS = (
    "Description",
    "Action",
    "Permissions",
    "Meta",
    "SourceType",
    "SourceName",
    "DestinationName",
)


def _decode_intention(body: bytes) -> dict[str, Any]:
    data = decode_json(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("Request decode failed: body is not a JSON object")
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = next((f for f in _FIELDS if fold(f) == fold(str(key))), None)
        if name is not None and value is not None:
            out[name] = value
    action = out.get("Action", "")
    permissions = out.get("Permissions")
    if permissions is not None and not isinstance(permissions, list):
        raise InvalidRequest("Request decode failed: Permissions must be a list")
    if permissions:
        if action:
            raise InvalidRequest("Action must be empty if Permissions are specified")
    elif action not in ACTIONS:
        raise InvalidRequest("Action must be set to 'allow' or 'deny'")
    meta = out.get("Meta")
    if meta is not None and (
        not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values())
    ):
        raise InvalidRequest("Request decode failed: Meta must map strings to strings")
    if out.get("SourceType", "consul") != "consul":
        raise InvalidRequest("SourceType must be set to 'consul'")
    description = out.get("Description", "")
    if not isinstance(description, str):
        raise InvalidRequest("Request decode failed: Description must be a string")
    return out


async def _rewrite(registry: Registry, destination: str, change: Any) -> bool:
    """Read the destination's entry, change its Sources, write it at the
    index it was read (CAS), again if another writer came in between."""
    while True:
        entry = registry.catalog.config.entry(KIND, destination)
        fields = entry_fields(entry) if entry is not None else {}
        sources = [dict(s) for s in _sources(entry)] if entry is not None else []
        new_sources, changed = change(sources)
        if not changed:
            return False
        cas = entry.modify_index if entry is not None else 0
        if new_sources:
            fields["Sources"] = new_sources
            applied = await registry.apply(
                PutConfigEntry(
                    entry=ConfigEntry(
                        kind=KIND, name=destination, body=msgspec.json.encode(fields)
                    ),
                    cas=cas,
                )
            )
        else:
            applied = await registry.apply(
                DeleteConfigEntry(kind=KIND, name=destination, cas=cas)
            )
        if applied.ok:
            return True


def _names(intention: dict[str, Any]) -> tuple[str, str]:
    source = intention.get("SourceName", "")
    destination = intention.get("DestinationName", "")
    if not isinstance(source, str) or not source:
        raise InvalidRequest("Intention SourceName must be set")
    if not isinstance(destination, str) or not destination:
        raise InvalidRequest("Intention DestinationName must be set")
    return source, destination


async def _create(registry: Registry, request: Request) -> Response:
    """POST /v1/connect/intentions (deprecated in Consul): a new intention
    with a legacy ID; `{"ID": ...}`."""
    intention = _decode_intention(request.body)
    source, destination = _names(intention)
    legacy_id = str(uuid.uuid4())
    row = _row(intention, source, destination, legacy_id)

    def change(sources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        if any(_get(s, "Name") == source for s in sources):
            raise InvalidRequest(
                f"duplicate intention found: {source} => {destination}"
            )
        return [*sources, row], True

    await _rewrite(registry, destination, change)
    return json_response({"ID": legacy_id})


def _by_id(registry: Registry, legacy_id: str) -> tuple[ConfigEntry, dict[str, Any]]:
    for entry in registry.catalog.config.entries(KIND):
        for source in _sources(entry):
            if _get(source, "LegacyID") == legacy_id:
                return entry, source
    raise NotFound("Intention not found")


async def by_id(registry: Registry, request: Request) -> Response | Query:
    """/v1/connect/intentions/:id (deprecated in Consul): intentions made by
    POST, found by their legacy ID."""
    require_local_datacenter(registry, request)
    legacy_id = request.tail
    if not legacy_id:
        raise InvalidRequest("Missing intention ID")
    if request.method == "GET":

        def render() -> Response:
            try:
                entry, source = _by_id(registry, legacy_id)
            except NotFound:
                return Response(
                    404,
                    b"Intention not found",
                    [(b"content-type", b"text/plain; charset=utf-8")],
                )
            return json_response(intention_json(entry, source))

        return Query(TOPICS, render)
    entry, found = _by_id(registry, legacy_id)
    source_name = str(_get(found, "Name", ""))
    if request.method == "DELETE":

        def drop(sources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
            kept = [s for s in sources if _get(s, "LegacyID") != legacy_id]
            return kept, len(kept) != len(sources)

        await _rewrite(registry, entry.name, drop)
        return json_response(True)
    intention = _decode_intention(request.body)
    source, destination = _names(intention)
    if (source, destination) != (source_name, entry.name):
        raise InvalidRequest(
            "Cannot modify Destination partition/namespace/name or Source"
            " partition/namespace/name for an intention once it exists."
        )
    row = _row(intention, source, destination, legacy_id)

    def replace(sources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        kept = [s for s in sources if _get(s, "LegacyID") != legacy_id]
        return [*kept, row], True

    await _rewrite(registry, entry.name, replace)
    return json_response(True)


def _row(
    intention: dict[str, Any], source: str, destination: str, legacy_id: str = ""
) -> dict[str, Any]:
    """One Source of the destination's service-intentions entry."""
    row: dict[str, Any] = {"Name": source}
    if intention.get("Action"):
        row["Action"] = intention["Action"]
    if intention.get("Permissions"):
        row["Permissions"] = intention["Permissions"]
    if intention.get("Description"):
        row["Description"] = intention["Description"]
    if intention.get("Meta"):
        row["LegacyMeta"] = intention["Meta"]
    row["Precedence"] = precedence(source, destination)
    row["Type"] = "consul"
    if legacy_id:
        row["LegacyID"] = legacy_id
    return row


async def _upsert(
    registry: Registry, request: Request, source: str, destination: str
) -> Response:
    intention = _decode_intention(request.body)
    row = _row(intention, source, destination)

    def change(sources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        kept = [s for s in sources if _get(s, "Name") != source]
        return [*kept, row], True

    await _rewrite(registry, destination, change)
    return json_response(True)


async def _delete(registry: Registry, source: str, destination: str) -> Response:
    def change(sources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        kept = [s for s in sources if _get(s, "Name") != source]
        return kept, len(kept) != len(sources)

    await _rewrite(registry, destination, change)
    return json_response(True)
