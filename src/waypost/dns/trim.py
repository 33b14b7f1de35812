"""Fit a reply into its transport, as Consul's trimUDPResponse and
trimTCPResponse do (agent/dns.go).

UDP: a client without EDNS0 gets at most `udp_answer_limit` answers (3 by
default, never more than 8) and 512 bytes; with EDNS0, its buffer size
(at most 65,467). TCP: at most 64 KiB. Answers are dropped from the end,
the additional section is re-synced to the SRV targets that remain, and the
caller sets TC only when `enable_truncate` is on (Consul's default is off).
"""

from __future__ import annotations

from dnslib import QTYPE, RR, DNSRecord

#: RFC 1035's UDP payload without EDNS0.
DEFAULT_UDP_SIZE = 512
#: Consul's maxUDPAnswerLimit: the cap on `udp_answer_limit`.
MAX_UDP_ANSWER_LIMIT = 8
#: Consul's maxUDPDatagramSize (65535 less IP and UDP headers).
MAX_UDP_DATAGRAM = 65535 - 68
#: Consul: 64 KiB less the 12-byte DNS header.
MAX_TCP_SIZE = 65523
#: More SRV answers than this cannot fit 64 KiB; other types: 4096.
TCP_MAX_SRV, TCP_MAX_OTHER = 1024, 4096


def trim_udp(
    reply: DNSRecord, *, edns_size: int | None, answer_limit: int
) -> tuple[bytes, bool]:
    """The packed reply and whether answers were dropped."""
    max_size = DEFAULT_UDP_SIZE
    if edns_size is not None and edns_size > max_size:
        max_size = min(edns_size, MAX_UDP_DATAGRAM)
    answers = list(reply.rr)
    index = _index(reply.ar)
    max_answers = min(MAX_UDP_ANSWER_LIMIT, answer_limit)
    if max_size == DEFAULT_UDP_SIZE and len(answers) > max_answers:
        _keep(reply, answers, max_answers, index)
    # 8 bytes for the UDP header, as Consul counts them.
    return _fit(reply, answers, max_size - 8, index)


def trim_tcp(reply: DNSRecord) -> tuple[bytes, bool]:
    answers = list(reply.rr)
    index = _index(reply.ar)
    cap = TCP_MAX_SRV if reply.q.qtype == QTYPE.SRV else TCP_MAX_OTHER
    if len(answers) > cap:
        _keep(reply, answers, cap, index)
    return _fit(reply, answers, MAX_TCP_SIZE, index)


def _fit(
    reply: DNSRecord, answers: list[RR], limit: int, index: dict[str, RR] | None
) -> tuple[bytes, bool]:
    """Drop the authority section, then answers from the end, until the
    packed reply fits `limit` (one answer is always sent)."""
    wire = reply.pack()
    if len(wire) > limit and len(reply.rr) > 1:
        reply.auth = []
        wire = reply.pack()
        if len(wire) > limit:
            low, high = 1, len(reply.rr)
            while low < high:  # the most answers that fit
                middle = (low + high + 1) // 2
                _keep(reply, answers, middle, index)
                if len(reply.pack()) <= limit:
                    low = middle
                else:
                    high = middle - 1
            _keep(reply, answers, low, index)
            wire = reply.pack()
    return wire, len(reply.rr) < len(answers)


def _index(extra: list[RR]) -> dict[str, RR] | None:
    """Additional records by lower-cased owner, the first of each (indexRRs)."""
    if not extra:
        return None
    index: dict[str, RR] = {}
    for record in extra:
        if record.rtype == 41:
            continue
        index.setdefault(str(record.rname).lower(), record)
    return index


def _keep(
    reply: DNSRecord, answers: list[RR], count: int, index: dict[str, RR] | None
) -> None:
    """Keep the first `count` answers; re-sync the additional section."""
    reply.rr = answers[:count]
    if index is not None:
        _sync_extra(reply, index)


def _sync_extra(reply: DNSRecord, index: dict[str, RR]) -> None:
    """Consul's syncExtra: the records the remaining SRV targets need
    (following CNAMEs); the OPT record stays."""
    opt = [r for r in reply.ar if r.rtype == 41]
    extra: list[RR] = []
    resolved: set[str] = set()
    for answer in reply.rr:
        if answer.rtype != QTYPE.SRV:
            continue
        target = str(answer.rdata.target).lower()
        while target not in resolved:
            resolved.add(target)
            record = index.get(target)
            if record is None:
                break
            extra.append(record)
            if record.rtype != QTYPE.CNAME:
                break
            target = str(record.rdata.label).lower()
    reply.ar = extra + opt
