"""Consul's agent configuration files: `-config-file` / `-config-dir`.

Files are JSON (`.json`) or HCL (`.hcl`), read in the order given; a
directory's `.json` and `.hcl` files in lexical order, other files skipped
(Consul's agent/config/builder.go). What they hold:

- `service` / `services` and `check` / `checks`: Consul's ServiceDefinition
  and CheckDefinition (agent/config/config.go), with nested `check` /
  `checks` on a service, in Consul's snake_case or the API's PascalCase;
  every file's definitions are gathered;
- agent settings that map onto `waypost agent` flags (`node_name`,
  `datacenter`, `data_dir`, `ports`, `client_addr`, `acl`, ...; `FLAGS`
  below): the last file wins, and a flag on the command line wins over
  every file, as in Consul;
- anything else is reported as a warning and ignored (Consul's "unknown
  keys" are not fatal here).

No sockets; this reads files, nothing else.
"""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

logger = logging.getLogger("waypost.config")

#: Keys whose repeated blocks are lists (pyhcl would merge them).
_REPEATED = frozenset({"service", "services", "check", "checks"})
_SUFFIXES = (".json", ".hcl")

#: Consul's setting (dotted path) → the `waypost agent` parameter it sets.
FLAGS: dict[str, str] = {
    "node_name": "node",
    "datacenter": "datacenter",
    "data_dir": "data_dir",
    "log_level": "log_level",
    "log_json": "log_json",
    "enable_script_checks": "enable_script_checks",
    "client_addr": "client",
    "ports.http": "http_port",
    "ports.https": "https_port",
    "ports.dns": "dns_port",
    "domain": "domain",
    "alt_domain": "alt_domain",
    "recursors": "recursor",
    "acl.enabled": "acl_enabled",
    "acl.default_policy": "acl_default_policy",
    "acl.enable_token_persistence": "acl_enable_token_persistence",
    "acl.tokens.initial_management": "acl_initial_management",
    "acl.tokens.master": "acl_initial_management",
}

#: Consul settings accepted without effect (one agent is its own server).
_ACCEPTED = frozenset(
    {
        "server",
        "bootstrap",
        "bootstrap_expect",
        "ui",
        "ui_config",
        "bind_addr",
        "advertise_addr",
        "retry_join",
        "start_join",
        "encrypt",
        "leave_on_terminate",
        "skip_leave_on_interrupt",
        "disable_update_check",
        "telemetry",
        "performance",
        "primary_datacenter",
    }
)


class ConfigError(ValueError):
    """A configuration file cannot be read or is not valid."""


class ConfigFiles(msgspec.Struct, frozen=True, kw_only=True):
    """What the files say, gathered: settings, definitions, warnings."""

    #: `waypost agent` parameter → value.
    flags: dict[str, Any] = {}
    #: (file, service definition), in file order.
    services: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: (file, check definition), in file order.
    checks: tuple[tuple[str, dict[str, Any]], ...] = ()
    warnings: tuple[str, ...] = ()


def paths(files: Sequence[str], dirs: Sequence[str]) -> list[Path]:
    """Every file to read, in Consul's order: the files, then each
    directory's `.json`/`.hcl` files sorted by name."""
    found = [Path(f) for f in files]
    for folder in dirs:
        where = Path(folder)
        if not where.is_dir():
            raise ConfigError(f"config dir {folder}: not a directory")
        found += sorted(
            p for p in where.iterdir() if p.suffix in _SUFFIXES and p.is_file()
        )
    return found


def read(files: Sequence[str], dirs: Sequence[str] = ()) -> ConfigFiles:
    """Read and gather the files; `ConfigError` names the file at fault."""
    flags: dict[str, Any] = {}
    services: list[tuple[str, dict[str, Any]]] = []
    checks: list[tuple[str, dict[str, Any]]] = []
    warnings: list[str] = []
    for path in paths(files, dirs):
        data = _parse(path)
        name = str(path)
        for key, value in data.items():
            if key in ("service", "services"):
                services += [(name, d) for d in _definitions(name, key, value)]
            elif key in ("check", "checks"):
                checks += [(name, d) for d in _definitions(name, key, value)]
            else:
                _setting(name, key, value, flags, warnings)
    return ConfigFiles(
        flags=flags,
        services=tuple(services),
        checks=tuple(checks),
        warnings=tuple(warnings),
    )


def _parse(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    is_hcl = path.suffix == ".hcl"
    try:
        data = _parse_hcl(text) if is_hcl else json.loads(text)
    except Exception as exc:  # pyhcl raises bare ValueError/others
        kind = "HCL" if is_hcl else "JSON"
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be an object")
    return data


def _parse_hcl(text: str) -> Any:
    from hcl.parser import HclParser  # type: ignore[import-untyped]

    parser = HclParser()
    merge = parser.objectlist_flat

    # pyhcl 0.4 merges repeated blocks key by key, so a second `service {}`
    # block's `checks` land in the first one. Consul decodes repeated
    # `service`/`check` blocks as a list: keep them apart.
    def objectlist_flat(self: Any, items: list[Any], replace: bool) -> Any:
        merged = merge([(k, v) for k, v in items if k not in _REPEATED], replace)
        repeated: dict[str, list[Any]] = {}
        for key, value in items:
            if key in _REPEATED:
                repeated.setdefault(key, []).append(value)
        for key, values in repeated.items():
            merged[key] = values[0] if len(values) == 1 else values
        return merged

    parser.objectlist_flat = types.MethodType(objectlist_flat, parser)
    return parser.parse(text)


def _definitions(file: str, key: str, value: Any) -> list[dict[str, Any]]:
    """`service {}` (an object), `services = [...]`, repeated blocks."""
    items = value if isinstance(value, list) else [value]
    flat: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, list):
            flat += item
        else:
            flat.append(item)
    for item in flat:
        if not isinstance(item, dict):
            raise ConfigError(f"{file}: {key}: each definition must be an object")
    return flat


def _setting(
    file: str, key: str, value: Any, flags: dict[str, Any], warnings: list[str]
) -> None:
    if key in _ACCEPTED:
        return
    if isinstance(value, dict) and any(f.startswith(key + ".") for f in FLAGS):
        for sub, item in value.items():
            _setting(file, f"{key}.{sub}", item, flags, warnings)
        return
    flag = FLAGS.get(key)
    if flag is None:
        warnings.append(f"{file}: unknown configuration key {key!r} (ignored)")
        return
    if flag == "recursor" and isinstance(value, str):
        value = [value]
    if flag == "log_level" and isinstance(value, str):
        value = value.lower()
    flags[flag] = value
