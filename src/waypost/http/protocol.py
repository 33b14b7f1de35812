"""HTTP/1.1 on httptools, straight into the ConsulAPI: no ASGI on the hot path.

Measured on 2 cores (bench/http_bench.py): uvicorn's ASGI layer costs more
than everything waypost does per read. This protocol parses with httptools,
runs the handler coroutine inline (`coro.send(None)`) and writes the response
in one call; only a handler that really waits (a blocking query, a durable
commit) becomes a task. Responses on one connection keep request order
(pipelining). No I/O beyond the transport; the Agent owns the listener.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections import deque
from collections.abc import Coroutine
from typing import Any
from urllib.parse import unquote

import httptools

from waypost.exceptions import PayloadTooLarge, RequestRejected, UriTooLong
from waypost.http.app import MAX_BODY, ConsulAPI
from waypost.http.errors import error_response
from waypost.http.messages import Response, text_response

logger = logging.getLogger("waypost.http")

#: Longest request target (path and query string) accepted, in bytes; 414
#: above. Every name and ID fits many times over (256 characters, at most
#: 12 bytes each percent-encoded); httptools cannot parse past 64 KiB.
MAX_URL = 32 * 1024

# The last field is why the request is refused before it runs, if it is.
_Pending = tuple[
    str, str, bytes, list[tuple[bytes, bytes]], bytes, bool, RequestRejected | None
]


class ConnectionTracker:
    """Every open connection, so shutdown can close idle ones and wait for busy."""

    def __init__(self) -> None:
        self.connections: set[HttpProtocol] = set()
        self.request_done = asyncio.Event()

    def close_idle(self) -> None:
        for connection in list(self.connections):
            connection.close_when_idle()

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for busy connections, then abort them."""
        try:
            async with asyncio.timeout(grace):
                while any(c.is_busy for c in self.connections):
                    self.request_done.clear()
                    await self.request_done.wait()
        except TimeoutError:
            for connection in list(self.connections):
                connection.abort()


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "_api",
        "_body",
        "_closing",
        "_headers",
        "_parser",
        "_queue",
        "_refused",
        "_task",
        "_tracker",
        "_transport",
        "_url",
    )

    def __init__(self, api: ConsulAPI, tracker: ConnectionTracker) -> None:
        self._api = api
        self._tracker = tracker
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._refused: RequestRejected | None = None
        self._queue: deque[_Pending] = deque()
        self._task: asyncio.Task[Response] | None = None
        self._closing = False

    # ------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Answers are single writes: never let Nagle hold one back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._tracker.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._tracker.connections.discard(self)
        self._transport = None
        self._queue.clear()
        self._tracker.request_done.set()
        if self._task is not None and not self._task.done():
            # The client went away: stop its blocking query.
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reply_and_close(text_response("Upgrades are not supported", 400))
        except httptools.HttpParserError as exc:
            self._reply_and_close(text_response(f"Malformed HTTP request: {exc}", 400))

    @property
    def is_busy(self) -> bool:
        return self._task is not None or bool(self._queue)

    def close_when_idle(self) -> None:
        self._closing = True
        if not self.is_busy and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------------------ parser

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._refused = None

    def on_url(self, url: bytes) -> None:
        if self._refused is not None:
            return
        self._url += url
        if len(self._url) > MAX_URL:
            self._url = b"/"
            self._refused = UriTooLong(
                f"Request URL too long: the limit is {MAX_URL} bytes"
                " (path and query string)"
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        if self._refused is not None:
            return
        self._body.append(body)
        if sum(map(len, self._body)) > MAX_BODY:
            self._refused = PayloadTooLarge(
                f"Request body too large: the limit is {MAX_BODY} bytes"
            )
            self._body = []

    def on_message_complete(self) -> None:
        parsed = httptools.parse_url(self._url)
        raw_path = parsed.path.decode("latin-1")
        request = (
            self._parser.get_method().decode("ascii"),
            unquote(raw_path) if "%" in raw_path else raw_path,
            parsed.query or b"",
            self._headers,
            b"".join(self._body) if self._body else b"",
            self._parser.should_keep_alive(),
            self._refused,
        )
        if self._task is None and not self._queue:
            self._handle(request)
        else:
            self._queue.append(request)

    # ------------------------------------------------------------ dispatch

    def _drain(self) -> None:
        """Answer queued requests in order, until one has to wait."""
        while self._queue and self._task is None and self._transport is not None:
            self._handle(self._queue.popleft())

    def _handle(self, request: _Pending) -> None:
        """Run one request inline; only if it waits does it become a task."""
        method, path, query, headers, body, keep_alive, refused = request
        if refused is not None:
            self._write(error_response(refused, method, path), keep_alive=False)
            return
        coro = self._api.respond(method, path, query, headers, body)
        try:
            first = coro.send(None)
        except StopIteration as done:
            self._write(done.value, keep_alive)
            return
        except BaseException:  # respond() maps every error; this is a bug
            logger.exception("bug: %s %s escaped the error mapping", method, path)
            self._write(text_response("Internal error", 500), keep_alive=False)
            return
        # The handler is waiting on something: hand it to the loop.
        self._task = asyncio.ensure_future(_resume(coro, first))
        self._task.add_done_callback(functools.partial(self._finished, keep_alive))

    def _finished(self, keep_alive: bool, task: asyncio.Task[Response]) -> None:
        self._task = None
        self._tracker.request_done.set()
        if task.cancelled() or self._transport is None:
            return
        exc = task.exception()
        if exc is not None:
            logger.error("bug: a request task failed", exc_info=exc)
            self._write(text_response("Internal error", 500), keep_alive=False)
            return
        self._write(task.result(), keep_alive)
        self._drain()

    def _write(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        keep_alive = keep_alive and not self._closing
        transport.write(response.serialize(keep_alive=keep_alive))
        if not keep_alive:
            self._queue.clear()
            transport.close()
            self._transport = None

    def _reply_and_close(self, response: Response) -> None:
        self._write(response, keep_alive=False)


async def _resume(coro: Coroutine[Any, Any, Response], first: Any) -> Response:
    """Continue a coroutine that already ran up to its first suspension."""
    response: Response = await _Resumed(coro, first)
    return response


class _Resumed:
    """Awaitable that drives an already-started coroutine to completion.

    `first` is the future the coroutine yielded when `_drain` started it; it
    is handed to the task exactly as the coroutine would have, so asyncio's
    wake-up protocol (`_asyncio_future_blocking`) is kept intact.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Response], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Any:
        coro = self._coro
        yielded = self._first
        while True:
            try:
                value = yield yielded
            except BaseException as exc:  # cancellation must reach the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                yielded = coro.send(value)
            except StopIteration as done:
                return done.value
