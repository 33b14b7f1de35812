"""Probes: run one check once and say what it saw (status + Consul's output).

One coroutine per kind: HTTP, TCP, UDP, gRPC, H2PING and script. Each takes
the check's definition and returns a `ProbeResult`; the scheduler bounds it
with the check's timeout. Output strings copy Consul's agent/checks/check.go
word for word where Consul has one. No scheduling, no catalog here.

HTTP uses its own small HTTP/1.1 client (httptools parses the response):
10,000 checks every 10 s is 1,000 requests a second next to the API, and a
general-purpose client costs several times more CPU per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from urllib.parse import SplitResult, urljoin, urlsplit

import httptools
import msgspec

from waypost.core.model import CheckDefinition, HealthStatus, check_type
from waypost.exceptions import InvalidRequest

#: Consul's DefaultBufSize: output beyond this is cut unless OutputMaxSize says.
DEFAULT_OUTPUT_MAX = 4096
USER_AGENT = "Consul Health Check"
MAX_REDIRECTS = 10  # Go's http.Client default
SCRIPTS_DISABLED = (
    "Scripts are disabled on this agent; to enable, configure"
    " 'enable_script_checks' or 'enable_local_script_checks' to true"
)
_REDIRECTS = {301, 302, 303, 307, 308}


class ProbeResult(msgspec.Struct, frozen=True):
    status: HealthStatus
    output: str


Probe = Callable[[CheckDefinition, float], Awaitable[ProbeResult]]


def passing(output: str) -> ProbeResult:
    return ProbeResult(HealthStatus.PASSING, output)


def critical(output: str) -> ProbeResult:
    return ProbeResult(HealthStatus.CRITICAL, output)


def output_limit(definition: CheckDefinition) -> int:
    return definition.output_max_size or DEFAULT_OUTPUT_MAX


def require_scripts_enabled(definition: CheckDefinition, *, enabled: bool) -> None:
    """Reject a script check on an agent started without --enable-script-checks."""
    if definition.args and not enabled:
        raise InvalidRequest(SCRIPTS_DISABLED)


def probe_for(definition: CheckDefinition) -> Probe | None:
    """The probe that runs a definition; None for TTL, alias or nothing."""
    return _PROBES.get(check_type(definition))


# ---------------------------------------------------------------- HTTP


class _Response(asyncio.Protocol):
    """Reads one HTTP/1.1 response: status, Location, the first body bytes."""

    def __init__(self, limit: int, *, head: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.limit = limit
        self.head = head
        self.code = 0
        self.reason = b""
        self.location = b""
        self.body = bytearray()
        self._header = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(ConnectionError(f"malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.code:  # a body read until the connection closed
            self._finish(None)
        else:
            self._finish(exc or ConnectionResetError("EOF"))

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header = name
        if name.lower() == b"location":
            self.location = value

    def on_headers_complete(self) -> None:
        self.code = self.parser.get_status_code()
        if self.head:
            self._finish(None)

    def on_body(self, body: bytes) -> None:
        room = self.limit - len(self.body)
        self.body += body[:room]
        if len(self.body) >= self.limit:
            self._finish(None)  # enough to report; stop reading an endless body

    def on_message_complete(self) -> None:
        self._finish(None)

    def release(self) -> None:
        """Close, and break the protocol ↔ parser ↔ transport cycles, so each
        probe is freed by reference counting instead of feeding the cyclic
        garbage collector (whose pauses would show in API latency)."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.parser = None  # type: ignore[assignment]

    def _finish(self, error: Exception | None) -> None:
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(error)
        if self.transport is not None:
            self.transport.close()


async def probe_http(definition: CheckDefinition, time_limit: float) -> ProbeResult:
    """2xx passing, 429 warning, anything else (or no answer) critical."""
    method = (definition.method or "GET").upper()
    url = definition.http
    op = method[:1] + method[1:].lower()  # Go's url.Error: `Get "http://…": …`
    try:
        async with asyncio.timeout(time_limit):
            response = await _follow(definition, method, url)
    except TimeoutError:
        return critical(
            f'{op} "{url}": context deadline exceeded'
            " (Client.Timeout exceeded while awaiting headers)"
        )
    except (OSError, ValueError, ssl.SSLError) as exc:
        return critical(f'{op} "{url}": {_describe(exc, url)}')
    body = bytes(response.body).decode(errors="replace")
    status_line = f"{response.code} {response.reason.decode(errors='replace')}"
    output = f"HTTP {method} {url}: {status_line.rstrip()} Output: {body}"
    if 200 <= response.code <= 299:
        return passing(output)
    if response.code == 429:
        return ProbeResult(HealthStatus.WARNING, output)
    return critical(output)


