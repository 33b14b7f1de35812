# Generated from _async_transport.py by scripts/unasync.py: do not edit.
"""Keep-alive HTTP/1.1 connections to the registry, pooled.

A request is one write and, for a small answer, one read parsed by
httptools: no per-request pool scan, no header objects, no URL objects.
TLS and client certificates come from the client's SSLContext; every
failure leaves as a `RegistryConnectError` naming the registry. What to
send and how answers read is `_http11.py`; the streams are in `_async_io.py`
and `_sync_io.py`.
"""

from __future__ import annotations

import httptools

from waypost.client._base import Answer
from waypost.client._http11 import ConnectionDropped, Origin, Reply, unreachable
from waypost.client._sync_io import Slots, Stream, now
from waypost.exceptions import RegistryConnectError


class Connection:
    """One connection; one request at a time."""

    __slots__ = ("_feed", "_parser", "_reply", "_stream", "is_reusable")

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._reply, self._parser = Reply.parser()
        self._feed = self._parse  # one bound method for every request
        self.is_reusable = True

    @classmethod
    def open(cls, origin: Origin, deadline: float) -> Connection:
        stream = Stream.connect(
            origin.host,
            origin.port,
            ssl_context=origin.ssl,
            server_hostname=origin.server_hostname,
            deadline=deadline,
        )
        return cls(stream)

    def _parse(self, data: bytes) -> bool:
        self._parser.feed_data(data)
        return self._reply.done

    def request(self, message: bytes, deadline: float) -> Answer:
        """Send one request and read its whole answer."""
        reply = self._reply
        reply.done = reply.started = False
        try:
            self._stream.write(message, deadline)
            if not self._stream.receive(self._feed, deadline):
                raise ConnectionDropped(reply.started)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            self.is_reusable = False
            raise ConnectionDropped(reply.started) from exc
        except BaseException:
            self.is_reusable = False
            raise
        self.is_reusable = reply.keep_alive
        return reply.answer(self._parser.get_status_code())

    def is_dropped(self) -> bool:
        return self._stream.is_dropped()

    def close(self) -> None:
        self.is_reusable = False
        self._stream.close()

    def interrupt(self) -> None:
        self.is_reusable = False
        self._stream.interrupt()


class ConnectionPool:
    """Up to `max_connections` kept-alive connections to one registry.

    Idle connections are reused newest first. A kept-alive connection the
    registry closed while it sat idle (a restart, an idle timeout) fails
    before any answer arrives; the request then goes once more on a new
    connection, as Go's net/http does for idempotent requests (every
    request the client sends is a GET, PUT or DELETE).

    Args:
        origin: where the registry is.
        max_connections: requests in flight at once; more wait, up to
            their own deadline.
        is_interruptible: keep track of busy connections, so `interrupt()`
            ends a request in flight (a watch feed's long poll); otherwise a
            request in flight finishes and its connection closes after.
    """

    def __init__(
        self, origin: Origin, max_connections: int, *, is_interruptible: bool = False
    ) -> None:
        self._origin = origin
        #: Where this pool's connections go.
        self.origin = origin
        self._slots = Slots(max_connections)
        self._idle: list[Connection] = []
        self._busy: set[Connection] | None = set() if is_interruptible else None
        self._is_interrupted = False

    def send(
        self,
        message: bytes,
        timeout: float,
    ) -> Answer:
        """One request and its answer within `timeout` seconds.

        Raises:
            RegistryConnectError: no connection, no answer in time, or the
                answer was not HTTP.
        """
        deadline = now() + timeout
        if not self._slots.take():
            try:
                self._slots.acquire(deadline)
            except TimeoutError as exc:
                raise unreachable(self._origin, exc) from None
        try:
            while True:
                connection = self._idle_connection()
                is_reused = connection is not None
                try:
                    if connection is None:
                        connection = self._connect(deadline)
                    busy = self._busy
                    if busy is not None:
                        busy.add(connection)
                        if self._is_interrupted:  # interrupt() ran before add
                            raise RegistryConnectError("the connection pool was closed")
                    answer = connection.request(message, deadline)
                except ConnectionDropped as exc:
                    self._discard(connection)
                    if is_reused and not exc.answered and not self._is_interrupted:
                        continue  # a stale kept-alive connection: once more
                    raise unreachable(self._origin, exc) from exc
                except (OSError, TimeoutError, httptools.HttpParserError) as exc:
                    self._discard(connection)
                    raise unreachable(self._origin, exc) from exc
                except BaseException:  # cancelled mid-way: the stream is unusable
                    self._discard(connection)
                    raise
                if self._busy is not None:
                    self._busy.discard(connection)
                if connection.is_reusable and not self._is_interrupted:
                    self._idle.append(connection)
                else:
                    connection.close()
                return answer
        finally:
            self._slots.release()

    def _idle_connection(self) -> Connection | None:
        while self._idle:
            try:
                connection = self._idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if not connection.is_dropped():
                return connection
            connection.close()
        return None

    def _connect(self, deadline: float) -> Connection:
        if self._is_interrupted:
            raise RegistryConnectError("the connection pool was closed")
        return Connection.open(self._origin, deadline)

    def _discard(self, connection: Connection | None) -> None:
        if connection is not None:
            if self._busy is not None:
                self._busy.discard(connection)
            connection.close()

    def interrupt(self) -> None:
        """Close every connection now (busy ones too when interruptible) and
        refuse new ones: a request blocked in a long poll ends at once."""
        self._is_interrupted = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for connection in list(self._busy or ()):
            connection.interrupt()

    def close(self) -> None:
        """Close every connection; the pool cannot be used again."""
        self.interrupt()
