"""The raw ASGI app: route, read the body, call the handler, answer.

No web framework on the request path (measured: a framework costs 2–4× the
throughput). Errors become status codes in `errors.py`; an unexpected
exception is a bug, logged with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from waypost.exceptions import PayloadTooLarge
from waypost.http import blocking
from waypost.http.errors import error_response
from waypost.http.messages import Query, Request, Response
from waypost.http.routes import Router, build_router

if TYPE_CHECKING:
    from waypost.server import Agent

logger = logging.getLogger("waypost.http")

#: Largest request body accepted (413 above). Consul's KV limit is 512 KiB;
#: registrations are far smaller.
MAX_BODY = 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ConsulAPI:
    """ASGI application serving Consul's /v1 API for one Agent."""

    def __init__(self, agent: Agent, router: Router | None = None) -> None:
        self.agent = agent
        self.router = router or build_router()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _refuse_lifespan(receive, send)
            return
        response = await self._respond(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": response.headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        method: str = scope["method"]
        try:
            body = await _read_body(receive) if method in ("PUT", "POST") else b""
        except PayloadTooLarge as exc:
            return error_response(exc, method, scope["path"])
        return await self.respond(
            method, scope["path"], scope["query_string"], scope["headers"], body
        )

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
            result = await handler(self.agent, request)
            if isinstance(result, Query):
                return await blocking.answer(self.agent, request, result)
            return result
        except Exception as exc:  # the request edge: everything becomes a status
            return error_response(exc, method, path)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(
                f"Request body too large: the limit is {MAX_BODY} bytes"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _refuse_lifespan(receive: Receive, send: Send) -> None:
    # The Agent owns start-up and shutdown; uvicorn runs with lifespan off,
    # but answer politely if some other server sends lifespan events.
    message = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
    if message["type"] == "lifespan.shutdown":
        await send({"type": "lifespan.shutdown.complete"})
