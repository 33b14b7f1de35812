"""Guards on what applications import from `waypost.client`."""

from __future__ import annotations

import inspect

import waypost.client
from waypost.client import AsyncClient, Client


def test_all_is_sorted_and_names_only_what_exists() -> None:
    names = waypost.client.__all__
    assert names == sorted(names)
    assert all(hasattr(waypost.client, name) for name in names)


def test_every_public_class_and_function_of_the_package_is_in_all() -> None:
    exported = {
        name
        for name, value in vars(waypost.client).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert exported <= set(waypost.client.__all__)


def test_twins_share_method_names_and_parameters() -> None:
    """Only close/aclose differ; every other method takes the same arguments."""
    for name in dir(Client):
        if name.startswith("_") or name == "close":
            continue
        sync, twin = getattr(Client, name), getattr(AsyncClient, name)
        if callable(sync):
            assert inspect.signature(sync).parameters.keys() == (
                inspect.signature(twin).parameters.keys()
            ), name


def test_public_methods_have_docstrings() -> None:
    for cls in (Client, AsyncClient):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"
