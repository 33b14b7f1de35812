"""The systems compared: etcd, ZooKeeper and waypost, as servers and as clients.

Servers run on 127.0.0.1 with their data in a folder the caller owns, as
Debian packages them (`etcd-server`, `zookeeper`); `ensure_installed()` installs
them with apt-get when missing. Each `Registry` driver speaks to one system
through a client that costs little per request (waypost: keep-alive HTTP/1.1
parsed by httptools, JSON decoded by msgspec, and waypost's own AsyncClient;
etcd: aetcd over gRPC; ZooKeeper: kazoo). Workloads, timing and reports live in
compare.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata, util as import_util
from pathlib import Path
from typing import Protocol

import httpx
import msgspec
from _rawhttp import HttpConnection, HttpConnections

from waypost.testing import AgentProcess

ROOT = Path(__file__).resolve().parent.parent
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
# The JAR's manifest names its dependencies but no SLF4J binding; the no-op
# binding keeps the console quiet (the package logs through log4j otherwise).
SLF4J_NOP_JAR = Path("/usr/share/java/slf4j-nop.jar")
APT_PACKAGES = ("etcd-server", "zookeeper")
START_TIMEOUT = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class PeerUnavailable(RuntimeError):
    """etcd or ZooKeeper is not installed and could not be installed."""


def has_servers() -> bool:
    return shutil.which("etcd") is not None and ZOOKEEPER_JAR.exists()


def ensure_installed() -> None:
    """Install etcd and ZooKeeper with apt-get unless both are there."""
    if has_servers():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise PeerUnavailable("etcd/zookeeper missing; run as root with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *APT_PACKAGES],
    )
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise PeerUnavailable(f"{' '.join(step)} failed:\n{done.stderr[-2000:]}")
    if not has_servers():
        raise PeerUnavailable(f"installed {APT_PACKAGES} but found no servers")


def ensure_python_packages(modules: dict[str, str]) -> None:
    """pip-install pyproject's `bench` extra if any of `modules` is missing.

    Args:
        modules: import name → distribution name, e.g. {"kazoo": "kazoo"}.
    """
    missing = [name for name in modules if import_util.find_spec(name) is None]
    if not missing:
        return
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = pyproject["project"]["optional-dependencies"]["bench"]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", *requirements], check=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_bytes(pid: int) -> int:
    """Resident set size of a process."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.01)
    raise TimeoutError(f"{what} did not listen on {port} in {START_TIMEOUT}s")


