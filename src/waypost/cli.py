"""The `waypost` command: `waypost agent` runs the server.

Consul's single-dash spellings (`-node`, `-dev`, `-server`…) are accepted for
the flags we share, so `consul agent -server -bootstrap -node localhost`
works with `waypost` in place of `consul`.
"""

from __future__ import annotations

import asyncio
import sys

import click

from waypost import __version__
from waypost.cli_acl import acl_options, acl_settings
from waypost.cli_cluster import etcd_options, etcd_settings
from waypost.cli_dns import dns_options, dns_settings
from waypost.cli_listeners import (
    listener_options,
    listener_settings,
    raise_open_files_limit,
)
from waypost.config import (
    DEFAULT_CHECK_CONCURRENCY,
    DEFAULT_DATA_DIR,
    DEFAULT_DATACENTER,
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_SELF_PRESERVATION_THRESHOLD,
    DEFAULT_SELF_PRESERVATION_WINDOW,
    PORT_OFF,
    AgentConfig,
)
from waypost.exceptions import StartupError

# Consul's flags we share, spelled Consul's way (one dash) → ours.
_CONSUL_FLAGS = {
    "-dev": "--dev",
    "-node": "--node",
    "-data-dir": "--data-dir",
    "-datacenter": "--datacenter",
    "-http-port": "--http-port",
    "-client": "--client",
    "-server": "--server",
    "-bootstrap": "--bootstrap",
    "-log-level": "--log-level",
    "-enable-script-checks": "--enable-script-checks",
    "-https-port": "--https-port",
    "-dns-port": "--dns-port",
    "-domain": "--domain",
    "-alt-domain": "--alt-domain",
    "-recursor": "--recursor",
    "-log-json": "--log-json",
    "-config-file": "--config-file",
    "-config-dir": "--config-dir",
}


def translate_consul_flags(args: list[str]) -> list[str]:
    """Rewrite `-node x` / `-node=x` into `--node x` / `--node=x`."""
    out = []
    for arg in args:
        name, sep, value = arg.partition("=")
        if name in _CONSUL_FLAGS:
            arg = _CONSUL_FLAGS[name] + sep + value
        out.append(arg)
    return out


def _split_addr(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8500)")
    return host.strip("[]") or DEFAULT_HTTP_HOST, int(port)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="waypost")
def main() -> None:
    """waypost: a service registry that speaks Consul's HTTP API."""


