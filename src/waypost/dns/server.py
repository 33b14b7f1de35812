"""The DNS transport: asyncio UDP and TCP listeners on one address.

Each query is answered inline from memory (`answers.Answerer`), fitted to
its transport (`trim.py`) and sent; only a name outside our zones, with a
recursor configured, waits (it is forwarded). A packet that does not parse
is counted and dropped; no input can stop the listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import TYPE_CHECKING, Any

from dnslib import RCODE, DNSError, DNSHeader, DNSRecord

from waypost.config import DnsConfig
from waypost.dns import trim
from waypost.dns.answers import Answerer, edns_size
from waypost.exceptions import StartupError
from waypost.metrics import METRICS

if TYPE_CHECKING:
    from waypost.registry import Registry

logger = logging.getLogger("waypost.dns")

#: A TCP connection with no query for this long is closed (miekg/dns: 8 s).
TCP_IDLE_TIMEOUT = 8.0
#: Most open TCP connections; more are closed at once.
MAX_TCP_CONNECTIONS = 1024
#: Opcode QUERY; anything else is answered NOTIMP (miekg/dns' default).
OPCODE_QUERY = 0

QUERIES = METRICS.counter(
    "waypost_dns_queries",
    "DNS queries answered, by response code and transport.",
    ("result", "protocol"),
)
LATENCY = METRICS.histogram(
    "waypost_dns_query_duration_seconds",
    "Time to answer one DNS query (forwarded ones included).",
    consul_name="consul.dns.domain_query",
).labelled()
MALFORMED = METRICS.counter(
    "waypost_dns_malformed",
    "DNS packets dropped because they did not parse.",
    ("protocol",),
)
#: Where an answer goes: a datagram to its sender, or a framed TCP write.
_Reply = Callable[[bytes], None]
_RESULTS = {code: RCODE.get(code).lower() for code in range(6)}


class DnsServer:
    """UDP and TCP listeners answering from one registry."""

    def __init__(self, registry: Registry, config: DnsConfig) -> None:
        self.config = config
        self.answerer = Answerer(
            registry.catalog,
            config,
            datacenter=registry.config.datacenter,
            panic_threshold=registry.config.panic_threshold,
            authorizer=registry.dns_authorizer,
        )
        self.host = config.host
        self.port = config.port
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.tcp_connections: set[_TcpProtocol] = set()
        self._counters = {
            (code, proto): QUERIES.labelled(name, proto)
            for code, name in _RESULTS.items()
            for proto in ("udp", "tcp")
        }

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def bind(self) -> None:
        """Bind UDP and TCP on the same port (a free one for port 0); a taken
        port is a StartupError. Queries wait in the kernel until `start`."""
        self._sockets = _bind(self.config.host, self.config.port)
        self.port = self._sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Answer from now on (after the catalog was loaded)."""
        if self._sockets is None:
            self.bind()
        assert self._sockets is not None
        udp, tcp = self._sockets
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), sock=udp
        )
        self._tcp = await loop.create_server(lambda: _TcpProtocol(self), sock=tcp)

    async def stop(self) -> None:
        if self._udp is None and self._sockets is not None:
            for sock in self._sockets:  # bound, never started
                sock.close()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for connection in list(self.tcp_connections):
                connection.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ queries

    def handle(self, data: bytes, *, tcp: bool, reply: _Reply) -> None:
        """Answer one packet through `reply`; drop it if it is not a query."""
        started = perf_counter()
        protocol = "tcp" if tcp else "udp"
        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, struct.error, UnicodeError):
            MALFORMED.labelled(protocol).inc()
            return
        header = request.header
        if header.qr:
            MALFORMED.labelled(protocol).inc()
            return  # a response, not a query: never answer it
        if header.opcode != OPCODE_QUERY or len(request.questions) != 1:
            code = RCODE.NOTIMP if header.opcode != OPCODE_QUERY else RCODE.FORMERR
            refusal = DNSRecord(DNSHeader(id=header.id, qr=1, opcode=header.opcode))
            refusal.header.rcode = code
            self._send(refusal.pack(), code, protocol, started, reply)
            return
        try:
            answer = self.answerer.answer(request)
        except Exception:  # a bug must not stop the listener: SERVFAIL
            logger.exception("DNS: answering %s failed", request.q.qname)
            answer = _failure(request)
        if answer is None:
            self._spawn(self._recurse(data, request, tcp, reply, started))
            return
        if tcp:
            wire, trimmed = trim.trim_tcp(answer)
        else:
            wire, trimmed = trim.trim_udp(
                answer,
                edns_size=edns_size(request),
                answer_limit=self.config.udp_answer_limit,
            )
        if trimmed and self.config.enable_truncate:
            answer.header.tc = 1
            wire = answer.pack()
        self._send(wire, answer.header.rcode, protocol, started, reply)

    def _send(
        self, wire: bytes, rcode: int, protocol: str, started: float, reply: _Reply
    ) -> None:
        reply(wire)
        counter = self._counters.get((rcode, protocol))
        if counter is None:
            counter = QUERIES.labelled(RCODE.get(rcode).lower(), protocol)
        counter.inc()
        elapsed = perf_counter() - started
        LATENCY.observe(elapsed)
        if logger.isEnabledFor(logging.DEBUG):  # Consul's "request served"
            logger.debug(
                "request served from client: rcode=%s network=%s latency=%.3fms",
                RCODE.get(rcode),
                protocol,
                elapsed * 1000,
            )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recurse(
        self, data: bytes, request: DNSRecord, tcp: bool, reply: _Reply, started: float
    ) -> None:
        """Ask each recursor in turn (Consul's sequential strategy); pass on
        the first NOERROR or NXDOMAIN, else SERVFAIL."""
        for recursor in self.config.recursors:
            host, _, port = recursor.rpartition(":")
            try:
                async with asyncio.timeout(self.config.recursor_timeout):
                    wire = await _exchange(data, host.strip("[]"), int(port), tcp)
                answer = DNSRecord.parse(wire)
            except (OSError, TimeoutError, DNSError, ValueError, struct.error):
                logger.debug("DNS: recursor %s failed", recursor, exc_info=True)
                continue
            if answer.header.rcode in (RCODE.NOERROR, RCODE.NXDOMAIN):
                self._send(
                    wire, answer.header.rcode, "tcp" if tcp else "udp", started, reply
                )
                return
        logger.warning("DNS: every recursor failed for %s", request.q.qname)
        failure = _failure(request)
        failure.header.ra = 1
        self._send(
            failure.pack(), RCODE.SERVFAIL, "tcp" if tcp else "udp", started, reply
        )


