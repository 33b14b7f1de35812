"""`waypost agent`'s listener flags: HTTPS, TLS and the HTTP server's limits.

One click option per field of `config.TLSConfig` and `config.HttpLimits`
(also read from `WAYPOST_*`, like every agent flag); `listener_settings()`
turns them into AgentConfig fields. README "Running in production" explains
each one.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any, TypeVar

import click

from waypost import config as defaults
from waypost.config import PORT_OFF, HttpLimits, TLSConfig

F = TypeVar("F", bound=Callable[..., Any])

_HOST_PORT = "HOST:PORT"


def _duration(ctx: click.Context, param: click.Parameter, value: object) -> float:
    """A Go duration (`10s`, `1m30s`) or a number of seconds; 0 means off."""
    from waypost.durations import parse_duration

    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a duration (e.g. 10s, 1m; 0 for off)"
            ) from None
    if seconds < 0:
        raise click.BadParameter(f"{value!r} is negative")
    return seconds


def _tls_version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Consul's `tls_min_version` spellings: TLSv1_2, TLSv1_3, tls12, tls13."""
    from waypost.http.listeners import parse_tls_version

    try:
        parse_tls_version(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _seconds(default: float) -> str:
    return f"{default:g}s"


_DURATION = click.STRING  # converted by _duration


# (flag, config field, type, default, help) for the limits, in README order.
_LIMITS: list[tuple[str, str, Any, object, str]] = [
    (
        "--http-max-connections",
        "max_connections",
        click.IntRange(0),
        defaults.DEFAULT_MAX_CONNECTIONS,
        "Open connections, HTTP and HTTPS together; at the cap the agent stops"
        " accepting until one closes (0: no cap).",
    ),
    (
        "--http-max-conns-per-client",
        "max_conns_per_client",
        click.IntRange(0),
        defaults.DEFAULT_MAX_CONNS_PER_CLIENT,
        "Open connections from one client address; over it: 429 and close"
        " (Consul's limits.http_max_conns_per_client; 0: no cap).",
    ),
    (
        "--http-max-url-bytes",
        "max_url_bytes",
        click.IntRange(1, 65535),
        defaults.DEFAULT_MAX_URL_BYTES,
        "Longest request target (path and query); over it: 414.",
    ),
    (
        "--http-max-header-bytes",
        "max_header_bytes",
        click.IntRange(1),
        defaults.DEFAULT_MAX_HEADER_BYTES,
        "Most bytes in a request line and headers; over it: 431.",
    ),
    (
        "--http-max-header-count",
        "max_header_count",
        click.IntRange(1),
        defaults.DEFAULT_MAX_HEADER_COUNT,
        "Most header fields in a request; over it: 431.",
    ),
    (
        "--http-max-body-bytes",
        "max_body_bytes",
        click.IntRange(1),
        defaults.DEFAULT_MAX_BODY_BYTES,
        "Largest request body; over it: 413 (before reading it when"
        " Content-Length says so).",
    ),
    (
        "--http-max-pipeline",
        "max_pipeline",
        click.IntRange(1),
        defaults.DEFAULT_MAX_PIPELINE,
        "Requests read ahead on one connection before it stops reading.",
    ),
    (
        "--http-header-timeout",
        "header_timeout",
        _DURATION,
        _seconds(defaults.DEFAULT_HEADER_TIMEOUT),
        "Time from a request's first byte (or the connection's accept) to its"
        " last header; over it: 408 and close (slowloris).",
    ),
    (
        "--http-read-timeout",
        "read_timeout",
        _DURATION,
        _seconds(defaults.DEFAULT_READ_TIMEOUT),
        "Time from a request's first byte to its last body byte; over it: 408.",
    ),
    (
        "--http-idle-timeout",
        "idle_timeout",
        _DURATION,
        _seconds(defaults.DEFAULT_IDLE_TIMEOUT),
        "How long an idle keep-alive connection (or one whose client reads"
        " no answers) is kept.",
    ),
    (
        "--https-handshake-timeout",
        "handshake_timeout",
        _DURATION,
        _seconds(defaults.DEFAULT_HANDSHAKE_TIMEOUT),
        "Time a client has to finish the TLS handshake (Consul's"
        " limits.https_handshake_timeout).",
    ),
]

_TLS: list[tuple[str, dict[str, Any]]] = [
    ("--tls-cert-file", {"help": "PEM certificate chain the HTTPS listener shows."}),
    ("--tls-key-file", {"help": "PEM private key of --tls-cert-file."}),
    (
        "--tls-ca-file",
        {"help": "PEM CA bundle that client certificates must chain to."},
    ),
    (
        "--tls-verify-incoming",
        {
            "is_flag": True,
            "help": "Mutual TLS: refuse HTTPS clients without a certificate"
            " signed by --tls-ca-file.",
        },
    ),
    (
        "--tls-min-version",
        {
            "callback": _tls_version,
            "default": defaults.DEFAULT_TLS_MIN_VERSION,
            "show_default": True,
            "help": "Oldest TLS version accepted: TLSv1_2 or TLSv1_3"
            " (Consul's spellings; tls12, tls13 too).",
        },
    ),
]


def listener_options(command: F) -> F:
    """Add `--https-addr`, `--https-port`, the TLS flags and the limits."""
    for flag, field, kind, default, text in reversed(_LIMITS):
        command = click.option(
            flag,
            field,
            type=kind,
            default=default,
            show_default=True,
            help=text,
            callback=_duration if kind is _DURATION else None,
            # Named after the flag, not the config field it fills.
            envvar="WAYPOST_" + flag[2:].upper().replace("-", "_"),
        )(command)
    for flag, extra in reversed(_TLS):
        command = click.option(flag, **extra)(command)
    command = click.option(
        "--https-port",
        type=int,
        help="HTTPS port only (Consul's -https-port; address from --client).",
    )(command)
    return click.option(
        "--https-addr",
        default="",
        help=f"{_HOST_PORT} of the HTTPS listener [default: off].",
    )(command)


def listener_settings(
    options: dict[str, Any],
    *,
    client: str | None,
    default_host: str,
    split: Callable[[str], tuple[str, int]],
) -> dict[str, Any]:
    """AgentConfig fields from the options `listener_options` added."""
    https_addr: str = options.pop("https_addr")
    https_port: int | None = options.pop("https_port")
    host, port = split(https_addr) if https_addr.strip() else (default_host, PORT_OFF)
    if client:
        host = client
    if https_port is not None:
        port = https_port
    tls = TLSConfig(
        cert_file=options.pop("tls_cert_file") or "",
        key_file=options.pop("tls_key_file") or "",
        ca_file=options.pop("tls_ca_file") or "",
        verify_incoming=options.pop("tls_verify_incoming"),
        min_version=options.pop("tls_min_version"),
    )
    limits = HttpLimits(**{field: options.pop(field) for _, field, *_ in _LIMITS})
    return {"https_host": host, "https_port": port, "tls": tls, "limits": limits}


def raise_open_files_limit() -> None:
    """Lift the soft open-files limit to the hard one, as Go programs do
    (Consul included): every connection is a descriptor."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # not allowed here: keep what we have
        pass
