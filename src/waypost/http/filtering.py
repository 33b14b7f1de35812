"""`?filter=` on list endpoints: Consul's expression language over wire shapes."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TypeVar

from waypost.core.filter_schemas import ENDPOINT_SCHEMAS
from waypost.core.filterexpr import FilterError, Schema, compile_filter
from waypost.exceptions import InvalidRequest
from waypost.http.messages import Request

T = TypeVar("T")

# "/v1/health/service/{service}" → ("/v1/health/service/", schema)
_PREFIXES = sorted(
    (
        (pattern.split("{", 1)[0], schema)
        for pattern, schema in ENDPOINT_SCHEMAS.items()
    ),
    key=lambda item: -len(item[0]),
)


@lru_cache(maxsize=256)
def schema_for(path: str) -> Schema | None:
    """The selectors Consul validates for the endpoint at `path`."""
    exact = ENDPOINT_SCHEMAS.get(path)
    if exact is not None:
        return exact
    for prefix, schema in _PREFIXES:
        if prefix.endswith("/") and path.startswith(prefix):
            return schema
    return None


def apply(request: Request, items: Sequence[T]) -> list[T]:
    """Keep the items the request's `?filter=` accepts (all when absent).

    Items are Consul-shaped JSON dicts, the same shape the caller receives,
    so selectors are the field names the caller sees, validated against the
    endpoint's schema as Consul does. A filter that does not parse is a 400
    that says where; it is never silently ignored.
    """
    expression = request.get("filter")
    if not expression:
        return list(items)
    try:
        compiled = compile_filter(expression, schema_for(request.path))
        return [item for item in items if compiled.matches(item)]
    except FilterError as exc:
        raise InvalidRequest(str(exc)) from None
