"""Helpers to test against a real waypost agent: no mocks needed.

    from waypost.testing import run_agent

    with run_agent() as agent:          # a real `waypost agent --dev`
        requests.get(agent.url + "/v1/catalog/services")

Also importable as a pytest fixture: add `pytest_plugins = ["waypost.testing"]`
to your conftest and ask for `waypost_agent`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

_LISTENING = re.compile(r"listening on (?P<urls>(?:https?://\S+ )+)")
_URL = re.compile(r"(?P<scheme>https?)://(?P<host>\S+):(?P<port>\d+)")
_DNS = re.compile(r" dns=(?P<host>\S+):(?P<port>\d+)")

#: Endpoints of an etcd cluster: `--dev` agents run on it instead (each with
#: a prefix of its own), so the single-agent tests run over the etcd store.
TEST_ETCD_ENV = "WAYPOST_TEST_ETCD"

#: The agent reads `--dns-addr` from here too (click's auto_envvar_prefix).
DNS_ADDR_ENV = "WAYPOST_DNS_ADDR"

#: How long to wait for an agent to print its start-up line.
START_TIMEOUT = 60.0  # a ceiling for a loaded machine, not a speed target


class AgentProcess:
    """A `waypost agent` child process on a free loopback port."""

    def __init__(
        self,
        *,
        dev: bool = True,
        data_dir: str | os.PathLike[str] | None = None,
        node: str = "waypost-test",
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.dev = dev
        self.data_dir = str(data_dir) if data_dir is not None else None
        self.node = node
        self.extra_args = extra_args or []
        self.env = env
        self.host = "127.0.0.1"
        self.port = 0
        self.https_port = 0
        #: The DNS port (UDP and TCP); 0 when DNS is off.
        self.dns_port = 0
        self.process: subprocess.Popen[str] | None = None
        self.log_lines: list[str] = []
        self._started = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The plain HTTP URL, or the HTTPS one when plain HTTP is off."""
        if not self.port and self.https_port:
            return self.https_url
        return f"http://{self.host}:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://{self.host}:{self.https_port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port or self.https_port}"

    @property
    def dns_address(self) -> tuple[str, int]:
        """(host, port) of the agent's DNS interface, for a resolver."""
        return (self.host, self.dns_port)

    def command(self) -> list[str]:
        # A free port for HTTP; a later flag in `extra_args` wins.
        args = [sys.executable, "-m", "waypost", "agent", "--http-addr", "127.0.0.1:0"]
        args += ["--node", self.node]
        etcd = os.environ.get(TEST_ETCD_ENV, "")
        if self.dev and etcd and "--etcd" not in self.extra_args:
            # The same tests over the cluster store: a catalog of its own.
            args += ["--etcd", etcd, "--etcd-prefix", f"/test/{uuid.uuid4().hex}"]
        elif self.dev:
            args.append("--dev")
        if self.data_dir is not None:
            args += ["--data-dir", self.data_dir]
        return args + self.extra_args

    def start(self, timeout: float = START_TIMEOUT) -> AgentProcess:
        """Start the agent and wait until it listens; raise if it exits."""
        self._started.clear()
        self.log_lines = []
        # DNS on a free port too (8600 would collide between agents), given
        # as WAYPOST_DNS_ADDR so that revisions without DNS ignore it (bench/
        # ab.py); `env` or `--dns-addr` in `extra_args` override it.
        env = {**os.environ, DNS_ADDR_ENV: "127.0.0.1:0", **(self.env or {})}
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._started.wait(0.02):
            if self.process.poll() is not None:
                self._reader.join(1)
                raise RuntimeError(
                    f"waypost agent exited with {self.process.returncode}:\n"
                    + "".join(self.log_lines)
                )
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(
                    "waypost agent did not start:\n" + "".join(self.log_lines)
                )
        return self

    def _read_log(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.log_lines.append(line)
            match = _LISTENING.search(line)
            if match:
                for url in _URL.finditer(match.group("urls")):
                    if url.group("scheme") == "https":
                        self.https_port = int(url.group("port"))
                    else:
                        self.port = int(url.group("port"))
                dns = _DNS.search(line)
                self.dns_port = int(dns.group("port")) if dns else 0
                self._started.set()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Ask the agent to stop; return its exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self._reader is not None:
            self._reader.join(2)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code

    def kill(self) -> int:
        """`kill -9`: no shutdown, no flush."""
        return self.stop(signal.SIGKILL)

    @property
    def log(self) -> str:
        return "".join(self.log_lines)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Wait until `text` appears in the agent's log; return the log.

        The log is read by a thread from the agent's stderr, so a line the
        agent wrote before answering a request may reach `log` only after
        the answer reaches the test: assert on it through this, not `log`.
        """
        deadline = time.monotonic() + timeout
        while text not in (log := self.log):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the agent's log:\n{log}")
            time.sleep(0.01)
        return log


@contextlib.contextmanager
def run_agent(**kwargs: object) -> Iterator[AgentProcess]:
    """Start a real agent for the duration of a `with` block.

    Args:
        dev: in-memory agent (default True); False uses a temporary data dir
            unless `data_dir` is given.
        node, extra_args, env: passed to AgentProcess.
    """
    dev = bool(kwargs.get("dev", True))
    with tempfile.TemporaryDirectory(prefix="waypost-") as scratch:
        if not dev and kwargs.get("data_dir") is None:
            kwargs["data_dir"] = Path(scratch) / "data"
        agent = AgentProcess(**kwargs)  # type: ignore[arg-type]
        agent.start()
        try:
            yield agent
        finally:
            agent.stop()


def free_port() -> int:
    """A loopback TCP port nobody listens on (now)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EtcdMember:
    """One `etcd` process of a test cluster, on loopback ports."""

    def __init__(self, name: str, data_dir: Path, client_port: int, peer_port: int):
        self.name = name
        self.data_dir = data_dir
        self.client_port = client_port
        self.peer_port = peer_port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def command(self, initial_cluster: str, token: str) -> list[str]:
        return [
            ETCD_BINARY,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", token,
            # A paused client's stream is dropped within seconds.
            "--grpc-keepalive-interval", "1s",
            "--grpc-keepalive-timeout", "2s",
            "--logger", "zap",
            "--log-outputs", str(self.data_dir.parent / f"{self.name}.log"),
        ]  # fmt: skip

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the member is gone at once (a crashed machine)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


ETCD_BINARY = os.environ.get("WAYPOST_ETCD_BINARY", "etcd")


class EtcdCluster:
    """A real etcd cluster of `size` members on loopback ports, temp data dirs.

        with EtcdCluster(3) as etcd:
            run_agent(extra_args=["--etcd", etcd.endpoints])

    Members can be killed and started again (`kill(i)`, `start_member(i)`);
    `stop()` ends every process and removes the data.
    """

    def __init__(self, size: int = 3, *, root: str | None = None) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="waypost-etcd-", dir=root)
        base = Path(self._scratch.name)
        self.token = f"waypost-test-{os.getpid()}-{id(self)}"
        self.members = [
            EtcdMember(f"etcd{i}", base / f"etcd{i}", free_port(), free_port())
            for i in range(size)
        ]
        self.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self) -> str:
        """Client URLs, comma-separated: what `--etcd` takes."""
        return ",".join(m.client_url for m in self.members)

    @property
    def urls(self) -> list[str]:
        return [m.client_url for m in self.members]

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        for index in range(len(self.members)):
            self.start_member(index, wait=False)
        self.wait_healthy(timeout)
        return self

    def start_member(self, index: int, *, wait: bool = True) -> None:
        member = self.members[index]
        if member.is_running:
            return
        member.data_dir.parent.mkdir(parents=True, exist_ok=True)
        member.process = subprocess.Popen(
            member.command(self.initial_cluster, self.token),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if wait:
            self.wait_healthy()

    def kill(self, index: int) -> None:
        self.members[index].kill()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running member answers /health with a leader."""
        import httpx

        deadline = time.monotonic() + timeout
        for member in self.members:
            if not member.is_running:
                continue
            while True:
                try:
                    answer = httpx.get(member.client_url + "/health", timeout=1.0)
                    if answer.status_code == 200 and answer.json().get("health") in (
                        "true",
                        True,
                    ):
                        break
                except httpx.HTTPError:
                    pass
                if member.process is not None and member.process.poll() is not None:
                    raise RuntimeError(f"etcd member {member.name} exited")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"etcd member {member.name} is not healthy")
                time.sleep(0.05)

    def stop(self) -> None:
        for member in self.members:
            member.kill()
        self._scratch.cleanup()

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02
) -> object:
    """Poll until `predicate()` is truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


class ManualClock:
    """A clock tests advance by hand (for core and agent unit tests)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


try:  # the pytest fixture, only when pytest is there
    import pytest

    @pytest.fixture
    def waypost_agent() -> Iterator[AgentProcess]:
        """A fresh `waypost agent --dev` on a free loopback port."""
        with run_agent() as agent:
            yield agent

except ImportError:  # pragma: no cover
    pass
