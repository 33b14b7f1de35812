"""Operator commands: `waypost services`, `instances`, `members`, `register`,
`deregister`, `watch`, `kv get|put|delete`, `maint`, `snapshot save|restore`.

Built only on the public client (`waypost.client`), as Consul's `command/`
is built on `api/`. Tables on a terminal, plain columns in a pipe, `--json`
for scripts. Exit status:

    0  done
    1  the registry refused the request (bad input, CAS failed)
    2  usage error (click)
    3  not found: no such key or service ID, or no instance matched
    4  the registry is unreachable or failing

Every command takes `--http-addr` (or `WAYPOST_HTTP_ADDR` / `CONSUL_HTTP_ADDR`),
`--token` (or `WAYPOST_HTTP_TOKEN` / `CONSUL_HTTP_TOKEN`) and, for HTTPS,
`--ca-file`, `--client-cert`, `--client-key` (or `CONSUL_CACERT`,
`CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`); Consul's single-dash spellings
(`-http-addr`, `-service`, `-enable`…) work too.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import os
import queue
import signal
import ssl
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

import click
import msgspec

from waypost.cli import main

if TYPE_CHECKING:
    from waypost.client import Client, Instance, InstanceSet

R = TypeVar("R")

EXIT_REFUSED = 1
EXIT_USAGE = 2  # click's own status for a usage error
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 4


# ---------------------------------------------------------------- plumbing


class Context(msgspec.Struct, kw_only=True):
    """What every command gets from the shared options."""

    http_addr: str | None
    token: str | None
    as_json: bool
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    def client(self) -> Client:
        from waypost.client import Client

        cert: tuple[str, str] | str | None = self.client_cert
        if self.client_cert and self.client_key:
            cert = (self.client_cert, self.client_key)
        return Client(self.http_addr, token=self.token, verify=self.ca_file, cert=cert)


def client_options(command: Callable[..., R]) -> Callable[..., R]:
    """`--http-addr`, `--token`, `--json`, and the error handling around them."""

    @functools.wraps(command)
    def run(
        http_addr: str | None,
        token: str | None,
        as_json: bool,
        ca_file: str | None,
        client_cert: str | None,
        client_key: str | None,
        **kwargs: object,
    ) -> R:
        ctx = Context(
            http_addr=http_addr,
            token=token,
            as_json=as_json,
            ca_file=ca_file,
            client_cert=client_cert,
            client_key=client_key,
        )
        with _errors(ctx):
            return command(ctx, **kwargs)

    run = click.option(
        "--json", "-json", "as_json", is_flag=True, help="Print JSON, for scripts."
    )(run)
    # HTTPS (Consul's CLI flags); unset, the client reads WAYPOST_CACERT /
    # CONSUL_CACERT, WAYPOST_CLIENT_CERT / CONSUL_CLIENT_CERT and the keys.
    run = click.option(
        "--client-key",
        "-client-key",
        help="Client certificate's key [env: WAYPOST_CLIENT_KEY, CONSUL_CLIENT_KEY].",
    )(run)
    run = click.option(
        "--client-cert",
        "-client-cert",
        help="Client certificate for mutual TLS"
        " [env: WAYPOST_CLIENT_CERT, CONSUL_CLIENT_CERT].",
    )(run)
    run = click.option(
        "--ca-file",
        "-ca-file",
        help="CA bundle that verifies the registry's certificate"
        " [env: WAYPOST_CACERT, CONSUL_CACERT].",
    )(run)
    run = click.option(
        "--token",
        "-token",
        envvar=["WAYPOST_HTTP_TOKEN", "CONSUL_HTTP_TOKEN"],
        help="ACL token [env: WAYPOST_HTTP_TOKEN, CONSUL_HTTP_TOKEN].",
    )(run)
    return click.option(
        "--http-addr",
        "-http-addr",
        envvar=["WAYPOST_HTTP_ADDR", "CONSUL_HTTP_ADDR"],
        help=(
            "Registry address, HOST:PORT or URL [default: 127.0.0.1:8500;"
            " env: WAYPOST_HTTP_ADDR, CONSUL_HTTP_ADDR]."
        ),
    )(run)


@contextlib.contextmanager
def _errors(ctx: Context) -> Iterator[None]:
    """One line on stderr that says what to do, and an exit status to test."""
    from waypost.client import (
        NotFound,
        RegistryConnectError,
        RegistryUnavailable,
        RequestRejected,
        WaypostError,
    )
    from waypost.exceptions import InvalidAddress

    try:
        yield
    except InvalidAddress as exc:
        # A usage error: nothing was sent, so the registry refused nothing.
        _fail(
            f"{exc} (from --http-addr, WAYPOST_HTTP_ADDR or CONSUL_HTTP_ADDR)",
            EXIT_USAGE,
        )
    except RegistryConnectError as exc:
        with ctx.client() as client:
            address = client.address
        tls = _tls_failure(exc)
        if tls is not None:
            _fail(
                f"TLS with the registry at {address} failed: {tls} (set --ca-file,"
                " and --client-cert/--client-key if it asks for a certificate)",
                EXIT_UNAVAILABLE,
            )
        _fail(
            f"cannot reach the registry at {address} — is `waypost agent` running?"
            " (set --http-addr or WAYPOST_HTTP_ADDR to point elsewhere)",
            EXIT_UNAVAILABLE,
        )
    except RegistryUnavailable as exc:
        _fail(f"the registry could not serve the request: {exc}", EXIT_UNAVAILABLE)
    except NotFound as exc:
        _fail(f"not found: {exc}", EXIT_NOT_FOUND)
    except RequestRejected as exc:
        _fail(f"the registry refused the request: {exc}", EXIT_REFUSED)
    except WaypostError as exc:
        _fail(str(exc), EXIT_REFUSED)


def _tls_failure(exc: BaseException) -> str | None:
    """The TLS error behind a failed connection, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen.reason or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _fail(message: str, code: int) -> None:
    click.echo(f"waypost: error: {message}", err=True)
    sys.exit(code)


