"""One DNS question → one reply, from the catalog in memory (agent/dns.go).

Records are Consul's: A/AAAA (shuffled) and SRV answers of the instances
that pass (`queries.health_service` with `passing`, as HTTP's `?passing`,
panic threshold included), SRV targets `<node>.node.<dc>.<domain>` or
`<hex>.addr.<dc>.<domain>` with their A/AAAA in the additional section,
weights from `Weights`, a CNAME for a host-name address, NXDOMAIN with the
zone's SOA for unknown names, NOERROR with the SOA when a name has no record
of the asked type. No I/O: the transport (`server.py`) sends what this
returns, after `trim.py` fitted it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from dnslib import (
    AAAA,
    CNAME,
    NS,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSHeader,
    DNSQuestion,
    DNSRecord,
    EDNSOption,
)

from waypost.config import DnsConfig
from waypost.core.acl.authorizer import Authorizer
from waypost.core.acl.rules import READ
from waypost.core.catalog import Catalog
from waypost.core.model import Node
from waypost.core.queries import (
    Selection,
    ServiceEntry,
    aggregate_status,
    health_service,
)
from waypost.dns import names
from waypost.dns.names import Question

if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv6Address

    IP = IPv4Address | IPv6Address

#: Consul's dnsSOAConfig defaults (`dns_config.soa`): refresh, retry, expire.
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 3600, 600, 86400
#: SOA minimum TTL, also the SOA record's own TTL (Consul: soa.min_ttl, 0).
SOA_MIN_TTL = 0
#: CNAME chains inside our zones are followed at most this deep.
MAX_RECURSION = 3
#: Consul's maxRecurseRecords: records of a followed CNAME without EDNS0.
MAX_RECURSE_RECORDS = 5
#: NS answers list at most this many servers.
MAX_NAMESERVERS = 3
#: Names whose instance records are kept (per catalog index).
GROUP_CACHE_SIZE = 1024

EDNS_CLIENT_SUBNET = 8
T_A, T_AAAA, T_ANY, T_SRV, T_TXT = QTYPE.A, QTYPE.AAAA, QTYPE.ANY, QTYPE.SRV, QTYPE.TXT
T_NS, T_SOA, T_AXFR, T_PTR, T_OPT = QTYPE.NS, QTYPE.SOA, QTYPE.AXFR, QTYPE.PTR, 41
#: Query types for which an address is answered (Consul's makeARecord).
_TAKES_V4 = frozenset({T_SRV, T_A, T_ANY, T_NS, T_TXT})
_TAKES_V6 = frozenset({T_SRV, T_AAAA, T_ANY, T_NS, T_TXT})


class NameNotFound(Exception):
    """NXDOMAIN: no such name in our zones."""


class NoData(Exception):
    """NOERROR with an empty answer and the SOA (RFC 2308 NODATA)."""


#: What `Answerer.answer` returns when the name is not ours and a recursor
#: should be asked.
RECURSE = None


class Answerer:
    """Answers questions for our zones from one catalog."""

    def __init__(
        self,
        catalog: Catalog,
        config: DnsConfig,
        *,
        datacenter: str,
        panic_threshold: float,
        clock: Callable[[], float] = time.time,
        authorizer: Callable[[], Authorizer | None] = lambda: None,
    ) -> None:
        self.catalog = catalog
        #: With ACLs on: what the agent's DNS token may read (Consul answers
        #: DNS with the `dns` token, else `default`, else the anonymous one);
        #: a name it may not read is NXDOMAIN, as if absent.
        self._authorizer = authorizer
        self.config = config
        self.datacenter = datacenter.lower()
        self.panic_threshold = panic_threshold
        self.domain = names.normalize_domain(config.domain) or "consul."
        self.alt_domain = names.normalize_domain(config.alt_domain)
        self.zones = tuple(z for z in (self.domain, self.alt_domain) if z)
        self.node_ttl = int(config.node_ttl)
        self._strict_ttl = {n: int(t) for n, t in config.service_ttl if "*" not in n}
        self._prefix_ttl = sorted(
            ((n[:-1], int(t)) for n, t in config.service_ttl if n.endswith("*")),
            key=lambda pair: -len(pair[0]),
        )
        self.recursion_available = bool(config.recursors)
        self._clock = clock
        self._lower_services: dict[str, str] = {}
        self._lower_services_at = -1
        #: (qname as asked, qtype, EDNS0?) → (catalog index, instance groups).
        self._groups: dict[tuple[str, int, bool], tuple[int, tuple[_Group, ...]]] = {}

    # ------------------------------------------------------------ entry

    def answer(self, request: DNSRecord) -> DNSRecord | None:
        """The reply to a parsed query; None: not ours, ask a recursor."""
        reply = self._reply(request)
        question = request.q
        qname = str(question.qname).lower()
        qtype = question.qtype
        if qname.endswith(".arpa."):
            return self._ptr(request, reply, qname)
        zone = names.zone_of(qname, self.zones)
        if zone is None:
            if self.recursion_available:
                return RECURSE
            # miekg/dns' handleRefused: the question echoed, REFUSED, no
            # authority claimed, no OPT record.
            reply.header.rcode = RCODE.REFUSED
            reply.header.aa = 0
            return reply
        if qtype == T_SOA:
            reply.add_answer(self._soa(zone))
            nameservers, glue = self._nameservers(zone)
            reply.auth.extend(nameservers)
            reply.ar.extend(glue)
        elif qtype == T_NS:
            nameservers, glue = self._nameservers(zone)
            reply.rr.extend(nameservers)
            reply.ar.extend(glue)
        elif qtype == T_AXFR:
            reply.header.rcode = RCODE.NOTIMP
        else:
            try:
                self._dispatch(request, reply, qname, zone, MAX_RECURSION)
            except NameNotFound:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self._soa(zone))
            except NoData:
                reply.add_auth(self._soa(zone))
        self._set_edns(request, reply)
        return reply

    def _reply(self, request: DNSRecord) -> DNSRecord:
        header = request.header
        return DNSRecord(
            DNSHeader(
                id=header.id,
                qr=1,
                opcode=header.opcode,
                rd=header.rd,
                cd=header.cd,
                aa=1,
                ra=int(self.recursion_available),
            ),
            q=request.q,
        )

    # ------------------------------------------------------------ dispatch

    def _dispatch(
        self, request: DNSRecord, reply: DNSRecord, qname: str, zone: str, depth: int
    ) -> None:
        qtype = request.q.qtype
        question = names.split(qname, zone, is_srv=qtype == T_SRV)
        kind = question.kind
        if kind == "service":
            wanted = names.service_name(question.parts)
            dc = names.datacenter(question.suffixes, self.datacenter)
            if wanted is None or dc is None:
                raise NameNotFound
            self._service(request, reply, question, wanted, dc, depth)
        elif kind == "node":
            dc = names.datacenter(question.suffixes, self.datacenter)
            if not question.parts or dc is None:
                raise NameNotFound
            self._node(request, reply, question, ".".join(question.parts), dc, depth)
        elif kind == "addr":
            self._addr(request, reply, question)
        else:
            # connect, ingress, virtual, query (prepared queries): not served.
            raise NameNotFound

    # ------------------------------------------------------------ services

    def _service(
        self,
        request: DNSRecord,
        reply: DNSRecord,
        question: Question,
        wanted: names.ServiceName,
        dc: str,
        depth: int,
    ) -> None:
        if dc != self.datacenter:
            raise NameNotFound  # Consul: no path to datacenter → NXDOMAIN
        name = self._service_name(wanted.service)
        authz = self._authorizer()
        if authz is not None and not authz.allows("service", name, READ):
            raise NameNotFound
        tags = (wanted.tag,) if wanted.tag else ()
        key = (str(request.q.qname), request.q.qtype, _has_edns(request))
        cached = self._groups.get(key)
        # Valid for one catalog and one ACL state (both only grow).
        state = self.catalog.index + self.catalog.acl.epoch
        if cached is not None and cached[0] == state:
            groups = list(cached[1])
        else:
            entries = health_service(
                self.catalog,
                name,
                Selection(passing=True, tags=tags),
                panic_default=self.panic_threshold,
            ).entries
            if authz is not None:
                entries = [e for e in entries if authz.allows("node", e[0].name, READ)]
            if not entries:
                raise NameNotFound
            ttl = self.service_ttl(name)
            made = tuple(
                self._group(request, question, entry, ttl, depth) for entry in entries
            )
            if len(self._groups) >= GROUP_CACHE_SIZE:
                self._groups.clear()
            self._groups[key] = (state, made)
            groups = list(made)
        random.shuffle(groups)  # Consul shuffles the instances of every answer
        if request.q.qtype == T_SRV:
            _assemble_srv(reply, groups)
        else:
            _assemble_addresses(reply, groups, self.config.a_record_limit)
        if not reply.rr:
            raise NoData

    def _group(
        self,
        request: DNSRecord,
        question: Question,
        entry: ServiceEntry,
        ttl: int,
        depth: int,
    ) -> _Group:
        """One instance's answers and additional records (cached per catalog
        index: building records is most of a query's cost)."""
        node, service, _ = entry
        answers, extra = self._instance_records(request, question, entry, ttl, depth)
        if request.q.qtype == T_SRV:
            if self.config.node_meta_txt:
                target = self._node_fqdn(node, question.domain)
                extra = [*extra, *self._meta_txt(target, node, ttl)]
            key = f"{node.name}\x00{service.address}\x00{service.port}"
        else:
            key = str(answers[0]) if answers else ""
        return _Group(key, answers, [(_rr_key(rr), rr) for rr in extra])

    def _service_name(self, lowered: str) -> str:
        """The registered name for a lower-cased one (DNS ignores case)."""
        if self.catalog.service_instances(lowered):
            return lowered
        if self._lower_services_at != self.catalog.index:
            self._lower_services = {n.lower(): n for n in self.catalog.service_names()}
            self._lower_services_at = self.catalog.index
        return self._lower_services.get(lowered, lowered)

    def service_ttl(self, name: str) -> int:
        """Consul's GetTTLForService: exact name, else the longest prefix."""
        ttl = self._strict_ttl.get(name)
        if ttl is not None:
            return ttl
        for prefix, prefix_ttl in self._prefix_ttl:
            if name.startswith(prefix):
                return prefix_ttl
        return 0

    def _instance_records(
        self,
        request: DNSRecord,
        question: Question,
        entry: ServiceEntry,
        ttl: int,
        depth: int,
    ) -> tuple[list[RR], list[RR]]:
        """Consul's makeNodeServiceRecords: which address, which target."""
        node, service, _ = entry
        node_ip = names.parse_ip(node.address) if node.address else None
        if not service.address:
            if node_ip is not None:
                target = self._node_fqdn(node, question.domain)
                return self._ip_records(request, entry, node_ip, target, ttl)
            if not node.address:
                return [], []
            return self._fqdn_records(request, entry, node.address, ttl, depth)
        service_ip = names.parse_ip(service.address)
        if service_ip is not None:
            target = self._addr_fqdn(service_ip, question.domain)
            return self._ip_records(request, entry, service_ip, target, ttl)
        qname = str(request.q.qname)
        if names.fqdn(service.address).lower() == qname.lower() and node_ip:
            target = self._node_fqdn(node, question.domain)
            return self._ip_records(request, entry, node_ip, target, ttl)
        return self._fqdn_records(request, entry, service.address, ttl, depth)

    def _ip_records(
        self, request: DNSRecord, entry: ServiceEntry, ip: IP, target: str, ttl: int
    ) -> tuple[list[RR], list[RR]]:
        qtype = request.q.qtype
        if qtype == T_SRV:
            address = _address_rr(target, qtype, ip, ttl)
            if address is None:
                return [], []
            return [self._srv(request, entry, target, ttl)], [address]
        address = _address_rr(request.q.qname, qtype, ip, ttl)
        return ([address] if address is not None else []), []

    def _fqdn_records(
        self,
        request: DNSRecord,
        entry: ServiceEntry,
        host: str,
        ttl: int,
        depth: int,
    ) -> tuple[list[RR], list[RR]]:
        """A host-name address: an SRV to it, or a CNAME (Consul's
        makeRecordFromFQDN), plus what the name resolves to in our zones."""
        target = names.fqdn(host)
        more = [
            _with_ttl(rr, ttl)
            for rr in self._resolve_internal(target, depth)
            if rr.rtype in (QTYPE.CNAME, T_A, T_AAAA)
        ]
        if not _has_edns(request):
            more = more[:MAX_RECURSE_RECORDS]
        if request.q.qtype == T_SRV:
            return [self._srv(request, entry, target, ttl)], more
        cname = RR(request.q.qname, QTYPE.CNAME, ttl=ttl, rdata=CNAME(target))
        return [cname, *more], []

    def _srv(
        self, request: DNSRecord, entry: ServiceEntry, target: str, ttl: int
    ) -> RR:
        _, service, _ = entry
        record = SRV(
            priority=1, weight=srv_weight(entry), port=service.port, target=target
        )
        return RR(request.q.qname, T_SRV, ttl=ttl, rdata=record)

    def _resolve_internal(self, name: str, depth: int) -> list[RR]:
        """Consul's resolveCNAME for names in our zones (ANY, depth-bounded);
        names elsewhere are left to the client (no recursor lookup here)."""
        lowered = name.lower()
        zone = names.zone_of(lowered, self.zones)
        if zone is None or depth < 1:
            return []
        inner = DNSRecord(q=DNSQuestion(name, T_ANY))
        reply = DNSRecord(q=inner.q)
        try:
            self._dispatch(inner, reply, lowered, zone, depth - 1)
        except (NameNotFound, NoData):
            return []
        return list(reply.rr)

    # ------------------------------------------------------------ nodes

    def _node(
        self,
        request: DNSRecord,
        reply: DNSRecord,
        question: Question,
        name: str,
        dc: str,
        depth: int,
    ) -> None:
        qtype = request.q.qtype
        if qtype not in (T_ANY, T_A, T_AAAA, T_TXT):
            return  # Consul: NOERROR, nothing, no SOA
        if dc != self.datacenter:
            raise NameNotFound
        node = self._find_node(name)
        authz = self._authorizer()
        if node is None or (
            authz is not None and not authz.allows("node", node.name, READ)
        ):
            raise NameNotFound
        qname = request.q.qname
        if qtype != T_TXT:
            reply.rr.extend(self._node_records(node, qtype, qname, depth))
        if qtype in (T_TXT, T_ANY):
            reply.rr.extend(self._meta_txt(qname, node, self.node_ttl))
        elif self.config.node_meta_txt:
            reply.ar.extend(self._meta_txt(qname, node, self.node_ttl))

    def _find_node(self, lowered: str) -> Node | None:
        nodes = self.catalog.nodes
        node = nodes.get(lowered)
        if node is not None:
            return node
        for candidate in nodes.values():
            if candidate.name.lower() == lowered:
                return candidate
        return None

    def _node_records(
        self, node: Node, qtype: int, qname: object, depth: int
    ) -> list[RR]:
        """Consul's makeRecordFromNode: A/AAAA, or a CNAME to a host name."""
        ip = names.parse_ip(node.address)
        if ip is None:
            target = names.fqdn(node.address)
            cname = RR(qname, QTYPE.CNAME, ttl=self.node_ttl, rdata=CNAME(target))
            return [cname, *self._resolve_internal(target, depth)]
        record = _address_rr(qname, qtype, ip, self.node_ttl)
        return [record] if record is not None else []

    def _meta_txt(self, owner: object, node: Node, ttl: int) -> list[RR]:
        records = []
        for key, value in node.meta.items():
            text = value if key.lower().startswith("rfc1035-") else rfc1464(key, value)
            records.append(RR(owner, T_TXT, ttl=ttl, rdata=TXT(_txt_strings(text))))
        return records

    # ------------------------------------------------------------ addr, ptr

    def _addr(self, request: DNSRecord, reply: DNSRecord, question: Question) -> None:
        """`<hex>.addr[.dc].<domain>`: the address the name spells."""
        if len(question.parts) != 1:
            raise NameNotFound
        ip = names.decode_addr(question.parts[0])
        if ip is None:
            raise NameNotFound
        qtype = request.q.qtype
        rtype = T_A if ip.version == 4 else T_AAAA
        rdata = A(str(ip)) if ip.version == 4 else AAAA(str(ip))
        record = RR(request.q.qname, rtype, ttl=self.node_ttl, rdata=rdata)
        if qtype in (rtype, T_ANY):
            reply.add_answer(record)
        else:
            reply.add_ar(record)

    def _ptr(
        self, request: DNSRecord, reply: DNSRecord, qname: str
    ) -> DNSRecord | None:
        """Reverse lookups: a node's address, else an instance's (handlePtr)."""
        if request.q.qtype == T_SOA:
            reply.add_auth(self._soa(self.domain))
        address = names.reverse_ip(qname)
        target = None
        if address is not None:
            for node in self.catalog.nodes.values():
                if node.address == address:
                    target = self._node_fqdn(node, self.domain)
                    break
            else:
                for service in self.catalog.all_services():
                    if service.address == address:
                        target = (
                            f"{service.name}.service.{self.datacenter}.{self.domain}"
                        )
                        break
        if target is not None:
            reply.add_answer(RR(request.q.qname, T_PTR, ttl=0, rdata=PTR(target)))
        elif self.recursion_available:
            return RECURSE
        else:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self._soa(self.domain))
        self._set_edns(request, reply)
        return reply

    # ------------------------------------------------------------ zone

    def _soa(self, zone: str) -> RR:
        record = SOA(
            mname=f"ns.{zone}",
            rname=f"hostmaster.{zone}",
            times=(
                int(self._clock()) & 0xFFFFFFFF,
                SOA_REFRESH,
                SOA_RETRY,
                SOA_EXPIRE,
                SOA_MIN_TTL,
            ),
        )
        return RR(zone, T_SOA, ttl=SOA_MIN_TTL, rdata=record)

    def _nameservers(self, zone: str) -> tuple[list[RR], list[RR]]:
        """NS records for up to three nodes serving `consul`, with glue."""
        entries = list(
            health_service(
                self.catalog,
                "consul",
                Selection(passing=True),
                panic_default=self.panic_threshold,
            ).entries
        )
        random.shuffle(entries)
        ns: list[RR] = []
        glue: list[RR] = []
        for node, _, _ in entries:
            if not _is_dns_label(node.name):
                continue
            target = self._node_fqdn(node, zone)
            ns.append(RR(zone, T_NS, ttl=self.node_ttl, rdata=NS(target)))
            glue.extend(self._node_records(node, T_ANY, target, MAX_RECURSION))
            if len(ns) >= MAX_NAMESERVERS:
                break
        return ns, glue

    def _node_fqdn(self, node: Node, zone: str) -> str:
        return f"{node.name}.node.{node.datacenter}.{zone}".lower()

    def _addr_fqdn(self, ip: IP, zone: str) -> str:
        return f"{names.encode_addr(ip)}.addr.{self.datacenter}.{zone}"

    def _set_edns(self, request: DNSRecord, reply: DNSRecord) -> None:
        """Echo EDNS0 with the client's buffer size (Consul's setEDNS); a
        client-subnet option comes back with scope 0: answers are global."""
        opt = _opt_of(request)
        if opt is None:
            return
        options = [
            EDNSOption(EDNS_CLIENT_SUBNET, _global_scope(option.data))
            for option in opt.rdata
            if option.code == EDNS_CLIENT_SUBNET and len(option.data) >= 4
        ]
        reply.add_ar(RR(".", T_OPT, rclass=opt.rclass, ttl=0, rdata=options))


