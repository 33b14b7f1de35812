"""HTTP/1.1 for the client, without I/O: request bytes out, httptools in.

What both transports share (`_async_transport.py` and the `_sync_transport.py`
generated from it): where the registry is (`Origin`), the request message
built in one piece, the response read by httptools' C parser into an
`Answer`, and the words of every transport error. bench/transports.py
measured this against httpx, httpcore, aiohttp and urllib3; bench/RESULTS.md
has the table and why it won.
"""

from __future__ import annotations

import ssl
from importlib import metadata
from urllib.parse import urlencode, urlsplit

import httptools

from waypost.client._base import Answer, Call, Settings, T, ssl_context
from waypost.exceptions import RegistryConnectError


def _user_agent() -> bytes:
    try:
        version = metadata.version("waypost")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a tree
        version = "0"
    return f"waypost-client/{version}".encode()


USER_AGENT = _user_agent()


class Origin:
    """Where requests go and the header lines every request repeats.

    The SSLContext (`_base.ssl_context`) is built here, once, and only for
    https: loading a CA store costs tens of milliseconds.

    Args:
        settings: the client's resolved settings (URL, token, TLS).
    """

    __slots__ = ("address", "head", "host", "port", "prefix", "server_hostname", "ssl")

    def __init__(self, settings: Settings) -> None:
        url = urlsplit(settings.base_url)
        self.address = settings.address
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = ssl_context(settings) if url.scheme == "https" else None
        self.server_hostname = self.host if self.ssl is not None else None
        self.prefix = url.path.rstrip("/")
        lines = [b"Host: " + url.netloc.rpartition("@")[2].encode("idna")]
        lines.append(b"User-Agent: " + USER_AGENT)
        if settings.token:
            lines.append(b"X-Consul-Token: " + _header_value(settings.token))
        self.head = b"\r\n".join(lines) + b"\r\n"


def _header_value(value: str) -> bytes:
    raw = value.encode("latin-1", errors="strict")
    if any(c < 32 or c == 127 for c in raw):
        raise RegistryConnectError("a header value must not hold control characters")
    return raw


def request_message(origin: Origin, call: Call[T]) -> bytes:
    """The whole request, head and body, as one write (kept on the call for
    its origin: a heartbeat sends the same bytes every time)."""
    message = call.message
    if message is None or message[0] is not origin:
        message = call.message = (origin, _message(origin, call))
    return message[1]


def _message(origin: Origin, call: Call[T]) -> bytes:
    target = origin.prefix + call.path
    if call.params:
        target += "?" + urlencode(call.params)
    body = call.body
    if body is None and call.method == "GET":
        length = b""
        body = b""
    else:
        body = body or b""
        length = b"Content-Length: %d\r\n" % len(body)
    accept = b"Accept: %s\r\n" % call.accept if call.accept else b""
    return b"%s %s HTTP/1.1\r\n%s%s%s\r\n%s" % (
        call.method.encode("ascii"),
        target.encode("ascii"),
        origin.head,
        accept,
        length,
        body,
    )


class Reply:
    """httptools callbacks for the responses on one connection.

    Use `Reply.parser()`: keep-alive must be read while the message
    completes (httptools forgets it once the parser is reset).
    """

    __slots__ = (
        "_parser",
        "body",
        "content_type",
        "done",
        "index",
        "keep_alive",
        "started",
    )

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.index = 0
        self.content_type = b""
        self.done = False
        #: Whether any of the answer arrived (a stale connection gets none).
        self.started = False
        self.keep_alive = False
        self._parser: httptools.HttpResponseParser | None = None

    @classmethod
    def parser(cls) -> tuple[Reply, httptools.HttpResponseParser]:
        reply = cls()
        reply._parser = httptools.HttpResponseParser(reply)
        return reply, reply._parser

    def on_message_begin(self) -> None:
        self.started = True
        self.body = []
        self.index = 0
        self.content_type = b""
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name)
        if size == 14 and name.lower() == b"x-consul-index":
            self.index = int(value) if value.isdigit() else 0
        elif size == 12 and name.lower() == b"content-type":
            self.content_type = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self._parser is not None
        self.keep_alive = self._parser.should_keep_alive()
        self.done = True

    def answer(self, status: int) -> Answer:
        return Answer(
            status=status,
            body=b"".join(self.body),
            index=self.index,
            content_type=self.content_type,
        )


class ConnectionDropped(ConnectionError):
    """The registry closed the connection; `answered` says whether any of
    the response had arrived (if not, a kept-alive connection was stale)."""

    def __init__(self, answered: bool) -> None:
        super().__init__("the registry closed the connection")
        self.answered = answered


def unreachable(origin: Origin, error: BaseException) -> RegistryConnectError:
    """A transport failure in words a person can act on (cause kept by caller)."""
    if isinstance(error, TimeoutError):
        detail = "no answer in time (timed out)"
    elif isinstance(error, ssl.SSLError):
        detail = f"TLS: {error.reason or error}"
    elif isinstance(error, ConnectionDropped):
        detail = "it closed the connection before answering"
    elif isinstance(error, httptools.HttpParserError):
        detail = f"the answer is not HTTP/1.1 ({error})"
    else:
        detail = f"{type(error).__name__}: {error or 'no answer'}"
    return RegistryConnectError(
        f"cannot reach the registry at {origin.address}: {detail}"
    )
