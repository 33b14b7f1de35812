"""Reference servers that return fixed bytes: the ceilings waypost is measured
against. `python _bare_servers.py {uvicorn|httptools} PORT BODY_FILE`."""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvicorn
import uvloop


def run_uvicorn(port: int, body: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"x-consul-index", b"12"),
        (b"x-consul-knownleader", b"true"),
        (b"x-consul-lastcontact", b"0"),
    ]

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


class _Protocol(asyncio.Protocol):
    def __init__(self, response: bytes) -> None:
        self.response = response
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.transport.write(self.response)


def run_httptools(port: int, body: bytes) -> None:
    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"x-consul-index: 12\r\nx-consul-knownleader: true\r\n"
        b"x-consul-lastcontact: 0\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Protocol(response), "127.0.0.1", port, backlog=4096
        )
        async with server:
            await server.serve_forever()

    uvloop.run(main())


if __name__ == "__main__":
    kind, port_text, body_file = sys.argv[1:4]
    with open(body_file, "rb") as f:
        payload = f.read()
    {"uvicorn": run_uvicorn, "httptools": run_httptools}[kind](int(port_text), payload)
