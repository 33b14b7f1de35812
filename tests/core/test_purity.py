"""core/ stays pure: no event loop, sockets, files, databases or clock of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "src" / "waypost" / "core"
FORBIDDEN = {"asyncio", "socket", "sqlite3", "time", "os", "httpx", "subprocess"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("module", sorted(CORE.rglob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io(module: Path) -> None:
    assert not (_imported_modules(module) & FORBIDDEN)


def test_core_imports_nothing_from_the_transports() -> None:
    for module in CORE.rglob("*.py"):
        text = module.read_text()
        for layer in (
            "waypost.http",
            "waypost.store",
            "waypost.server",
            "waypost.runner",
        ):
            assert layer not in text, f"{module.name} imports {layer}"
