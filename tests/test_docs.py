"""What the README and the examples tell a new user to type can work.

waypost is not on PyPI (and the name could be someone else's there), so no
install line may fetch a package called `waypost`; the README describes what
`scripts/run` really does and points at no file outside the repository.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "examples").glob("*.py"))]


def pip_install_lines(path: Path) -> list[str]:
    return [
        line.split("pip install", 1)[1]
        for line in path.read_text().splitlines()
        if "pip install" in line
    ]


def _requirements(arguments: str) -> list[str]:
    arguments = arguments.split("#", 1)[0].replace("`", " ")
    arguments = re.split(r"&&|\)|;", arguments, maxsplit=1)[0]
    return [word for word in shlex.split(arguments) if not word.startswith("-")]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_no_install_line_fetches_waypost_from_an_index(path: Path) -> None:
    for arguments in pip_install_lines(path):
        for requirement in _requirements(arguments):
            name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
            assert name.lower() != "waypost", (path.name, arguments)


@pytest.mark.parametrize(
    "path", [REPO / "examples/fastapi_app.py", REPO / "examples/flask_app.py"]
)
def test_examples_say_how_to_install_from_this_repository(path: Path) -> None:
    docstring = path.read_text().split('"""')[1]
    assert "pip install -e ." in docstring
    assert "not on PyPI" in docstring


def test_the_readme_says_what_scripts_run_installs() -> None:
    run = (REPO / "scripts/run").read_text()
    venv = (REPO / "scripts/_venv.sh").read_text()
    assert "install_waypost .\n" in run
    assert 'pip install -q --disable-pip-version-check -e "$target"' in venv
    readme = (REPO / "README.md").read_text()
    setup = readme.split("---", 1)[0]
    assert "`pip install -e .`" in setup
    assert "`pip install .`" not in setup


def test_the_readme_points_at_no_file_outside_the_repository() -> None:
    readme = (REPO / "README.md").read_text()
    assert "../" not in readme
    assert "ARCHITECTURE.md" in readme
    for target in re.findall(r"\]\(([^)#:]+)\)", readme):  # relative links
        assert (REPO / target).exists(), target
