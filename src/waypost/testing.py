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
from collections.abc import Callable, Iterator
from pathlib import Path

_LISTENING = re.compile(r"listening on (?P<urls>(?:https?://\S+ )+)")
_URL = re.compile(r"(?P<scheme>https?)://(?P<host>\S+):(?P<port>\d+)")

#: How long to wait for an agent to print its start-up line.
START_TIMEOUT = 20.0


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

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "waypost", "agent", "--http-addr", "127.0.0.1:0"]
        args += ["--node", self.node]
        if self.dev:
            args.append("--dev")
        if self.data_dir is not None:
            args += ["--data-dir", self.data_dir]
        return args + self.extra_args

    def start(self, timeout: float = START_TIMEOUT) -> AgentProcess:
        """Start the agent and wait until it listens; raise if it exits."""
        self._started.clear()
        self.log_lines = []
        env = {**os.environ, **(self.env or {})}
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
