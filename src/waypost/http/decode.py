"""Request bodies decoded the way Consul's Go decoder reads them.

Field names match case-insensitively (Go's `encoding/json`), Consul's
snake_case aliases (`enable_tag_override`, `service_id`) are accepted, and a
wrong type or an unknown field is a 400 `Request decode failed: …` naming the
field as the caller wrote it. Output is a dict keyed by Consul's canonical
names; `wire.py` turns it into model values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import msgspec

from waypost.durations import parse_duration
from waypost.exceptions import InvalidRequest

Decoded = dict[str, object]
Converter = Callable[[object, str], object]


#: Deepest nesting of arrays and objects a body may have. Consul's own bodies
#: nest a few levels (a check's `Header`, a map of lists, is 5 deep); opaque
#: fields (`Proxy`, `Meta` of a proxy upstream) a few more. Go's decoder stops
#: at 10,000 and msgspec near Python's recursion limit (~1,000, a
#: `RecursionError`): a bound far below both keeps every later walk of the
#: value (encode, filter, store) safe.
MAX_DEPTH = 64

#: Go decodes JSON numbers into int64 / time.Duration; larger ones are errors.
_INT64_LIMIT = 2**63

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _fail(path: str, message: str) -> InvalidRequest:
    where = f"{path}: " if path else ""
    return InvalidRequest(f"Request decode failed: {where}{message}")


def parse_bool(text: str) -> bool | None:
    """Go's `strconv.ParseBool`, which Consul uses for query flags; None if invalid."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    return None


def json_type_name(value: object) -> str:
    """The JSON kind of a decoded value, as Go's decode errors name it."""
    return _type_name(value)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def string(value: object, path: str) -> object:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(path, f"cannot unmarshal {_type_name(value)} into a string")
    return value


def integer(value: object, path: str) -> object:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"cannot unmarshal {_type_name(value)} into an integer")
    if isinstance(value, float) and not value.is_integer():
        raise _fail(path, f"cannot unmarshal number {value} into an integer")
    if abs(value) >= _INT64_LIMIT:
        raise _fail(path, f"cannot unmarshal number {value} into an integer")
    return int(value)


def boolean(value: object, path: str) -> object:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _fail(path, f"cannot unmarshal {_type_name(value)} into a bool")
    return value


def duration(value: object, path: str) -> object:
    """Go duration string, or a number of nanoseconds (Consul takes both)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _fail(path, "cannot unmarshal bool into a duration")
    if isinstance(value, int | float):
        if abs(value) >= _INT64_LIMIT:
            raise _fail(path, f"cannot unmarshal number {value} into a duration")
        return value / 1e9
    if not isinstance(value, str):
        raise _fail(path, f"cannot unmarshal {_type_name(value)} into a duration")
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise _fail(path, f'"{value}" is not a duration (e.g. "10s")') from None
    # Go's time.Duration is int64 nanoseconds: about 292 years.
    if abs(seconds) >= _INT64_LIMIT / 1e9:
        raise _fail(path, f'"{value}" is not a duration: it overflows')
    return seconds


def anything(value: object, path: str) -> object:
    """Accepted and kept as JSON (Proxy, Connect…): not interpreted here."""
    return value


class ListOf:
    """A JSON array of `item`s; null is an empty one. (A class, not a closure,
    so `http/openapi.py` can read the schema back.)"""

    __slots__ = ("item",)

    def __init__(self, item: Converter) -> None:
        self.item = item

    def __call__(self, value: object, path: str) -> object:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _fail(path, f"cannot unmarshal {_type_name(value)} into an array")
        item = self.item
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]


class MapOf:
    """A JSON object of `item`s under any keys; null is an empty one."""

    __slots__ = ("item",)

    def __init__(self, item: Converter) -> None:
        self.item = item

    def __call__(self, value: object, path: str) -> object:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _fail(path, f"cannot unmarshal {_type_name(value)} into an object")
        item = self.item
        return {str(k): item(v, f"{path}.{k}") for k, v in value.items()}


def list_of(item: Converter) -> Converter:
    return ListOf(item)


def map_of(item: Converter) -> Converter:
    return MapOf(item)


class Obj:
    """A JSON object with known fields: the Go struct Consul decodes into."""

    def __init__(self, name: str, fields: Mapping[str, Converter | Obj]) -> None:
        self.name = name
        self.fields = dict(fields)
        # Go matches names case-insensitively; Consul adds snake_case aliases.
        # Exact spellings go in too, so the common case skips the folding.
        self._lookup = {_fold(k): k for k in self.fields}
        self._lookup.update({k: k for k in self.fields})

    def alias(self, alias: str, canonical: str) -> Obj:
        self._lookup[_fold(alias)] = canonical
        self._lookup[alias] = canonical
        return self

    def __call__(self, value: object, path: str) -> Decoded:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _fail(path, f"cannot unmarshal {_type_name(value)} into {self.name}")
        result: Decoded = {}
        lookup = self._lookup
        fields = self.fields
        for key, item in value.items():
            canonical = lookup.get(key) or lookup.get(_fold(key))
            field_path = f"{path}.{key}" if path else key
            if canonical is None:
                raise _fail(field_path, f"unknown field in {self.name}")
            result[canonical] = fields[canonical](item, field_path)
        return result


def _fold(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def decode_body(body: bytes, schema: Obj) -> Decoded:
    """Parse a request body against a schema; empty body is an empty object."""
    # JSON's whitespace only (Go's too): b"\x0b" is not an empty body.
    if not body.strip(b" \t\n\r"):
        return {}
    return schema(decode_json(body), "")


def decode_json(body: bytes) -> object:
    """Parse JSON no deeper than `MAX_DEPTH`; anything else is a 400."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Request decode failed: {exc}") from None
    except RecursionError:  # msgspec stops near Python's recursion limit
        raise _too_deep() from None
    # Fewer brackets than the bound cannot nest past it: most bodies skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _is_deeper(data, MAX_DEPTH):
        raise _too_deep()
    return data