def _print_json(value: object) -> None:
    click.echo(msgspec.json.encode(value).decode())


#: Colours of the STATUS column on a terminal (none in a pipe).
STATUS_COLOURS = {
    "passing": "green",
    "alive": "green",
    "warning": "yellow",
    "critical": "red",
    "maintenance": "red",
}


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A rich table on a terminal (STATUS coloured); plain columns in a pipe."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=True)
    cells = [[str(cell) for cell in row] for row in rows]
    if console.is_terminal:
        table = Table(*headers, header_style="bold")
        status = headers.index("STATUS") if "STATUS" in headers else -1
        for row in cells:
            table.add_row(
                *(
                    Text(cell, style=STATUS_COLOURS.get(cell, ""))
                    if n == status
                    else Text(cell)
                    for n, cell in enumerate(row)
                )
            )
        console.print(table)
        return
    widths = [
        max([len(h), *(len(row[n]) for row in cells)]) for n, h in enumerate(headers)
    ]
    for row in [list(headers), *cells]:
        click.echo(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )


def _instance_json(instance: Instance) -> dict[str, object]:
    data: dict[str, object] = msgspec.to_builtins(instance)
    data["weight"] = instance.weight
    return data


def _instance_rows(found: InstanceSet) -> list[list[object]]:
    return [
        [
            i.service_id,
            i.endpoint,
            i.status.value,
            f"{i.weight:g}",
            i.node,
            ",".join(i.tags),
        ]
        for i in found
    ]


_INSTANCE_HEADERS = ("ID", "ADDRESS", "STATUS", "WEIGHT", "NODE", "TAGS")


def _show_instances(ctx: Context, name: str, found: InstanceSet) -> None:
    if ctx.as_json:
        _print_json([_instance_json(i) for i in found])
    elif found:
        _table(_INSTANCE_HEADERS, _instance_rows(found))
    if not found:
        _fail(f"no instance of {name!r} matched", EXIT_NOT_FOUND)


# ---------------------------------------------------------------- discovery


