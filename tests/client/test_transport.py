"""The client's HTTP/1.1 transport, both twins, against a real agent behind a
relay that counts connections: keep-alive, stale connections, the pool's
bound, timeouts and answers that are not HTTP, shared watch feeds."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.client.conftest import open_twin
from tests.client.proxy import relay_to
from tests.conftest import TLSFiles
from waypost.client import InstanceSet, RegistryConnectError
from waypost.testing import AgentProcess, run_agent


async def maybe(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


async def wait_until(check: Any, within: float = 5) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


async def test_requests_share_one_kept_alive_connection(
    kind: str, shared_agent: AgentProcess
) -> None:
    with relay_to(shared_agent.host, shared_agent.port) as relay:
        async with open_twin(kind, relay.address) as twin:
            for _ in range(20):
                assert await twin("leader")
        assert relay.accepted == 1


async def test_a_connection_the_registry_closed_while_idle_is_replaced_unseen(
    kind: str, shared_agent: AgentProcess
) -> None:
    """A restart or an idle timeout closes kept-alive connections; the next
    request goes on a new one instead of failing."""
    with relay_to(shared_agent.host, shared_agent.port) as relay:
        async with open_twin(kind, relay.address) as twin:
            for round_ in range(1, 4):
                assert await twin("leader")
                relay.cut_all()
                await wait_until(lambda: relay.open_connections == 0)
                assert await twin("leader")
                assert relay.accepted == round_ + 1


async def test_no_more_connections_than_max_connections(
    kind: str, shared_agent: AgentProcess, unique: str
) -> None:
    with relay_to(shared_agent.host, shared_agent.port) as relay:
        async with open_twin(kind, relay.address, max_connections=3) as twin:
            await twin("register_service", unique, port=1)
            index = (await twin("instances", unique)).index

            async def blocked_read() -> InstanceSet:
                read = twin("instances", unique, index=index, wait="300ms")
                if twin.is_async:
                    return await read  # type: ignore[no-any-return]
                return await asyncio.to_thread(asyncio.run, read)  # type: ignore[arg-type]

            started = time.monotonic()
            answers = await asyncio.gather(*(blocked_read() for _ in range(9)))
            took = time.monotonic() - started
        assert all(answer.index == index for answer in answers)
        assert relay.most_at_once <= 3
        assert took >= 0.9  # three rounds of three 300 ms waits, not one


@contextlib.contextmanager
def silent_server(reply: bytes | None) -> Iterator[str]:
    """Accepts, reads the request, then sends `reply` and closes (or, with
    None, says nothing at all)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            conn.recv(65536)
            if reply is not None:
                conn.sendall(reply)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for conn in held:
            conn.close()


async def test_a_registry_that_never_answers_times_out_with_a_clear_error(
    kind: str,
) -> None:
    with silent_server(None) as address:
        async with open_twin(kind, address, timeout=0.5) as twin:
            started = time.monotonic()
            with pytest.raises(RegistryConnectError, match="no answer in time"):
                await twin("leader")
            assert time.monotonic() - started < 3


async def test_an_answer_that_is_not_http_is_a_clear_error(kind: str) -> None:
    with silent_server(b"SSH-2.0-OpenSSH_9.6\r\n") as address:
        async with open_twin(kind, address, timeout=2) as twin:
            with pytest.raises(RegistryConnectError, match=r"is not HTTP/1\.1"):
                await twin("leader")


async def test_a_registry_that_hangs_up_without_answering_is_a_clear_error(
    kind: str,
) -> None:
    with silent_server(b"") as address:
        async with open_twin(kind, address, timeout=2) as twin:
            with pytest.raises(RegistryConnectError, match="closed the connection"):
                await twin("leader")


async def test_watchers_of_one_query_share_one_connection_and_each_hears(
    kind: str, shared_agent: AgentProcess, unique: str
) -> None:
    """One feed per distinct query: 30 watchers of one service cost one
    blocking query; each still gets the change, in its balancer too."""
    with relay_to(shared_agent.host, shared_agent.port) as relay:
        async with open_twin(kind, relay.address) as twin:
            client = twin.client
            assert await twin("leader")  # the pool's connection
            seen: list[list[InstanceSet]] = [[] for _ in range(30)]
            watchers = [client.watch(unique, on_change=s.append) for s in seen]
            other = client.watch(unique, passing=False)  # another query
            for watcher in [*watchers, other]:
                await maybe(watcher.start())
            assert relay.open_connections == 1 + 2  # pool + one feed per query

            await twin("register_service", unique, port=7, service_id="w-1")
            for watcher in [*watchers, other]:
                await maybe(watcher.wait_for(lambda s: s.ids == ["w-1"], 10))
            assert all(s[-1].ids == ["w-1"] for s in seen)
            assert all(w.pick().service_id == "w-1" for w in watchers)

            for watcher in watchers[1:]:
                await maybe(watcher.stop())
            await twin("deregister", "w-1")
            await maybe(watchers[0].wait_for(lambda s: not s, 10))
            await maybe(watchers[0].stop())
            await wait_until(lambda: relay.open_connections == 1 + 1)
            await maybe(other.stop())
            await wait_until(lambda: relay.open_connections == 1)
        assert relay.accepted == 3


async def test_a_watcher_joining_a_running_feed_gets_the_current_set_at_once(
    kind: str, shared_agent: AgentProcess, unique: str
) -> None:
    async with open_twin(kind, shared_agent.address) as twin:
        await twin("register_service", unique, port=8, service_id="j-1")
        first = twin.client.watch(unique)
        await maybe(first.start())
        seen: list[InstanceSet] = []
        late = twin.client.watch(unique, on_change=seen.append)
        started = time.monotonic()
        await maybe(late.start())
        assert time.monotonic() - started < 1
        assert [s.ids for s in seen] == [["j-1"]]
        assert late.pick().service_id == "j-1"
        await maybe(late.stop())
        await maybe(first.stop())


@pytest.fixture(scope="module")
def mtls_agent(tls_files: TLSFiles) -> Iterator[AgentProcess]:
    with run_agent(extra_args=tls_files.agent_args(mutual=True)) as agent:
        yield agent


async def test_both_twins_speak_mutual_tls_for_requests_and_watch_feeds(
    kind: str, mtls_agent: AgentProcess, tls_files: TLSFiles, unique: str
) -> None:
    cert = (tls_files.client_cert, tls_files.client_key)
    async with open_twin(
        kind, mtls_agent.https_url, verify=tls_files.ca, cert=cert
    ) as twin:
        await twin("register_service", unique, port=8443, service_id="t-1")
        found = await twin("instances", unique)
        assert found.ids == ["t-1"] and found[0].port == 8443
        async with twin.watch(unique, passing=False) as watcher:
            await twin("register_service", unique, port=8444, service_id="t-2")
            await twin.wait_for(watcher, lambda s: s.ids == ["t-1", "t-2"])


async def test_a_certificate_the_client_does_not_trust_is_a_tls_error(
    kind: str, mtls_agent: AgentProcess, tls_files: TLSFiles
) -> None:
    cert = (tls_files.client_cert, tls_files.client_key)
    async with open_twin(kind, mtls_agent.https_url, cert=cert, timeout=5) as twin:
        with pytest.raises(RegistryConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await twin("leader")
    async with open_twin(kind, mtls_agent.https_url, verify=tls_files.ca) as twin:
        with pytest.raises(RegistryConnectError, match=r"TLS|closed"):
            await twin("leader")  # no client certificate: the agent refuses
