"""The HTTP server's limits, each against a real agent over real sockets.

Agents here run with small limits and short deadlines so the tests are
quick; nothing asserts speed (bench/attack.py measures that). A deadline
test waits at most rawwire.TIMEOUT for what must happen, so a missing
limit fails instead of hanging, and checks the limit did not fire early.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.rawwire import TIMEOUT, Reader, connect, request
from waypost.testing import AgentProcess, run_agent, wait_until

HEADER_TIMEOUT = 0.5
READ_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.0

TIGHT = [
    "--http-max-url-bytes", "1024",
    "--http-max-header-bytes", "4096",
    "--http-max-header-count", "20",
    "--http-max-body-bytes", "65536",
    "--http-max-pipeline", "8",
    "--http-header-timeout", f"{HEADER_TIMEOUT}s",
    "--http-read-timeout", f"{READ_TIMEOUT}s",
    "--http-idle-timeout", f"{IDLE_TIMEOUT}s",
]  # fmt: skip


@pytest.fixture(scope="module")
def tight() -> Iterator[AgentProcess]:
    with run_agent(node="waypost-limits", extra_args=TIGHT) as agent:
        yield agent


@pytest.fixture
def conn(tight: AgentProcess) -> Iterator[socket.socket]:
    with connect(tight.port) as sock:
        yield sock


def ask(sock: socket.socket, wire: bytes) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(wire)
    return Reader(sock).answer()


# ---------------------------------------------------------------- sizes


def test_a_request_target_over_the_limit_is_414(conn: socket.socket) -> None:
    status, headers, body = ask(conn, request("GET", "/v1/kv/" + "k" * 1100))
    assert status == 414
    assert body == (
        b"Request URL too long: the limit is 1024 bytes (path and query string)"
    )
    assert headers["connection"] == "close"


def test_a_request_target_at_the_limit_is_served(conn: socket.socket) -> None:
    path = "/v1/kv/" + "k" * (1024 - len("/v1/kv/"))
    assert ask(conn, request("GET", path))[0] == 404  # no such key: served


def test_headers_over_the_byte_limit_are_431(conn: socket.socket) -> None:
    status, _, body = ask(
        conn, request("GET", "/v1/agent/self", headers={"X-Big": "v" * 5000})
    )
    assert status == 431
    assert body == b"Request header fields too large: the limit is 4096 bytes"


def test_a_header_that_never_ends_is_431_before_it_ends(conn: socket.socket) -> None:
    """httptools holds a field until its CRLF: the agent counts raw bytes."""
    conn.sendall(b"GET /v1/agent/self HTTP/1.1\r\nX-Endless: ")
    reader = Reader(conn)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for _ in range(64):  # up to 64 KiB, the limit is 4 KiB
            conn.sendall(b"v" * 1024)
            if select.select([conn], [], [], 0.01)[0]:
                break
    assert reader.answer().status == 431


def test_headers_at_the_limits_are_served(conn: socket.socket) -> None:
    fields = {f"X-H{n}": "v" * 100 for n in range(19)}  # + Host = 20
    assert ask(conn, request("GET", "/v1/agent/self", headers=fields))[0] == 200


def test_more_header_fields_than_the_limit_is_431(conn: socket.socket) -> None:
    fields = {f"X-H{n}": "v" for n in range(20)}  # + Host = 21
    status, _, body = ask(conn, request("GET", "/v1/agent/self", headers=fields))
    assert status == 431
    assert body == b"Request header fields too many: the limit is 20 fields"


def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(
    conn: socket.socket,
) -> None:
    head = request(
        "PUT",
        "/v1/kv/big",
        headers={"Content-Length": "100000", "Expect": "100-continue"},
    )
    status, _, body = ask(conn, head)
    assert status == 413
    assert body == b"Request body too large: the limit is 65536 bytes"


def test_a_body_over_the_limit_is_413_and_the_client_reads_it(
    tight: AgentProcess,
) -> None:
    """Refused mid-body, the agent keeps draining so the answer is not lost."""
    response = httpx.put(f"{tight.url}/v1/kv/big", content=b"x" * 200_000)
    assert response.status_code == 413
    assert httpx.get(f"{tight.url}/v1/kv/big").status_code == 404


def test_a_chunked_body_over_the_limit_is_413(conn: socket.socket) -> None:
    conn.sendall(
        request("PUT", "/v1/kv/chunky", headers={"Transfer-Encoding": "chunked"})
    )
    chunk = b"%x\r\n%s\r\n" % (8192, b"c" * 8192)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for _ in range(16):  # 128 KiB, the limit is 64 KiB
            conn.sendall(chunk)
    assert Reader(conn).answer().status == 413


# ---------------------------------------------------------------- bodies


def test_a_chunked_body_is_read_whole(tight: AgentProcess, conn: socket.socket) -> None:
    """Chunk sizes in hex, a chunk extension, a trailer: all as RFC 9112."""
    wire = request("PUT", "/v1/kv/chunked", headers={"Transfer-Encoding": "chunked"})
    wire += (
        b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    status, _, body = ask(conn, wire)
    assert (status, body) == (200, b"true")
    stored = httpx.get(f"{tight.url}/v1/kv/chunked?raw")
    assert stored.content == b"hello 0123456789"


def test_expect_100_continue_is_answered_before_the_body(
    tight: AgentProcess, conn: socket.socket
) -> None:
    conn.sendall(
        request(
            "PUT",
            "/v1/kv/expected",
            headers={"Content-Length": "5", "Expect": "100-continue"},
        )
    )
    reader = Reader(conn)
    assert reader.head()[0] == 100  # before a byte of the body was sent
    conn.sendall(b"value")
    assert reader.answer()[::2] == (200, b"true")
    assert httpx.get(f"{tight.url}/v1/kv/expected?raw").content == b"value"


def test_an_unknown_expectation_is_417(conn: socket.socket) -> None:
    head = request("PUT", "/v1/kv/x", b"v", headers={"Expect": "200-ok"})
    assert ask(conn, head)[0] == 417


# ---------------------------------------------------------------- deadlines


def test_headers_must_arrive_within_the_deadline_even_byte_by_byte(
    conn: socket.socket,
) -> None:
    """Slowloris: a byte every 50 ms does not move the deadline."""
    started = time.monotonic()
    conn.sendall(b"GET /v1/agent/self HTTP/1.1\r\n")
    answer = None
    while answer is None and time.monotonic() - started < TIMEOUT:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(b"X")
        if select.select([conn], [], [], 0.05)[0]:
            answer = Reader(conn).answer()
    assert answer is not None, "no 408 while the head kept trickling in"
    assert answer.status == 408
    assert answer.body == b"Request headers not received within 0.5s"
    assert time.monotonic() - started >= HEADER_TIMEOUT


def test_a_connection_that_sends_nothing_is_closed_quietly(
    conn: socket.socket,
) -> None:
    started = time.monotonic()
    assert conn.recv(1) == b""  # no answer to a request never made
    assert time.monotonic() - started >= HEADER_TIMEOUT * 0.9


def test_a_body_must_arrive_within_the_read_deadline(conn: socket.socket) -> None:
    started = time.monotonic()
    conn.sendall(request("PUT", "/v1/kv/slow", headers={"Content-Length": "100"}))
    conn.sendall(b"only ten b")
    status, _, body = Reader(conn).answer()
    assert (status, body) == (408, b"Request body not received within 1s")
    assert time.monotonic() - started >= READ_TIMEOUT


def test_an_idle_keep_alive_connection_is_closed(conn: socket.socket) -> None:
    assert ask(conn, request("GET", "/v1/status/leader"))[0] == 200
    answered = time.monotonic()
    assert Reader(conn).closed()
    assert time.monotonic() - answered >= IDLE_TIMEOUT * 0.9


def test_a_blocking_query_outlives_the_idle_timeout(conn: socket.socket) -> None:
    """Idle means nothing to answer: a held blocking query is not idle."""
    reader = Reader(conn)
    conn.sendall(request("GET", "/v1/kv/held"))
    first = reader.answer()
    index = first.headers["x-consul-index"]
    wait = 2 * IDLE_TIMEOUT
    conn.sendall(request("GET", f"/v1/kv/held?index={index}&wait={wait}s"))
    held = reader.answer()
    assert held.status == 404
    assert held.headers["x-consul-index"] == index


# ---------------------------------------------------------------- pipelining


def test_pipelined_requests_are_answered_in_order(
    tight: AgentProcess, conn: socket.socket
) -> None:
    """A request that waits (a blocking query) holds the ones behind it."""
    index = httpx.get(f"{tight.url}/v1/kv/pipe2").headers["X-Consul-Index"]
    wires = [
        request("PUT", "/v1/kv/pipe1", b"one"),
        request("GET", "/v1/kv/pipe1?raw"),
        request("GET", f"/v1/kv/pipe2?index={index}&wait=0.5s"),
        request("GET", "/v1/kv/pipe1?raw"),
        request("PUT", "/v1/kv/pipe2", b"two"),
        request("GET", "/v1/kv/pipe2?raw"),
    ]
    conn.sendall(b"".join(wires))
    reader = Reader(conn)
    answers = [reader.answer() for _ in wires]
    assert [(a.status, a.body[:5]) for a in answers] == [
        (200, b"true"),
        (200, b"one"),
        (404, b""),  # waited: pipe2 was written only after it
        (200, b"one"),
        (200, b"true"),
        (200, b"two"),
    ]


def test_a_deep_pipeline_is_answered_in_order_while_others_are_served(
    tight: AgentProcess,
) -> None:
    """5,000 requests in one write, read only later: the agent reads 8 ahead,
    stops reading while its answers wait, and serves another client."""
    for n in range(10):
        httpx.put(f"{tight.url}/v1/kv/deep/{n}", content=str(n).encode())
    count = 5000
    wire = b"".join(request("GET", f"/v1/kv/deep/{n % 10}?raw") for n in range(count))
    with connect(tight.port) as sock:
        sender = threading.Thread(target=sock.sendall, args=(wire,), daemon=True)
        sender.start()
        with httpx.Client(base_url=tight.url, timeout=TIMEOUT) as other:
            for _ in range(20):
                assert other.get("/v1/status/leader").status_code == 200
        reader = Reader(sock)
        bodies = [reader.answer().body for _ in range(count)]
        sender.join(TIMEOUT)
    assert bodies == [str(n % 10).encode() for n in range(count)]


def test_a_client_that_never_reads_is_dropped_and_costs_others_nothing(
    tight: AgentProcess,
) -> None:
    """It pipelines far more than socket buffers hold and reads nothing: the
    agent stops reading from it, then drops it after the idle timeout."""
    wire = request("GET", "/v1/agent/self") * 20_000  # ~60 MB of answers
    with connect(tight.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sender = threading.Thread(target=_send_quietly, args=(sock, wire), daemon=True)
        sender.start()
        with httpx.Client(base_url=tight.url, timeout=TIMEOUT) as other:
            for _ in range(20):
                assert other.get("/v1/status/leader").status_code == 200
        sender.join(TIMEOUT * 3)
        assert not sender.is_alive(), "the agent kept reading a client that does not"
        reader = Reader(sock)
        assert reader.closed()
        answered = reader.buffer.count(b"HTTP/1.1 200 OK")
    assert answered < 20_000


def _send_quietly(sock: socket.socket, wire: bytes) -> None:
    with contextlib.suppress(OSError):  # reset once the agent drops it
        sock.sendall(wire)


# ---------------------------------------------------------------- connections


def _hold_a_blocking_query(port: int, key: str) -> socket.socket:
    """A connection with a request in hand (30 s): never one to close."""
    sock = connect(port)
    first = ask(sock, request("GET", f"/v1/kv/{key}"))
    index = first[1]["x-consul-index"]
    sock.sendall(request("GET", f"/v1/kv/{key}?index={index}&wait=30s"))
    return sock


def test_at_the_connection_cap_new_clients_wait_instead_of_failing() -> None:
    """Every connection is busy: the agent stops accepting (back-pressure)."""
    args = ["--http-max-connections", "3"]
    with run_agent(extra_args=args) as agent:
        held = [_hold_a_blocking_query(agent.port, f"cap{n}") for n in range(3)]
        try:
            waiting = connect(agent.port)  # the kernel's backlog takes it
            waiting.sendall(request("GET", "/v1/status/leader"))
            assert select.select([waiting], [], [], 0.5)[0] == []  # not accepted
            held.pop().close()
            assert Reader(waiting).answer().status == 200
            waiting.close()
        finally:
            for sock in held:
                sock.close()


def test_at_the_connection_cap_the_connection_that_never_spoke_makes_room() -> None:
    """A new client gets in by closing what costs least to lose: a connection
    that never sent a byte before an idle keep-alive; never a busy one."""
    args = ["--http-max-connections", "3", "--http-header-timeout", "60s"]
    with run_agent(extra_args=args) as agent:
        idle = connect(agent.port)
        assert ask(idle, request("GET", "/v1/status/leader"))[0] == 200
        silent = connect(agent.port)
        time.sleep(0.2)  # accepted before the busy one
        busy = _hold_a_blocking_query(agent.port, "room")
        try:
            with connect(agent.port) as newcomer:
                assert ask(newcomer, request("GET", "/v1/status/leader"))[0] == 200
            assert Reader(silent).closed()
            assert ask(idle, request("GET", "/v1/status/leader"))[0] == 200
            busy.sendall(b"")  # still open, its query still held
            assert select.select([busy], [], [], 0)[0] == []
        finally:
            for sock in (idle, silent, busy):
                sock.close()


def test_a_client_over_its_connection_cap_gets_consuls_429() -> None:
    with run_agent(extra_args=["--http-max-conns-per-client", "2"]) as agent:
        first, second = connect(agent.port), connect(agent.port)
        try:
            for sock in (first, second):
                assert ask(sock, request("GET", "/v1/status/leader"))[0] == 200
            with connect(agent.port) as third:
                status, _, body = ask(third, request("GET", "/v1/status/leader"))
            assert status == 429
            assert body == (
                b"Your IP is issuing too many concurrent connections,"
                b" please rate limit your calls\n"
            )
            # Another address is another client.
            with connect(agent.port, source="127.0.0.2") as elsewhere:
                assert ask(elsewhere, request("GET", "/v1/status/leader"))[0] == 200
            # A closed connection gives its slot back.
            first.close()
            wait_until(lambda: _served(agent), timeout=TIMEOUT)
        finally:
            first.close()
            second.close()


def _served(agent: AgentProcess) -> bool:
    with connect(agent.port) as sock:
        try:
            return ask(sock, request("GET", "/v1/status/leader"))[0] == 200
        except ConnectionError:
            return False


def _rss(agent: AgentProcess) -> int:
    assert agent.process is not None
    status = Path(f"/proc/{agent.process.pid}/status").read_text()
    return int(
        next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1]
    )


def test_refused_heads_do_not_accumulate_in_the_agent() -> None:
    """300 requests with a 1 MB header each: every one is refused after about
    64 KiB, and what it left in the parser is freed with its connection (not
    when the cycle collector next runs, which a busy agent does rarely)."""
    wire = request("GET", "/v1/agent/self", headers={"X-Big": "v" * (1 << 20)})
    with run_agent() as agent:
        for _ in range(20):  # warm up allocator and caches
            _refused_once(agent, wire)
        before = _rss(agent)
        for _ in range(300):
            _refused_once(agent, wire)
        grown = _rss(agent) - before
    assert grown < 12 * 1024, f"{grown} KiB more after 300 refused heads"


def _refused_once(agent: AgentProcess, wire: bytes) -> None:
    with connect(agent.port) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(wire)
        assert Reader(sock).answer().status == 431