@main.command()
@client_options
def services(ctx: Context) -> None:
    """List the services in the catalog, with their tags."""
    with ctx.client() as client:
        found = client.services()
    if ctx.as_json:
        _print_json(found)
        return
    _table(("SERVICE", "TAGS"), [[n, ",".join(t)] for n, t in sorted(found.items())])


@main.command()
@click.argument("name")
@click.option("--passing", "-passing", is_flag=True, help="Only passing instances.")
@click.option("--tag", "-tag", "tags", multiple=True, help="Only with this tag.")
@client_options
def instances(ctx: Context, name: str, passing: bool, tags: tuple[str, ...]) -> None:
    """List the instances of service NAME (exit 3 when none match)."""
    with ctx.client() as client:
        found = client.instances(name, passing=passing, tags=tags)
    _show_instances(ctx, name, found)


def _member_status(status: int) -> str:
    # serf's MemberStatus: 1 alive, 2 leaving, 3 left, 4 failed.
    return {1: "alive", 2: "leaving", 3: "left", 4: "failed"}.get(
        status, f"status {status}"
    )


@main.command()
@click.option(
    "--service",
    "-service",
    help="List the instances of this service instead of registry nodes.",
)
@client_options
def members(ctx: Context, service: str | None) -> None:
    """List registry nodes, or a service's instances with `-service NAME`."""
    with ctx.client() as client:
        if service:
            _show_instances(ctx, service, client.instances(service))
            return
        found = client.members()
        servers = [] if ctx.as_json else client.servers()
    if ctx.as_json:
        _print_json(found)
        return
    _table(
        ("NODE", "ADDRESS", "STATUS", "DC", "BUILD"),
        [
            [
                m.name,
                f"{m.address}:{m.port}",
                _member_status(m.status),
                m.datacenter,
                m.build,
            ]
            for m in found
        ],
    )
    if servers:
        # Where the data lives: the agent itself, or the etcd members.
        click.echo()
        _table(
            ("SERVER", "ADDRESS", "ROLE"),
            [
                [s.node, s.address, "leader" if s.leader else "follower"]
                for s in servers
            ],
        )


# ---------------------------------------------------------------- registration


def _parse_meta(pairs: Sequence[str]) -> dict[str, str]:
    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--meta")
        meta[key] = value
    return meta