async def _follow(definition: CheckDefinition, method: str, url: str) -> _Response:
    body = definition.body.encode()
    for _ in range(MAX_REDIRECTS + 1):
        response = await _request(definition, method, url, body)
        if (
            definition.disable_redirects
            or response.code not in _REDIRECTS
            or not response.location
        ):
            return response
        url = urljoin(url, response.location.decode("latin-1"))
        if response.code in (301, 302, 303) and method != "HEAD":
            method, body = "GET", b""  # Go's client rewrites these to GET
    raise ValueError(f"stopped after {MAX_REDIRECTS} redirects")


async def _request(
    definition: CheckDefinition, method: str, url: str, body: bytes
) -> _Response:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported URL {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    host = parts.hostname
    context = _tls_context(definition.tls_skip_verify) if secure else None
    loop = asyncio.get_running_loop()
    limit = output_limit(definition)
    _, response = await loop.create_connection(
        lambda: _Response(limit, head=method == "HEAD"),
        host,
        port,
        ssl=context,
        server_hostname=(definition.tls_server_name or host) if secure else None,
    )
    assert response.transport is not None
    try:
        response.transport.write(_request_bytes(definition, method, parts, body))
        await response.done
    finally:  # also on a timeout: never leave the connection open
        response.release()
    return response


def _request_bytes(
    definition: CheckDefinition, method: str, parts: SplitResult, body: bytes
) -> bytes:
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        name.lower(): (name, values) for name, values in definition.header.items()
    }
    lines = [f"{method} {target} HTTP/1.1"]
    host = headers.pop("host", None)
    lines.append(f"Host: {host[1][0] if host and host[1] else parts.netloc}")
    for default, value in (
        ("User-Agent", USER_AGENT),
        ("Accept", "text/plain, text/*, */*"),
    ):
        if default.lower() not in headers:
            lines.append(f"{default}: {value}")
    for name, values in headers.values():
        lines.extend(f"{name}: {value}" for value in values)
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_TLS_CONTEXTS: dict[bool, ssl.SSLContext] = {}


def _tls_context(skip_verify: bool, *, alpn: list[str] | None = None) -> ssl.SSLContext:
    """One context per verify mode (building one loads every CA certificate)."""
    if alpn:
        fresh = _new_tls_context(skip_verify)
        fresh.set_alpn_protocols(alpn)
        return fresh
    cached = _TLS_CONTEXTS.get(skip_verify)
    if cached is None:
        cached = _TLS_CONTEXTS[skip_verify] = _new_tls_context(skip_verify)
    return cached


