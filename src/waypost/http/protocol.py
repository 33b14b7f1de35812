"""HTTP/1.1 on httptools, straight into the ConsulAPI: no ASGI on the hot path.

Measured on 2 cores (bench/http_bench.py): uvicorn's ASGI layer costs more
than everything waypost does per read. This protocol parses with httptools,
runs the handler coroutine inline (`coro.send(None)`) and writes the response
in one call; only a handler that really waits (a blocking query, a durable
commit) becomes a task. Responses on one connection keep request order
(pipelining). No I/O beyond the transport; listeners.py accepts.

What one connection may cost is bounded (config.HttpLimits, README "Running
in production"): the request target (414), the head's bytes and field count
(431), the body (413, before it is read when Content-Length says so), the
time a request's head and body may take to arrive (408) and an idle
keep-alive (closed). Pipelined requests are read at most `max_pipeline`
ahead, and a client that does not read its answers stops being read from
(back-pressure) instead of growing the agent's buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple
from urllib.parse import unquote

import httptools

from waypost.config import HttpLimits
from waypost.exceptions import (
    ExpectationFailed,
    HeaderFieldsTooLarge,
    InvalidRequest,
    PayloadTooLarge,
    RequestRejected,
    RequestTimeout,
    UriTooLong,
)
from waypost.http.app import ConsulAPI
from waypost.http.errors import error_response
from waypost.http.messages import Response, text_response

logger = logging.getLogger("waypost.http")

#: Bytes handed to the parser at a time: the most a read can add to the
#: pipeline queue, and the overshoot of the header-size check, before the
#: connection can stop reading.
FEED_SLICE = 4 * 1024

#: After refusing a request mid-way, keep reading (and dropping) what the
#: client is still sending for this long or this many bytes, so that it
#: reads our answer instead of a connection reset.
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024

#: At the connection cap, a head still arriving after this many seconds may
#: be dropped to make room (a client's head normally comes in one packet).
SLOW_HEAD = 1.0

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

#: Stands in for a connection's parser once it will parse no more. The parser
#: and its protocol refer to each other: the agent collects cycles rarely
#: (server.GC_THRESHOLD), and a parser may be holding 64 KiB of a refused head.
_RETIRED = httptools.HttpRequestParser(object())

# Where a connection is in reading its current request (deadlines differ).
_FRESH = 0  # accepted, no byte yet: header_timeout from accept, closed quietly
_HEAD = 1  # a request began: header_timeout from its first byte
_BODY = 2  # its head is in: read_timeout from its first byte
_IDLE = 3  # between requests: idle_timeout once nothing is being answered
_LINGER = 4  # refused and answered: dropping input until LINGER_* runs out


class PendingRequest(NamedTuple):
    """A parsed request waiting its turn (pipelining keeps answers in order)."""

    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    refusal: Response | None = None


class ConnectionTracker:
    """Every open connection: shutdown closes idle ones and waits for busy
    ones; a sweeper task enforces the read and idle deadlines."""

    def __init__(self, limits: HttpLimits | None = None) -> None:
        self.limits = limits if limits is not None else HttpLimits()
        self.connections: set[HttpProtocol] = set()
        #: Connections that have not sent a byte yet, oldest first (a dict
        #: keeps insertion order): what `shed` closes first, without a scan.
        self.silent: dict[HttpProtocol, None] = {}
        self.request_done = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def tick(self) -> float:
        """How often deadlines are checked: a quarter of the shortest."""
        limits = self.limits
        timeouts = [
            t
            for t in (limits.header_timeout, limits.read_timeout, limits.idle_timeout)
            if t > 0
        ]
        return min(max(min([*timeouts, LINGER_SECONDS]) / 4, 0.02), 1.0)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="waypost-http-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        tick = self.tick
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for connection in list(self.connections):
                connection.check_deadlines(now)

    def close_idle(self) -> None:
        for connection in list(self.connections):
            connection.close_when_idle()

    def shed(self, count: int) -> int:
        """Close up to `count` connections that cost least to lose, to make
        room at the connection cap (nginx's "reusing connections").

        Never one with a request in hand; first those that never sent a
        byte, then those already refused, then heads arriving slowly, then
        idle keep-alives; oldest first. Returns how many it closed.
        """
        chosen = list(itertools.islice(self.silent, count))
        if len(chosen) < count:  # a scan, only when the silent ones run out
            now = time.monotonic()
            ranked = [
                (rank, connection)
                for connection in self.connections
                if (rank := connection.shed_rank(now)) is not None
                and connection not in self.silent
            ]
            best = heapq.nsmallest(count - len(chosen), ranked, key=lambda p: p[0])
            chosen += [connection for _, connection in best]
        for connection in chosen:
            connection.shed()
        return len(chosen)

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
        "_body_size",
        "_closing",
        "_content_length",
        "_continue_pending",
        "_expect",
        "_head_bytes",
        "_head_size",
        "_header_count",
        "_headers",
        "_last_active",
        "_limits",
        "_linger_bytes",
        "_on_close",
        "_parsed",
        "_parser",
        "_phase",
        "_queue",
        "_reading_paused",
        "_refused",
        "_since",
        "_stalled_since",
        "_stash",
        "_task",
        "_tracker",
        "_transport",
        "_url",
        "_write_paused",
    )

    def __init__(
        self,
        api: ConsulAPI,
        tracker: ConnectionTracker,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._api = api
        self._tracker = tracker
        self._limits = tracker.limits
        self._on_close = on_close
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_count = 0
        self._head_size = 0
        self._head_bytes = 0
        self._content_length = -1
        self._expect: bytes | None = None
        self._continue_pending = False
        self._body: bytearray | None = None
        self._body_size = 0
        self._queue: deque[PendingRequest] = deque()
        self._task: asyncio.Task[Response] | None = None
        self._closing = False
        self._refused = False
        self._phase = _FRESH
        self._since = self._last_active = time.monotonic()
        self._reading_paused = False
        self._write_paused = False
        self._stalled_since = 0.0
        self._stash: bytes | memoryview = b""
        self._linger_bytes = 0
        self._parsed = 0

    # ------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Answers are single writes: never let Nagle hold one back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._since = self._last_active = time.monotonic()
        self._tracker.connections.add(self)
        self._tracker.silent[self] = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._tracker.connections.discard(self)
        self._tracker.silent.pop(self, None)
        self._transport = None
        self._parser = _RETIRED
        self._queue.clear()
        self._stash = b""
        self._tracker.request_done.set()
        if self._task is not None and not self._task.done():
            # The client went away: stop its blocking query.
            self._task.cancel()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def pause_writing(self) -> None:
        """The client is not reading its answers: stop answering and reading."""
        self._write_paused = True
        self._stalled_since = time.monotonic()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._drain()

    def data_received(self, data: bytes) -> None:
        if self._phase == _LINGER:
            self._linger_bytes += len(data)
            if self._linger_bytes > LINGER_BYTES:
                self.abort()
            return
        if self._refused:
            return
        if self._reading_paused:
            # A transport may hand over what it had already read.
            self._stash = bytes(self._stash) + data
            return
        self._feed(data)

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

    def shed_rank(self, now: float) -> tuple[int, float] | None:
        """Where this connection stands in `ConnectionTracker.shed`'s order
        (lower goes first), or None if it must not be shed."""
        if self.is_busy or self._transport is None:
            return None
        phase = self._phase
        if phase == _FRESH:
            return (0, self._since)
        if phase == _LINGER:
            return (1, self._since)
        if phase == _HEAD and now - self._since > SLOW_HEAD:
            return (2, self._since)
        if phase == _IDLE:
            return (3, self._last_active)
        return None

    def shed(self) -> None:
        if self._phase == _IDLE:
            self.close_when_idle()
        else:
            self.abort()

    def check_deadlines(self, now: float) -> None:
        """Close the connection if its current phase has run out of time."""
        limits = self._limits
        if self._write_paused:
            # Answers are waiting for the client to read them.
            if limits.idle_timeout and now - self._stalled_since > limits.idle_timeout:
                self.abort()
            return
        phase = self._phase
        if phase == _LINGER:
            if now - self._since > LINGER_SECONDS:
                self.abort()
        elif self._reading_paused:
            return  # our side is behind (pipelining): not the client's time
        elif phase == _IDLE:
            if (
                limits.idle_timeout
                and not self.is_busy
                and now - self._last_active > limits.idle_timeout
            ):
                self.close_when_idle()
        elif phase == _FRESH:
            if limits.header_timeout and now - self._since > limits.header_timeout:
                self.close_when_idle()
        elif phase == _HEAD:
            if limits.header_timeout and now - self._since > limits.header_timeout:
                self._time_out("headers", limits.header_timeout)
        elif limits.read_timeout and now - self._since > limits.read_timeout:
            self._time_out("body", limits.read_timeout)

    def _time_out(self, part: str, limit: float) -> None:
        logger.debug("closing a connection: request %s too slow", part)
        if self.is_busy:
            self.abort()
        else:
            self._refuse(
                RequestTimeout(f"Request {part} not received within {limit:g}s")
            )

    # ------------------------------------------------------------ reading

    def _feed(self, data: bytes | memoryview) -> None:
        """Parse what arrived, a slice at a time, until told to wait.

        One call parses about `max_pipeline` requests at most; the rest waits
        for the loop's next turn, so a client pipelining thousands of
        requests cannot keep the loop from everyone else.
        """
        self._parsed = 0
        size = len(data)
        if size <= FEED_SLICE:
            if self._feed_slice(data):
                self._wait_if_needed(b"")
            return
        view = memoryview(data)
        for start in range(0, size, FEED_SLICE):
            if start and self._wait_if_needed(view[start:]):
                return
            if not self._feed_slice(view[start : start + FEED_SLICE]):
                return
        self._wait_if_needed(b"")

    def _wait_if_needed(self, rest: bytes | memoryview) -> bool:
        """Stop reading if answers are backed up or this turn has had its
        share; keep `rest` for later. True if it stopped."""
        if self._must_wait():
            self._pause_reading(rest)
            return True
        if rest and self._parsed >= self._limits.max_pipeline:
            self._pause_reading(rest)
            asyncio.get_running_loop().call_soon(self._resume_reading)
            return True
        return False

    def _feed_slice(self, data: bytes | memoryview) -> bool:
        """Parse one slice; False when the connection stopped reading."""
        if self._phase <= _HEAD:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, RequestRejected):
                self._refuse(cause)
            elif self._transport is not None and not self._refused:
                self._refuse(InvalidRequest(f"Malformed HTTP request: {exc}"))
            return False
        except httptools.HttpParserUpgrade:
            self._refuse(InvalidRequest("Upgrades are not supported"))
            return False
        except httptools.HttpParserError as exc:
            self._refuse(InvalidRequest(f"Malformed HTTP request: {exc}"))
            return False
        if self._transport is None or self._refused:
            return False
        if self._phase <= _HEAD and self._head_bytes > self._limits.max_header_bytes:
            # One field still arriving: httptools holds it until it ends.
            self._refuse(self._head_too_large())
            return False
        return True

    def _must_wait(self) -> bool:
        return self._write_paused or len(self._queue) >= self._limits.max_pipeline

    def _pause_reading(self, rest: bytes | memoryview) -> None:
        self._stash = rest
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if (
            not self._reading_paused
            or self._refused
            or self._transport is None
            or self._must_wait()
        ):
            return
        self._reading_paused = False
        stash, self._stash = self._stash, b""
        if stash:
            self._feed(stash)
        if not self._reading_paused and self._transport is not None:
            self._transport.resume_reading()

    def _head_too_large(self) -> HeaderFieldsTooLarge:
        return HeaderFieldsTooLarge(
            "Request header fields too large: the limit is"
            f" {self._limits.max_header_bytes} bytes",
        )

    # ------------------------------------------------------------ parser

    def on_message_begin(self) -> None:
        if self._transport is None:
            raise ConnectionAbortedError  # closed mid-slice: stop parsing
        if self._phase == _FRESH:
            self._tracker.silent.pop(self, None)
        else:
            self._since = time.monotonic()
        self._phase = _HEAD
        self._url = b""
        self._headers = []
        self._header_count = 0
        self._head_size = 0
        self._content_length = -1
        self._expect = None
        self._body = None
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url_bytes:
            raise UriTooLong(
                "Request URL too long: the limit is"
                f" {self._limits.max_url_bytes} bytes (path and query string)"
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self._headers.append((name, value))
        self._header_count += 1
        self._head_size += len(name) + len(value) + 4
        limits = self._limits
        if self._header_count > limits.max_header_count:
            raise HeaderFieldsTooLarge(
                "Request header fields too many: the limit is"
                f" {limits.max_header_count} fields",
            )
        if self._head_size + len(self._url) > limits.max_header_bytes:
            raise self._head_too_large()
        if name == b"content-length":
            with contextlib.suppress(ValueError):  # the parser refuses it
                self._content_length = int(value)
        elif name == b"expect":
            self._expect = value

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._head_bytes = 0
        if self._content_length > self._limits.max_body_bytes:
            raise self._body_too_large()
        if self._expect is not None:
            if self._expect.lower() != b"100-continue":
                raise ExpectationFailed(
                    "Expectation not supported: only 100-continue is"
                )
            if self._parser.get_http_version() != "1.0":
                self._continue_pending = True
                self._send_continue()

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limits.max_body_bytes:
            raise self._body_too_large()  # chunked: no Content-Length to check
        if self._body is None:
            self._body = bytearray(body)
        else:
            self._body += body

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        self._parsed += 1
        self._continue_pending = False
        try:
            parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            raise InvalidRequest("Malformed request target") from None
        raw_path = parsed.path.decode("latin-1")
        request = PendingRequest(
            self._parser.get_method().decode("ascii"),
            unquote(raw_path) if "%" in raw_path else raw_path,
            parsed.query or b"",
            self._headers,
            bytes(self._body) if self._body is not None else b"",
            self._parser.should_keep_alive(),
        )
        if self._task is None and not self._queue and not self._write_paused:
            self._handle(request)
        else:
            self._queue.append(request)

    def _body_too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Request body too large: the limit is {self._limits.max_body_bytes} bytes",
        )

    def _send_continue(self) -> None:
        """`100 Continue`, once the answers before this request are out."""
        if self._continue_pending and not self.is_busy and self._transport is not None:
            self._continue_pending = False
            self._transport.write(_CONTINUE)

    # ------------------------------------------------------------ dispatch

    def _drain(self) -> None:
        """Answer queued requests in order, until one has to wait."""
        while (
            self._queue
            and self._task is None
            and self._transport is not None
            and not self._write_paused
        ):
            self._handle(self._queue.popleft())
        if self._transport is not None and not self.is_busy:
            self._send_continue()
        self._resume_reading()

    def _handle(self, request: PendingRequest) -> None:
        """Run one request inline; only if it waits does it become a task."""
        if request.refusal is not None:
            self._answer_refusal(request.refusal)
            return
        method, path, query, headers, body, keep_alive, _ = request
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
        # Closing (shutdown, the client's EOF): the last queued answer says so.
        keep_alive = keep_alive and not (self._closing and not self._queue)
        transport.write(response.serialize(keep_alive=keep_alive))
        self._last_active = time.monotonic()
        if not keep_alive:
            self._queue.clear()
            transport.close()
            self._transport = None

    def _refuse(self, refusal: RequestRejected) -> None:
        """Stop reading; answer the refusal after what is already in flight."""
        if self._refused or self._transport is None:
            return
        self._refused = True
        self._parser = _RETIRED
        logger.debug("refused a request: %s", refusal)
        response = error_response(refusal, "", "")
        if self.is_busy:
            self._queue.append(PendingRequest("", "", b"", [], b"", False, response))
            self._pause_reading(b"")
        else:
            self._answer_refusal(response)

    def _answer_refusal(self, response: Response) -> None:
        """Answer, half-close, and drop input a little while (lingering
        close): closing with unread input would reset the connection and
        the client could lose the answer."""
        transport = self._transport
        if transport is None:
            return
        transport.write(response.serialize(keep_alive=False))
        self._queue.clear()
        self._stash = b""
        self._phase = _LINGER
        self._since = time.monotonic()
        if transport.can_write_eof():
            transport.write_eof()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()


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
