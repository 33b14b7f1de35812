"""The Consul API: route, call the handler, answer blocking queries.

No web framework on the request path (measured: a framework costs 2–4× the
throughput); `protocol.py` parses HTTP/1.1 and calls `respond`. Errors
become status codes in `errors.py`; an unexpected exception is a bug,
logged with its traceback. The response cache belongs here: it is an HTTP
concern, keyed by everything that changes an answer.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import TYPE_CHECKING

from waypost.http import access, blocking
from waypost.http.errors import error_response
from waypost.http.messages import Query, Request, Response
from waypost.http.routes import Handler, Router, build_router
from waypost.metrics import METRICS, Histogram

if TYPE_CHECKING:
    from waypost.registry import Registry

logger = logging.getLogger("waypost.http")

#: Largest request body accepted (413 above). Consul's KV limit is 512 KiB;
#: registrations are far smaller.
MAX_BODY = 1024 * 1024


#: Requests per route and their latency (a blocking query's wait included,
#: as Consul's `consul.api.http` timer). `path` is Consul's label: the
#: route's pattern with `/` as `_` (`v1_health_service_`).
REQUESTS = METRICS.histogram(
    "waypost_http_request_duration_seconds",
    "HTTP requests by method and route, and how long they took to answer.",
    ("method", "path"),
    consul_name="consul.api.http",
)
#: What did not match a route (404, 405, OPTIONS).
UNROUTED = "unrouted"


class ConsulAPI:
    """Consul's /v1 API over one Registry."""

    def __init__(self, registry: Registry, router: Router | None = None) -> None:
        self.registry = registry
        self.router = router or build_router()
        self.cache = blocking.ResponseCache()
        self._timers: dict[tuple[str, Handler | None], Histogram] = {}

    def _timer(self, method: str, handler: Handler | None) -> Histogram:
        timer = self._timers.get((method, handler))
        if timer is None:
            pattern = self.router.pattern_of(handler) if handler else UNROUTED
            label = pattern.removeprefix("/").replace("/", "_")
            timer = self._timers[(method, handler)] = REQUESTS.labelled(
                method if handler else "", label
            )
        return timer

    async def respond(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Response:
        """Route and run one request; every failure becomes a status here."""
        started = perf_counter()
        handler: Handler | None = None
        try:
            match = self.router.match(method, path)
            if isinstance(match, Response):
                return match
            handler, tail = match
            request = Request(
                method=method,
                path=path,
                query_string=query_string,
                headers=headers,
                body=body,
                tail=tail,
            )
            keep = access.guard(self.registry, request, handler)
            result = await handler(self.registry, request)
            if keep is not None and request.authorizer is not None:
                result = access.filtered(result, request.authorizer, keep)
            if isinstance(result, Query):
                return await blocking.answer(self.registry, self.cache, request, result)
            return result
        except Exception as exc:  # the request edge: everything becomes a status
            return error_response(exc, method, path)
        finally:
            elapsed = perf_counter() - started
            timer = self._timers.get((method, handler))
            if timer is None:
                timer = self._timer(method, handler)
            timer.observe(elapsed)
            if logger.isEnabledFor(logging.DEBUG):  # Consul's "Request finished"
                logger.debug(
                    "Request finished: method=%s url=%s latency=%.3fms",
                    method,
                    path,
                    elapsed * 1000,
                )
