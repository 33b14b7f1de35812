"""Request and Response as the handlers see them: small, no framework."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable
from http import HTTPStatus
from urllib.parse import unquote, unquote_plus

import msgspec

from waypost.core.acl.authorizer import Authorizer
from waypost.core.acl.model import Token
from waypost.core.watch import Topic
from waypost.durations import QUERY_DURATION, parse_duration
from waypost.exceptions import InvalidRequest

Headers = list[tuple[bytes, bytes]]

#: Go's ParseUint(_, 10, 64) bound: `?index=`, `?cas=`, `?flags=` above it are a 400.
UINT64_MAX = 2**64 - 1
_QUERY_DURATION = re.compile(QUERY_DURATION)

_TRUE = {"", "1", "true", "True", "TRUE", "t", "T", "yes"}
_FALSE = {"0", "false", "False", "FALSE", "f", "F", "no"}

JSON_TYPE = (b"content-type", b"application/json")
TEXT_TYPE = (b"content-type", b"text/plain; charset=utf-8")

_encoder = msgspec.json.Encoder()


class Request:
    """One HTTP request: method, decoded path tail, query, body."""

    __slots__ = (
        "authorizer",
        "body",
        "caller",
        "caller_is_default",
        "headers",
        "method",
        "params",
        "path",
        "query_string",
        "tail",
    )

    def __init__(
        self,
        *,
        method: str,
        path: str,
        query_string: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes = b"",
        tail: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        #: The part of the path after the route's prefix (a name, ID or key).
        self.tail = tail
        self.params = parse_query(query_string)
        #: With ACLs on: the request's token and what it may do (set by
        #: `http/access.py` before the handler runs); None with ACLs off.
        self.caller: Token | None = None
        self.authorizer: Authorizer | None = None
        #: The token was not sent: the agent's default or the anonymous one.
        self.caller_is_default = False

    def has(self, name: str) -> bool:
        return name in self.params

    def get(self, name: str, default: str = "") -> str:
        values = self.params.get(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return self.params.get(name, [])

    def flag(self, name: str) -> bool:
        """Consul's loose query booleans: bare `?passing`, `1`, `true`, `True`."""
        values = self.params.get(name)
        if values is None:
            return False
        value = values[0]
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise InvalidRequest(f'Invalid value for "{name}": "{value}" is not a boolean')

    def integer(self, name: str, default: int | None = None) -> int | None:
        """A uint64 in ASCII digits (Go's strconv.ParseUint(value, 10, 64))."""
        value = self.get(name)
        if not value:
            return default
        if not value.isascii() or not value.isdigit():
            if value.startswith("-") and value[1:].isascii() and value[1:].isdigit():
                raise InvalidRequest(f'Invalid value for "{name}": must be >= 0')
            raise InvalidRequest(
                f'Invalid value for "{name}": "{value}" is not an integer'
            )
        number = int(value)
        if number > UINT64_MAX:
            raise InvalidRequest(
                f'Invalid value for "{name}": {value} is out of range (uint64)'
            )
        return number

    def duration(self, name: str) -> float | None:
        value = self.get(name)
        if not value:
            return None
        if _QUERY_DURATION.fullmatch(value) is None:
            raise InvalidRequest(
                f'Invalid {name} time: "{value}" is not a duration (e.g. "30s")'
            )
        # Consul accepts a bare number of seconds for `wait` too.
        return float(value) if value.isdigit() else parse_duration(value)


class Response:
    """What a handler answers: status, body bytes, extra headers.

    `wire` caches the whole HTTP/1.1 message (head and body, keep-alive) once
    it has been serialized: cached responses are written without rebuilding
    their head.
    """

    __slots__ = ("body", "headers", "status", "wire")

    def __init__(
        self, status: int = 200, body: bytes = b"", headers: Headers | None = None
    ):
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else [JSON_TYPE]
        self.wire: bytes | None = None

    def serialize(self, *, keep_alive: bool = True) -> bytes:
        """The HTTP/1.1 message; header values cannot carry control bytes."""
        if keep_alive and self.wire is not None:
            return self.wire
        head = [_STATUS_LINES.get(self.status) or _status_line(self.status)]
        for name, value in self.headers:
            # A header echoing user input (a name, a reason) must not be able
            # to split the response or break the client's parser.
            head += (name, b": ", value.translate(_HEADER_SAFE), b"\r\n")
        head += (b"content-length: ", str(len(self.body)).encode(), b"\r\n")
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head += (b"\r\n", self.body)
        message = b"".join(head)
        if keep_alive:
            self.wire = message
        return message


class StreamResponse(Response):
    """An answer whose body arrives over time (`/v1/agent/monitor`): sent
    with chunked encoding as `chunks` yields, then the connection closes."""

    __slots__ = ("chunks",)

    def __init__(
        self, status: int, chunks: AsyncIterator[bytes], headers: Headers | None = None
    ) -> None:
        super().__init__(status, b"", headers)
        self.chunks = chunks

    def head(self) -> bytes:
        lines = [_STATUS_LINES.get(self.status) or _status_line(self.status)]
        for name, value in self.headers:
            lines += (name, b": ", value.translate(_HEADER_SAFE), b"\r\n")
        lines.append(b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        return b"".join(lines)


_HEADER_SAFE = bytes(32 if (c < 32 and c != 9) or c == 127 else c for c in range(256))


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return f"HTTP/1.1 {status} {reason}\r\n".encode()


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


def json_response(
    data: object, status: int = 200, headers: Headers | None = None
) -> Response:
    extra = [JSON_TYPE, *(headers or [])]
    return Response(status, _encoder.encode(data), extra)


def text_response(
    text: str, status: int = 200, headers: Headers | None = None
) -> Response:
    return Response(status, text.encode(), [TEXT_TYPE, *(headers or [])])


_EMPTY_OK = Response(200, b"", [TEXT_TYPE])


def empty_response() -> Response:
    """The empty 200 of every write; one shared, pre-serialized object."""
    return _EMPTY_OK


def encode(data: object) -> bytes:
    return _encoder.encode(data)


class Query:
    """A blocking-capable read: the topics it reads and how to render it.

    The HTTP layer answers `?index=&wait=` with it: computes the query's
    index from its topics, waits for a change to one of them, then renders.
    """

    __slots__ = ("render", "topics")

    def __init__(self, topics: list[Topic], render: Callable[[], Response]) -> None:
        self.topics = topics
        self.render = render


_parsed: dict[bytes, dict[str, list[str]]] = {}
_PARSED_MAX = 2048


def parse_query(query_string: bytes) -> dict[str, list[str]]:
    """Query parameters, keeping blank ones (`?passing` is a flag).

    Hot reads repeat the same few query strings, so parses are memoized;
    callers treat the result as read-only.
    """
    if not query_string:
        return {}
    cached = _parsed.get(query_string)
    if cached is not None:
        return cached
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()
    params = _parsed[query_string] = _parse(query_string)
    return params


def _parse(query_string: bytes) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for part in query_string.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = unquote_plus(name)
        params.setdefault(name, []).append(unquote_plus(value, encoding="utf-8"))
    return params


def unquote_path(path: str) -> str:
    return unquote(path)
