"""A lean HTTP/1.1 connection for `AsyncWatcher`'s blocking queries.

One watcher, one connection, one request at a time: an asyncio Protocol
with httptools' response parser (Content-Length and chunked bodies). httpx
spends about 1.5 ms of CPU on each request and response, which with 1,000
watchers woken by one change adds up to seconds; this spends a tenth of it.
Plain GETs only, no redirects, no proxies: everything else uses httpx.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast
from urllib.parse import urlencode, urlsplit

import httptools

from waypost.client._base import Answer, Call, Settings, T
from waypost.exceptions import RegistryConnectError


class _Response:
    """httptools callbacks for one response."""

    def __init__(self) -> None:
        self.index = 0
        self.body: list[bytes] = []
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-consul-index" and value.isdigit():
            self.index = int(value)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.response = _Response()
        self.parser = httptools.HttpResponseParser(self.response)
        self.is_open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self.transport = cast(asyncio.Transport, transport)
        self.is_open = True

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        if self.transport is None or not self.is_open:
            raise ConnectionError("the connection to the registry is closed")
        self.response = _Response()
        self.parser = httptools.HttpResponseParser(self.response)
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))
            return
        if self.response.done:
            self._complete()

    def _complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if not self.parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(
                Answer(
                    status=self.parser.get_status_code(),
                    body=b"".join(self.response.body),
                    index=self.response.index,
                )
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        self._fail(exc or ConnectionError("the registry closed the connection"))

    def _fail(self, exc: Exception) -> None:
        self.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.is_open = False
        if self.transport is not None:
            self.transport.close()


class LongPoll:
    """One keep-alive connection to the registry for one watcher.

    Args:
        settings: where the registry is, its token and timeout.
        context: the client's SSLContext, used for https.
    """

    def __init__(self, settings: Settings, context: ssl.SSLContext) -> None:
        url = urlsplit(settings.base_url)
        self._settings = settings
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = context if url.scheme == "https" else None
        self._prefix = url.path.rstrip("/")
        headers = [
            f"Host: {url.netloc}",
            "User-Agent: waypost-client",
            "Accept: application/json",
        ]
        if settings.token:
            headers.append(f"X-Consul-Token: {settings.token}")
        self._headers = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1")
        self._protocol: _Protocol | None = None

    async def send(self, call: Call[T]) -> T:
        """Send a GET and decode its answer; transport trouble is mapped."""
        target = self._prefix + call.path
        if call.params:
            target += "?" + urlencode(call.params)
        request = f"GET {target} HTTP/1.1\r\n".encode("latin-1") + self._headers
        try:
            async with asyncio.timeout(call.timeout(self._settings)):
                protocol = await self._connection()
                answer = await protocol.send(request)
        except asyncio.CancelledError:
            self.close()  # a request cut off mid-way leaves the stream unusable
            raise
        except (OSError, TimeoutError) as exc:
            self.close()
            raise RegistryConnectError(
                f"cannot reach the registry at {self._settings.address}: "
                f"{type(exc).__name__}: {exc or 'no answer'}"
            ) from exc
        return call.finish(answer)

    async def _connection(self) -> _Protocol:
        if self._protocol is not None and self._protocol.is_open:
            return self._protocol
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            _Protocol,
            self._host,
            self._port,
            ssl=self._ssl,
            server_hostname=self._host if self._ssl else None,
        )
        self._protocol = protocol
        return protocol

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None