# ---------------------------------------------------------------- helpers


class _Group(NamedTuple):
    """One instance's records: answers, and additional records by identity."""

    key: str
    answers: list[RR]
    extra: list[tuple[str, RR]]


def _assemble_addresses(reply: DNSRecord, groups: list[_Group], limit: int) -> None:
    """Consul's addServiceNodeRecordsToMessage: one answer set per distinct
    record; CNAMEs only if no instance has an address; at most `limit`."""
    seen: set[str] = set()
    first_cname: list[RR] = []
    count = 0
    for group in groups:
        if not group.answers or group.key in seen:
            continue
        seen.add(group.key)
        if group.answers[0].rtype == QTYPE.CNAME:
            if not first_cname:
                first_cname = group.answers
            continue
        reply.rr.extend(group.answers)
        count += 1
        if count == limit:
            return
    if not reply.rr and first_cname:
        reply.rr.extend(first_cname)


def _assemble_srv(reply: DNSRecord, groups: list[_Group]) -> None:
    """One SRV per distinct (node, address, port), its target's records in
    the additional section. Deliberate difference: an additional record
    already there is not repeated (Consul repeats a node's A and meta TXT
    for each of its instances; RFC 2181 5 asks for no duplicates)."""
    seen: set[str] = set()
    extra_seen: set[str] = set()
    for group in groups:
        if group.key in seen:
            continue
        seen.add(group.key)
        reply.rr.extend(group.answers)
        for key, record in group.extra:
            if key not in extra_seen:
                extra_seen.add(key)
                reply.ar.append(record)


