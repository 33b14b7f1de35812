"""The DNS interface answers as Consul's does (agent/dns.go), from the same
selection as HTTP's `?passing`: asked with dnspython over real sockets."""

from __future__ import annotations

import socket
import subprocess
import sys

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import httpx
import pytest

from tests.dns.support import TIMEOUT, addresses, ask, rcode, records, register
from waypost.testing import AgentProcess, run_agent, wait_until

NODE = "waypost-test"  # AgentProcess's node name


def test_a_answers_are_the_passing_instances_in_shuffled_order(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    for i in range(5):
        register(
            api, Name="shuffled", ID=f"shuffled{i}", Port=80, Address=f"10.1.0.{i}"
        )
    # Critical from the start (a TTL check not yet passed): never answered.
    register(
        api, Name="shuffled", ID="shuffled-sick", Port=80, Address="10.1.0.99",
        Check={"TTL": "30s"},
    )  # fmt: skip
    orders = set()
    for _ in range(20):
        reply = ask(dns_agent, "shuffled.service.consul")
        assert rcode(reply) == "NOERROR"
        assert reply.flags & dns.flags.AA
        assert not reply.flags & dns.flags.RA  # no recursor configured
        orders.add(tuple(r.address for r in records(reply, "A")))
    assert {frozenset(order) for order in orders} == {
        frozenset(f"10.1.0.{i}" for i in range(5))
    }
    assert len(orders) > 1, "answers are shuffled"
    assert all(rrset.ttl == 0 for rrset in reply.answer)  # Consul's default TTL


def test_srv_targets_name_the_node_or_the_address_with_their_a_records(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    register(api, Name="srvtarget", ID="on-node", Port=7001)
    register(api, Name="srvtarget", ID="own-addr", Port=7002, Address="10.2.0.7")
    reply = ask(dns_agent, "srvtarget.service.consul", "SRV")
    targets = {r.port: r.target.to_text() for r in records(reply, "SRV")}
    assert targets == {
        7001: f"{NODE}.node.dc1.consul.",
        7002: "0a020007.addr.dc1.consul.",
    }
    glue = {
        rrset.name.to_text(): [r.address for r in rrset]
        for rrset in reply.additional
        if rrset.rdtype == dns.rdatatype.A
    }
    assert glue == {
        f"{NODE}.node.dc1.consul.": ["127.0.0.1"],
        "0a020007.addr.dc1.consul.": ["10.2.0.7"],
    }
    assert all(r.priority == 1 for r in records(reply, "SRV"))
    # The node's meta rides along as TXT (enable_additional_node_meta_txt).
    assert any("consul-version=" in str(r) for r in records(reply, "TXT", "additional"))


def test_srv_weight_is_the_instance_weights(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    register(
        api, Name="weighted", ID="w1", Port=1, Weights={"Passing": 7, "Warning": 2}
    )
    register(api, Name="weighted", ID="w2", Port=2)
    reply = ask(dns_agent, "weighted.service.consul", "SRV")
    assert {r.port: r.weight for r in records(reply, "SRV")} == {1: 7, 2: 1}


def test_tags_and_rfc_2782_names(dns_agent: AgentProcess, api: httpx.Client) -> None:
    register(api, Name="tagged", ID="t1", Port=1, Address="10.3.0.1", Tags=["v1"])
    register(
        api, Name="tagged", ID="t2", Port=2, Address="10.3.0.2", Tags=["v2", "Blue"]
    )
    assert addresses(ask(dns_agent, "v1.tagged.service.consul")) == {"10.3.0.1"}
    assert addresses(ask(dns_agent, "blue.tagged.service.consul")) == {"10.3.0.2"}
    ports = {
        r.port
        for r in records(ask(dns_agent, "_tagged._v2.service.consul", "SRV"), "SRV")
    }
    assert ports == {2}
    # `_tcp` means no tag; for SRV the `.service` label may be left out.
    for name in ("_tagged._tcp.service.consul", "_tagged._tcp.consul"):
        assert {r.port for r in records(ask(dns_agent, name, "SRV"), "SRV")} == {1, 2}
    assert rcode(ask(dns_agent, "v3.tagged.service.consul")) == "NXDOMAIN"


def test_names_and_tags_ignore_case(dns_agent: AgentProcess, api: httpx.Client) -> None:
    register(api, Name="MixedCase", Port=1, Address="10.4.0.1")
    assert addresses(ask(dns_agent, "MIXEDcase.service.CONSUL")) == {"10.4.0.1"}


def test_unknown_names_are_nxdomain_with_the_zone_soa(dns_agent: AgentProcess) -> None:
    for name in (
        "nosuch.service.consul",
        "nosuch.node.consul",
        "something.consul",
        "web.service.dc2.consul",  # another datacenter: no path to it
        "web.query.consul",  # prepared queries are not served
    ):
        reply = ask(dns_agent, name)
        assert rcode(reply) == "NXDOMAIN", name
        assert reply.flags & dns.flags.AA
        (soa,) = records(reply, "SOA", "authority")
        assert soa.mname.to_text() == "ns.consul."
        assert soa.rname.to_text() == "hostmaster.consul."
        assert (soa.refresh, soa.retry, soa.expire, soa.minimum) == (
            3600,
            600,
            86400,
            0,
        )
        assert reply.authority[0].name.to_text() == "consul."
        assert reply.authority[0].ttl == 0


def test_a_name_without_records_of_the_asked_type_is_nodata(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    register(api, Name="v4only", Port=1, Address="10.5.0.1")
    reply = ask(dns_agent, "v4only.service.consul", "AAAA")
    assert rcode(reply) == "NOERROR"
    assert reply.answer == []
    assert records(reply, "SOA", "authority")


def test_names_outside_our_zones_are_refused(dns_agent: AgentProcess) -> None:
    reply = ask(dns_agent, "example.com")
    assert rcode(reply) == "REFUSED"
    assert reply.answer == []
    assert not reply.flags & dns.flags.AA  # not our zone: no authority claimed


def test_soa_and_ns_name_this_agent(dns_agent: AgentProcess) -> None:
    soa = ask(dns_agent, "consul", "SOA")
    assert records(soa, "SOA")[0].mname.to_text() == "ns.consul."
    ns = ask(dns_agent, "consul", "NS")
    assert [r.target.to_text() for r in records(ns, "NS")] == [
        f"{NODE}.node.dc1.consul."
    ]
    assert [r.address for r in records(ns, "A", "additional")] == ["127.0.0.1"]


def test_node_lookups(dns_agent: AgentProcess) -> None:
    for name in (
        f"{NODE}.node.consul",
        f"{NODE}.node.dc1.consul",
        f"{NODE}.node.dc1.dc.consul",
    ):
        reply = ask(dns_agent, name)
        assert addresses(reply) == {"127.0.0.1"}, name
        assert "consul-version=1.22.0" in {
            r.strings[0].decode() for r in records(reply, "TXT", "additional")
        }
    txt = ask(dns_agent, f"{NODE}.node.consul", "TXT")
    assert "consul-network-segment=" in {
        r.strings[0].decode() for r in records(txt, "TXT")
    }
    assert ask(dns_agent, f"{NODE}.node.consul", "AAAA").answer == []


def test_addr_names_spell_their_address(dns_agent: AgentProcess) -> None:
    assert addresses(ask(dns_agent, "7f000001.addr.dc1.consul")) == {"127.0.0.1"}
    v6 = "20010db8000000000000000000000001"
    assert addresses(ask(dns_agent, f"{v6}.addr.consul", "AAAA")) == {"2001:db8::1"}
    # Asked for another type: the record comes in the additional section.
    other = ask(dns_agent, "7f000001.addr.consul", "SRV")
    assert other.answer == [] and records(other, "A", "additional")
    assert rcode(ask(dns_agent, "zz000001.addr.consul")) == "NXDOMAIN"


def test_a_host_name_address_is_a_cname(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    register(api, Name="external", Port=443, Address="api.example.org")
    reply = ask(dns_agent, "external.service.consul")
    assert [r.target.to_text() for r in records(reply, "CNAME")] == ["api.example.org."]
    srv = ask(dns_agent, "external.service.consul", "SRV")
    assert [(r.port, r.target.to_text()) for r in records(srv, "SRV")] == [
        (443, "api.example.org.")
    ]


def test_reverse_lookup_names_the_node(dns_agent: AgentProcess) -> None:
    reply = ask(dns_agent, "1.0.0.127.in-addr.arpa", "PTR")
    assert [r.target.to_text() for r in records(reply, "PTR")] == [
        f"{NODE}.node.dc1.consul."
    ]
    assert rcode(ask(dns_agent, "9.9.9.10.in-addr.arpa", "PTR")) == "NXDOMAIN"


def test_an_instance_turning_critical_leaves_the_answers(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    for i in (1, 2):
        register(
            api, Name="flaky", ID=f"flaky{i}", Port=1, Address=f"10.6.0.{i}",
            Check={"CheckID": f"flaky{i}", "TTL": "60s", "Status": "passing"},
        )  # fmt: skip
    assert addresses(ask(dns_agent, "flaky.service.consul")) == {"10.6.0.1", "10.6.0.2"}
    api.put("/v1/agent/check/fail/flaky2").raise_for_status()
    assert addresses(ask(dns_agent, "flaky.service.consul")) == {"10.6.0.1"}
    api.put("/v1/agent/check/fail/flaky1").raise_for_status()
    assert rcode(ask(dns_agent, "flaky.service.consul")) == "NXDOMAIN"
    api.put("/v1/agent/check/pass/flaky2").raise_for_status()
    assert addresses(ask(dns_agent, "flaky.service.consul")) == {"10.6.0.2"}


def test_under_the_panic_threshold_every_instance_is_answered(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    """The same selection as HTTP `?passing`, panic threshold included; the
    critical ones get SRV weight 0."""
    meta = {"waypost-panic-threshold": "0.5"}
    register(api, Name="panicky", ID="p0", Port=10, Meta=meta)
    for i in (1, 2):
        register(
            api,
            Name="panicky",
            ID=f"p{i}",
            Port=10 + i,
            Meta=meta,
            Check={"TTL": "60s"},
        )
    reply = ask(dns_agent, "panicky.service.consul", "SRV")
    assert {r.port: r.weight for r in records(reply, "SRV")} == {10: 1, 11: 0, 12: 0}
    http = api.get("/v1/health/service/panicky?passing")
    assert len(http.json()) == 3 and "X-Waypost-Panic" in http.headers


def test_udp_answers_are_cut_to_fit_and_tcp_carries_all(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    for i in range(40):
        register(
            api, Name="large", ID=f"large{i}", Port=1000 + i, Address=f"10.7.0.{i}"
        )
    # No EDNS0: Consul's udp_answer_limit, 3 answers; TC stays off (Consul's
    # enable_truncate default).
    plain = ask(dns_agent, "large.service.consul", "SRV", edns=None)
    assert len(records(plain, "SRV")) == 3
    assert len(records(plain, "A", "additional")) == 3
    assert not plain.flags & dns.flags.TC
    # EDNS0: as many as fit the client's buffer; over TCP: every one.
    small = ask(dns_agent, "large.service.consul", "SRV", edns=1232)
    assert 3 < len(records(small, "SRV")) < 40
    targets = {r.target for r in records(small, "SRV")}
    assert {rrset.name for rrset in small.additional if rrset.rdtype == 1} == targets
    assert (
        len(records(ask(dns_agent, "large.service.consul", "SRV", edns=8192), "SRV"))
        == 40
    )
    assert (
        len(records(ask(dns_agent, "large.service.consul", "SRV", tcp=True), "SRV"))
        == 40
    )


def test_truncation_flag_sends_clients_to_tcp(api: httpx.Client) -> None:
    with (
        run_agent(extra_args=["--dns-enable-truncate"]) as agent,
        httpx.Client(base_url=agent.url) as http,
    ):
        for i in range(10):
            register(http, Name="many", ID=f"many{i}", Port=1, Address=f"10.8.0.{i}")
        cut = ask(agent, "many.service.consul", edns=None)
        assert cut.flags & dns.flags.TC and len(records(cut, "A")) == 3
        query = dns.message.make_query("many.service.consul", "A")
        host, port = agent.dns_address
        full, used_tcp = dns.query.udp_with_fallback(
            query, host, port=port, timeout=TIMEOUT
        )
        assert used_tcp and len(records(full, "A")) == 10


def test_edns0_is_echoed_with_the_client_buffer_size(dns_agent: AgentProcess) -> None:
    subnet = dns.edns.ECSOption("192.0.2.0", 24)
    reply = ask(dns_agent, f"{NODE}.node.consul", edns=4000, options=[subnet])
    assert reply.edns == 0 and reply.payload == 4000
    (echoed,) = reply.options
    assert isinstance(echoed, dns.edns.ECSOption)
    assert (echoed.address, echoed.srclen, echoed.scopelen) == ("192.0.2.0", 24, 0)
    assert ask(dns_agent, f"{NODE}.node.consul", edns=None).edns == -1


def test_ttls_per_node_and_per_service() -> None:
    flags = [
        "--dns-node-ttl", "10s",
        "--dns-service-ttl", "db=5s",
        "--dns-service-ttl", "web*=30s",
        "--dns-service-ttl", "*=1s",
    ]  # fmt: skip
    with run_agent(extra_args=flags) as agent, httpx.Client(base_url=agent.url) as http:
        for name in ("db", "web-front", "other"):
            register(http, Name=name, Port=1, Address="10.9.0.1")
        ttl = {
            name: ask(agent, f"{name}.service.consul").answer[0].ttl
            for name in ("db", "web-front", "other")
        }
        assert ttl == {"db": 5, "web-front": 30, "other": 1}
        assert ask(agent, f"{NODE}.node.consul").answer[0].ttl == 10


def test_domain_and_alt_domain() -> None:
    flags = ["--domain", "waypost.test", "--alt-domain", "alt.example"]
    with run_agent(extra_args=flags) as agent, httpx.Client(base_url=agent.url) as http:
        register(http, Name="web", Port=1, Address="10.10.0.1")
        assert addresses(ask(agent, "web.service.waypost.test")) == {"10.10.0.1"}
        alt = ask(agent, "web.service.alt.example", "SRV")
        assert (
            records(alt, "SRV")[0].target.to_text() == "0a0a0001.addr.dc1.alt.example."
        )
        assert rcode(ask(agent, "web.service.consul")) == "REFUSED"
        gone = ask(agent, "nope.service.alt.example")
        assert gone.authority[0].name.to_text() == "alt.example."


def test_a_recursor_answers_names_outside_our_zones() -> None:
    with (
        run_agent(extra_args=["--domain", "inner"]) as inner,
        httpx.Client(base_url=inner.url) as http,
    ):
        register(http, Name="web", Port=1, Address="10.11.0.1")
        recursor = f"127.0.0.1:{inner.dns_port}"
        with run_agent(extra_args=["--recursor", recursor]) as outer:
            for tcp in (False, True):
                reply = ask(outer, "web.service.inner", tcp=tcp)
                assert addresses(reply) == {"10.11.0.1"}
                assert rcode(ask(outer, "nope.service.inner", tcp=tcp)) == "NXDOMAIN"
            # Our own zone is still ours, and says recursion is available.
            own = ask(outer, f"{NODE}.node.consul")
            assert own.flags & dns.flags.RA and addresses(own) == {"127.0.0.1"}
    with run_agent(extra_args=["--recursor", "127.0.0.1:9"]) as lonely:
        failed = ask(lonely, "example.com")
        assert rcode(failed) == "SERVFAIL" and failed.flags & dns.flags.RA


def test_malformed_packets_are_counted_and_dropped(
    dns_agent: AgentProcess, api: httpx.Client
) -> None:
    host, port = dns_agent.dns_address
    garbage = [
        b"",
        b"\x00",
        b"\xff" * 11,
        b"\x12\x34" + b"\x01\x00\x00\x01" + b"\x00" * 6 + b"\x3fabc",
        bytes(range(256)) * 3,
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        for packet in garbage:
            sock.sendto(packet, (host, port))
        with pytest.raises(TimeoutError):
            sock.recv(512)  # nothing is answered
    with socket.create_connection((host, port), timeout=TIMEOUT) as conn:
        conn.sendall(len(garbage[3]).to_bytes(2, "big") + garbage[3])
        conn.sendall(b"\x00\x05hello")
    # A response sent to us is not answered either (no reflection loops).
    response = dns.message.make_response(dns.message.make_query("x.consul", "A"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.sendto(response.to_wire(), (host, port))
        with pytest.raises(TimeoutError):
            sock.recv(512)
    # Still answering, over both transports, and the drops were counted.
    assert addresses(ask(dns_agent, f"{NODE}.node.consul")) == {"127.0.0.1"}
    assert addresses(ask(dns_agent, f"{NODE}.node.consul", tcp=True)) == {"127.0.0.1"}

    def dropped() -> float:
        counters = api.get("/v1/agent/metrics").json()["Counters"]
        return sum(c["Count"] for c in counters if c["Name"] == "waypost.dns_malformed")

    assert wait_until(lambda: dropped() >= 8, timeout=5)


def test_other_opcodes_and_zone_transfers_are_not_implemented(
    dns_agent: AgentProcess,
) -> None:
    host, port = dns_agent.dns_address
    notify = dns.message.make_query("consul", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    reply = dns.query.udp(notify, host, port=port, timeout=TIMEOUT)
    assert rcode(reply) == "NOTIMP"
    axfr = dns.message.make_query("consul", "AXFR")
    assert rcode(dns.query.tcp(axfr, host, port=port, timeout=TIMEOUT)) == "NOTIMP"


def test_dns_can_be_turned_off() -> None:
    with run_agent(extra_args=["--dns-addr", ""]) as agent:
        assert agent.dns_port == 0
        assert "dns=off" in agent.log


def test_a_taken_dns_port_stops_start_up_with_one_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                *(sys.executable, "-m", "waypost", "agent", "--dev"),
                *("--http-addr", "127.0.0.1:0", "--dns-addr", f"127.0.0.1:{port}"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"cannot listen for DNS on 127.0.0.1:{port}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