def _new_tls_context(skip_verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _describe(exc: BaseException, address: str, network: str = "tcp") -> str:
    """Go's net.OpError wording for the common failures."""
    if isinstance(exc, ConnectionRefusedError):
        return f"dial {network} {_host_port(address)}: connect: connection refused"
    if isinstance(exc, TimeoutError):
        return f"dial {network} {_host_port(address)}: i/o timeout"
    return str(exc) or type(exc).__name__


def _host_port(address: str) -> str:
    if "://" in address:
        parts = urlsplit(address)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"
    return address


# ---------------------------------------------------------------- TCP, UDP


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address {address}: missing port in address")
    return host.strip("[]"), int(port)


async def probe_tcp(definition: CheckDefinition, time_limit: float) -> ProbeResult:
    """Passing when a connection (TLS with TCPUseTLS) opens."""
    address = definition.tcp
    kind = "TCP+TLS" if definition.tcp_use_tls else "TCP"
    try:
        host, port = split_address(address)
        context = (
            _tls_context(definition.tls_skip_verify) if definition.tcp_use_tls else None
        )
        async with asyncio.timeout(time_limit):
            transport, _ = await asyncio.get_running_loop().create_connection(
                asyncio.Protocol,
                host,
                port,
                ssl=context,
                server_hostname=(definition.tls_server_name or host)
                if context
                else None,
            )
        transport.close()
    except (OSError, ValueError, ssl.SSLError, TimeoutError) as exc:
        return critical(_describe(exc, address))
    return passing(f"{kind} connect {address}: Success")


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.answer.done():
            self.answer.set_result(None)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def probe_udp(definition: CheckDefinition, time_limit: float) -> ProbeResult:
    """Consul's CheckUDP: send a datagram; a reply or silence until the timeout
    passes, an error (ICMP port unreachable: connection refused) fails."""
    address = definition.udp
    try:
        host, port = split_address(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except (OSError, ValueError) as exc:
        return critical(_describe(exc, address, "udp"))
    try:
        sock.setblocking(False)
        sock.connect((host, port))
        # An empty datagram, as Consul's empty Message; asyncio's transport
        # would silently drop it, so it goes out on the socket itself.
        sock.send(b"")
        transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
            _Datagram, sock=sock
        )
    except OSError as exc:
        sock.close()
        return critical(_describe(exc, address, "udp"))
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(time_limit):
                await protocol.answer
    except OSError as exc:
        return critical(f"read udp {address}: {_describe(exc, address, 'udp')}")
    finally:
        transport.close()
    return passing(f"UDP connect {address}: Success")


# ---------------------------------------------------------------- gRPC

_GRPC_SERVING = 1  # grpc.health.v1.HealthCheckResponse.SERVING


async def probe_grpc(definition: CheckDefinition, time_limit: float) -> ProbeResult:
    """grpc.health.v1 Health/Check on `host:port[/service]`; SERVING passes.

    grpcio is imported on first use: agents without gRPC checks never load it.
    """
    try:
        import grpc  # type: ignore[import-untyped]
        from grpc_health.v1 import (  # type: ignore[import-untyped]
            health_pb2,
            health_pb2_grpc,
        )
    except ImportError:  # pragma: no cover - an optional dependency
        return critical(
            "gRPC checks need grpcio: install the agent with its grpc extra"
            " (pip install -e '.[grpc]' in the waypost repository)"
        )
    target = definition.grpc
    server, _, service = target.partition("/")
    if definition.grpc_use_tls:
        credentials = grpc.ssl_channel_credentials()
        channel = grpc.aio.secure_channel(server, credentials)
    else:
        channel = grpc.aio.insecure_channel(server)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        response = await stub.Check(request, timeout=time_limit)
    except grpc.aio.AioRpcError as exc:
        code = "".join(word.capitalize() for word in exc.code().name.split("_"))
        return critical(f"rpc error: code = {code} desc = {exc.details()}")
    finally:
        await channel.close()
    if response.status != _GRPC_SERVING:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return critical(f"gRPC {target} serving status: {name}")
    return passing(f"gRPC check {target}: success")


# ---------------------------------------------------------------- H2PING

_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SETTINGS, _PING, _GOAWAY = 0x4, 0x6, 0x7
_ACK = 0x1


def _h2_frame(kind: int, flags: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + b"\0\0\0\0"
        + payload
    )


async def probe_h2ping(definition: CheckDefinition, time_limit: float) -> ProbeResult:
    """Open an HTTP/2 connection (h2c, or TLS with H2PingUseTLS) and PING it."""
    target = definition.h2ping
    secure = definition.h2ping_use_tls
    try:
        host, port = split_address(target)
        async with asyncio.timeout(time_limit):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=_tls_context(definition.tls_skip_verify, alpn=["h2"])
                if secure
                else None,
                server_hostname=(definition.tls_server_name or host)
                if secure
                else None,
            )
    except (OSError, ValueError, ssl.SSLError, TimeoutError) as exc:
        return critical(f"Failed to dial to {target}: {_describe(exc, target)}")
    try:
        async with asyncio.timeout(time_limit):
            await _h2_ping(reader, writer)
    except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
        reason = "context deadline exceeded" if isinstance(exc, TimeoutError) else exc
        return critical(f"HTTP2 ping failed: {reason}")
    finally:
        writer.close()
    return passing("HTTP2 ping was successful")


async def _h2_ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    opaque = os.urandom(8)
    writer.write(_H2_PREFACE + _h2_frame(_SETTINGS, 0) + _h2_frame(_PING, 0, opaque))
    while True:
        header = await reader.readexactly(9)
        length = int.from_bytes(header[:3], "big")
        kind, flags = header[3], header[4]
        payload = await reader.readexactly(length)
        if kind == _SETTINGS and not flags & _ACK:
            writer.write(_h2_frame(_SETTINGS, _ACK))
        elif kind == _PING and flags & _ACK and payload == opaque:
            return
        elif kind == _GOAWAY:
            raise ConnectionError("server sent GOAWAY")


# ---------------------------------------------------------------- script

SCRIPT_TIMEOUT = 30.0  # Consul's CheckMonitor default


async def probe_script(definition: CheckDefinition, time_limit: float) -> ProbeResult:
    """Consul's CheckMonitor: exit 0 passing, 1 warning, anything else critical."""
    limit = output_limit(definition)
    try:
        process = await asyncio.create_subprocess_exec(
            *definition.args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # so a timeout kills the whole subtree
        )
    except OSError as exc:
        return critical(str(exc))
    assert process.stdout is not None
    try:
        async with asyncio.timeout(time_limit):
            raw = await process.stdout.read()
            code = await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return critical(f"Timed out ({time_limit:g}s) running check")
    output = raw[-limit:].decode(errors="replace")
    if len(raw) > limit:
        output = f"Captured {limit} of {len(raw)} bytes\n...\n{output}"
    if code == 0:
        return passing(output)
    if code == 1:
        return ProbeResult(HealthStatus.WARNING, output)
    return critical(output)


_PROBES: dict[str, Probe] = {
    "http": probe_http,
    "tcp": probe_tcp,
    "udp": probe_udp,
    "grpc": probe_grpc,
    "h2ping": probe_h2ping,
    "script": probe_script,
}
