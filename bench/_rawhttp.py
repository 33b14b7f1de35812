"""Minimal keep-alive HTTP/1.1 connections for benchmarks.

A request costs one write and one read: a general-purpose client's pool
bookkeeping would otherwise dominate what the benchmark measures.
`RawConnection` parses in Python; `HttpConnection` parses with httptools.
"""

from __future__ import annotations

import asyncio

import httptools


class RawConnection:
    """One persistent connection; requests on it run one after another."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.lock = asyncio.Lock()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        async with self.lock:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port
                )
            assert self.reader is not None
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            self.writer.write(head.encode() + body)
            header = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            payload = await self.reader.readexactly(length)
            return int(header.split(b" ", 2)[1]), payload

    async def put(self, path: str, body: bytes = b"") -> int:
        return (await self.request("PUT", path, body))[0]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _Reply:
    """httptools callbacks for one response: status, X-Consul-Index, body."""

    __slots__ = ("body", "done", "index")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.index = 0
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 14 and name.lower() == b"x-consul-index":
            self.index = int(value)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection parsed by httptools; one request at a time.

    The counterpart of a gRPC channel's C core: request bytes out, the
    response parsed in C, the body handed back whole (Content-Length or
    chunked). No pool, no redirects, no TLS.
    """

    def __init__(self, host: str) -> None:
        self.head = f"HTTP/1.1\r\nHost: {host}\r\nContent-Length: ".encode()
        self.transport: asyncio.Transport | None = None
        self.reply = _Reply()
        self.parser = httptools.HttpResponseParser(self.reply)
        self.waiter: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: cls(host), host, port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    async def request(
        self, method: str, target: str, body: bytes = b""
    ) -> tuple[int, bytes, int]:
        """(status, body, X-Consul-Index or 0) of one request."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("the connection is closed")
        self.reply = _Reply()
        self.parser = httptools.HttpResponseParser(self.reply)
        self.waiter = asyncio.get_running_loop().create_future()
        start = f"{method} {target} ".encode()
        self.transport.write(b"%s%s%d\r\n\r\n%s" % (start, self.head, len(body), body))
        await self.waiter
        reply = self.reply
        return self.parser.get_status_code(), b"".join(reply.body), reply.index

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._wake(ConnectionError(f"bad HTTP response: {exc}"))
            return
        if self.reply.done:
            self._wake(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake(exc or ConnectionError("the server closed the connection"))

    def _wake(self, error: Exception | None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class HttpConnections:
    """`HttpConnection`s to one server, one per concurrent caller."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[HttpConnection] = []
        self.made: list[HttpConnection] = []

    async def connection(self) -> HttpConnection:
        """A connection of the caller's own, not shared with the pool."""
        made = await HttpConnection.open(self.host, self.port)
        self.made.append(made)
        return made

    async def request(self, method: str, target: str, body: bytes = b"") -> bytes:
        """The body of a 2xx answer; anything else raises."""
        connection = self.idle.pop() if self.idle else await self.connection()
        try:
            status, answer, _index = await connection.request(method, target, body)
        except BaseException:
            connection.close()  # cut off mid-way: the stream is unusable
            raise
        self.idle.append(connection)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {target}: {status} {answer[:200]!r}")
        return answer

    def close(self) -> None:
        for connection in self.made:
            connection.close()
        self.made, self.idle = [], []
