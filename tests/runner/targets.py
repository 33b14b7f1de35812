"""Real local targets for check tests: HTTP, TCP, UDP, gRPC and HTTP/2 servers.

Each runs on 127.0.0.1 on a free port in a background thread of the test
process, so the agent subprocess probes them over real sockets.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class HttpTarget:
    """An HTTP server whose answer a test can change at any time."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"all good"
        self.delay = 0.0
        self.location = ""
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        #: Requests being answered now, and the most there ever were at once.
        #: A request counts from its arrival until just before its answer is
        #: written: once the bytes are on the socket the prober may already
        #: have its answer and be sending its next request, while this thread
        #: has not yet run again (counting until `write` returns over-counts).
        self.in_flight = 0
        self.peak_in_flight = 0
        self._in_flight_lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target.requests.append(
                    (self.command, self.path, dict(self.headers.items()), body)
                )
                with target._in_flight_lock:
                    target.in_flight += 1
                    target.peak_in_flight = max(target.peak_in_flight, target.in_flight)
                try:
                    if target.delay:
                        threading.Event().wait(target.delay)
                finally:
                    with target._in_flight_lock:
                        target.in_flight -= 1
                if self.path == "/moved" and target.location:
                    self.send_response(302)
                    self.send_header("Location", target.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(target.status)
                self.send_header("Content-Length", str(len(target.body)))
                self.end_headers()
                if self.command != "HEAD":
                    with contextlib.suppress(OSError):  # a probe may stop early
                        self.wfile.write(target.body)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpListener:
    """A listening socket: the kernel completes the handshake, nobody reads."""

    def __enter__(self) -> TcpListener:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


class UdpEcho:
    """A UDP socket that answers every datagram."""

    def __enter__(self) -> UdpEcho:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                _, peer = self.sock.recvfrom(2048)
                self.received += 1
                self.sock.sendto(b"ok", peer)
            except OSError:
                return

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


class GrpcHealthTarget:
    """A gRPC server with the standard grpc.health.v1 service."""

    def __enter__(self) -> GrpcHealthTarget:
        from concurrent import futures

        import grpc  # type: ignore[import-untyped]
        from grpc_health.v1 import (  # type: ignore[import-untyped]
            health,
            health_pb2_grpc,
        )

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self

    def set(self, service: str, serving: bool) -> None:
        from grpc_health.v1 import health_pb2

        status = health_pb2.HealthCheckResponse
        self.health.set(service, status.SERVING if serving else status.NOT_SERVING)

    def __exit__(self, *exc: object) -> None:
        self.server.stop(None)


class H2Target:
    """A cleartext HTTP/2 (h2c, prior knowledge) server that answers PINGs."""

    def __enter__(self) -> H2Target:
        self.pings = 0
        target = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn = h2.connection.H2Connection(
                    h2.config.H2Configuration(client_side=False)
                )
                conn.initiate_connection()
                self.request.sendall(conn.data_to_send())
                with contextlib.suppress(OSError, h2.exceptions.ProtocolError):
                    while data := self.request.recv(65536):
                        for event in conn.receive_data(data):
                            if isinstance(event, h2.events.PingReceived):
                                target.pings += 1
                        self.request.sendall(conn.data_to_send())

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def ports(n: int) -> Iterator[int]:
    for _ in range(n):
        yield free_port()


def self_signed_certificate(folder: str, name: str) -> tuple[str, str]:
    """A throwaway certificate for `name` (openssl CLI); (cert, key) paths."""
    cert, key = f"{folder}/{name}.crt", f"{folder}/{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", key, "-out", cert, "-days", "1",
            "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class HttpsTarget(HttpTarget):
    """HttpTarget behind TLS with a self-signed certificate for `name`."""

    def __init__(self, folder: str, name: str = "waypost.test") -> None:
        super().__init__()
        self.cert, key = self_signed_certificate(folder, name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.port}"
