"""Raw HTTP/1.1 over a socket, for tests that must control every byte:
partial heads, pipelines, chunked bodies, `Expect: 100-continue`."""

from __future__ import annotations

import socket
import time
from typing import NamedTuple

#: Long enough never to be the reason a test passes; short enough that a
#: missing answer fails the test instead of hanging it.
TIMEOUT = 10.0


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def connect(
    port: int, *, source: str = "127.0.0.1", timeout: float = TIMEOUT
) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


class Reader:
    """Reads answers one by one from a socket (keeps what it over-read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a full answer: {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def answer(self) -> Answer:
        status, headers = self.head()
        size = int(headers.get("content-length", "0"))
        while len(self.buffer) < size:
            if not self._fill():
                raise ConnectionError("closed inside a body")
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return Answer(status, headers, body)

    def closed(self, within: float = TIMEOUT) -> bool:
        """Read what is left until the peer closes (EOF or reset): True, or
        False if it is still sending or open after `within` seconds."""
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline:
                if not self._fill():
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return False


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: waypost"]
    fields = dict(headers or {})
    if body and "Transfer-Encoding" not in fields:
        fields.setdefault("Content-Length", str(len(body)))
    lines += [f"{name}: {value}" for name, value in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
