"""Values built from request bodies are frozen all the way down."""

from __future__ import annotations

import pytest

from waypost.http import decode, wire


def service_from(body: bytes) -> object:
    data = decode.decode_body(body, decode.SERVICE_REGISTRATION)
    return wire.to_service(data, node="n1")[0]


def test_instances_with_the_same_tags_share_one_immutable_tuple() -> None:
    first = service_from(b'{"Name": "a", "Tags": ["x", "y"]}')
    second = service_from(b'{"Name": "b", "Tags": ["x", "y"]}')
    assert first.tags == second.tags == ("x", "y")  # type: ignore[attr-defined]
    assert first.tags is second.tags  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        first.tags.append("z")  # type: ignore[attr-defined]
