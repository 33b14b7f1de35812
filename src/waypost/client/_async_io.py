"""The client's I/O primitives for asyncio: stream, events, background tasks.

Hand-written, as is its twin `_sync_io.py` (blocking sockets and threads):
the one pair of modules `scripts/unasync.py` does not generate. Both define
the same names with the same signatures, `async` aside, so the generated
`_sync*.py` modules only change which of the two they import. Nothing here
knows HTTP.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, cast

from waypost.client._signals import SIGTERM_EXIT_CODE, is_unhandled

__all__ = [
    "SIGTERM_EXIT_CODE",
    "Background",
    "Condition",
    "Event",
    "Feed",
    "Lock",
    "Slots",
    "Stream",
    "TerminationGuard",
    "now",
    "sleep",
]

Lock = asyncio.Lock

#: Takes received bytes; True once it has read a whole message.
Feed = Callable[[bytes], bool]


def now() -> float:
    """The clock deadlines are measured on (the loop's, monotonic)."""
    return asyncio.get_running_loop().time()


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class _StreamProtocol(asyncio.Protocol):
    """Bytes in, fed straight to the current receiver's `feed` (in the
    loop's callback: a reader wakes once per message, not once per chunk).

    One timer per connection bounds the receiver's wait: it is armed at the
    first deadline and, when it fires early for a later receiver, moved to
    that receiver's deadline, so a steady stream of requests costs no timer
    each.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.feed: Feed | None = None
        self.waiter: asyncio.Future[bool] | None = None
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.is_closed = False
        self.error: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        feed = self.feed
        if feed is None:  # nobody receives: kept, and the stream is spoiled
            self.chunks.append(data)
            return
        try:
            done = feed(data)
        except Exception as exc:  # the receiver's parser refused the bytes
            self._wake(exc=exc)
            if self.transport is not None:
                self.transport.close()
            return
        if done:
            self._wake(done=True)

    def eof_received(self) -> bool:
        self._end(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _end(self, exc: BaseException | None) -> None:
        self.is_closed = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake(exc=exc)

    def _wake(self, *, done: bool = False, exc: BaseException | None = None) -> None:
        waiter, self.waiter, self.feed = self.waiter, None, None
        if waiter is None or waiter.done():
            return
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(done)

    def wait(self, feed: Feed, deadline: float) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self.waiter, self.feed, self.deadline = waiter, feed, deadline
        if self.timer is None or self.timer_at > deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_at(deadline, self._on_timer)
            self.timer_at = deadline
        return waiter

    def _on_timer(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self.deadline:
            self._wake(exc=TimeoutError())
        else:  # armed for an earlier receiver: follow this one's deadline
            self.timer = loop.call_at(self.deadline, self._on_timer)
            self.timer_at = self.deadline


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Stream:
    """One TCP connection (TLS when given a context)."""

    __slots__ = ("_is_tls", "_protocol", "_transport")

    def __init__(
        self, transport: asyncio.Transport, protocol: _StreamProtocol, *, is_tls: bool
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._is_tls = is_tls

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        deadline: float,
    ) -> Stream:
        """Connect (and shake hands) before `deadline`, or raise TimeoutError."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(deadline):
            transport, protocol = await loop.create_connection(
                _StreamProtocol,
                host,
                port,
                ssl=ssl_context,
                server_hostname=server_hostname,
            )
        return cls(transport, protocol, is_tls=ssl_context is not None)

    def write(self, data: bytes, deadline: float) -> None:
        """Queue `data` (asyncio's transport buffers it; no wait)."""
        if self._protocol.is_closed:
            raise ConnectionResetError("the connection is closed")
        self._transport.write(data)

    async def receive(self, feed: Feed, deadline: float) -> bool:
        """Hand received bytes to `feed` until it returns True (then True),
        or until the peer closes (then False); TimeoutError at `deadline`."""
        protocol = self._protocol
        while protocol.chunks:
            if feed(protocol.chunks.popleft()):
                return True
        if protocol.is_closed:
            if protocol.error is not None:
                raise protocol.error
            return False
        try:
            return await protocol.wait(feed, deadline)
        finally:
            protocol.waiter = protocol.feed = None

    def is_dropped(self) -> bool:
        """True when an idle connection cannot carry another request."""
        protocol = self._protocol
        return protocol.is_closed or bool(protocol.chunks)

    def close(self) -> None:
        """Close now. TLS skips its close_notify exchange: asyncio would wait
        for the registry's reply after the client (and its loop) are gone,
        and HTTP/1.1 framing does not need it."""
        if self._is_tls:
            self._transport.abort()
        else:
            self._transport.close()

    def interrupt(self) -> None:
        """End a read blocked on this stream (at once, pending data dropped)."""
        self._transport.abort()


class Slots:
    """At most `size` holders at once; waiting ends at a deadline.

    `take()` is the wait-free fast path; `acquire()` waits in line.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take(self) -> bool:
        """Take a free slot at once if nobody waits for one; True if taken."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self, deadline: float) -> None:
        """Take a slot before `deadline`, or raise TimeoutError."""
        if self.take():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and not waiter.exception():
                self.release()  # handed a slot, then cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        finally:
            timer.cancel()

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes to the next in line
                return
        self._free += 1


class Event:
    """A flag others can wait for, with a timeout."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """True once set; False when `timeout` seconds passed first."""
        if self._event.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class Condition:
    """Wake whoever waits for a predicate over shared state."""

    __slots__ = ("_condition",)

    def __init__(self) -> None:
        self._condition = asyncio.Condition()

    async def notify_all(self) -> None:
        async with self._condition:
            self._condition.notify_all()

    async def wait_for(
        self,
        predicate: Callable[[], object],
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """True once `predicate()` holds; False when `timeout` passed first."""
        try:
            async with asyncio.timeout(timeout), self._condition:
                await self._condition.wait_for(predicate)
        except TimeoutError:
            return False
        return True


class Background:
    """`target()` running as a task until it returns or `stop()` cancels it."""

    __slots__ = ("_task",)

    def __init__(
        self, target: Callable[[], Coroutine[Any, Any, None]], *, name: str
    ) -> None:
        self._task = asyncio.create_task(target(), name=name)

    async def stop(self) -> None:
        """Cancel the task and wait for it to end."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class TerminationGuard:
    """SIGTERM as a clean exit of the block that installed it.

    Installed only when nobody else handles SIGTERM (see `_signals`): the
    signal cancels the task that entered the block, which unwinds (and
    deregisters); `fired` then tells the block to exit with status 0.
    """

    __slots__ = ("_loop", "fired")

    def __init__(self) -> None:
        self.fired = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        task = asyncio.current_task()
        if task is None or not is_unhandled():
            return
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            self.fired = True
            task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, on_signal)
        except (NotImplementedError, RuntimeError):  # not a Unix loop
            return
        self._loop = loop

    def uninstall(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGTERM)
            self._loop = None
