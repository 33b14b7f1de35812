"""The real `waypost` command (a subprocess) against a real agent."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from tests.client.conftest import free_port
from waypost.testing import AgentProcess, wait_until


def waypost(
    *args: str, agent: AgentProcess | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("CONSUL_HTTP_ADDR", None)
    if agent is not None:
        env["WAYPOST_HTTP_ADDR"] = agent.address
    return subprocess.run(
        [sys.executable, "-m", "waypost", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=30,
    )


def register(agent: AgentProcess, name: str, **fields: object) -> None:
    """Set-up straight over HTTP: only the command under test runs as a process."""
    body = {"Name": name, "Port": 1, **fields}
    httpx.put(f"{agent.url}/v1/agent/service/register", json=body).raise_for_status()


def test_register_then_instances_lists_it_as_a_table_and_as_json(
    shared_agent: AgentProcess, unique: str
) -> None:
    done = waypost(
        "register", unique, "--port", "8080", "--id", f"{unique}-1",
        "--tag", "v1", "--meta", "zone=a", "--weight", "3", "--ttl", "30s",
        agent=shared_agent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{unique}-1"
    table = waypost("instances", unique, "--passing", agent=shared_agent)
    assert table.returncode == 0
    header, row = table.stdout.splitlines()
    assert header.split() == ["ID", "ADDRESS", "STATUS", "WEIGHT", "NODE", "TAGS"]
    assert row.split()[:4] == [f"{unique}-1", "127.0.0.1:8080", "passing", "3"]
    as_json = json.loads(
        waypost("instances", unique, "--json", agent=shared_agent).stdout
    )
    assert as_json[0]["service_id"] == f"{unique}-1"
    assert as_json[0]["meta"] == {"zone": "a", "weight": "3"}
    assert as_json[0]["weight"] == 3.0


def test_services_prints_names_and_tags(
    shared_agent: AgentProcess, unique: str
) -> None:
    register(shared_agent, unique, Tags=["blue"])
    found = json.loads(waypost("services", "--json", agent=shared_agent).stdout)
    assert found[unique] == ["blue"]
    plain = waypost("services", agent=shared_agent).stdout
    assert any(line.split() == [unique, "blue"] for line in plain.splitlines())


def test_instances_of_nothing_exits_3_for_scripts(shared_agent: AgentProcess) -> None:
    done = waypost("instances", "no-such-service", agent=shared_agent)
    assert done.returncode == 3
    assert (
        done.stderr.strip()
        == "waypost: error: no instance of 'no-such-service' matched"
    )


def test_members_takes_the_seeds_single_dash_service_flag(
    shared_agent: AgentProcess,
) -> None:
    register(shared_agent, "example-service", Port=8080)
    seed = waypost(
        "members", "-service", "example-service", "--json", agent=shared_agent
    )
    assert seed.returncode == 0, seed.stderr
    assert {i["name"] for i in json.loads(seed.stdout)} == {"example-service"}
    nodes = json.loads(waypost("members", "--json", agent=shared_agent).stdout)
    assert nodes[0]["name"] == "waypost-test" and nodes[0]["status"] == 1


def test_deregister_removes_and_exits_3_when_unknown(
    shared_agent: AgentProcess, unique: str
) -> None:
    register(shared_agent, unique)
    assert waypost("deregister", unique, agent=shared_agent).returncode == 0
    again = waypost("deregister", unique, agent=shared_agent)
    assert again.returncode == 3
    assert again.stderr.startswith("waypost: error: not found: Unknown service ID")
    assert len(again.stderr.strip().splitlines()) == 1


def test_bad_input_exits_1_with_the_registrys_reason(
    shared_agent: AgentProcess, unique: str
) -> None:
    done = waypost(
        "register", unique, "--port", "1", "--meta", "bad key=x", agent=shared_agent
    )
    assert done.returncode == 1
    assert "Invalid Service Meta" in done.stderr and "Traceback" not in done.stderr


def test_unreachable_registry_exits_4_and_says_what_to_do() -> None:
    port = free_port()
    done = waypost("services", "--http-addr", f"127.0.0.1:{port}")
    assert done.returncode == 4
    assert done.stderr == (
        f"waypost: error: cannot reach the registry at 127.0.0.1:{port} — is"
        " `waypost agent` running? (set --http-addr or WAYPOST_HTTP_ADDR to point"
        " elsewhere)\n"
    )


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("localhost:abc", "Invalid port: 'abc'; expected HOST:PORT or a URL"),
        ("http://[::1", "the IPv6 address has no closing ']'"),
        ("ftp://x", "the scheme 'ftp' is not supported; use http:// or https://"),
    ],
)
@pytest.mark.parametrize("command", [["services"], ["kv", "get", "k"], ["watch", "x"]])
def test_a_bad_address_is_a_usage_error_in_one_line(
    command: list[str], address: str, problem: str
) -> None:
    """Exit 2 and one line saying what is wrong; no traceback, nothing sent."""
    done = waypost(*command, "--http-addr", address)
    assert done.returncode == 2
    assert done.stderr == (
        f"waypost: error: invalid registry address {address!r}: {problem}"
        " (from --http-addr, WAYPOST_HTTP_ADDR or CONSUL_HTTP_ADDR)\n"
    )
    assert "refused" not in done.stderr


def test_http_addr_flag_and_consul_env_reach_the_agent(
    shared_agent: AgentProcess,
) -> None:
    flag = waypost("members", "--service", "consul", "-http-addr", shared_agent.address)
    assert flag.returncode == 0 and "consul" in flag.stdout
    env = {**os.environ, "CONSUL_HTTP_ADDR": shared_agent.address}
    env.pop("WAYPOST_HTTP_ADDR", None)
    done = subprocess.run(
        [sys.executable, "-m", "waypost", "members", "--json"],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_kv_put_get_delete_round_trip(shared_agent: AgentProcess, unique: str) -> None:
    key = f"{unique}/greeting"
    assert waypost("kv", "put", key, "hello", agent=shared_agent).returncode == 0
    assert waypost("kv", "get", key, agent=shared_agent).stdout == "hello\n"
    assert (
        waypost(
            "kv", "put", key, "-", agent=shared_agent, stdin="from stdin"
        ).returncode
        == 0
    )
    entry = json.loads(waypost("kv", "get", key, "--json", agent=shared_agent).stdout)
    assert entry["text"] == "from stdin"
    stale = waypost("kv", "put", key, "x", "--cas", "1", agent=shared_agent)
    assert stale.returncode == 1 and "CAS" in stale.stderr
    assert waypost("kv", "delete", key, agent=shared_agent).returncode == 0
    assert waypost("kv", "get", key, agent=shared_agent).returncode == 3


def test_maint_enables_lists_and_disables_service_maintenance(
    shared_agent: AgentProcess, unique: str
) -> None:
    register(shared_agent, unique)
    on = waypost(
        "maint", "-enable", "-service", unique, "-reason", "deploy", agent=shared_agent
    )
    assert on.returncode == 0, on.stderr
    listed = json.loads(waypost("maint", "--json", agent=shared_agent).stdout)
    assert {"service_id": unique, "reason": "deploy"} in listed
    health = f"{shared_agent.url}/v1/health/service/{unique}?passing"
    assert httpx.get(health).json() == []
    off = waypost("maint", "--disable", "--service", unique, agent=shared_agent)
    assert off.returncode == 0
    assert len(httpx.get(health).json()) == 1


def test_watch_prints_each_change_as_it_happens(
    shared_agent: AgentProcess, unique: str
) -> None:
    env = {**os.environ, "WAYPOST_HTTP_ADDR": shared_agent.address}
    process = subprocess.Popen(
        [sys.executable, "-m", "waypost", "watch", unique, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    try:
        first = json.loads(process.stdout.readline())
        assert first["instances"] == [] and not first["stale"]
        api = httpx.Client(base_url=shared_agent.url)
        api.put(
            "/v1/agent/service/register", json={"Name": unique, "ID": "w1", "Port": 1}
        )
        change = json.loads(process.stdout.readline())
        assert [i["service_id"] for i in change["instances"]] == ["w1"]
        assert change["index"] > first["index"]
        api.put("/v1/agent/service/deregister/w1")
        assert json.loads(process.stdout.readline())["instances"] == []
        api.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr


def waypost_on_a_terminal(*args: str, agent: AgentProcess) -> str:
    """Run the real command with a pseudo-terminal as its stdout and stderr."""
    env = {**os.environ, "WAYPOST_HTTP_ADDR": agent.address}
    env.update(TERM="xterm-256color", COLUMNS="200")
    for name in ("NO_COLOR", "FORCE_COLOR", "CONSUL_HTTP_ADDR"):
        env.pop(name, None)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "waypost", *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=30) == 0, output
    return output.decode()


def test_status_is_coloured_on_a_terminal_and_plain_in_a_pipe(
    shared_agent: AgentProcess, unique: str
) -> None:
    for number, status in enumerate(["passing", "warning", "critical"]):
        check = {"TTL": "1h", "Status": status}
        register(shared_agent, unique, ID=f"{unique}-{number}", Check=check)
    shown = waypost_on_a_terminal("instances", unique, agent=shared_agent)
    for status, colour in [("passing", 32), ("warning", 33), ("critical", 31)]:
        # green, yellow, red (rich pads the cell inside the style)
        assert re.search(f"\x1b\\[{colour}m{status} *\x1b\\[0m", shown), shown
    piped = waypost("instances", unique, agent=shared_agent)
    assert piped.returncode == 0
    assert "\x1b" not in piped.stdout
    assert [row.split()[2] for row in piped.stdout.splitlines()[1:]] == [
        "passing",
        "warning",
        "critical",
    ]


def test_kv_get_json_gives_base64_and_text_only_when_it_is_utf8(
    shared_agent: AgentProcess, unique: str
) -> None:
    """As Consul's API: any bytes survive; `text` only when it decodes."""
    binary, text = bytes([0, 159, 255, 10]), "héllo"
    httpx.put(f"{shared_agent.url}/v1/kv/{unique}/bin", content=binary)
    httpx.put(f"{shared_agent.url}/v1/kv/{unique}/txt", content=text.encode())
    got = json.loads(
        waypost("kv", "get", f"{unique}/bin", "--json", agent=shared_agent).stdout
    )
    assert base64.b64decode(got["value"]) == binary
    assert "text" not in got
    both = json.loads(
        waypost("kv", "get", unique, "--recurse", "--json", agent=shared_agent).stdout
    )
    assert [e["key"] for e in both] == [f"{unique}/bin", f"{unique}/txt"]
    assert both[1]["value"] == base64.b64encode(text.encode()).decode()
    assert both[1]["text"] == text


