"""`scripts/run` installs only when it has to, then hands its arguments on.

The real scripts run in a scratch checkout holding a stand-in project named
`waypost` (its `waypost` command prints its arguments), so the test exercises
the real venv creation and the real `pip install -e .` in seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "waypost"
version = "0.0.1"

[project.scripts]
waypost = "waypost:main"
"""

STAND_IN = """\
import sys


def main() -> None:
    print("waypost", *sys.argv[1:])
"""

INSTALLING = "installing waypost into .venv"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(REPO / "scripts", root / "scripts")
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "src" / "waypost").mkdir(parents=True)
    (root / "src" / "waypost" / "__init__.py").write_text(STAND_IN)
    return root


def run(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        ["bash", "scripts/run", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_scripts_run_installs_once_then_only_when_pyproject_changes(
    checkout: Path,
) -> None:
    first = run(checkout, "--dev", "-node", "n1")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "waypost agent --dev -node n1\n"
    assert INSTALLING in first.stderr

    again = run(checkout, "--dev")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "waypost agent --dev\n"
    assert INSTALLING not in again.stderr

    with (checkout / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n# a dependency changed\n")
    changed = run(checkout)
    assert INSTALLING in changed.stderr
    assert changed.stdout == "waypost agent\n"
    assert INSTALLING not in run(checkout).stderr


def test_scripts_run_installs_when_the_venv_lacks_waypost(checkout: Path) -> None:
    assert INSTALLING not in run(checkout).stderr
    pip = [str(checkout / ".venv" / "bin" / "python"), "-m", "pip"]
    subprocess.run([*pip, "uninstall", "-q", "-y", "waypost"], check=True)
    missing = run(checkout, "--dev")
    assert INSTALLING in missing.stderr
    assert missing.stdout == "waypost agent --dev\n"
