"""The README's "Use it from Python" snippets run as written on a real agent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from waypost.testing import AgentProcess

README = Path(__file__).resolve().parents[2] / "README.md"


def python_snippets() -> list[str]:
    text = README.read_text()
    section = text.split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_has_a_sync_and_an_async_snippet() -> None:
    snippets = python_snippets()
    assert len(snippets) == 2
    assert "client.register(" in snippets[0] and "pick(key=" in snippets[0]
    assert "AsyncClient" in snippets[1]


@pytest.mark.parametrize("number", [0, 1], ids=["sync", "async"])
def test_readme_snippet_registers_discovers_and_picks(
    number: int, waypost_agent: AgentProcess
) -> None:
    env = {**os.environ, "WAYPOST_HTTP_ADDR": waypost_agent.address}
    done = subprocess.run(
        [sys.executable, "-c", python_snippets()[number]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    port = 8080 if number == 0 else 8081
    lines = done.stdout.splitlines()
    assert lines[-1].startswith(f"127.0.0.1:{port}")
    if number == 0:
        assert lines[0].startswith("['api-") and lines[-1].endswith(" False")
