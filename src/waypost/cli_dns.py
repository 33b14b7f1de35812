"""`waypost agent` flags for the DNS interface (Consul's `ports.dns`,
`domain`, `alt_domain`, `recursors` and `dns_config`).

README "DNS" explains each one; `dns_settings()` turns them into a DnsConfig.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from waypost.config import (
    DEFAULT_DNS_PORT,
    DEFAULT_DOMAIN,
    DEFAULT_HTTP_HOST,
    DEFAULT_RECURSOR_TIMEOUT,
    DEFAULT_UDP_ANSWER_LIMIT,
    PORT_OFF,
    DnsConfig,
)

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DNS_ADDR = f"{DEFAULT_HTTP_HOST}:{DEFAULT_DNS_PORT}"


def dns_options(command: F) -> F:
    """Add the DNS flags to a click command."""
    options = [
        click.option(
            "--dns-addr",
            default=DEFAULT_DNS_ADDR,
            show_default=True,
            help="HOST:PORT the DNS interface listens on, UDP and TCP (port 0"
            ' picks a free one; "": off).',
        ),
        click.option("--dns-port", type=int, help="Port only (Consul's -dns-port)."),
        click.option(
            "--domain",
            default=DEFAULT_DOMAIN,
            show_default=True,
            help="The DNS zone answered (NAME.service.consul).",
        ),
        click.option("--alt-domain", default="", help="A second zone answered too."),
        click.option(
            "--recursor",
            multiple=True,
            help="HOST[:PORT] of a resolver for names outside our zones"
            " (repeatable; none: such names are REFUSED).",
        ),
        click.option(
            "--dns-node-ttl",
            default="0s",
            show_default=True,
            help="TTL of node and .addr. answers (a duration).",
        ),
        click.option(
            "--dns-service-ttl",
            multiple=True,
            help="NAME=DURATION: TTL of one service's answers; NAME ending in *"
            " is a prefix, * alone every service (repeatable; default 0s).",
        ),
        click.option(
            "--dns-enable-truncate",
            is_flag=True,
            help="Set TC on UDP answers that were cut, so clients retry over TCP.",
        ),
        click.option(
            "--dns-udp-answer-limit",
            type=click.IntRange(1),
            default=DEFAULT_UDP_ANSWER_LIMIT,
            show_default=True,
            help="Answers in a UDP reply to a query without EDNS0 (at most 8 are"
            " ever sent).",
        ),
        click.option(
            "--dns-a-record-limit",
            type=click.IntRange(0),
            default=0,
            show_default=True,
            help="Most A/AAAA answers per reply (0: no limit).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def dns_settings(
    options: dict[str, Any],
    *,
    client: str | None,
    split: Callable[[str], tuple[str, int]],
) -> DnsConfig:
    """The DnsConfig from the options `dns_options` added (popped)."""
    addr = str(options.pop("dns_addr"))
    port_only = options.pop("dns_port")
    host, port = DEFAULT_HTTP_HOST, PORT_OFF
    if addr.strip():
        host, port = split(addr)
    if client and addr == DEFAULT_DNS_ADDR:
        host = client  # Consul's -client binds HTTP and DNS
    if port_only is not None:
        port = int(port_only)
    return DnsConfig(
        host=host,
        port=port,
        domain=str(options.pop("domain")),
        alt_domain=str(options.pop("alt_domain")),
        recursors=tuple(_recursor(r) for r in options.pop("recursor")),
        recursor_timeout=DEFAULT_RECURSOR_TIMEOUT,
        node_ttl=_duration(str(options.pop("dns_node_ttl")), "--dns-node-ttl"),
        service_ttl=tuple(_service_ttl(v) for v in options.pop("dns_service_ttl")),
        enable_truncate=bool(options.pop("dns_enable_truncate")),
        udp_answer_limit=int(options.pop("dns_udp_answer_limit")),
        a_record_limit=int(options.pop("dns_a_record_limit")),
    )


def _duration(text: str, flag: str) -> float:
    from waypost.durations import parse_duration

    try:
        seconds = float(text) if text.strip().isdigit() else parse_duration(text)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise click.BadParameter(
            f"{text!r} is not a duration (e.g. 0s, 30s)", param_hint=flag
        )
    return seconds


def _service_ttl(value: str) -> tuple[str, float]:
    name, sep, ttl = value.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(
            f"{value!r} is not NAME=DURATION (e.g. web=30s, db-*=5s)",
            param_hint="--dns-service-ttl",
        )
    return name.strip(), _duration(ttl, "--dns-service-ttl")


def _recursor(value: str) -> str:
    """HOST[:PORT] → HOST:PORT (port 53 by default; IPv6 in brackets)."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, "53"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(
            f"{value!r} is not HOST[:PORT]", param_hint="--recursor"
        )
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
