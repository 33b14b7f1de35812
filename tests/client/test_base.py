"""The I/O-free half of the client: settings, status mapping, watch policy."""

from __future__ import annotations

import random

import pytest

from waypost.client import AsyncClient, Client, _base, _calls
from waypost.client._base import (
    Answer,
    raise_for_status,
    resolve_settings,
)
from waypost.client._calls import leader_call
from waypost.client._http11 import Origin, request_message
from waypost.client.cache import Backoff, WatchState
from waypost.client.model import Instance, InstanceSet
from waypost.exceptions import (
    BadRequest,
    InvalidAddress,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RegistryServerError,
    RequestRejected,
    WaypostError,
)


def test_address_prefers_the_argument_then_waypost_then_consul_env() -> None:
    env = {"WAYPOST_HTTP_ADDR": "w:1", "CONSUL_HTTP_ADDR": "c:2"}
    assert resolve_settings("a:3", environ=env).base_url == "http://a:3"
    assert resolve_settings(environ=env).base_url == "http://w:1"
    assert resolve_settings(environ={"CONSUL_HTTP_ADDR": "c:2"}).address == "c:2"
    assert resolve_settings(environ={}).address == "127.0.0.1:8500"


def test_https_comes_from_the_url_or_the_ssl_env() -> None:
    assert resolve_settings("https://r:8501", environ={}).base_url == "https://r:8501"
    on = resolve_settings("r:8501", environ={"CONSUL_HTTP_SSL": "true"})
    assert on.base_url == "https://r:8501"
    off = resolve_settings(environ={"WAYPOST_HTTP_SSL_VERIFY": "false"})
    assert off.verify is False
    ca = resolve_settings(environ={"CONSUL_CACERT": "/ca.pem"})
    assert ca.verify == "/ca.pem"
    with pytest.raises(InvalidAddress, match="scheme 'ftp' is not supported"):
        resolve_settings("ftp://r", environ={})


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("localhost:abc", "Invalid port: 'abc'"),
        ("http://[::1", "the IPv6 address has no closing ']'"),
        ("ftp://x", "the scheme 'ftp' is not supported; use http:// or https://"),
        ("x:99999", "port 99999 is not 1-65535"),
        ("http://", "it has no host"),
        (":8500", "it has no host"),
    ],
)
def test_a_bad_address_is_an_invalid_address_before_anything_is_sent(
    address: str, problem: str
) -> None:
    """One of ours (a WaypostError and a ValueError), never httpx's InvalidURL."""
    with pytest.raises(InvalidAddress) as caught:
        Client(address)
    assert str(caught.value).startswith(f"invalid registry address {address!r}: ")
    assert problem in str(caught.value)
    assert isinstance(caught.value, WaypostError)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(InvalidAddress):
        AsyncClient(address)


def test_token_prefers_the_argument_then_the_environment() -> None:
    env = {"CONSUL_HTTP_TOKEN": "c", "WAYPOST_HTTP_TOKEN": "w"}
    assert resolve_settings(token="t", environ=env).token == "t"
    assert resolve_settings(environ=env).token == "w"
    settings = resolve_settings(environ=env)
    origin = Origin(settings)
    message = request_message(origin, leader_call())
    assert b"\r\nX-Consul-Token: w\r\n" in message


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequest),
        (403, PermissionDenied),
        (404, NotFound),
        (405, RequestRejected),
        (413, PayloadTooLarge),
        (500, RegistryServerError),
        (503, RegistryServerError),
    ],
)
def test_status_codes_map_to_the_exception_tree(status: int, error: type) -> None:
    with pytest.raises(error, match="the registry's words"):
        raise_for_status(Answer(status=status, body=b"the registry's words"), "GET /x")
    assert BadRequest is InvalidRequest


def test_durations_accept_seconds_or_consul_strings() -> None:
    assert _base.seconds(2) == 2.0
    assert _base.seconds("1m30s") == 90.0
    with pytest.raises(InvalidRequest, match="not a duration"):
        _base.seconds("soon")
    with pytest.raises(InvalidRequest, match="positive"):
        _base.seconds(0)


def test_registration_body_puts_weight_zero_in_meta_and_starts_passing() -> None:
    registration = _calls.make_registration(
        "api", port=80, service_id="api-1", weight=0, ttl=9, deregister_after="1m"
    )
    body = _calls.registration_body(registration).decode()
    assert '"Weights":{"Passing":1,"Warning":1}' in body
    assert '"Meta":{"weight":"0"}' in body
    assert '"TTL":"9s"' in body and '"Status":"passing"' in body
    assert '"DeregisterCriticalServiceAfter":"1m0s"' in body
    assert registration.heartbeat_interval == 3.0


def answer(index: int, *names: str) -> InstanceSet:
    return InstanceSet(
        instances=tuple(
            Instance(service_id=n, name="api", address="a", port=1) for n in names
        ),
        index=index,
    )


def test_watch_state_blocks_on_the_last_index_and_reports_only_changes() -> None:
    state = WatchState("api", wait=30)
    assert ("index", "10") not in state.next_call().params
    assert state.succeeded(answer(10, "a"))
    assert ("index", "10") in state.next_call().params
    assert ("wait", "30s") in state.next_call().params
    assert not state.succeeded(answer(12, "a"))  # woken, nothing it reads changed
    assert state.succeeded(answer(13, "a", "b"))


def test_watch_state_starts_over_when_the_index_goes_backwards_or_hits_zero() -> None:
    state = WatchState("api")
    state.succeeded(answer(100, "a"))
    state.succeeded(answer(7, "a"))  # a registry that restarted empty
    assert state.index == 7
    state.succeeded(answer(0, "a"))
    assert state.index == 1  # 0 would never block: every query returns at once


def test_watch_state_keeps_the_last_set_marked_stale_after_a_failure() -> None:
    state = WatchState("api", rng=random.Random(0))
    state.succeeded(answer(5, "a"))
    delay, became_stale = state.failed(ConnectionError("down"))
    assert became_stale and delay > 0
    assert state.current.is_stale and state.current.ids == ["a"]
    assert state.current.error == "down"
    assert state.index == 0  # the next query is a plain read
    _, again = state.failed(ConnectionError("still down"))
    assert not again
    assert state.succeeded(answer(2, "a"))  # fresh again: callers hear it
    assert not state.current.is_stale


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(0.1, 2.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert max(delays[6:]) > 0.5  # it grew
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 0.1


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("service:web-1", "service:web-1"),  # as Go's url.PathEscape leaves it
        ("a@b=c+d", "a@b=c+d"),
        ("a b", "a%20b"),
        ("x/y", "x%2Fy"),
        ("50%", "50%25"),
        ("q?x#y", "q%3Fx%23y"),
        ("ünï", "%C3%BCn%C3%AF"),
    ],
)
def test_path_segments_are_escaped_as_consuls_go_client_does(
    raw: str, sent: str
) -> None:
    assert _calls.deregister_call(raw).path == f"/v1/agent/service/deregister/{sent}"
