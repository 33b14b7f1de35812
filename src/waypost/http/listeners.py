"""The agent's listeners: bound sockets, TLS, accept loops, connection caps.

The agent accepts here rather than in `loop.create_server`, so that at the
connection cap it can stop accepting (back-pressure: new clients wait in the
kernel's backlog instead of being refused) and can turn away a client over
its own cap before reading a byte from it. HTTP itself is protocol.py's.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from collections.abc import Callable

from waypost.config import PORT_OFF, AgentConfig, HttpLimits, TLSConfig
from waypost.exceptions import StartupError
from waypost.http.app import ConsulAPI
from waypost.http.connections import ConnectionTracker
from waypost.http.protocol import HttpProtocol

logger = logging.getLogger("waypost.http")

#: The kernel's queue of connections not yet accepted (capped by somaxconn).
BACKLOG = 4096

#: Connections accepted per wake-up of a listener, so one busy listener
#: cannot starve the requests of connections already open.
ACCEPT_BATCH = 64

#: How long accepting pauses when accept() fails (out of file descriptors).
ACCEPT_ERROR_PAUSE = 0.5

#: Connections closed at a time to make room at the cap: small batches, so
#: the work of closing and accepting interleaves with answering requests.
SHED_BATCH = 32

#: Warnings about the caps are logged at most this often.
WARN_EVERY = 60.0

# Consul's answer to a client over `limits.http_max_conns_per_client`, word
# for word (go-connlimit's default 429 handler).
_TOO_MANY_MESSAGE = (
    b"Your IP is issuing too many concurrent connections,"
    b" please rate limit your calls\n"
)
TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 429 Too Many Requests\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(_TOO_MANY_MESSAGE), _TOO_MANY_MESSAGE)
)

# Consul's `tls_min_version` values: the current spelling and the older one.
TLS_VERSIONS = {
    "tlsv1_0": ssl.TLSVersion.TLSv1,
    "tls10": ssl.TLSVersion.TLSv1,
    "tlsv1_1": ssl.TLSVersion.TLSv1_1,
    "tls11": ssl.TLSVersion.TLSv1_1,
    "tlsv1_2": ssl.TLSVersion.TLSv1_2,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "tlsv1_3": ssl.TLSVersion.TLSv1_3,
    "tls13": ssl.TLSVersion.TLSv1_3,
}

_FD_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

# What a listener's socket is watched for.
_OFF = 0  # nothing: new connections wait in the backlog
_ACCEPTING = 1  # accept them
_AT_CAP = 2  # at the connection cap: notice that one waits, make room


def parse_tls_version(value: str) -> ssl.TLSVersion:
    """`TLSv1_2` or `tls12` (Consul's spellings) → ssl.TLSVersion."""
    try:
        return TLS_VERSIONS[value.strip().lower()]
    except KeyError:
        raise ValueError(
            f"{value!r} is not a TLS version: use TLSv1_2 or TLSv1_3"
            " (tls12, tls13, TLSv1_0, TLSv1_1 are accepted too)"
        ) from None


def server_ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """The HTTPS listener's context; every mistake is a StartupError."""
    if not tls.cert_file or not tls.key_file:
        raise StartupError("HTTPS needs --tls-cert-file and --tls-key-file")
    if tls.verify_incoming and not tls.ca_file:
        # Consul: "VerifyIncoming set, and no CA certificate provided!"
        raise StartupError("--tls-verify-incoming needs --tls-ca-file")
    try:
        minimum = parse_tls_version(tls.min_version)
    except ValueError as exc:
        raise StartupError(f"--tls-min-version: {exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(
            f"cannot load --tls-cert-file {tls.cert_file} with --tls-key-file"
            f" {tls.key_file}: {_reason(exc)}"
        ) from exc
    if tls.ca_file:
        try:
            context.load_verify_locations(cafile=tls.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(
                f"cannot load --tls-ca-file {tls.ca_file}: {_reason(exc)}"
            ) from exc
    if tls.verify_incoming:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _reason(exc: OSError) -> str:
    return str(getattr(exc, "reason", None) or exc.strerror or exc)


def bind_socket(host: str, port: int, flag: str = "--http-addr") -> socket.socket:
    """Bind a listener before anything else, so a taken port fails fast."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            f" (is another agent running? choose another {flag})"
        ) from exc
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


class ConnectionSlots:
    """Counts open connections, in all and per client address.

    At `max_connections` every listener pauses until one closes, and the
    connections that cost least to lose are closed; a client at
    `max_per_client` is turned away (0: no cap).
    """

    def __init__(
        self,
        max_connections: int,
        max_per_client: int,
        shed: Callable[[int], int] | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.open = 0
        self.per_client: dict[str, int] = {}
        self.listeners: list[Listener] = []
        self._shed = shed
        self._warned_full = self._warned_client = -WARN_EVERY

    @property
    def is_full(self) -> bool:
        return 0 < self.max_connections <= self.open

    def acquire(self, client: str) -> bool:
        """Count a new connection; False (and nothing counted) if over its cap."""
        count = self.per_client.get(client, 0)
        if 0 < self.max_per_client <= count:
            now = time.monotonic()
            if now - self._warned_client > WARN_EVERY:
                self._warned_client = now
                logger.warning(
                    "%s has %d connections open: refusing more with 429"
                    " (--http-max-conns-per-client)",
                    client,
                    count,
                )
            return False
        self.per_client[client] = count + 1
        self.open += 1
        if self.is_full:
            self._full()
        return True

    def _full(self) -> None:
        """Stop accepting; once a connection is waiting, make room for it."""
        for listener in self.listeners:
            listener.await_demand()

    def make_room(self) -> None:
        """A connection waits at the cap: close the ones that cost least to
        lose (their slots come back as they go, and accepting resumes)."""
        if self._shed is None:
            return
        shed = self._shed(min(SHED_BATCH, max(1, self.max_connections // 16)))
        now = time.monotonic()
        if now - self._warned_full > WARN_EVERY:
            self._warned_full = now
            logger.warning(
                "%d connections open (--http-max-connections): closed %d idle or"
                " slow ones to make room; new connections wait until one closes",
                self.open,
                shed,
            )

    def releaser(self, client: str) -> Callable[[], None]:
        """A callback that gives the slot back, once however often called."""
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._release(client)

        return release

    def _release(self, client: str) -> None:
        self.open -= 1
        count = self.per_client.pop(client, 1) - 1
        if count > 0:
            self.per_client[client] = count
        if not self.is_full:
            for listener in self.listeners:
                listener.resume()


class Listener:
    """One bound socket and its accept loop (plain HTTP or HTTPS)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        slots: ConnectionSlots,
        protocol: Callable[[Callable[[], None]], HttpProtocol],
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 0.0,
    ) -> None:
        self.sock = sock
        self.slots = slots
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout or None
        self._protocol = protocol
        self._loop: asyncio.AbstractEventLoop | None = None
        self._mode = _OFF
        self._closed = False
        self._connecting: set[asyncio.Task[None]] = set()
        self._warned_fds = -WARN_EVERY

    @property
    def scheme(self) -> str:
        return "http" if self.ssl_context is None else "https"

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def host(self) -> str:
        return str(self.sock.getsockname()[0])

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.resume()

    def pause(self) -> None:
        """Stop accepting (new connections wait in the kernel's backlog)."""
        self._watch(_OFF)

    def resume(self) -> None:
        if not self._closed and not self.slots.is_full:
            self._watch(_ACCEPTING)

    def await_demand(self) -> None:
        """At the cap: accept nothing, but notice a connection waiting."""
        if not self._closed:
            self._watch(_AT_CAP)

    def _watch(self, mode: int) -> None:
        loop = self._loop
        if loop is None or mode == self._mode:
            return
        if self._mode != _OFF:
            loop.remove_reader(self.sock.fileno())
        self._mode = mode
        if mode == _ACCEPTING:
            loop.add_reader(self.sock.fileno(), self._accept)
        elif mode == _AT_CAP:
            loop.add_reader(self.sock.fileno(), self._demand)

    def _demand(self) -> None:
        self._watch(_OFF)  # once: readiness stays until the connection is taken
        self.slots.make_room()

    async def close(self) -> None:
        """Stop accepting; finish or cancel connections still handshaking."""
        self.pause()
        self._closed = True
        self.sock.close()
        for task in list(self._connecting):
            task.cancel()
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._mode != _ACCEPTING:
                return  # paused at the cap by the previous connection
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                # Out of descriptors (or anything else accept() may say):
                # pause, rather than be woken again at once for the same.
                self._cannot_accept(exc)
                return
            client = str(address[0])
            if not self.slots.acquire(client):
                self._turn_away(conn)
                continue
            self._connect(conn, client)

    def _connect(self, conn: socket.socket, client: str) -> None:
        assert self._loop is not None
        conn.setblocking(False)
        release = self.slots.releaser(client)
        task = self._loop.create_task(self._handshake(conn, release))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _handshake(
        self, conn: socket.socket, release: Callable[[], None]
    ) -> None:
        """Hand the socket to a transport (for HTTPS, after the handshake)."""
        assert self._loop is not None
        options: dict[str, object] = {}
        if self.ssl_context is not None:
            options = {
                "ssl": self.ssl_context,
                "ssl_handshake_timeout": self.handshake_timeout,
            }
        try:
            await self._loop.connect_accepted_socket(
                lambda: self._protocol(release),
                conn,
                **options,  # type: ignore[arg-type]
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            # A failed handshake (no or a wrong client certificate, plain
            # HTTP on the HTTPS port, too slow): the transport has closed
            # the socket. Debug only: anyone can cause this.
            logger.debug("%s connection failed: %s", self.scheme, exc)
            release()
        except BaseException:
            release()
            raise

    def _turn_away(self, conn: socket.socket) -> None:
        """Over the client's cap: Consul's 429 (plain HTTP), then close."""
        try:
            if self.ssl_context is None:
                conn.setblocking(False)
                conn.send(TOO_MANY_CONNECTIONS)
                conn.shutdown(socket.SHUT_WR)
                # Drop what the request already sent, so that close sends
                # FIN, not a reset that could beat the 429 to the client.
                conn.recv(65536)
        except OSError:
            pass
        finally:
            conn.close()

    def _cannot_accept(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._warned_fds > WARN_EVERY:
            self._warned_fds = now
            hint = (
                " (lower --http-max-connections or raise the open-files limit)"
                if exc.errno in _FD_EXHAUSTED
                else ""
            )
            logger.warning(
                "cannot accept a connection: %s; pausing %.1fs%s",
                exc.strerror or exc,
                ACCEPT_ERROR_PAUSE,
                hint,
            )
        self.pause()
        assert self._loop is not None
        self._loop.call_later(ACCEPT_ERROR_PAUSE, self.resume)


class HttpServer:
    """The HTTP and HTTPS listeners of one agent, their connections and caps."""

    def __init__(self, api: ConsulAPI, limits: HttpLimits) -> None:
        self.api = api
        self.limits = limits
        self.tracker = ConnectionTracker(limits)
        self.slots = ConnectionSlots(
            limits.max_connections,
            limits.max_conns_per_client,
            shed=self.tracker.shed,
        )
        self.listeners: list[Listener] = []

    def add(
        self, sock: socket.socket, ssl_context: ssl.SSLContext | None = None
    ) -> Listener:
        listener = Listener(
            sock,
            slots=self.slots,
            protocol=self._protocol,
            ssl_context=ssl_context,
            handshake_timeout=self.limits.handshake_timeout,
        )
        self.listeners.append(listener)
        self.slots.listeners.append(listener)
        return listener

    def _protocol(self, release: Callable[[], None]) -> HttpProtocol:
        return HttpProtocol(self.api, self.tracker, release)

    def start(self) -> None:
        self.tracker.start()
        for listener in self.listeners:
            listener.start()

    @property
    def urls(self) -> list[str]:
        return [f"{lst.scheme}://{lst.host}:{lst.port}" for lst in self.listeners]

    async def stop_accepting(self) -> None:
        for listener in self.listeners:
            await listener.close()

    async def close(self, grace: float) -> None:
        """Let in-flight requests finish (up to `grace` seconds), then close."""
        await self.stop_accepting()
        self.tracker.close_idle()
        await self.tracker.drain(grace)
        self.tracker.close_idle()
        await self.tracker.stop()


def open_listeners(
    config: AgentConfig, http_sock: socket.socket | None = None
) -> list[tuple[socket.socket, ssl.SSLContext | None]]:
    """Bind what the config asks for (plain HTTP, HTTPS or both)."""
    bound: list[tuple[socket.socket, ssl.SSLContext | None]] = []
    try:
        if http_sock is not None:
            bound.append((http_sock, None))
        elif config.http_port != PORT_OFF:
            bound.append((bind_socket(config.http_host, config.http_port), None))
        if config.https_port != PORT_OFF:
            context = server_ssl_context(config.tls)
            sock = bind_socket(config.https_host, config.https_port, "--https-addr")
            bound.append((sock, context))
    except BaseException:
        for sock, _ in bound:
            sock.close()
        raise
    if not bound:
        raise StartupError(
            "no listener: --http-addr is off and no --https-addr was given"
        )
    return bound
