"""The Consul API: route, call the handler, answer blocking queries.

No web framework on the request path (measured: a framework costs 2–4× the
throughput); `protocol.py` parses HTTP/1.1 and calls `respond`. Errors
become status codes in `errors.py`; an unexpected exception is a bug,
logged with its traceback. The response cache belongs here: it is an HTTP
concern, keyed by everything that changes an answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from waypost.http import blocking
from waypost.http.errors import error_response
from waypost.http.messages import Query, Request, Response
from waypost.http.routes import Router, build_router

if TYPE_CHECKING:
    from waypost.registry import Registry

logger = logging.getLogger("waypost.http")

#: Largest request body accepted (413 above). Consul's KV limit is 512 KiB;
#: registrations are far smaller.
MAX_BODY = 1024 * 1024


class ConsulAPI:
    """Consul's /v1 API over one Registry."""

    def __init__(self, registry: Registry, router: Router | None = None) -> None:
        self.registry = registry
        self.router = router or build_router()
        self.cache = blocking.ResponseCache()

    async def respond(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Response:
        """Route and run one request; every failure becomes a status here."""
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
            result = await handler(self.registry, request)
            if isinstance(result, Query):
                return await blocking.answer(self.registry, self.cache, request, result)
            return result
        except Exception as exc:  # the request edge: everything becomes a status
            return error_response(exc, method, path)