def _too_deep() -> InvalidRequest:
    return _fail("", f"JSON nested deeper than {MAX_DEPTH} levels")


def _is_deeper(data: object, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[object] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


# --------------------------------------------------------------- schemas

_strings = list_of(string)
_string_map = map_of(string)

WEIGHTS = Obj("Weights", {"Passing": integer, "Warning": integer})

SERVICE_ADDRESS = Obj("ServiceAddress", {"Address": string, "Port": integer})

_CHECK_FIELDS: dict[str, Converter | Obj] = {
    "CheckID": string,
    "Name": string,
    "Notes": string,
    "ServiceID": string,
    "Status": string,
    "Args": _strings,
    "DockerContainerID": string,
    "Shell": string,
    "Interval": duration,
    "Timeout": duration,
    "TTL": duration,
    "HTTP": string,
    "Header": map_of(_strings),
    "Method": string,
    "Body": string,
    "DisableRedirects": boolean,
    "TCP": string,
    "TCPUseTLS": boolean,
    "UDP": string,
    "OSService": string,
    "TLSServerName": string,
    "TLSSkipVerify": boolean,
    "GRPC": string,
    "GRPCUseTLS": boolean,
    "H2PING": string,
    "H2PingUseTLS": boolean,
    "AliasNode": string,
    "AliasService": string,
    "SuccessBeforePassing": integer,
    "FailuresBeforeWarning": integer,
    "FailuresBeforeCritical": integer,
    "DeregisterCriticalServiceAfter": duration,
    "OutputMaxSize": integer,
    "Namespace": string,
    "Partition": string,
    "Token": string,
}

#: A check inside a service registration, or `PUT /v1/agent/check/register`.
CHECK = (
    Obj("CheckDefinition", _CHECK_FIELDS)
    .alias("ID", "CheckID")
    .alias("ScriptArgs", "Args")
)

SERVICE_REGISTRATION = Obj(
    "ServiceDefinition",
    {
        "Kind": string,
        "ID": anything,  # a number is accepted on purpose: see wire.service_id
        "Name": string,
        "Tags": _strings,
        "Port": integer,
        "Address": string,
        "SocketPath": string,
        "TaggedAddresses": map_of(SERVICE_ADDRESS),
        "EnableTagOverride": boolean,
        "Meta": _string_map,
        "Weights": WEIGHTS,
        "Check": CHECK,
        "Checks": list_of(CHECK),
        "Proxy": anything,
        "Connect": anything,
        "Namespace": string,
        "Partition": string,
        "Locality": anything,
        "Token": string,
    },
)

HEALTH_CHECK_DEFINITION = Obj(
    "HealthCheckDefinition",
    {k: v for k, v in _CHECK_FIELDS.items() if k not in {"CheckID", "Name"}},
).alias("ScriptArgs", "Args")

#: A check inside `PUT /v1/catalog/register` (Consul's structs.HealthCheck).
CATALOG_CHECK = Obj(
    "HealthCheck",
    {
        "Node": string,
        "CheckID": string,
        "Name": string,
        "Status": string,
        "Notes": string,
        "Output": string,
        "ServiceID": string,
        "ServiceName": string,
        "ServiceTags": _strings,
        "Type": string,
        "Interval": duration,
        "Timeout": duration,
        "ExposedPort": integer,
        "Definition": HEALTH_CHECK_DEFINITION,
        "Namespace": string,
        "Partition": string,
        "CreateIndex": integer,
        "ModifyIndex": integer,
    },
).alias("ID", "CheckID")

CATALOG_SERVICE = Obj(
    "NodeService",
    {
        "Kind": string,
        "ID": anything,
        "Service": string,
        "Tags": _strings,
        "Address": string,
        "TaggedAddresses": map_of(SERVICE_ADDRESS),
        "Meta": _string_map,
        "Port": integer,
        "SocketPath": string,
        "Weights": WEIGHTS,
        "EnableTagOverride": boolean,
        "Proxy": anything,
        "Connect": anything,
        "Namespace": string,
        "Partition": string,
        "Locality": anything,
        "CreateIndex": integer,
        "ModifyIndex": integer,
    },
).alias("Name", "Service")

CATALOG_REGISTER = Obj(
    "RegisterRequest",
    {
        "ID": string,
        "Node": string,
        "Address": string,
        "Datacenter": string,
        "TaggedAddresses": _string_map,
        "NodeMeta": _string_map,
        "Service": CATALOG_SERVICE,
        "Check": CATALOG_CHECK,
        "Checks": list_of(CATALOG_CHECK),
        "SkipNodeUpdate": boolean,
        "Namespace": string,
        "Partition": string,
        "Locality": anything,
        "Token": string,
        "WriteRequest": anything,
    },
)

CATALOG_DEREGISTER = Obj(
    "DeregisterRequest",
    {
        "Node": string,
        "Datacenter": string,
        "CheckID": string,
        "ServiceID": string,
        "Namespace": string,
        "Partition": string,
        "Token": string,
        "WriteRequest": anything,
    },
)

CHECK_UPDATE = Obj("checkUpdate", {"Status": string, "Output": string})
