"""One source for the twins: the blocking modules are generated from the
asyncio ones by scripts/unasync.py, and a stale one fails here (and in
scripts/test)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import waypost.client

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "unasync.py"
CLIENT = Path(waypost.client.__file__).parent
GENERATED = ("_sync.py", "_sync_watch.py", "_sync_transport.py")


def unasync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_the_generated_blocking_modules_are_current() -> None:
    done = unasync("--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_edit_to_the_asyncio_source_alone_is_caught(tmp_path: Path) -> None:
    client = tmp_path / "client"
    shutil.copytree(CLIENT, client, ignore=shutil.ignore_patterns("__pycache__"))
    source = client / "_async.py"
    text = source.read_text()
    edited = text.replace(
        '        """The registry\'s `host:port`."""',
        '        """The registry\'s `host:port` (edited)."""',
    )
    assert edited != text
    source.write_text(edited)

    stale = unasync("--check", "--client", str(client))
    assert stale.returncode == 1
    assert '+        """The registry\'s `host:port` (edited)."""' in stale.stdout
    assert "stale: _sync.py" in stale.stderr

    assert unasync("--client", str(client)).returncode == 0
    assert unasync("--check", "--client", str(client)).returncode == 0


def test_a_hand_edit_to_a_generated_module_is_caught(tmp_path: Path) -> None:
    client = tmp_path / "client"
    shutil.copytree(CLIENT, client, ignore=shutil.ignore_patterns("__pycache__"))
    for name in GENERATED:
        target = client / name
        target.write_text(target.read_text() + "\n# a hand edit\n")
    stale = unasync("--check", "--client", str(client))
    assert stale.returncode == 1
    assert all(name in stale.stderr for name in GENERATED)


def test_the_blocking_modules_never_use_asyncio() -> None:
    uses_asyncio = re.compile(
        r"^\s*(import|from) asyncio\b|\basyncio\.|\bawait |async def"
    )
    for name in (*GENERATED, "_sync_io.py"):
        for line in (CLIENT / name).read_text().splitlines():
            assert not uses_asyncio.search(line), f"{name}: {line}"