def _failure(request: DNSRecord) -> DNSRecord:
    header = request.header
    reply = DNSRecord(
        DNSHeader(id=header.id, qr=1, opcode=header.opcode, rd=header.rd), q=request.q
    )
    reply.header.rcode = RCODE.SERVFAIL
    return reply


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.transport
        if transport is None:
            return

        def send(wire: bytes) -> None:
            if not transport.is_closing():
                transport.sendto(wire, addr)

        self.server.handle(data, tcp=False, reply=send)

    def error_received(self, exc: Exception) -> None:
        logger.debug("DNS: UDP error: %s", exc)


class _TcpProtocol(asyncio.Protocol):
    """Length-prefixed queries (RFC 1035 4.2.2), several per connection."""

    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # One write per answer: never let Nagle hold it for an ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(self.server.tcp_connections) >= MAX_TCP_CONNECTIONS:
            transport.close()
            return
        self.server.tcp_connections.add(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.tcp_connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _arm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(TCP_IDLE_TIMEOUT, self.close)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._arm()
        while len(self.buffer) >= 2:
            size = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + size:
                return
            packet = bytes(self.buffer[2 : 2 + size])
            del self.buffer[: 2 + size]
            self.server.handle(packet, tcp=True, reply=self._write)

    def _write(self, wire: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(len(wire).to_bytes(2, "big") + wire)


async def _exchange(data: bytes, host: str, port: int, tcp: bool) -> bytes:
    """One query to a recursor over UDP or TCP."""
    loop = asyncio.get_running_loop()
    if tcp:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(len(data).to_bytes(2, "big") + data)
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        finally:
            writer.close()
    answer: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, packet: bytes, addr: tuple[str, int]) -> None:
            if not answer.done() and packet[:2] == data[:2]:
                answer.set_result(packet)

        def error_received(self, exc: Exception) -> None:
            if not answer.done():
                answer.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(host, port))
    try:
        transport.sendto(data)
        return await answer
    finally:
        transport.close()


def _bind(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on one port; for port 0, a port free for both."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
    except socket.gaierror as exc:
        raise StartupError(f"--dns-addr {host}: {exc.strerror}") from exc
    for _attempt in range(50):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            udp.bind((host, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, udp.getsockname()[1]))
            tcp.listen(128)
        except OSError as exc:
            udp.close()
            tcp.close()
            if port == 0:
                continue  # the UDP port's TCP twin was taken: another pair
            raise StartupError(
                f"cannot listen for DNS on {host}:{port}: {exc.strerror or exc}"
                " (is another agent running? choose another --dns-addr)"
            ) from exc
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise StartupError(f"cannot find a free DNS port on {host}")