class _Server:
    """A child server process with its data in `data_dir`."""

    name = "server"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.with_suffix(".log")

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> _Server:
        """Start (or restart, keeping the data) and wait until it listens."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,
            )
        try:
            _wait_for_port(self.port, self.process, self.name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def version(self) -> str:
        raise NotImplementedError


class EtcdServer(_Server):
    """One-member etcd cluster; clients use gRPC (and the JSON gateway) on `port`."""

    name = "etcd"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.peer_port = 0

    def command(self) -> list[str]:
        if not self.peer_port:
            self.peer_port = free_port()
        client = f"http://127.0.0.1:{self.port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            "etcd",
            "--name=bench",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=bench={peer}",
            "--log-level=error",
        ]

    def version(self) -> str:
        done = subprocess.run(["etcd", "--version"], capture_output=True, text=True)
        return done.stdout.split("\n")[0].replace("etcd Version: ", "")


class ZooKeeperServer(_Server):
    """Standalone ZooKeeper (ZooKeeperServerMain) without 4lw or admin server.

    Args:
        data_dir: snapshot and transaction log (fsync'd before each ack).
        tick: tickTime in ms; sessions expire on tick boundaries and the
            shortest session is 2 ticks. Debian's zoo.cfg uses 2000.
    """

    name = "zookeeper"
    # Upstream zkEnv.sh's default heap (ZK_SERVER_HEAP=1000); Debian sets none.
    heap = "-Xmx1000m"

    def __init__(self, data_dir: Path, *, tick: int = 2000) -> None:
        super().__init__(data_dir)
        self.tick = tick

    def command(self) -> list[str]:
        config = self.data_dir.with_suffix(".cfg")
        config.write_text(
            f"tickTime={self.tick}\n"
            f"dataDir={self.data_dir}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "maxClientCnxns=0\n"  # one session per instance: many per address
            f"minSessionTimeout={2 * self.tick}\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=\n"
        )
        classpath = f"{ZOOKEEPER_JAR}:{SLF4J_NOP_JAR}"
        main = "org.apache.zookeeper.server.ZooKeeperServerMain"
        return ["java", self.heap, "-cp", classpath, main, str(config)]

    def start(self) -> ZooKeeperServer:
        """Also wait for a session: the port opens before the database loads."""
        super().start()
        deadline = time.monotonic() + START_TIMEOUT
        while not _zookeeper_answers(self.port):
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"ZooKeeper on {self.port} gave no session")
            time.sleep(0.02)
        return self

    def version(self) -> str:
        main = "org.apache.zookeeper.version.VersionInfoMain"
        done = subprocess.run(
            ["java", "-cp", str(ZOOKEEPER_JAR), main], capture_output=True, text=True
        )
        found = re.search(
            r"\d+\.\d+\.\d+", done.stdout
        )  # "Apache ZooKeeper, version 3.8.0-…"
        return found.group(0) if found else "?"


def _zookeeper_answers(port: int) -> bool:
    """Open a session (ConnectRequest) and close it again; True if granted."""
    connect = struct.pack("!iqiqi16s?", 0, 0, 4000, 0, 16, bytes(16), False)
    close = struct.pack("!ii", 1, -11)  # xid 1, closeSession
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(struct.pack("!i", len(connect)) + connect)
            length = struct.unpack("!i", _read_exactly(sock, 4))[0]
            _timeout, session = struct.unpack("!iiq", _read_exactly(sock, length)[:16])[
                1:
            ]
            if not session:
                return False
            sock.sendall(struct.pack("!i", len(close)) + close)
            _read_exactly(sock, 4)
            return True
    except (OSError, struct.error):
        return False


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


# The peers' clients come from pyproject's `bench` extra, installed on demand.
ensure_python_packages({"kazoo": "kazoo", "aetcd": "aetcd", "sniffio": "sniffio"})
import aetcd  # noqa: E402
import grpc  # noqa: E402
from aetcd import rpc  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NoNodeError  # noqa: E402
from kazoo.protocol.serialization import (  # noqa: E402
    Close,
    Connect,
    Create,
    GetChildren,
    Ping,
    ReplyHeader,
    int_struct,
)
from kazoo.security import OPEN_ACL_UNSAFE  # noqa: E402

try:  # waypost's own client, once it exists: a second waypost column
    from waypost.client import AsyncClient, AsyncWatcher
except ImportError:  # pragma: no cover
    AsyncClient = AsyncWatcher = None  # type: ignore[assignment,misc]

LONG_TTL = 3600  # seconds: nothing the phases seed expires during a run
TLS = ssl.create_default_context()  # unused on http://, but each client builds one


# ------------------------------------------------------------------ drivers


def registration(service: str, n: int, ttl: int) -> dict[str, object]:
    """waypost's (Consul's) body for instance n of `service`, TTL check passing."""
    return {
        "Name": service,
        "ID": f"{service}-{n}",
        "Address": "127.0.0.1",
        "Port": 20000 + n % 40000,
        "Check": {"TTL": f"{ttl}s", "Status": "passing"},
    }


Wake = Callable[[tuple[str, int], float], None]  # (service, watcher), when


class Registry(Protocol):
    """What every phase needs from a system; one driver per system below."""

    name: str

    @property
    def pid(self) -> int: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def restart(self) -> None: ...
    async def register(self, service: str, n: int, *, ttl: int = LONG_TTL) -> None:
        """One instance, durable when this returns."""

    async def register_many(self, service: str, numbers: range) -> None:
        """Instances of one service by the cheapest path (loading, not timed)."""

    async def discover(self, service: str) -> int:
        """How many healthy instances `service` has."""

    async def prepare_heartbeats(self, count: int) -> None:
        """Get ready for `count` heartbeating instances (no load yet)."""

    async def add_heartbeater(self, n: int) -> None:
        """Instance n of those, alive until the server stops."""

    async def heartbeat(self, n: int) -> None:
        """One heartbeat of instance n % count."""

    async def watch(self, services: list[str], per_service: int, wake: Wake) -> None:
        """Arm `per_service` watchers on each service; `wake` on each change."""

    async def lapse(self, service: str, ttl: int) -> float:
        """Register one instance, heartbeat it once, then never again.

        Returns the perf_counter() at which the last heartbeat was answered.
        """

    def version(self) -> str: ...


def instance_value(n: int) -> dict[str, object]:
    return {"address": "127.0.0.1", "port": 20000 + n % 40000}


# ------------------------------------------------------------------ waypost


class _Node(msgspec.Struct, frozen=True, kw_only=True, rename={"address": "Address"}):
    address: str


class _Service(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    rename={"service_id": "ID", "address": "Address", "port": "Port"},
):
    service_id: str
    address: str
    port: int


class _HealthEntry(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    rename={"node": "Node", "service": "Service"},
):
    """What a caller of /v1/health/service uses; msgspec still parses every byte.

    Into dicts the whole answer costs ~9× more (2.6 → 23 ms for 1,000 instances,
    1.3 MB): allocation, not parsing. aetcd likewise keeps etcd's values as bytes.
    """

    node: _Node
    service: _Service


HEALTH = msgspec.json.Decoder(list[_HealthEntry])


class HttpClients:
    """httpx clients of one connection each, one per concurrent caller.

    httpx's own pool rescans every connection for each request it places
    (encode/httpx#3215): at 32 connections that costs more than the request.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.idle: list[httpx.AsyncClient] = []
        self.made: list[httpx.AsyncClient] = []

    def client(self) -> httpx.AsyncClient:
        made = httpx.AsyncClient(base_url=self.base_url, verify=TLS, timeout=600)
        self.made.append(made)
        return made

    async def request(self, method: str, url: str, **kw: object) -> httpx.Response:
        client = self.idle.pop() if self.idle else self.client()
        try:
            response = await client.request(method, url, **kw)  # type: ignore[arg-type]
        finally:
            self.idle.append(client)
        response.raise_for_status()
        return response

    async def close(self) -> None:
        for client in self.made:
            await client.aclose()
        self.made, self.idle = [], []


class Waypost:
    """A durable `waypost agent` over its Consul /v1 HTTP API, on raw HTTP/1.1.

    httptools parses, msgspec decodes the whole Consul JSON: C on both sides,
    as protobuf and gRPC's core are for etcd. httpx spent ~1 ms per request.
    Health answers are decoded into `_HealthEntry`: every byte parsed and
    checked, only the fields a caller uses kept.
    """

    name = "waypost"

    def __init__(self, workdir: Path) -> None:
        # Up to 1,000 watchers from 127.0.0.1: no per-client connection cap.
        self.agent = AgentProcess(
            dev=False,
            data_dir=workdir / "data",
            node="bench",
            extra_args=["--http-max-conns-per-client", "0"],
        )
        self.http = HttpConnections("127.0.0.1", 0)
        self.tasks: set[asyncio.Task[None]] = set()
        self.heartbeat_ids: list[str] = []

    @property
    def pid(self) -> int:
        assert self.agent.process is not None
        return self.agent.process.pid

    async def open(self) -> None:
        await asyncio.to_thread(self.agent.start)
        self.http = HttpConnections(self.agent.host, self.agent.port)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.http.close()
        await asyncio.to_thread(self.agent.stop)

    async def restart(self) -> None:
        self.http.close()
        await asyncio.to_thread(self.agent.stop)
        await asyncio.to_thread(self.agent.start)
        self.http = HttpConnections(self.agent.host, self.agent.port)

    async def register(self, service: str, n: int, *, ttl: int = LONG_TTL) -> None:
        body = msgspec.json.encode(registration(service, n, ttl))
        await self.http.request("PUT", "/v1/agent/service/register", body)

    async def register_many(self, service: str, numbers: range) -> None:
        """One after another on one connection of its own."""
        connection = await HttpConnection.open(self.agent.host, self.agent.port)
        try:
            for n in numbers:
                body = msgspec.json.encode(registration(service, n, LONG_TTL))
                status, answer, _ = await connection.request(
                    "PUT", "/v1/agent/service/register", body
                )
                if status != 200:
                    raise RuntimeError(f"register: {status} {answer[:200]!r}")
        finally:
            connection.close()

    async def discover(self, service: str) -> int:
        answer = await self.http.request("GET", f"/v1/health/service/{service}?passing")
        return len(HEALTH.decode(answer))

    async def prepare_heartbeats(self, count: int) -> None:
        """Register all of them in bulk, 16 services at a time."""
        self.heartbeat_ids = [f"service:hb-{n % 100}-{n}" for n in range(count)]
        services = iter(range(100))

        async def load() -> None:
            for m in services:
                await self.register_many(f"hb-{m}", range(m, count, 100))

        await asyncio.gather(*(load() for _ in range(16)))

    async def add_heartbeater(self, n: int) -> None:
        """Registered by prepare_heartbeats() already."""

    async def heartbeat(self, n: int) -> None:
        check_id = self.heartbeat_ids[n % len(self.heartbeat_ids)]
        await self.http.request("PUT", f"/v1/agent/check/pass/{check_id}")

    async def watch(self, services: list[str], per_service: int, wake: Wake) -> None:
        armed = [asyncio.Event() for _ in range(len(services) * per_service)]
        watchers = itertools.product(services, range(per_service))
        for event, watcher in zip(armed, watchers, strict=True):
            task = asyncio.create_task(self._block(watcher, event, wake))
            self.tasks.add(task)
        await asyncio.gather(*(event.wait() for event in armed))

    async def _block(
        self, watcher: tuple[str, int], armed: asyncio.Event, wake: Wake
    ) -> None:
        """One blocking-query loop, as a Consul watch runs it, on its own connection."""
        connection = await self.http.connection()
        url = f"/v1/health/service/{watcher[0]}?passing"
        _, _, index = await connection.request("GET", url)
        armed.set()
        while True:
            status, body, index = await connection.request(
                "GET", f"{url}&index={index}&wait=300s"
            )
            if status != 200:
                raise RuntimeError(f"GET {url}: {status} {body[:200]!r}")
            HEALTH.decode(body)
            wake(watcher, time.perf_counter())

    async def lapse(self, service: str, ttl: int) -> float:
        await self.register(service, 0, ttl=ttl)
        await self.http.request("PUT", f"/v1/agent/check/pass/service:{service}-0")
        return time.perf_counter()

    def version(self) -> str:
        return metadata.version("waypost")


def has_waypost_client() -> bool:
    return AsyncClient is not None


class WaypostClient(Waypost):
    """The same agent through waypost's own `AsyncClient` (one, shared)."""

    name = "waypost client"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.client: AsyncClient | None = None
        self.watchers: list[AsyncWatcher] = []

    @property
    def api(self) -> AsyncClient:
        if self.client is None:
            self.client = AsyncClient(self.agent.url, max_connections=128)
        return self.client

    async def close(self) -> None:
        for watcher in self.watchers:
            await watcher.stop()
        if self.client is not None:
            await self.client.aclose()
        await super().close()

    async def restart(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        await super().restart()

    async def register(self, service: str, n: int, *, ttl: int = LONG_TTL) -> None:
        await self.api.register_service(
            service,
            port=20000 + n % 40000,
            address="127.0.0.1",
            service_id=f"{service}-{n}",
            ttl=ttl,
        )

    async def discover(self, service: str) -> int:
        return len(await self.api.instances(service, passing=True))

    async def heartbeat(self, n: int) -> None:
        await self.api.pass_check(self.heartbeat_ids[n % len(self.heartbeat_ids)])

    async def watch(self, services: list[str], per_service: int, wake: Wake) -> None:
        for service, k in itertools.product(services, range(per_service)):
            armed = asyncio.Event()

            def changed(
                _instances: object,
                watcher: tuple[str, int] = (service, k),
                armed: asyncio.Event = armed,
            ) -> None:
                if armed.is_set():
                    wake(watcher, time.perf_counter())
                armed.set()

            watcher = self.api.watch(service, on_change=changed, wait=300)
            await watcher.start()
            self.watchers.append(watcher)
            await asyncio.wait_for(armed.wait(), timeout=30)

    async def lapse(self, service: str, ttl: int) -> float:
        await self.register(service, 0, ttl=ttl)
        await self.api.pass_check(f"service:{service}-0")
        return time.perf_counter()


# --------------------------------------------------------------------- etcd


class Etcd:
    """etcd v3 over gRPC with aetcd: a lease per instance, keys /svc/NAME/ID.

    Heartbeats ride one LeaseKeepAlive stream on aetcd's channel, as Go's
    clientv3 does (aetcd's refresh_lease() opens a stream per call).
    """

    name = "etcd"

    def __init__(self, workdir: Path) -> None:
        self.server = EtcdServer(workdir / "etcd")
        self.clients: list[aetcd.Client] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.leases: list[int] = []
        self.keepalive: _KeepAliveStream | None = None

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def client(self) -> aetcd.Client:
        return self.clients[0]

    async def _connect(self) -> aetcd.Client:
        options = {
            "grpc.initial_reconnect_backoff_ms": 20,
            "grpc.max_reconnect_backoff_ms": 100,
        }
        client = aetcd.Client(host="127.0.0.1", port=self.server.port, options=options)
        await client.connect()
        self.clients.append(client)
        return client

    async def open(self) -> None:
        await asyncio.to_thread(self.server.start)
        await self._connect()
        await retry(lambda: self.client.status(), within=20)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.keepalive is not None:
            self.keepalive.close()
        for client in self.clients:
            await client.close()
        self.clients = []
        await asyncio.to_thread(self.server.stop)

    async def restart(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients = []
        await asyncio.to_thread(self.server.stop)
        await asyncio.to_thread(self.server.start)
        await self._connect()

    async def register(self, service: str, n: int, *, ttl: int = LONG_TTL) -> None:
        lease = await self.client.lease(ttl)
        await self._put(service, n, lease.id)

    async def register_many(self, service: str, numbers: range) -> None:
        """A lease each, then one transaction puts them all."""
        leases = await asyncio.gather(*(self.client.lease(LONG_TTL) for _ in numbers))
        puts = [
            self.client.transactions.put(
                f"/svc/{service}/{n}".encode(),
                json.dumps(instance_value(n)).encode(),
                lease=lease.id,
            )
            for n, lease in zip(numbers, leases, strict=True)
        ]
        await self.client.transaction(compare=[], success=puts, failure=[])

    async def _put(self, service: str, n: int, lease: int) -> None:
        value = json.dumps(instance_value(n)).encode()
        await self.client.put(f"/svc/{service}/{n}".encode(), value, lease=lease)

    async def discover(self, service: str) -> int:
        return len(await self.client.get_prefix(f"/svc/{service}/".encode()))

    async def prepare_heartbeats(self, count: int) -> None:
        self.leases = [0] * count

    async def add_heartbeater(self, n: int) -> None:
        lease = await self.client.lease(LONG_TTL)
        self.leases[n] = lease.id
        await self._put(f"hb-{n % 100}", n, lease.id)

    async def heartbeat(self, n: int) -> None:
        if self.keepalive is None:
            self.keepalive = _KeepAliveStream(self.client.leasestub)
        await self.keepalive.refresh(self.leases[n % len(self.leases)])

    async def watch(self, services: list[str], per_service: int, wake: Wake) -> None:
        for k in range(per_service):
            client = await self._connect()
            for service in services:
                watch = await client.watch_prefix(f"/svc/{service}/".encode())
                task = asyncio.create_task(_consume(watch, (service, k), wake))
                self.tasks.add(task)

    async def lapse(self, service: str, ttl: int) -> float:
        lease = await self.client.lease(ttl)
        await self._put(service, 0, lease.id)
        await self.client.refresh_lease(lease.id)
        return time.perf_counter()

    def version(self) -> str:
        return f"{self.server.version()} (aetcd {metadata.version('aetcd')})"


async def _consume(
    watch: aetcd.rtypes.Watch, watcher: tuple[str, int], wake: Wake
) -> None:
    async for _event in watch:
        wake(watcher, time.perf_counter())


class _KeepAliveStream:
    """LeaseKeepAlive requests pipelined on one bidi stream; answers come in order."""

    def __init__(self, stub: rpc.LeaseStub) -> None:
        self.call = stub.LeaseKeepAlive()
        self.waiting: collections.deque[asyncio.Future[int]] = collections.deque()
        self.lock = asyncio.Lock()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while (reply := await self.call.read()) is not grpc.aio.EOF:
            self.waiting.popleft().set_result(reply.TTL)

    async def refresh(self, lease: int) -> None:
        answer = asyncio.get_running_loop().create_future()
        async with self.lock:
            self.waiting.append(answer)
            await self.call.write(rpc.LeaseKeepAliveRequest(ID=lease))
        if await answer <= 0:
            raise RuntimeError(f"lease {lease} expired")

    def close(self) -> None:
        self.reader.cancel()
        self.call.cancel()


# ---------------------------------------------------------------- ZooKeeper


class ZooKeeper:
    """ZooKeeper through kazoo: ephemeral znodes /svc/NAME/ID@ADDRESS:PORT.

    An instance's liveness is its session, so 10,000 live instances are 10,000
    sessions, each on its own connection (kazoo runs one per client object, with
    threads): `RawSession` opens them with kazoo's own wire codec on asyncio.
    """

    name = "ZooKeeper"

    def __init__(self, workdir: Path, *, tick: int) -> None:
        self.server = ZooKeeperServer(workdir / "zookeeper", tick=tick)
        self.clients: list[KazooClient] = []
        self.sessions: list[RawSession] = []  # to drop when closing
        self.heartbeaters: list[RawSession | None] = []

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def kazoo(self) -> KazooClient:
        return self.clients[0]

    def _connect(self) -> KazooClient:
        # Reconnect attempts at most 1 s apart (kazoo's default backs off to
        # 60 s): after `restart` the session must be resumed within its
        # timeout of the server's start, however long the JVM took to start.
        retry = {"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 1.0}
        client = KazooClient(
            hosts=f"127.0.0.1:{self.server.port}", timeout=30, connection_retry=retry
        )
        client.start(timeout=20)
        self.clients.append(client)
        return client

    async def open(self) -> None:
        await asyncio.to_thread(self.server.start)
        await asyncio.to_thread(self._connect)
        await asyncio.to_thread(self.kazoo.ensure_path, "/svc")

    async def close(self) -> None:
        for session in self.sessions:
            session.abandon()
        for client in self.clients:
            await asyncio.to_thread(_stop_kazoo, client)
        self.clients = []
        await asyncio.to_thread(self.server.stop)

    async def restart(self) -> None:
        # Stop the server under the client: closing the session would delete
        # every ephemeral znode it owns. kazoo reconnects into the same session.
        await asyncio.to_thread(self.server.stop)
        await asyncio.to_thread(self.server.start)

    async def _call(self, method: Callable[..., object], *args: object, **kw: object):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(result) -> None:  # type: ignore[no-untyped-def]
            if result.successful():
                loop.call_soon_threadsafe(_resolve, future, result.value, None)
            else:
                loop.call_soon_threadsafe(_resolve, future, None, result.exception)

        method(*args, **kw).rawlink(done)  # type: ignore[attr-defined]
        return await future

    async def register(self, service: str, n: int, *, ttl: int = LONG_TTL) -> None:
        value = instance_value(n)
        path = f"/svc/{service}/{service}-{n}@{value['address']}:{value['port']}"
        data = json.dumps(value).encode()
        await self._call(
            self.kazoo.create_async, path, data, ephemeral=True, makepath=True
        )

    async def register_many(self, service: str, numbers: range) -> None:
        """One multi-op transaction of ephemeral creates."""
        await self._call(self.kazoo.ensure_path_async, f"/svc/{service}")
        transaction = self.kazoo.transaction()
        for n in numbers:
            value = instance_value(n)
            name = f"{service}-{n}@{value['address']}:{value['port']}"
            data = json.dumps(value).encode()
            transaction.create(f"/svc/{service}/{name}", data, ephemeral=True)
        results = await self._call(transaction.commit_async)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise failed[0]

    async def discover(self, service: str) -> int:
        try:
            children = await self._call(
                self.kazoo.get_children_async, f"/svc/{service}"
            )
        except NoNodeError:
            return 0
        return len(children)

    async def prepare_heartbeats(self, count: int) -> None:
        for m in range(100):
            await asyncio.to_thread(self.kazoo.ensure_path, f"/svc/hb-{m}")
        self.heartbeaters = [None] * count

    async def add_heartbeater(self, n: int) -> None:
        session = await RawSession.open(self.server.port, timeout_ms=30_000)
        self.sessions.append(session)
        await session.create(f"/svc/hb-{n % 100}/hb-{n}", ephemeral=True)
        self.heartbeaters[n] = session

    async def heartbeat(self, n: int) -> None:
        session = self.heartbeaters[n % len(self.heartbeaters)]
        assert session is not None
        await session.ping()

    async def watch(self, services: list[str], per_service: int, wake: Wake) -> None:
        loop = asyncio.get_running_loop()
        for k in range(per_service):
            client = await asyncio.to_thread(self._connect)
            for service in services:
                path = f"/svc/{service}"
                await asyncio.to_thread(client.ensure_path, path)
                await asyncio.to_thread(
                    client.ChildrenWatch,
                    path,
                    _children_watch(loop, (service, k), wake),
                )

    async def lapse(self, service: str, ttl: int) -> float:
        await asyncio.to_thread(self.kazoo.ensure_path, f"/svc/{service}")
        session = await RawSession.open(self.server.port, timeout_ms=ttl * 1000)
        self.sessions.append(session)
        await session.create(f"/svc/{service}/{service}-0", ephemeral=True)
        await session.ping()
        answered = time.perf_counter()
        session.abandon()  # the connection drops; the session lives until timeout
        return answered

    def version(self) -> str:
        return f"{self.server.version()} (kazoo {metadata.version('kazoo')})"


def _stop_kazoo(client: KazooClient) -> None:
    client.stop()
    client.close()


def _resolve(future: asyncio.Future[object], value: object, error: object) -> None:
    if future.done():
        return
    if isinstance(error, BaseException):
        future.set_exception(error)
    else:
        future.set_result(value)


def _children_watch(
    loop: asyncio.AbstractEventLoop, watcher: tuple[str, int], wake: Wake
) -> Callable[[list[str]], None]:
    def changed(_children: list[str]) -> None:  # on kazoo's event thread
        loop.call_soon_threadsafe(wake, watcher, time.perf_counter())

    return changed


class RawSession:
    """One ZooKeeper session on its own asyncio connection (kazoo's codec)."""

    PING_XID = -2

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.xids = itertools.count(1)
        self.lock = asyncio.Lock()

    @classmethod
    async def open(cls, port: int, *, timeout_ms: int) -> RawSession:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        session = cls(reader, writer)
        connect = Connect(0, 0, timeout_ms, 0, b"\x00" * 16, False)
        session._send(bytes(connect.serialize()))
        reply = await session._receive()
        answer, _ = Connect.deserialize(reply, 0)
        if answer.session_id == 0:
            writer.close()
            raise RuntimeError("ZooKeeper refused the session")
        return session

    def _send(self, payload: bytes) -> None:
        self.writer.write(int_struct.pack(len(payload)) + payload)

    async def _receive(self) -> bytes:
        (length,) = int_struct.unpack(await self.reader.readexactly(4))
        return await self.reader.readexactly(length)

    async def call(self, request: object, *, xid: int | None = None) -> bytes:
        header = int_struct.pack(next(self.xids) if xid is None else xid)
        body = header + int_struct.pack(request.type) + bytes(request.serialize())  # type: ignore[attr-defined]
        async with self.lock:
            self._send(body)
            reply = await self._receive()
        answer, offset = ReplyHeader.deserialize(reply, 0)
        if answer.err:
            raise RuntimeError(f"ZooKeeper error {answer.err} for {request}")
        return reply[offset:]

    async def ping(self) -> None:
        await self.call(Ping(), xid=self.PING_XID)

    async def create(self, path: str, *, ephemeral: bool) -> None:
        await self.call(Create(path, b"{}", OPEN_ACL_UNSAFE, 1 if ephemeral else 0))

    async def children(self, path: str) -> list[str]:
        reply = await self.call(GetChildren(path, False))
        return list(GetChildren.deserialize(reply, 0))

    async def close(self) -> None:
        await self.call(Close())
        self.writer.close()

    def abandon(self) -> None:
        self.writer.transport.abort()


# ------------------------------------------------------------------ helpers


async def retry(probe: Callable[[], Awaitable[object]], *, within: float) -> object:
    deadline = time.perf_counter() + within
    while True:
        try:
            return await probe()
        except Exception:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(registry: Registry) -> AsyncIterator[Registry]:
    """Open, yield, close: also when opening failed half-way."""
    try:
        await registry.open()
        yield registry
    finally:
        await registry.close()
