"""`waypost agent` flags for cluster mode: where etcd is, and how to log in.

Without `--etcd` none of them matters and the embedded store is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from waypost.config import DEFAULT_ETCD_PREFIX, DEFAULT_MEMBER_LEASE, EtcdConfig

F = TypeVar("F", bound=Callable[..., Any])


def etcd_options(command: F) -> F:
    """Add the --etcd* flags to a click command."""
    options = [
        click.option(
            "--etcd",
            default="",
            help="Cluster mode: etcd client URLs, comma-separated"
            " (http://h1:2379,http://h2:2379,...). Off: embedded store.",
        ),
        click.option(
            "--etcd-prefix",
            default=DEFAULT_ETCD_PREFIX,
            show_default=True,
            help="Key prefix of the shared catalog (one catalog per prefix).",
        ),
        click.option("--etcd-cacert", default="", help="CA bundle for https:// etcd."),
        click.option("--etcd-cert", default="", help="Client certificate for etcd."),
        click.option("--etcd-key", default="", help="Its private key."),
        click.option("--etcd-user", default="", help="etcd user name."),
        click.option("--etcd-password", default="", help="etcd password."),
        click.option(
            "--member-lease",
            default=f"{DEFAULT_MEMBER_LEASE:g}s",
            show_default=True,
            help="Membership lease: a dead agent's node turns critical"
            " within this (a duration, at least 2s).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def etcd_settings(options: dict[str, Any]) -> EtcdConfig:
    """The EtcdConfig from the options `etcd_options` added (popped)."""
    from waypost.durations import parse_duration

    endpoints = tuple(
        url.strip() for url in str(options.pop("etcd")).split(",") if url.strip()
    )
    lease_text = str(options.pop("member_lease"))
    try:
        lease = parse_duration(lease_text)
    except ValueError:
        lease = -1.0
    if lease < 2:
        raise click.BadParameter(
            f"{lease_text!r} is not a duration of at least 2s",
            param_hint="--member-lease",
        )
    user = str(options.pop("etcd_user"))
    password = str(options.pop("etcd_password"))
    if bool(user) != bool(password):
        raise click.BadParameter(
            "give both --etcd-user and --etcd-password, or neither",
            param_hint="--etcd-user",
        )
    for url in endpoints:
        scheme = url.partition("://")[0] if "://" in url else "http"
        if scheme not in ("http", "https"):
            raise click.BadParameter(
                f"{url!r} is not an http:// or https:// URL", param_hint="--etcd"
            )
    return EtcdConfig(
        endpoints=endpoints,
        prefix=str(options.pop("etcd_prefix")) or DEFAULT_ETCD_PREFIX,
        ca_file=str(options.pop("etcd_cacert")),
        cert_file=str(options.pop("etcd_cert")),
        key_file=str(options.pop("etcd_key")),
        user=user,
        password=password,
        member_lease=lease,
    )