@main.command(context_settings={"auto_envvar_prefix": "WAYPOST"})
@click.option(
    "--http-addr",
    default=f"{DEFAULT_HTTP_HOST}:{DEFAULT_HTTP_PORT}",
    show_default=True,
    help='HOST:PORT the HTTP API listens on (port 0 picks a free one; "": off).',
)
@click.option("--http-port", type=int, help="Port only (Consul's -http-port).")
@click.option("--client", help="Listen address only (Consul's -client).")
@click.option(
    "--data-dir",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Folder of the durable SQLite store; one agent per folder.",
)
@click.option("--dev", is_flag=True, help="Keep everything in memory; write nothing.")
@click.option(
    "--node", default=None, help="This agent's node name [default: host name]."
)
@click.option(
    "--datacenter",
    default=DEFAULT_DATACENTER,
    show_default=True,
    help="Datacenter name.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(
        ["trace", "debug", "info", "warn", "warning", "error"], case_sensitive=False
    ),
    help="How much to log.",
)
@click.option(
    "--enable-script-checks",
    is_flag=True,
    help="Run checks with Args (scripts); off: registering one is a 400.",
)
@click.option(
    "--self-preservation",
    type=click.Choice(["on", "off"], case_sensitive=False),
    default="on",
    show_default=True,
    help="Hold TTL expiry and reaping when many clients go quiet at once.",
)
@click.option(
    "--self-preservation-threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=DEFAULT_SELF_PRESERVATION_THRESHOLD,
    show_default=True,
    help="Fraction of TTL checks going quiet within the window that engages it.",
)
@click.option(
    "--self-preservation-window",
    default=f"{DEFAULT_SELF_PRESERVATION_WINDOW:g}s",
    show_default=True,
    help="Window the brake counts expiries over (a duration: 30s, 1m).",
)
@click.option(
    "--panic-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="When fewer than this fraction of a service's instances pass,"
    " ?passing returns all of them (0: off; per service: Meta"
    " waypost-panic-threshold).",
)
@click.option(
    "--check-concurrency",
    type=click.IntRange(1),
    default=DEFAULT_CHECK_CONCURRENCY,
    show_default=True,
    help="Most active checks probing at once.",
)
@click.option(
    "--log-json",
    is_flag=True,
    help="Log one JSON object per line (@timestamp, @level, @message,"
    " @module and fields), as Consul's -log-json.",
)
@listener_options
@etcd_options
@dns_options
@acl_options
@click.option(
    "--config-file",
    "config_file",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Consul configuration file (.json or .hcl): services, checks,"
    " settings; repeatable. Re-read by PUT /v1/agent/reload and SIGHUP.",
)
@click.option(
    "--config-dir",
    "config_dir",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Folder of configuration files (*.json, *.hcl, by name); repeatable.",
)
@click.option("--server", is_flag=True, hidden=True, help="Accepted for Consul; no-op.")
@click.option(
    "--bootstrap", is_flag=True, hidden=True, help="Accepted for Consul; no-op."
)
def agent(
    http_addr: str,
    http_port: int | None,
    client: str | None,
    data_dir: str,
    dev: bool,
    node: str | None,
    datacenter: str,
    log_level: str,
    enable_script_checks: bool,
    self_preservation: str,
    self_preservation_threshold: float,
    self_preservation_window: str,
    panic_threshold: float,
    check_concurrency: int,
    log_json: bool,
    config_file: tuple[str, ...],
    config_dir: tuple[str, ...],
    server: bool,
    bootstrap: bool,
    **listening: object,
) -> None:
    """Run the registry server (embedded durable store by default).

    -server and -bootstrap are accepted for Consul compatibility and do
    nothing: a single waypost agent is always its own leader.
    """
    host, port = DEFAULT_HTTP_HOST, PORT_OFF  # --http-addr "": no plain HTTP
    if http_addr.strip():
        host, port = _split_addr(http_addr)
    if client:
        host = client
    if http_port is not None:
        port = http_port
    level = {"trace": "DEBUG", "warn": "WARNING"}.get(
        log_level.lower(), log_level.upper()
    )
    from waypost.logs import configure_logging

    configure_logging(level, json_lines=log_json)
    etcd = etcd_settings(listening)
    dns = dns_settings(listening, client=client, split=_split_addr)
    acl = acl_settings(listening)
    settings = listener_settings(
        listening, client=client, default_host=host, split=_split_addr
    )
    if node:
        settings["node"] = node
    config = AgentConfig(
        http_host=host,
        http_port=port,
        data_dir=data_dir,
        dev=dev,
        datacenter=datacenter,
        log_level=level.lower(),
        enable_script_checks=enable_script_checks,
        self_preservation=self_preservation.lower() == "on",
        self_preservation_threshold=self_preservation_threshold,
        self_preservation_window=_window(self_preservation_window),
        panic_threshold=panic_threshold,
        check_concurrency=check_concurrency,
        etcd=etcd,
        dns=dns,
        log_json=log_json,
        acl=acl,
        config_files=config_file,
        config_dirs=config_dir,
        **settings,
    )
    raise_open_files_limit()
    from waypost.server import Agent

    try:
        instance = Agent(config)
        _run(instance.serve())
    except StartupError as exc:
        click.echo(f"waypost: error: {exc}", err=True)
        sys.exit(1)


@main.command()
def openapi() -> None:
    """Print the OpenAPI 3.1 description of the /v1 routes (JSON)."""
    import json

    from waypost.http.openapi import build

    click.echo(json.dumps(build(), indent=2))


def _window(value: str) -> float:
    from waypost.durations import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise click.BadParameter(
            f"{value!r} is not a positive duration (e.g. 30s, 1m)",
            param_hint="--self-preservation-window",
        )
    return seconds


def _run(coro: object) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(coro)  # type: ignore[arg-type]
        return
    uvloop.run(coro)  # type: ignore[arg-type]


def entrypoint() -> None:
    """Console script: translate Consul's flags, then run click."""
    args = sys.argv[1:]
    default_map: dict[str, object] = {}
    if args and args[0] == "agent":
        args = translate_consul_flags(args)
        default_map = {"agent": _config_file_defaults(args)}
    main.main(args=args, prog_name="waypost", default_map=default_map)


def _config_file_defaults(args: list[str]) -> dict[str, object]:
    """The settings of `--config-file`/`--config-dir` files, as defaults
    of `waypost agent`'s flags: a flag on the command line (or in the
    environment) wins, as in Consul. A file that cannot be read stops here;
    unknown keys are logged by the agent when it reads the files again."""
    files = _values_of(args, "--config-file")
    dirs = _values_of(args, "--config-dir")
    if not files and not dirs:
        return {}
    from waypost.config_files import ConfigError, read

    try:
        found = read(files, dirs)
    except ConfigError as exc:
        click.echo(f"waypost: error: {exc}", err=True)
        sys.exit(1)
    defaults = dict(found.flags)
    if "--http-addr" in {a.partition("=")[0] for a in args}:
        defaults.pop("http_port", None)  # --http-addr's port wins
    return defaults


def _values_of(args: list[str], flag: str) -> list[str]:
    values = []
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.partition("=")[2])
    return values


if __name__ == "__main__":  # pragma: no cover
    entrypoint()

from waypost import commands as _commands  # noqa: E402,F401  (registers the operator commands)