@main.command()
@click.argument("name")
@click.option("--port", "-port", type=int, required=True, help="The instance's port.")
@click.option("--address", "-address", default="", help="Its address [node's].")
@click.option("--id", "-id", "service_id", help="Service ID [NAME-HOST-PORT].")
@click.option("--tag", "-tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--meta", "-meta", "meta", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("--weight", "-weight", type=int, help="Traffic weight; 0 drains it.")
@click.option(
    "--ttl",
    "-ttl",
    help="Add a TTL check (e.g. 10s); it starts passing and turns critical"
    " unless something heartbeats it.",
)
@client_options
def register(
    ctx: Context,
    name: str,
    port: int,
    address: str,
    service_id: str | None,
    tags: tuple[str, ...],
    meta: tuple[str, ...],
    weight: int | None,
    ttl: str | None,
) -> None:
    """Register one instance of service NAME on the agent; print its ID."""
    with ctx.client() as client:
        registered = client.register_service(
            name,
            port=port,
            address=address,
            service_id=service_id,
            tags=tags,
            meta=_parse_meta(meta),
            weight=weight,
            ttl=ttl,
        )
    if ctx.as_json:
        check = {"CheckID": f"service:{registered}"} if ttl else {}
        _print_json({"ID": registered, **check})
    else:
        click.echo(registered)


@main.command()
@click.argument("service_id", metavar="ID")
@client_options
def deregister(ctx: Context, service_id: str) -> None:
    """Deregister the service instance ID from the agent (exit 3 if unknown)."""
    with ctx.client() as client:
        client.deregister(service_id)
    if ctx.as_json:
        _print_json({"ID": service_id, "Deregistered": True})
    else:
        click.echo(f"deregistered {service_id}")


# ---------------------------------------------------------------- watch


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and Ctrl-C end `watch` quietly, with status 0."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
@click.argument("name")
@click.option(
    "--passing/--any",
    "-passing/-any",
    default=True,
    show_default=True,
    help="Only passing instances, or every instance.",
)
@click.option("--tag", "-tag", "tags", multiple=True, help="Only with this tag.")
@client_options
def watch(ctx: Context, name: str, passing: bool, tags: tuple[str, ...]) -> None:
    """Print service NAME's instances, then every change as it happens.

    Runs until Ctrl-C or SIGTERM. While the registry is unreachable it says
    so once, and goes on when it is back. With --json: one JSON object per
    line (index, stale, instances).
    """

    changes: queue.Queue[InstanceSet] = queue.Queue()
    with ctx.client() as client, _stop_on_signals(), _client_log_silenced():
        watcher = client.watch(name, passing=passing, tags=tags, on_change=changes.put)
        with watcher:
            watcher.instances()  # raises if the registry never answered
            previous: InstanceSet | None = None
            while True:
                found = changes.get()
                _show_change(ctx, name, found, previous)
                previous = found


@contextlib.contextmanager
def _client_log_silenced() -> Iterator[None]:
    """`watch` says itself, once, that the registry went away and came back.

    The client logs the same event as a warning; unconfigured, Python prints
    it to stderr, so the user would read it twice.
    """
    log = logging.getLogger("waypost.client")
    handler = logging.NullHandler()
    propagate, log.propagate = log.propagate, False
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _show_change(
    ctx: Context, name: str, found: InstanceSet, previous: InstanceSet | None
) -> None:
    if ctx.as_json:
        _print_json(
            {
                "service": name,
                "index": found.index,
                "stale": found.is_stale,
                "error": found.error,
                "instances": [_instance_json(i) for i in found],
            }
        )
        return
    if found.is_stale:
        click.echo(
            f"{name}: registry unreachable ({found.error}); last known set below"
        )
    elif previous is not None and previous.is_stale:
        click.echo(f"{name}: registry reachable again")
    click.echo(f"{name}: {len(found)} instance(s) at index {found.index}")
    for instance in found:
        status = instance.status.value
        # click.echo drops the colour when stdout is not a terminal.
        coloured = click.style(status, fg=STATUS_COLOURS.get(status))
        click.echo(f"  {instance.service_id}  {instance.endpoint}  {coloured}")
    sys.stdout.flush()


# ---------------------------------------------------------------- kv


@main.group()
def kv() -> None:
    """Read and write the key/value store."""


@kv.command("get")
@click.argument("key")
@click.option("--recurse", "-recurse", is_flag=True, help="Every key under KEY.")
@client_options
def kv_get(ctx: Context, key: str, recurse: bool) -> None:
    """Print the value of KEY (exit 3 if it does not exist)."""
    with ctx.client() as client:
        if recurse:
            entries = client.kv_list(key)
        else:
            entry = client.kv_get(key)
            entries = [] if entry is None else [entry]
    if not entries:
        _fail(f"no key {key!r}", EXIT_NOT_FOUND)
    if ctx.as_json:
        rows = [_kv_json(e.key, e.value, e.flags, e.modify_index) for e in entries]
        _print_json(rows if recurse else rows[0])
    elif recurse:
        for e in entries:
            click.echo(f"{e.key}:{(e.value or b'').decode(errors='replace')}")
    else:
        sys.stdout.buffer.write(entries[0].value or b"")
        sys.stdout.buffer.write(b"\n")


def _kv_json(
    key: str, value: bytes | None, flags: int, modify_index: int
) -> dict[str, object]:
    """The value base64-encoded, as Consul's API gives it (any bytes survive),
    and as `text` too when it is valid UTF-8."""
    row: dict[str, object] = {
        "key": key,
        "value": None if value is None else base64.b64encode(value).decode(),
        "flags": flags,
        "modify_index": modify_index,
    }
    if value is not None:
        with contextlib.suppress(UnicodeDecodeError):
            row["text"] = value.decode()
    return row


@kv.command("put")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--flags", "-flags", type=int, default=0, help="Opaque number to keep.")
@click.option("--cas", "-cas", type=int, help="Write only at this ModifyIndex.")
@client_options
def kv_put(
    ctx: Context, key: str, value: str | None, flags: int, cas: int | None
) -> None:
    """Set KEY to VALUE (`-` or nothing reads standard input)."""
    data = sys.stdin.buffer.read() if value in (None, "-") else str(value).encode()
    with ctx.client() as client:
        written = client.kv_put(key, data, flags=flags, cas=cas)
    if not written:
        _fail(f"did not write {key!r}: CAS index {cas} is not current", EXIT_REFUSED)
    if ctx.as_json:
        _print_json({"key": key, "written": True})
    else:
        click.echo(f"Success! Data written to: {key}")


@kv.command("delete")
@click.argument("key")
@click.option("--recurse", "-recurse", is_flag=True, help="Every key under KEY.")
@click.option("--cas", "-cas", type=int, help="Delete only at this ModifyIndex.")
@client_options
def kv_delete(ctx: Context, key: str, recurse: bool, cas: int | None) -> None:
    """Delete KEY (or every key under it with --recurse)."""
    with ctx.client() as client:
        deleted = client.kv_delete(key, recurse=recurse, cas=cas)
    if not deleted:
        _fail(f"did not delete {key!r}: CAS index {cas} is not current", EXIT_REFUSED)
    if ctx.as_json:
        _print_json({"key": key, "deleted": True})
    else:
        click.echo(f"Success! Deleted key: {key}")


# ---------------------------------------------------------------- snapshot


@main.group()
def snapshot() -> None:
    """Save the registry's whole state to a file, or restore one."""


@snapshot.command("save")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("--stale", "-stale", is_flag=True, help="Skip the catch-up (cluster).")
@client_options
def snapshot_save(ctx: Context, file: str, stale: bool) -> None:
    """Write the state at one index to FILE (a gzipped tar; written whole,
    then renamed into place, so FILE is never half a snapshot)."""
    with ctx.client() as client:
        archive = client.snapshot_save(stale=stale)
    target = Path(file)
    partial = target.with_name(target.name + ".part")
    try:
        partial.write_bytes(archive)
        os.replace(partial, target)
    except OSError as exc:
        _fail(f"cannot write {file}: {exc.strerror or exc}", EXIT_REFUSED)
    if ctx.as_json:
        _print_json({"file": file, "bytes": len(archive)})
    else:
        click.echo(f"Saved snapshot to {file} ({len(archive)} bytes)")


@snapshot.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@client_options
def snapshot_restore(ctx: Context, file: str) -> None:
    """Replace the registry's whole state with FILE's."""
    archive = Path(file).read_bytes()
    with ctx.client() as client:
        client.snapshot_restore(archive)
    if ctx.as_json:
        _print_json({"file": file, "restored": True})
    else:
        click.echo("Restored snapshot")


# ---------------------------------------------------------------- maintenance


@main.command()
@click.option("--enable", "-enable", "mode", flag_value="enable", help="Enter.")
@click.option("--disable", "-disable", "mode", flag_value="disable", help="Leave.")
@click.option("--service", "-service", "service_id", help="One service ID only.")
@click.option("--reason", "-reason", default="", help="Why (shown in the check).")
@client_options
def maint(ctx: Context, mode: str | None, service_id: str | None, reason: str) -> None:
    """Put the node or a service in maintenance, or list what is in it.

    In maintenance an instance is critical, so discovery skips it.
    """
    with ctx.client() as client:
        if mode is not None:
            client.maintenance(mode == "enable", reason=reason, service_id=service_id)
            what = f"service {service_id}" if service_id else "node"
            if ctx.as_json:
                _print_json({"target": what, "maintenance": mode == "enable"})
            else:
                click.echo(f"{what}: maintenance {mode}d")
            return
        checks = [
            c
            for c in client.checks()
            if c.check_id == "_node_maintenance"
            or c.check_id.startswith("_service_maintenance:")
        ]
    if ctx.as_json:
        _print_json([{"service_id": c.service_id, "reason": c.notes} for c in checks])
        return
    _table(
        ("TARGET", "REASON"),
        [
            [f"service {c.service_id}" if c.service_id else "node", c.notes]
            for c in checks
        ],
    )
