"""Minimal keep-alive HTTP/1.1 connections for benchmarks.

A request costs one write and one read: a general-purpose client's pool
bookkeeping would otherwise dominate what the benchmark measures.
`RawConnection` parses in Python; `HttpConnection` is one connection of the
client's own transport (httptools), used without the client around it.
"""

from __future__ import annotations

import asyncio

from waypost.client._async_io import now
from waypost.client._async_transport import AsyncConnection
from waypost.client._base import resolve_settings
from waypost.client._http11 import Origin

#: Seconds one request may take (blocking queries wait up to 5 minutes).
REQUEST_DEADLINE = 600.0


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


def _origin(host: str, port: int) -> Origin:
    settings = resolve_settings(f"{host}:{port}")
    return Origin(settings)


class HttpConnection:
    """One keep-alive connection on the client's own transport
    (`waypost.client._async_transport`: httptools' parser on an asyncio
    protocol), without the client's calls, pool or decoding: request bytes
    out, the answer's status, body and X-Consul-Index back.
    """

    def __init__(self, connection: AsyncConnection, host: str) -> None:
        self.connection = connection
        self.head = f"HTTP/1.1\r\nHost: {host}\r\nContent-Length: ".encode()

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        connection = await AsyncConnection.open(_origin(host, port), now() + 10)
        return cls(connection, host)

    async def request(
        self, method: str, target: str, body: bytes = b""
    ) -> tuple[int, bytes, int]:
        """(status, body, X-Consul-Index or 0) of one request."""
        start = f"{method} {target} ".encode()
        message = b"%s%s%d\r\n\r\n%s" % (start, self.head, len(body), body)
        answer = await self.connection.request(message, now() + REQUEST_DEADLINE)
        return answer.status, answer.body, answer.index

    def close(self) -> None:
        self.connection.close()


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
        connection = self.idle.pop() if self.idle else None
        if connection is None or connection.connection.is_dropped():
            # None idle, or the agent closed it (its idle timeout is 60 s).
            connection = await self.connection()
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
