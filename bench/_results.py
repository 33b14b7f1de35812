"""Shared by the benchmarks: machine description and RESULTS.md sections."""

from __future__ import annotations

import datetime
import os
import platform
import re
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def environment() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    return (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} {os.cpu_count()} cores,"
        f" {platform.python_implementation()} {platform.python_version()},"
        f" waypost {version('waypost')},"
        f" uvicorn {version('uvicorn')}, msgspec {version('msgspec')}"
    )


def write_section(name: str, text: str) -> None:
    """Put the new run first in its section; earlier runs stay below it."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    match = re.search(re.escape(start) + r"\n(.*?)" + re.escape(end), content, re.S)
    if match:
        previous = match.group(1)
        runs = text.rstrip() + "\n\n" + previous
        content = (
            content[: match.start()] + f"{start}\n{runs}{end}" + content[match.end() :]
        )
    else:
        content = content.rstrip() + f"\n\n{start}\n{text.rstrip()}\n\n{end}\n"
    RESULTS.write_text(content)
