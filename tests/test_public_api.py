"""The top-level package's public names: sorted, complete, importable."""

from __future__ import annotations

import subprocess
import sys

import waypost


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = [n for n in waypost.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in waypost.__all__:
        assert getattr(waypost, name) is not None


def test_importing_waypost_does_not_load_the_client() -> None:
    code = (
        "import sys, waypost;"
        " print('waypost.client' in sys.modules, 'httpx' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
