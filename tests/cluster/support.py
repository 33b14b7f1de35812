"""Three agents on a real etcd cluster, for the cluster-mode tests.

Every agent is a real `waypost agent --etcd ...` process on a free loopback
port; etcd is three real `etcd` processes (waypost.testing.EtcdCluster).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from waypost.testing import AgentProcess, EtcdCluster

#: Short membership lease, so a dead agent is noticed within seconds.
LEASE = 3.0

needs_etcd = pytest.mark.skipif(
    shutil.which("etcd") is None,
    reason="etcd is not installed (scripts/test installs Debian's etcd-server)",
)


class Agents:
    """Agents sharing one catalog (one etcd prefix)."""

    def __init__(
        self,
        etcd: EtcdCluster,
        names: tuple[str, ...] = ("a", "b", "c"),
        *,
        extra_args: list[str] | None = None,
    ) -> None:
        self.etcd = etcd
        self.prefix = f"/test/{uuid.uuid4().hex}"
        self.extra_args = extra_args or []
        self.agents = {name: self._process(name) for name in names}
        self.clients: dict[str, httpx.Client] = {}
        #: Print every agent's log when stopping (a failed test sets it).
        self.show_logs = False

    def _process(self, name: str) -> AgentProcess:
        return AgentProcess(
            dev=False,
            node=name,
            extra_args=[
                "--etcd",
                self.etcd.endpoints,
                "--etcd-prefix",
                self.prefix,
                "--member-lease",
                f"{LEASE:g}s",
                *self.extra_args,
            ],
        )

    def start(self) -> Agents:
        for name, agent in self.agents.items():
            agent.start()
            self.clients[name] = httpx.Client(base_url=agent.url, timeout=30)
        return self

    def __getitem__(self, name: str) -> httpx.Client:
        return self.clients[name]

    def process(self, name: str) -> AgentProcess:
        return self.agents[name]

    def stop(self) -> None:
        for client in self.clients.values():
            client.close()
        for name, agent in self.agents.items():
            agent.stop()
            if self.show_logs or os.environ.get("WAYPOST_TEST_LOGS"):
                print(f"---- agent {name}\n{agent.log}")

    def __enter__(self) -> Agents:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def index_of(response: httpx.Response) -> int:
    return int(response.headers["X-Consul-Index"])


def wait_for(
    predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05
) -> float:
    """Poll until true; return how long it took (raise on timeout)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - start


class Heartbeats:
    """Threads that pass TTL checks on their agents until stopped."""

    def __init__(self, every: float = 0.3) -> None:
        self.every = every
        self.targets: list[tuple[httpx.Client, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, client: httpx.Client, check_id: str) -> None:
        self.targets.append((client, check_id))

    def start(self) -> Heartbeats:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for client, check_id in self.targets:
                try:
                    answer = client.put(f"/v1/agent/check/pass/{check_id}")
                    if answer.status_code != 200:
                        self.failures.append(f"{check_id}: {answer.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{check_id}: {exc!r}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
