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

#: A port of -1 turns a listener off (Consul's `ports.http = -1`); HTTPS is
#: off unless asked for, as in Consul.
PORT_OFF = -1

# HTTP server limits (README "Running in production"); each has a flag.
#: Open connections, both listeners together; at the cap the agent stops
#: accepting (new clients wait in the kernel's backlog) until one closes.
DEFAULT_MAX_CONNECTIONS = 8192
#: Consul's `limits.http_max_conns_per_client`; over it: 429 and close.
DEFAULT_MAX_CONNS_PER_CLIENT = 200
#: The request target (path and query); over it: 414. Every name and ID fits
#: many times over (http/limits.py: 256 characters, at most 12 bytes each
#: percent-encoded); httptools' URL parser cannot index past 64 KiB.
DEFAULT_MAX_URL_BYTES = 32 * 1024
#: Request line plus headers (Go's `MaxHeaderBytes`, which Consul leaves at
#: 1 MiB); over it: 431.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
#: Header fields per request (Apache's `LimitRequestFields`); over it: 431.
DEFAULT_MAX_HEADER_COUNT = 100
#: A request body; over it: 413. Consul's KV limit (512 KiB) is checked
#: where values are decoded.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Requests read ahead on one connection before it stops reading (pipelining).
DEFAULT_MAX_PIPELINE = 64
#: Seconds from a request's first byte (or from accept) to its last header.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Seconds from a request's first byte to its last body byte.
DEFAULT_READ_TIMEOUT = 30.0
#: Seconds an idle keep-alive connection is kept.
DEFAULT_IDLE_TIMEOUT = 60.0
#: Consul's `limits.https_handshake_timeout`.
DEFAULT_HANDSHAKE_TIMEOUT = 5.0

#: Consul's `tls_min_version` default.
DEFAULT_TLS_MIN_VERSION = "TLSv1_2"

#: Cluster mode: the etcd key prefix, and the membership lease (seconds): a
#: dead agent's node turns critical within this of its last keepalive.
DEFAULT_ETCD_PREFIX = "/waypost"
DEFAULT_MEMBER_LEASE = 10.0

#: DNS (Consul's `ports.dns`, `domain`, `dns_config`): where it listens, the
#: zone it answers for, and Consul's defaults for what it answers.
DEFAULT_DNS_PORT = 8600
DEFAULT_DOMAIN = "consul."
#: Consul's `dns_config.udp_answer_limit`: answers in a UDP reply to a query
#: without EDNS0 (at most 8, Consul's maxUDPAnswerLimit).
DEFAULT_UDP_ANSWER_LIMIT = 3
#: Consul's `dns_config.recursor_timeout`.
DEFAULT_RECURSOR_TIMEOUT = 2.0

#: The Consul API level waypost implements, reported as Config.Version.
CONSUL_API_VERSION = "1.22.0"


class TLSConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The HTTPS listener's certificates (Consul's `tls.https` stanza).

    Args:
        cert_file: PEM certificate chain the agent presents.
        key_file: its PEM private key.
        ca_file: PEM CA bundle that client certificates must chain to.
        verify_incoming: require a client certificate signed by `ca_file`
            (mutual TLS); a client without one is refused in the handshake.
        min_version: oldest TLS version accepted, in Consul's spelling
            (`TLSv1_2`, `TLSv1_3`; the older `tls12`, `tls13` too).
    """

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    verify_incoming: bool = False
    min_version: str = DEFAULT_TLS_MIN_VERSION


class HttpLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What one client may cost the HTTP server; see the DEFAULT_* constants.

    Sizes are bytes, durations seconds; 0 turns a limit off (not the sizes
    of a request's parts, which always have one).
    """

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_conns_per_client: int = DEFAULT_MAX_CONNS_PER_CLIENT
    max_url_bytes: int = DEFAULT_MAX_URL_BYTES
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_pipeline: int = DEFAULT_MAX_PIPELINE
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT


class EtcdConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Cluster mode: where the shared catalog lives (no endpoints: off).

    Args:
        endpoints: etcd client URLs (`http://h1:2379`, `https://…`).
        prefix: the key prefix every row lives under; agents sharing one
            prefix share one catalog.
        ca_file, cert_file, key_file: PEM files for https:// endpoints.
        user, password: etcd authentication (both or neither).
        member_lease: seconds; the lease that keeps this agent a member.
    """

    endpoints: tuple[str, ...] = ()
    prefix: str = DEFAULT_ETCD_PREFIX
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    user: str = ""
    password: str = ""
    member_lease: float = DEFAULT_MEMBER_LEASE

    @property
    def enabled(self) -> bool:
        return bool(self.endpoints)


class DnsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The DNS interface (Consul's `ports.dns`, `domain`, `dns_config`).

    Args:
        host: address the UDP and TCP listeners bind.
        port: their port; 0 picks a free one (tests); -1: no DNS.
        domain: the zone answered (`consul.`); names end with a dot.
        alt_domain: a second zone answered the same way ("" for none).
        recursors: `HOST:PORT` of resolvers that answer names outside the
            zones; none: such names are REFUSED.
        recursor_timeout: seconds to wait for a recursor.
        node_ttl: TTL in seconds of node and `.addr.` answers.
        service_ttl: (name, seconds) pairs; a name ending in `*` is a
            prefix (Consul's `dns_config.service_ttl`); the rest get 0.
        enable_truncate: set TC when a UDP answer was cut, so clients retry
            over TCP (Consul's `dns_config.enable_truncate`).
        udp_answer_limit: answers in a UDP reply without EDNS0.
        a_record_limit: most A/AAAA answers per reply (0: no limit).
        node_meta_txt: node meta as TXT records in the additional section
            (Consul's `enable_additional_node_meta_txt`).
    """

    host: str = DEFAULT_HTTP_HOST
    port: int = DEFAULT_DNS_PORT
    domain: str = DEFAULT_DOMAIN
    alt_domain: str = ""
    recursors: tuple[str, ...] = ()
    recursor_timeout: float = DEFAULT_RECURSOR_TIMEOUT
    node_ttl: float = 0.0
    service_ttl: tuple[tuple[str, float], ...] = ()
    enable_truncate: bool = False
    udp_answer_limit: int = DEFAULT_UDP_ANSWER_LIMIT
    a_record_limit: int = 0
    node_meta_txt: bool = True

    @property
    def enabled(self) -> bool:
        return self.port != PORT_OFF


class AclConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Consul's `acl` stanza.

    Args:
        enabled: check a token on every request (`acl.enabled`).
        default_policy: `allow` or `deny`: what a token may do where no rule
            of its policies says (`acl.default_policy`; Consul's default is
            `allow`, production wants `deny`).
        initial_management: the secret of a management token created at
            start-up (`acl.tokens.initial_management`); bootstraps the ACL
            system, so `PUT /v1/acl/bootstrap` is refused.
        enable_token_persistence: tokens set through `/v1/agent/token/*` are
            kept across restarts (`acl.enable_token_persistence`).
    """

    enabled: bool = False
    default_policy: str = "allow"
    initial_management: str = ""
    enable_token_persistence: bool = False

    def __repr__(self) -> str:  # the secret never reaches a log line
        return (
            f"AclConfig(enabled={self.enabled!r}, default_policy="
            f"{self.default_policy!r}, initial_management="
            f"{'<set>' if self.initial_management else ''!r},"
            f" enable_token_persistence={self.enable_token_persistence!r})"
        )


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How one agent runs.

    Args:
        http_host: address the HTTP API listens on.
        http_port: its port; 0 picks a free one (tests); -1: no plain HTTP.
        https_host: address the HTTPS listener binds.
        https_port: its port; -1 (default): no HTTPS.
        tls: certificates and client verification for HTTPS.
        limits: sizes, timeouts and connection caps of both listeners.
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
        etcd: cluster mode (several agents, one catalog in etcd); off by
            default, when the embedded store is used.
        dns: the DNS interface (UDP and TCP on 127.0.0.1:8600 by default).
        log_json: log one JSON object per line (Consul's `-log-json`).
        acl: ACL tokens and policies (off by default, as in Consul).
        config_files, config_dirs: Consul configuration files (services,
            checks) the agent owns and re-reads on reload.
    """

    http_host: str = DEFAULT_HTTP_HOST
    http_port: int = DEFAULT_HTTP_PORT
    https_host: str = DEFAULT_HTTP_HOST
    https_port: int = PORT_OFF
    tls: TLSConfig = msgspec.field(default_factory=TLSConfig)
    limits: HttpLimits = msgspec.field(default_factory=HttpLimits)
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
    etcd: EtcdConfig = msgspec.field(default_factory=EtcdConfig)
    dns: DnsConfig = msgspec.field(default_factory=DnsConfig)
    log_json: bool = False
    acl: AclConfig = msgspec.field(default_factory=AclConfig)
    #: Consul configuration files and folders (`--config-file`,
    #: `--config-dir`): their services and checks belong to the agent and
    #: are re-read by `PUT /v1/agent/reload` and SIGHUP.
    config_files: tuple[str, ...] = ()
    config_dirs: tuple[str, ...] = ()

    @property
    def advertise_address(self) -> str:
        """The address written into the node entry (never a wildcard)."""
        host = self.http_host if self.http_port != PORT_OFF else self.https_host
        if host in ("", "0.0.0.0", "::"):
            return "127.0.0.1"
        return host
