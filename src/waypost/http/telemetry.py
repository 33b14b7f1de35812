"""`/v1/agent/metrics` (Consul's JSON, or `?format=prometheus`) and
`/v1/agent/monitor` (the agent's logs, streamed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.exceptions import InvalidRequest
from waypost.http.messages import (
    TEXT_TYPE,
    Request,
    Response,
    StreamResponse,
    json_response,
)
from waypost.logs import HUB, MONITOR_LEVELS
from waypost.metrics.export import PROMETHEUS_CONTENT_TYPE, consul_json, prometheus_text

if TYPE_CHECKING:
    from waypost.registry import Registry


async def metrics(registry: Registry, request: Request) -> Response:
    """Consul answers `?format=prometheus` in the exposition format, else JSON."""
    if request.get("format") == "prometheus":
        body = prometheus_text(registry)
        return Response(
            200, body, [(b"content-type", PROMETHEUS_CONTENT_TYPE.encode())]
        )
    return json_response(consul_json(registry))


async def monitor(registry: Registry, request: Request) -> Response:
    """Stream log lines at `?loglevel=` (default INFO) until the client goes
    away; an unknown level is Consul's 400. `?logjson` streams JSON lines."""
    level_name = request.get("loglevel") or "INFO"
    level = MONITOR_LEVELS.get(level_name.lower())
    if level is None:
        raise InvalidRequest(f"Unknown log level: {level_name}")
    return StreamResponse(
        200, HUB.stream(level, json_lines=request.has("logjson")), [TEXT_TYPE]
    )
