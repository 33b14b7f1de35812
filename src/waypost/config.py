"""AgentConfig: every setting of `waypost agent`, with its default.

The CLI has one flag per field; `WAYPOST_*` environment variables too.
"""

from __future__ import annotations

import socket

import msgspec

DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8500
DEFAULT_DATA_DIR = "./waypost-data"
DEFAULT_DATACENTER = "dc1"
DEFAULT_SELF_PRESERVATION_THRESHOLD = 0.15
DEFAULT_SELF_PRESERVATION_WINDOW = 60.0
DEFAULT_CHECK_CONCURRENCY = 512

#: The Consul API level waypost implements, reported as Config.Version.
CONSUL_API_VERSION = "1.22.0"


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How one agent runs.

    Args:
        http_host: address the HTTP API listens on.
        http_port: its port; 0 picks a free one (tests).
        data_dir: folder of the durable SQLite store.
        dev: keep everything in memory, write nothing.
        node: this agent's node name (default: the host name).
        datacenter: the datacenter name reported everywhere.
        log_level: Python logging level name.
        enable_script_checks: run checks with `Args` (off: registering one is
            a 400, as in Consul without enable_script_checks).
        self_preservation: the brake that stops TTL expiry and reaping when
            more than `self_preservation_threshold` of the TTL checks go quiet
            within `self_preservation_window` seconds.
        panic_threshold: default for services without a
            `waypost-panic-threshold` Meta key: when fewer than this fraction
            of a service's instances pass, `?passing` returns all of them
            (0: off).
        check_concurrency: most active checks probing at once.
    """

    http_host: str = DEFAULT_HTTP_HOST
    http_port: int = DEFAULT_HTTP_PORT
    data_dir: str = DEFAULT_DATA_DIR
    dev: bool = False
    node: str = msgspec.field(default_factory=socket.gethostname)
    datacenter: str = DEFAULT_DATACENTER
    log_level: str = "info"
    enable_script_checks: bool = False
    self_preservation: bool = True
    self_preservation_threshold: float = DEFAULT_SELF_PRESERVATION_THRESHOLD
    self_preservation_window: float = DEFAULT_SELF_PRESERVATION_WINDOW
    panic_threshold: float = 0.0
    check_concurrency: int = DEFAULT_CHECK_CONCURRENCY

    @property
    def advertise_address(self) -> str:
        """The address written into the node entry (never a wildcard)."""
        if self.http_host in ("", "0.0.0.0", "::"):
            return "127.0.0.1"
        return self.http_host
