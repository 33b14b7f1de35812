"""Consul's DNS grammar and encodings, value in, value out."""

from __future__ import annotations

import ipaddress

import pytest

from waypost.dns import names
from waypost.dns.answers import rfc1464


@pytest.mark.parametrize(
    ("qname", "srv", "kind", "parts", "suffixes"),
    [
        ("web.service.consul.", False, "service", ("web",), ()),
        ("v1.web.service.dc1.consul.", False, "service", ("v1", "web"), ("dc1",)),
        ("_web._tcp.service.consul.", True, "service", ("_web", "_tcp"), ()),
        ("_web._tcp.consul.", True, "service", ("_web", "_tcp"), ()),
        ("_web._tcp.consul.", False, "", ("_web", "_tcp"), ()),
        ("a.b.node.dc1.dc.consul.", False, "node", ("a", "b"), ("dc1", "dc")),
        ("7f000001.addr.consul.", False, "addr", ("7f000001",), ()),
        # The rightmost kind label wins: a service named "node".
        ("node.service.consul.", False, "service", ("node",), ()),
    ],
)
def test_split_at_the_kind_label(
    qname: str, srv: bool, kind: str, parts: tuple[str, ...], suffixes: tuple[str, ...]
) -> None:
    question = names.split(qname, "consul.", is_srv=srv)
    assert (question.kind, question.parts, question.suffixes) == (kind, parts, suffixes)


def test_service_names_and_tags() -> None:
    assert names.service_name(("web",)) == names.ServiceName(service="web")
    assert names.service_name(("a.b", "web")) == names.ServiceName(
        service="web", tag="a.b"
    )
    assert names.service_name(("_web", "_tcp")) == names.ServiceName(service="web")
    assert names.service_name(("_web", "_v1")) == names.ServiceName(
        service="web", tag="v1"
    )
    assert names.service_name(()) is None


def test_datacenter_suffixes() -> None:
    assert names.datacenter((), "dc1") == "dc1"
    assert names.datacenter(("dc2",), "dc1") == "dc2"
    assert names.datacenter(("dc2", "dc"), "dc1") == "dc2"
    assert names.datacenter(("x", "peer"), "dc1") is None
    assert names.datacenter(("a", "b", "c"), "dc1") is None


def test_zones_and_domains() -> None:
    zones = ("consul.", "alt.example.")
    assert names.zone_of("web.service.consul.", zones) == "consul."
    assert names.zone_of("consul.", zones) == "consul."
    assert names.zone_of("web.service.alt.example.", zones) == "alt.example."
    assert names.zone_of("notconsul.", zones) is None
    assert names.normalize_domain("Consul") == "consul."
    assert names.normalize_domain(".") == ""


def test_addr_labels_round_trip() -> None:
    for text in ("10.0.0.1", "2001:db8::1", "::1"):
        address = ipaddress.ip_address(text)
        assert names.decode_addr(names.encode_addr(address)) == address
    assert names.decode_addr("0a00001") is None
    assert names.decode_addr("zz000001") is None
    assert names.parse_ip("::ffff:10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert names.reverse_ip("1.0.0.127.in-addr.arpa.") == "127.0.0.1"


def test_node_meta_as_rfc_1464() -> None:
    assert rfc1464("key", "value") == "key=value"
    assert rfc1464("a=b", "c`d") == "a`=b=c``d"
    assert rfc1464("  spaced ", "v") == "` ` spaced` =v"
