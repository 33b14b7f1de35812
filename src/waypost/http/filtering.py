"""`?filter=` on list endpoints: Consul's expression language over wire shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from waypost.exceptions import InvalidRequest
from waypost.http.messages import Request

T = TypeVar("T")


def apply(request: Request, items: Sequence[T], schema: object = None) -> list[T]:
    """Keep the items the request's `?filter=` accepts (all when absent).

    Items are Consul-shaped JSON dicts, the same shape the caller receives,
    so selectors are the field names the caller sees. A filter that does not
    parse is a 400 that says where; it is never silently ignored.
    """
    expression = request.get("filter")
    if not expression:
        return list(items)
    from waypost.core.filterexpr import FilterError, compile_filter

    try:
        compiled = compile_filter(expression, schema)  # type: ignore[arg-type]
    except FilterError as exc:
        raise InvalidRequest(
            f"Failed to create boolean expression evaluator: {exc}"
        ) from None
    try:
        return [item for item in items if compiled.matches(item)]
    except FilterError as exc:
        raise InvalidRequest(f"Failed to evaluate filter: {exc}") from None
