"""A minimal keep-alive HTTP/1.1 connection for benchmarks.

A request costs one write and one read: a general-purpose client's pool
bookkeeping would otherwise dominate what the benchmark measures.
"""

from __future__ import annotations

import asyncio


class RawConnection:
    """One persistent connection; requests on it run one after another."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.lock = asyncio.Lock()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        async with self.lock:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port
                )
            assert self.reader is not None
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            self.writer.write(head.encode() + body)
            header = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            payload = await self.reader.readexactly(length)
            return int(header.split(b" ", 2)[1]), payload

    async def put(self, path: str, body: bytes = b"") -> int:
        return (await self.request("PUT", path, body))[0]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
