"""The client's I/O primitives for threads: socket stream, events, threads.

Hand-written, as is its twin `_async_io.py` (asyncio): the one pair of
modules `scripts/unasync.py` does not generate. Both define the same names
with the same signatures, `async` aside. Nothing here knows HTTP, and no
event loop is ever started.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from types import FrameType

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

Lock = threading.Lock

#: Takes received bytes; True once it has read a whole message.
Feed = Callable[[bytes], bool]

#: How much one read asks the kernel for.
READ_SIZE = 256 * 1024


def now() -> float:
    """The clock deadlines are measured on (monotonic)."""
    return time.monotonic()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError()
    return left


class Stream:
    """One TCP connection (TLS when given a context) on a blocking socket."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        deadline: float,
    ) -> Stream:
        """Connect (and shake hands) before `deadline`, or raise TimeoutError."""
        sock = socket.create_connection((host, port), timeout=_remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock.settimeout(_remaining(deadline))
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def write(self, data: bytes, deadline: float) -> None:
        """Send all of `data` before `deadline`."""
        self._sock.settimeout(_remaining(deadline))
        self._sock.sendall(data)

    def receive(self, feed: Feed, deadline: float) -> bool:
        """Hand received bytes to `feed` until it returns True (then True),
        or until the peer closes (then False); TimeoutError at `deadline`."""
        sock = self._sock
        while True:
            sock.settimeout(_remaining(deadline))
            data = sock.recv(READ_SIZE)
            if not data:
                return False
            if feed(data):
                return True

    def is_dropped(self) -> bool:
        """True when an idle connection cannot carry another request.

        An idle socket that is readable has either been closed by the peer
        or holds bytes nobody asked for: either way it is done (urllib3's
        rule).
        """
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        self._sock.close()

    def interrupt(self) -> None:
        """End a read blocked on this stream in another thread, at once."""
        with contextlib.suppress(OSError):  # already closed
            self._sock.shutdown(socket.SHUT_RDWR)


class Slots:
    """At most `size` holders at once; waiting ends at a deadline.

    `take()` is the wait-free fast path; `acquire()` waits in line.
    """

    __slots__ = ("_semaphore",)

    def __init__(self, size: int) -> None:
        self._semaphore = threading.BoundedSemaphore(size)

    def take(self) -> bool:
        """Take a free slot at once; True if taken."""
        return self._semaphore.acquire(blocking=False)

    def acquire(self, deadline: float) -> None:
        """Take a slot before `deadline`, or raise TimeoutError."""
        if not self._semaphore.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise TimeoutError()

    def release(self) -> None:
        self._semaphore.release()


class Event:
    """A flag others can wait for, with a timeout."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False when `timeout` seconds passed first."""
        return self._event.wait(timeout)


class Condition:
    """Wake whoever waits for a predicate over shared state."""

    __slots__ = ("_condition",)

    def __init__(self) -> None:
        self._condition = threading.Condition()

    def notify_all(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def wait_for(self, predicate: Callable[[], object], timeout: float) -> bool:
        """True once `predicate()` holds; False when `timeout` passed first."""
        with self._condition:
            return bool(self._condition.wait_for(predicate, timeout))


class Background:
    """`target()` running on a daemon thread until it returns.

    `stop()` only waits: the target must watch a flag (an `Event`) that
    the owner sets first, and the owner interrupts any blocked read.
    """

    __slots__ = ("_thread",)

    def __init__(self, target: Callable[[], None], *, name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Wait for the thread to end (never from the thread itself)."""
        if self._thread is not threading.current_thread():
            self._thread.join()


class TerminationGuard:
    """SIGTERM as a clean exit of the block that installed it.

    Installed only in the main thread when nobody else handles SIGTERM (see
    `_signals`): the signal raises SystemExit there, so `with` blocks unwind
    (and deregister) as they would on Ctrl-C.
    """

    __slots__ = ("_handler", "fired")

    def __init__(self) -> None:
        self.fired = False
        self._handler: Callable[[int, FrameType | None], None] | None = None

    def install(self) -> None:
        if not is_unhandled():
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            self.fired = True
            raise SystemExit(SIGTERM_EXIT_CODE)

        signal.signal(signal.SIGTERM, handler)
        self._handler = handler

    def uninstall(self) -> None:
        if self._handler is not None:
            if signal.getsignal(signal.SIGTERM) is self._handler:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._handler = None
