#!/usr/bin/env python3
"""Generate the blocking client from the asyncio one (httpcore's unasync).

    python scripts/unasync.py           # rewrite src/waypost/client/_sync*.py
    python scripts/unasync.py --check   # exit 1, with a diff, if one is stale

The asyncio modules are the source: `_async.py`, `_async_watch.py` and
`_async_transport.py`. Each becomes its `_sync` twin by the word
substitutions below (`async def` → `def`, `await x` → `x`, `AsyncClient` →
`Client`, `_async_io` → `_sync_io`, …), then ruff sorts its imports and
formats it. The only hand-written pair is `_async_io.py` / `_sync_io.py`:
streams, events, background tasks or threads, with the same names on both
sides. `tests/client/test_unasync.py` runs `--check`, so a change to an
asyncio module without regenerating fails the tests.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "src" / "waypost" / "client"
FILES = {
    "_async.py": "_sync.py",
    "_async_watch.py": "_sync_watch.py",
    "_async_transport.py": "_sync_transport.py",
}

# Whole words (or whole phrases), in this order.
SUBSTITUTIONS = [
    # modules (imports only: prose names the files as they are)
    ("waypost.client._async_io", "waypost.client._sync_io"),
    ("waypost.client._async_transport", "waypost.client._sync_transport"),
    ("waypost.client._async_watch", "waypost.client._sync_watch"),
    ("waypost.client._async", "waypost.client._sync"),
    # syntax
    ("async def", "def"),
    ("async with", "with"),
    ("async for", "for"),
    ("await ", ""),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("aclose", "close"),
    ("AsyncIterator", "Iterator"),
    ("asynccontextmanager", "contextmanager"),
    ("StopAsyncIteration", "StopIteration"),
    # prose about the concurrency model
    ("for asyncio", "blocking"),
    ("as tasks", "on threads"),
    ("as a task", "on a thread"),
    ("in the background task", "on the background thread"),
    ("tasks", "threads"),
    ("task", "thread"),
]
# `AsyncClient` → `Client`, `AsyncConnectionPool` → `ConnectionPool`, …
ASYNC_NAME = re.compile(r"\bAsync([A-Z]\w*)")
# ruff's ASYNC rules do not apply to the blocking twin.
ASYNC_NOQA = re.compile(r"\s*# noqa: ASYNC\d+[^\n]*")
HEADER = "# Generated from {source} by scripts/unasync.py: do not edit.\n"


def _word(old: str) -> re.Pattern[str]:
    start = r"\b" if old[0].isalnum() or old[0] == "_" else ""
    end = r"\b" if old[-1].isalnum() or old[-1] == "_" else ""
    return re.compile(start + re.escape(old) + end)


PATTERNS = [(_word(old), new) for old, new in SUBSTITUTIONS]


def unasync_line(line: str) -> str:
    line = ASYNC_NOQA.sub("", line)
    for pattern, new in PATTERNS:
        line = pattern.sub(new, line)
    return ASYNC_NAME.sub(r"\1", line)


def _ruff(args: list[str], source: str, filename: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(filename), "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"ruff {' '.join(args)} failed on {filename}:\n{done.stderr}")
    return done.stdout


def generate(source: Path, target: Path) -> str:
    """The blocking twin of `source`, as `target` should read."""
    lines = source.read_text().splitlines(keepends=True)
    text = HEADER.format(source=source.name) + "".join(map(unasync_line, lines))
    text = _ruff(["check", "--quiet", "--select", "I", "--fix"], text, target)
    return _ruff(["format", "--quiet"], text, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report stale files (exit 1)"
    )
    parser.add_argument(
        "--client", type=Path, default=CLIENT, help="the folder of the modules"
    )
    args = parser.parse_args()
    stale = []
    for source_name, target_name in FILES.items():
        source, target = args.client / source_name, args.client / target_name
        wanted = generate(source, target)
        current = target.read_text() if target.exists() else ""
        if wanted == current:
            continue
        stale.append(target)
        if args.check:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    wanted.splitlines(keepends=True),
                    f"{target.name} (on disk)",
                    f"{target.name} (generated from {source.name})",
                )
            )
        else:
            target.write_text(wanted)
            print(f"wrote {target}")
    if args.check and stale:
        names = ", ".join(path.name for path in stale)
        print(f"stale: {names}; run python scripts/unasync.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
