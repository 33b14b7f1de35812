"""The OpenAPI description covers exactly the /v1 routes we serve."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
import schemathesis

from waypost.http.openapi import build, route_of
from waypost.http.routes import ROUTES
from waypost.testing import AgentProcess


def _served() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, methods, _ in ROUTES
        if path.startswith("/v1/")
        for method in methods
    }


def _described() -> dict[tuple[str, str], list[str]]:
    """(method, route path) -> the OpenAPI paths describing it."""
    found: dict[tuple[str, str], list[str]] = {}
    for path, item in build()["paths"].items():  # type: ignore[attr-defined]
        for method in item:
            found.setdefault((method.upper(), route_of(path)), []).append(path)
    return found


def test_every_v1_route_and_method_is_described() -> None:
    missing = sorted(_served() - set(_described()))
    assert not missing, (
        "routes in http/routes.py without an OpenAPI description: add an Op"
        " for each to OPERATIONS in src/waypost/http/openapi.py:\n"
        + "\n".join(f"  {method} {path}" for method, path in missing)
    )


def test_nothing_is_described_that_is_not_served() -> None:
    extra = {k: v for k, v in _described().items() if k not in _served()}
    assert not extra, (
        "OpenAPI operations in src/waypost/http/openapi.py that no route of"
        " http/routes.py serves:\n"
        + "\n".join(
            f"  {m} {p} ({', '.join(v)})" for (m, p), v in sorted(extra.items())
        )
    )


def test_the_description_is_valid_openapi_with_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(build())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(paths) for paths in _described().values())


def test_waypost_openapi_prints_the_description() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "waypost", "openapi"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == json.loads(json.dumps(build()))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        (op_method.upper(), path)
        for path, item in build()["paths"].items()  # type: ignore[attr-defined]
        for op_method in item
    ],
)
def test_every_described_path_is_routed_by_the_agent(
    shared_agent: AgentProcess, method: str, path: str
) -> None:
    """OPTIONS names the method: not Consul's unknown-path 404 (no handler runs)."""
    concrete = path.replace("{", "x").replace("}", "x")
    with httpx.Client(base_url=shared_agent.url, timeout=30) as http:
        response = http.request("OPTIONS", concrete)
    assert response.status_code == 200, response.text
    assert method in response.headers["allow"].split(",")