def _rr_key(record: RR) -> str:
    return f"{str(record.rname).lower()} {record.rtype} {record.rdata}"


def srv_weight(entry: ServiceEntry) -> int:
    """Consul's findWeight: `Weights.Passing` or `.Warning` by the instance's
    aggregated status (its checks and its node's); 0 critical (panic)."""
    _, service, checks = entry
    status = aggregate_status(checks)
    if status == "passing":
        return service.weights.passing
    if status == "warning":
        return service.weights.warning
    return 0


def rfc1464(key: str, value: str) -> str:
    """`key=value` with RFC 1464's backquote escapes (encodeKVasRFC1464)."""
    key = key.replace("`", "``").replace("=", "`=")
    stripped = key.lstrip(" ")
    key = "` " * (len(key) - len(stripped)) + stripped
    stripped = key.rstrip(" ")
    key = stripped + "` " * (len(key) - len(stripped))
    return key + "=" + value.replace("`", "``")


def _txt_strings(text: str) -> list[bytes]:
    data = text.encode()
    return [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]


def _address_rr(owner: object, qtype: int, ip: IP, ttl: int) -> RR | None:
    """Consul's makeARecord: an A for IPv4, AAAA for IPv6, if `qtype` takes it."""
    if ip.version == 4:
        if qtype in _TAKES_V4:
            return RR(owner, T_A, ttl=ttl, rdata=A(str(ip)))
        return None
    if qtype in _TAKES_V6:
        return RR(owner, T_AAAA, ttl=ttl, rdata=AAAA(str(ip)))
    return None


def _with_ttl(record: RR, ttl: int) -> RR:
    record.ttl = ttl
    return record


def _opt_of(request: DNSRecord) -> RR | None:
    for record in request.ar:
        if record.rtype == T_OPT:
            return record
    return None


def _has_edns(request: DNSRecord) -> bool:
    return _opt_of(request) is not None


def edns_size(request: DNSRecord) -> int | None:
    """The client's EDNS0 UDP buffer size, None without EDNS0."""
    opt = _opt_of(request)
    return None if opt is None else int(opt.rclass)


def _global_scope(data: bytes) -> bytes:
    return bytes(data[:3]) + b"\x00" + bytes(data[4:])


def _is_dns_label(name: str) -> bool:
    # Consul's InvalidNameRe: anything but letters, digits and '-'.
    return bool(name) and all(c.isascii() and (c.isalnum() or c == "-") for c in name)
