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
keep-alive (closed); connections.py checks the deadlines. Pipelined requests
are read at most `max_pipeline` ahead (and parsed at most that many per turn
of the loop), and a client that does not read its answers stops being read
from (back-pressure) instead of growing the agent's buffers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple
from urllib.parse import unquote

import httptools

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
from waypost.http.connections import LINGER_BYTES, LINGER_SECONDS, ConnectionTracker
from waypost.http.errors import error_response
from waypost.http.messages import Response, StreamResponse, text_response

logger = logging.getLogger("waypost.http")

#: Bytes handed to the parser at a time: between two slices a connection can
#: stop (its turn is over, its answers back up, its head is too large).
FEED_SLICE = 4 * 1024

#: At the connection cap, a head still arriving after this many seconds may
#: be dropped to make room (a client's head normally comes in one packet).
SLOW_HEAD = 1.0

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

#: A snapshot restore carries the whole state: its body may be this large
#: (the archive is read whole, then decoded off the event loop).
SNAPSHOT_PATH = b"/v1/snapshot"
SNAPSHOT_MAX_BODY = 512 * 1024 * 1024

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


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "_api",
        "_body",
        "_body_size",
        "_closing",
        "_continue_pending",
        "_diverted",
        "_events",
        "_expect",
        "_head_bytes",
        "_headers",
        "_limits",
        "_linger_bytes",
        "_max_body",
        "_max_fields",
        "_max_head",
        "_max_pipeline",
        "_max_url",
        "_on_close",
        "_parser",
        "_phase",
        "_queue",
        "_reading_paused",
        "_refused",
        "_seen_at",
        "_seen_events",
        "_stalled_since",
        "_stash",
        "_task",
        "_tracker",
        "_transport",
        "_turn_began",
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
        self._on_close = on_close
        limits = self._limits = tracker.limits
        # Read on every request: plain attributes, not a lookup through limits.
        self._max_url = limits.max_url_bytes
        self._max_head = limits.max_header_bytes
        self._max_fields = limits.max_header_count
        self._max_body = limits.max_body_bytes
        self._max_pipeline = limits.max_pipeline
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._expect: bytes | None = None
        self._continue_pending = False
        self._body: bytearray | None = None
        self._body_size = 0
        self._queue: deque[PendingRequest] = deque()
        self._task: asyncio.Task[Response] | None = None
        self._turn_began = 0
        self._closing = False
        self._phase = _FRESH
        # Deadlines without a clock read per request: a request beginning
        # and an answer written count as events; the sweeper notes when it
        # first sees a new count (`_seen_at`), a deadline runs from there.
        self._events = self._seen_events = 0
        self._seen_at = time.monotonic()
        # The unusual states, each with a flag, and `_diverted` if any is
        # set: the one test on the way of every read.
        self._refused = False
        self._reading_paused = False
        self._diverted = False
        self._write_paused = False
        self._stalled_since = 0.0
        self._stash: bytes | memoryview = b""
        self._linger_bytes = 0

    # ------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Answers are single writes: never let Nagle hold one back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._seen_at = time.monotonic()
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
        if self._diverted:
            self._divert(data)
        elif len(data) > FEED_SLICE:
            self._feed(data)
        elif self._phase > _HEAD:
            # The usual case, `_feed_slice` inlined: whole requests arrive
            # between two of them.
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserError as exc:
                self._parse_failed(exc)
                return
            if self._write_paused or len(self._queue) >= self._max_pipeline:
                self._pause_reading(b"")
        elif self._feed_slice(data) and (
            self._write_paused or len(self._queue) >= self._max_pipeline
        ):
            self._pause_reading(b"")

    def _divert(self, data: bytes) -> None:
        """Input while refused, lingering or not reading."""
        if self._phase == _LINGER:
            self._linger_bytes += len(data)
            if self._linger_bytes > LINGER_BYTES:
                self.abort()
        elif not self._refused:
            # Reading is paused; a transport may hand over what it had read.
            self._stash = bytes(self._stash) + data

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

    # ------------------------------------------------------------ deadlines

    def check_deadlines(self, now: float) -> None:
        """Close the connection if its current phase has run out of time."""
        if self._events != self._seen_events:
            self._seen_events = self._events
            self._seen_at = now
            return
        age = now - self._seen_at
        limits = self._limits
        if self._write_paused:
            # Answers are waiting for the client to read them.
            if limits.idle_timeout and now - self._stalled_since > limits.idle_timeout:
                self.abort()
            return
        phase = self._phase
        if phase == _LINGER:
            if age > LINGER_SECONDS:
                self.abort()
        elif self._reading_paused:
            return  # our side is behind (pipelining): not the client's time
        elif phase == _IDLE:
            if limits.idle_timeout and not self.is_busy and age > limits.idle_timeout:
                self.close_when_idle()
        elif phase == _FRESH:
            if limits.header_timeout and age > limits.header_timeout:
                self.close_when_idle()
        elif phase == _HEAD:
            if limits.header_timeout and age > limits.header_timeout:
                self._time_out("headers", limits.header_timeout)
        elif limits.read_timeout and age > limits.read_timeout:
            self._time_out("body", limits.read_timeout)

    def _time_out(self, part: str, limit: float) -> None:
        logger.debug("closing a connection: request %s too slow", part)
        if self.is_busy:
            self.abort()
        else:
            self._refuse(
                RequestTimeout(f"Request {part} not received within {limit:g}s")
            )

    def shed_rank(self, now: float) -> tuple[int, float] | None:
        """Where this connection stands in `ConnectionTracker.shed`'s order
        (lower goes first), or None if it must not be shed."""
        if self.is_busy or self._transport is None:
            return None
        phase, since = self._phase, self._seen_at
        if self._events != self._seen_events:
            since = now  # its state changed after the last sweep: young
        if phase == _FRESH:
            return (0, since)
        if phase == _LINGER:
            return (1, since)
        if phase == _HEAD and now - since > SLOW_HEAD:
            return (2, since)
        if phase == _IDLE:
            return (3, since)
        return None

    def shed(self) -> None:
        if self._phase == _IDLE:
            self.close_when_idle()
        else:
            self.abort()

    # ------------------------------------------------------------ reading

    def _feed(self, data: bytes | memoryview) -> None:
        """Parse what arrived, a slice at a time, until told to wait.

        One call parses about `max_pipeline` requests at most; the rest waits
        for the loop's next turn, so a client pipelining thousands of
        requests cannot keep the loop from everyone else.
        """
        self._turn_began = self._events
        view = memoryview(data)
        for start in range(0, len(view), FEED_SLICE):
            if start and self._wait_if_needed(view[start:]):
                return
            if not self._feed_slice(view[start : start + FEED_SLICE]):
                return
        self._wait_if_needed(b"")

    def _wait_if_needed(self, rest: bytes | memoryview) -> bool:
        """Stop reading if answers are backed up or this turn has had its
        share; keep `rest` for later. True if it stopped."""
        if self._write_paused or len(self._queue) >= self._max_pipeline:
            self._pause_reading(rest)
            return True
        # A request counts twice in `_events`: its first byte and its answer.
        if rest and self._events - self._turn_began >= 2 * self._max_pipeline:
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
        except httptools.HttpParserError as exc:
            self._parse_failed(exc)
            return False
        if self._diverted or self._transport is None:
            return False
        if self._phase <= _HEAD and self._head_bytes > self._max_head:
            # One field still arriving: httptools holds it until it ends.
            self._refuse(self._head_too_large())
            return False
        return True

    def _parse_failed(self, exc: httptools.HttpParserError) -> None:
        """A limit raised in a callback, or input that is not HTTP/1.1."""
        if isinstance(exc, httptools.HttpParserCallbackError):
            cause = exc.__context__
            if isinstance(cause, RequestRejected):
                self._refuse(cause)
            elif self._transport is not None:  # else: closed while parsing
                self._refuse(InvalidRequest(f"Malformed HTTP request: {exc}"))
        elif isinstance(exc, httptools.HttpParserUpgrade):
            self._refuse(InvalidRequest("Upgrades are not supported"))
        else:
            self._refuse(InvalidRequest(f"Malformed HTTP request: {exc}"))

    def _pause_reading(self, rest: bytes | memoryview) -> None:
        self._stash = rest
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = self._diverted = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if (
            not self._reading_paused
            or self._refused
            or self._transport is None
            or self._write_paused
            or len(self._queue) >= self._max_pipeline
        ):
            return
        self._reading_paused = self._diverted = False
        stash, self._stash = self._stash, b""
        if stash:
            self._feed(stash)
        if not self._reading_paused and self._transport is not None:
            self._transport.resume_reading()

    # ------------------------------------------------------------ parser

    def on_message_begin(self) -> None:
        if self._transport is None:
            raise ConnectionAbortedError  # closed mid-slice: stop parsing
        if self._phase == _FRESH:
            self._tracker.silent.pop(self, None)  # its deadline runs from accept
        else:
            self._events += 1
        self._phase = _HEAD
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_url:
            raise UriTooLong(
                f"Request URL too long: the limit is {self._max_url} bytes"
                " (path and query string)"
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self._headers.append((name, value))
        if name == b"expect" or name == b"content-length":
            self._watched_header(name, value)

    def _watched_header(self, name: bytes, value: bytes) -> None:
        if name == b"expect":
            self._expect = value
        elif value.isdigit() and int(value) > self._body_limit():  # Content-Length
            raise self._body_too_large()  # before a byte of the body is read

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        if len(self._headers) > self._max_fields:
            raise HeaderFieldsTooLarge(
                f"Request header fields too many: the limit is {self._max_fields}"
                " fields"
            )
        # `_head_bytes` counted whole slices: near the limit, count exactly.
        if self._head_bytes + FEED_SLICE > self._max_head and self._head_size() > (
            self._max_head
        ):
            raise self._head_too_large()
        self._head_bytes = 0
        if self._expect is not None:
            self._expect_continue()

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._max_body and self._body_size > self._body_limit():
            raise self._body_too_large()  # chunked: no Content-Length to check
        if self._body is None:
            self._body = bytearray(body)
        else:
            self._body += body

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        if self._continue_pending:
            self._continue_pending = False
        try:
            parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            raise InvalidRequest("Malformed request target") from None
        raw_path = parsed.path.decode("latin-1")
        body = b""
        if self._body is not None:
            body = bytes(self._body)
            self._body, self._body_size = None, 0
        method = self._parser.get_method().decode("ascii")
        path = unquote(raw_path) if "%" in raw_path else raw_path
        query = parsed.query or b""
        keep_alive = self._parser.should_keep_alive()
        if self._task is None and not self._queue and not self._write_paused:
            self._run(method, path, query, self._headers, body, keep_alive)
        else:
            self._queue.append(
                PendingRequest(method, path, query, self._headers, body, keep_alive)
            )

    def _head_size(self) -> int:
        """The request line and headers, in bytes (as sent, near enough)."""
        fields = sum(len(name) + len(value) + 4 for name, value in self._headers)
        return len(self._url) + fields + 16

    def _head_too_large(self) -> HeaderFieldsTooLarge:
        return HeaderFieldsTooLarge(
            f"Request header fields too large: the limit is {self._max_head} bytes"
        )

    def _body_limit(self) -> int:
        if self._url.startswith(SNAPSHOT_PATH):
            return max(self._max_body, SNAPSHOT_MAX_BODY)
        return self._max_body

    def _body_too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Request body too large: the limit is {self._body_limit()} bytes"
        )

    def _expect_continue(self) -> None:
        expect, self._expect = self._expect, None
        if expect is None or expect.lower() != b"100-continue":
            raise ExpectationFailed("Expectation not supported: only 100-continue is")
        if self._parser.get_http_version() != "1.0":
            self._continue_pending = True
            self._send_continue()

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
            request = self._queue.popleft()
            if request.refusal is not None:
                self._answer_refusal(request.refusal)
                return
            self._run(*request[:6])
        if self._transport is not None and not self.is_busy:
            self._send_continue()
        self._resume_reading()

    def _run(  # positional: called for every request
        self,
        method: str,
        path: str,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        """Run one request inline; only if it waits does it become a task."""
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
        if isinstance(response, StreamResponse):
            self._stream(response)
            return
        # Closing (shutdown): the last queued answer says so.
        keep_alive = keep_alive and not (self._closing and not self._queue)
        transport.write(response.serialize(keep_alive=keep_alive))
        self._events += 1
        if not keep_alive:
            self._queue.clear()
            transport.close()
            self._transport = None

    def _stream(self, response: StreamResponse) -> None:
        """Send a streamed answer as chunks arrive; then close (busy meanwhile:
        pipelined requests wait, the client going away cancels it)."""
        assert self._transport is not None
        self._transport.write(response.head())
        self._queue.clear()
        self._task = asyncio.ensure_future(self._send_chunks(response))
        self._task.add_done_callback(self._stream_done)

    async def _send_chunks(self, response: StreamResponse) -> Response:
        async for chunk in response.chunks:
            if self._transport is None:
                break
            if chunk:
                self._transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        if self._transport is not None:
            self._transport.write(b"0\r\n\r\n")
        return response

    def _stream_done(self, task: asyncio.Task[Response]) -> None:
        self._task = None
        self._tracker.request_done.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("bug: a streamed answer failed", exc_info=task.exception())
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # ------------------------------------------------------------ refusing

    def _refuse(self, refusal: RequestRejected) -> None:
        """Stop reading; answer the refusal after what is already in flight."""
        if self._refused or self._transport is None:
            return
        self._refused = self._diverted = True
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
        self._seen_at = time.monotonic()
        self._seen_events = self._events
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
