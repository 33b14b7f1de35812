"""Fixtures for the client tests: every test body runs on both twins.

`twin` is a `Client` or an `AsyncClient` behind one awaitable face, so a
test written once proves both classes against the same real agent.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from waypost.client import AsyncClient, Client
from waypost.testing import (
    AgentProcess,
    waypost_agent as waypost_agent,  # the users' fixture
)


class Twin:
    """Calls a method on either client and awaits it if it is a coroutine."""

    def __init__(self, client: Client | AsyncClient) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncClient)

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    @contextlib.asynccontextmanager
    async def register(self, name: str, **kwargs: Any) -> AsyncIterator[Any]:
        registration = self.client.register(name, **kwargs)
        if self.is_async:
            async with registration as entered:
                yield entered
        else:
            with registration as entered:
                yield entered

    @contextlib.asynccontextmanager
    async def watch(self, name: str, **kwargs: Any) -> AsyncIterator[Any]:
        watcher = self.client.watch(name, **kwargs)
        if self.is_async:
            async with watcher as entered:
                yield entered
        else:
            with watcher as entered:
                yield entered

    async def wait_for(
        self, watcher: Any, predicate: Callable[[Any], object], within: float = 10
    ) -> Any:
        result = watcher.wait_for(predicate, within)
        if inspect.isawaitable(result):
            return await result
        return result

    async def beat(self, registration: Any) -> bool:
        result = registration.beat()
        if inspect.isawaitable(result):
            return bool(await result)
        return bool(result)


@contextlib.asynccontextmanager
async def open_twin(kind: str, address: str, **kwargs: Any) -> AsyncIterator[Twin]:
    if kind == "async":
        async with AsyncClient(address, **kwargs) as client:
            yield Twin(client)
    else:
        with Client(address, **kwargs) as client:
            yield Twin(client)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def twin(kind: str, shared_agent: AgentProcess) -> AsyncIterator[Twin]:
    """A Client or AsyncClient on the session's shared agent."""
    async with open_twin(kind, shared_agent.address) as opened:
        yield opened


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FixedPortAgent:
    """A `--dev` agent that can stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: AgentProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> AgentProcess:
        # AgentProcess passes `--http-addr 127.0.0.1:0` first; a later flag wins.
        self.process = AgentProcess(extra_args=["--http-addr", self.address]).start()
        assert self.process.port == self.port
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture
def fixed_agent() -> Iterator[FixedPortAgent]:
    agent = FixedPortAgent()
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