class _Refuser:
    """Listens where the dead agent was and drops every connection, counting."""

    def __init__(self, port: int) -> None:
        self.accepted = 0
        self._server = socket.create_server(("127.0.0.1", port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        # shutdown wakes the blocked accept(); close alone would leave the
        # port bound until it returned.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(5)


def test_watch_says_once_that_the_registry_is_gone_and_once_that_it_is_back(
    unique: str,
) -> None:
    """One line when the agent dies (not a log line too), none per failed
    retry, one when an agent answers again on the same address."""
    agent = AgentProcess().start()
    port = agent.port
    register(agent, unique, ID="w1")
    env = {**os.environ, "WAYPOST_HTTP_ADDR": agent.address}
    process = subprocess.Popen(
        [sys.executable, "-m", "waypost", "watch", unique],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    refuser: _Refuser | None = None
    back: AgentProcess | None = None
    try:
        assert process.stdout.readline().startswith(f"{unique}: 1 instance(s)")
        assert process.stdout.readline().split() == ["w1", "127.0.0.1:1", "passing"]
        agent.stop()
        gone = process.stdout.readline()
        assert gone.startswith(f"{unique}: registry unreachable (cannot reach")
        assert gone.endswith("; last known set below\n")
        assert process.stdout.readline().startswith(f"{unique}: 1 instance(s)")
        assert process.stdout.readline().split() == ["w1", "127.0.0.1:1", "passing"]
        # Refuse connections until the watcher has retried a few times: each
        # retry fails again, and none may be reported again.
        refuser = _Refuser(port)
        wait_until(lambda: refuser is not None and refuser.accepted >= 3, timeout=10)
        refuser.close()
        back = AgentProcess(extra_args=["--http-addr", f"127.0.0.1:{port}"]).start()
        # The new agent is empty (--dev): its first answer is the whole news.
        again = process.stdout.readline()
        empty = process.stdout.readline()
    finally:
        if refuser is not None:
            refuser.close()
        process.send_signal(signal.SIGTERM)
        rest, stderr = process.communicate(timeout=15)
        if back is not None:
            back.stop()
        agent.stop()
    assert process.returncode == 0, stderr
    assert again == f"{unique}: registry reachable again\n"
    assert empty.startswith(f"{unique}: 0 instance(s) at index ")
    assert rest == ""
    assert stderr == ""
