"""The import direction ARCHITECTURE.md draws, enforced.

client, commands  →  waypost.client only (the public client)
http, eureka, dns (transports) →  registry (the narrow interface), core, never the agent
metrics           →  nothing of waypost (any layer records into it)
registry          →  core, store protocol
store             →  core values, never a transport
core              →  nothing with I/O, no transport, no registry
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "waypost"


def imports(path: Path) -> set[str]:
    """Every `waypost.*` module a file imports (TYPE_CHECKING ones too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("waypost"))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("waypost")
        ):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def files(*parts: str) -> list[Path]:
    where = SRC.joinpath(*parts)
    return sorted(where.rglob("*.py")) if where.is_dir() else [where]


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.name} imports {name}"
        for path in paths
        for name in sorted(imports(path))
        if name.startswith(forbidden)
    ]


RULES = {
    "http never imports the agent, the stores or the runner": (
        files("http"),
        ("waypost.server", "waypost.store", "waypost.runner", "waypost.cli"),
    ),
    "the dashboard (ui) never imports the agent, the stores or the runner": (
        files("ui"),
        ("waypost.server", "waypost.store", "waypost.runner", "waypost.cli"),
    ),
    "eureka never imports the agent, the stores or the runner": (
        files("eureka"),
        ("waypost.server", "waypost.store", "waypost.runner", "waypost.cli"),
    ),
    "dns never imports the agent, http, the stores or the runner": (
        files("dns"),
        (
            "waypost.server",
            "waypost.http",
            "waypost.store",
            "waypost.runner",
            "waypost.cli",
        ),
    ),
    "metrics record from any layer, so import none": (
        files("metrics", "__init__.py"),
        ("waypost.",),
    ),
    "metrics export reads the registry, never a transport or the agent": (
        files("metrics"),
        ("waypost.server", "waypost.http", "waypost.dns", "waypost.cli"),
    ),
    "the client imports no server-side code": (
        files("client"),
        (
            "waypost.server",
            "waypost.registry",
            "waypost.store",
            "waypost.http",
            "waypost.runner",
            "waypost.core.catalog",
            "waypost.core.planner",
            "waypost.core.changes",
        ),
    ),
    "operator commands use only the public client": (
        files("commands.py"),
        (
            "waypost.server",
            "waypost.registry",
            "waypost.store",
            "waypost.http",
            "waypost.runner",
            "waypost.core",
            "waypost.client._",
        ),
    ),
    "stores know no transport and no registry": (
        files("store"),
        ("waypost.http", "waypost.server", "waypost.registry", "waypost.runner"),
    ),
    "the registry knows no transport and no agent": (
        files("registry.py"),
        ("waypost.http", "waypost.server", "waypost.cli"),
    ),
    "core knows nothing above it": (
        files("core"),
        (
            "waypost.http",
            "waypost.store",
            "waypost.server",
            "waypost.runner",
            "waypost.registry",
            "waypost.client",
        ),
    ),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_import_direction(rule: str) -> None:
    paths, forbidden = RULES[rule]
    assert paths, f"no files for {rule!r}"
    assert offending(paths, forbidden) == []


def test_the_rules_catch_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from waypost.server import Agent\n")
    assert "bad.py imports waypost.server" in offending([bad], ("waypost.server",))
