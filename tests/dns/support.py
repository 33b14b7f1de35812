"""Asking an agent's DNS interface, with dnspython as the resolver."""

from __future__ import annotations

from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx

from waypost.testing import AgentProcess

#: Seconds a single DNS exchange may take on a loaded 2-core machine.
TIMEOUT = 5.0


def ask(
    agent: AgentProcess,
    name: str,
    rdtype: str = "A",
    *,
    tcp: bool = False,
    edns: int | None = 1232,
    options: list[dns.edns.Option] | None = None,
) -> dns.message.Message:
    """One query over UDP (or TCP); `edns=None` sends none."""
    query = dns.message.make_query(
        name,
        rdtype,
        use_edns=0 if edns is not None else False,
        payload=edns or 512,
        options=options,
    )
    host, port = agent.dns_address
    if tcp:
        return dns.query.tcp(query, host, port=port, timeout=TIMEOUT)
    return dns.query.udp(query, host, port=port, timeout=TIMEOUT, ignore_trailing=False)


def records(
    reply: dns.message.Message, rdtype: str, section: str = "answer"
) -> list[Any]:
    """The rdata of every record of `rdtype` in a section."""
    wanted = dns.rdatatype.from_text(rdtype)
    return [
        rdata
        for rrset in getattr(reply, section)
        if rrset.rdtype == wanted
        for rdata in rrset
    ]


def addresses(reply: dns.message.Message) -> set[str]:
    return {r.address for r in records(reply, "A")} | {
        r.address for r in records(reply, "AAAA")
    }


def rcode(reply: dns.message.Message) -> str:
    return dns.rcode.to_text(reply.rcode())


def register(http: httpx.Client, **body: object) -> None:
    response = http.put("/v1/agent/service/register", json=body)
    assert response.status_code == 200, response.text
