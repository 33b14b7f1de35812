"""What a question's name asks for: Consul's DNS grammar (agent/dns.go).

`[TAG.]NAME.service[.DC].DOMAIN`, `_NAME._TAG.service[.DC].DOMAIN` (RFC 2782,
`.service` optional for SRV), `NODE.node[.DC].DOMAIN`,
`HEX.addr[.DC].DOMAIN`. Pure: strings in, values out.
"""

from __future__ import annotations

import functools
import ipaddress

import msgspec

#: Labels that say what kind of lookup a name is, scanned from the right.
KINDS = frozenset({"service", "connect", "virtual", "ingress", "node", "query", "addr"})


class Question(msgspec.Struct, frozen=True, kw_only=True):
    """A name inside one of our zones, split at its kind label."""

    #: `service`, `node`, `addr`, …; "" when no kind label was found.
    kind: str
    #: The labels left of the kind label (lower-cased).
    parts: tuple[str, ...]
    #: The labels between the kind label and the zone (a datacenter).
    suffixes: tuple[str, ...]
    #: The zone the name is in, as configured (`consul.`): answers use it.
    domain: str


class ServiceName(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    tag: str = ""


def fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def normalize_domain(domain: str) -> str:
    """`consul` → `consul.`; "" stays "" (no alt domain)."""
    domain = domain.strip().lower()
    if not domain or domain == ".":
        return ""
    return fqdn(domain.lstrip("."))


def zone_of(qname: str, domains: tuple[str, ...]) -> str | None:
    """The longest of our zones `qname` (lower-cased, absolute) is in."""
    best: str | None = None
    for domain in domains:
        if (qname == domain or qname.endswith("." + domain)) and (
            best is None or len(domain) > len(best)
        ):
            best = domain
    return best


def split(qname: str, domain: str, *, is_srv: bool) -> Question:
    """Split a name of zone `domain` at its kind label (Consul's dispatch)."""
    inner = qname[: len(qname) - len(domain)].rstrip(".")
    labels = inner.split(".") if inner else []
    for i in range(len(labels) - 1, -1, -1):
        label = labels[i]
        if label in KINDS:
            return Question(
                kind=label,
                parts=tuple(labels[:i]),
                suffixes=tuple(labels[i + 1 :]),
                domain=domain,
            )
        if is_srv and label.startswith("_"):
            # RFC 2782: `_name._tag.consul` needs no `.service` for SRV.
            return Question(
                kind="service",
                parts=tuple(labels[: i + 1]),
                suffixes=tuple(labels[i + 1 :]),
                domain=domain,
            )
    return Question(kind="", parts=tuple(labels), suffixes=(), domain=domain)


def service_name(parts: tuple[str, ...]) -> ServiceName | None:
    """`_name._tag` (RFC 2782, `_tcp` means no tag) or `[tag.]name`."""
    n = len(parts)
    if n < 1:
        return None
    if n == 2 and parts[0].startswith("_") and parts[1].startswith("_"):
        tag = parts[1][1:]
        return ServiceName(service=parts[0][1:], tag="" if tag == "tcp" else tag)
    return ServiceName(service=parts[n - 1], tag=".".join(parts[: n - 1]))


def datacenter(suffixes: tuple[str, ...], default: str) -> str | None:
    """Consul CE's parseLocality: none, `DC`, or `DC.dc`; else None (invalid).

    A peer (`NAME.peer`) is never one of ours: it is answered as unknown.
    """
    n = len(suffixes)
    if n == 0:
        return default
    if n == 1:
        return suffixes[0]
    if n == 2 and suffixes[1] == "dc":
        return suffixes[0]
    return None


def decode_addr(label: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`.addr.` names: 8 hex digits are IPv4, 32 are IPv6."""
    if len(label) not in (8, 32):
        return None
    try:
        packed = bytes.fromhex(label)
    except ValueError:
        return None
    if len(packed) == 4:
        return ipaddress.IPv4Address(packed)
    return ipaddress.IPv6Address(packed)


def encode_addr(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The label `decode_addr` reads back (Consul's encodeIPAsFqdn)."""
    return address.packed.hex()


@functools.lru_cache(maxsize=4096)
def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address, IPv4-mapped IPv6 as IPv4 (Go's To4); else None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def reverse_ip(qname: str) -> str | None:
    """The address of an `in-addr.arpa.` / `ip6.arpa.` name, as text."""
    if qname.endswith(".in-addr.arpa."):
        octets = qname[: -len(".in-addr.arpa.")].split(".")
        if len(octets) == 4 and all(o.isdigit() for o in octets):
            text = ".".join(reversed(octets))
            address = parse_ip(text)
            return str(address) if address is not None else None
        return None
    if qname.endswith(".ip6.arpa."):
        nibbles = qname[: -len(".ip6.arpa.")].split(".")
        if len(nibbles) == 32:
            try:
                packed = bytes.fromhex("".join(reversed(nibbles)))
            except ValueError:
                return None
            return str(ipaddress.IPv6Address(packed))
    return None
