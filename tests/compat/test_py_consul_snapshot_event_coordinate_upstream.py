"""py-consul's upstream tests for snapshots, events and coordinates, ported
to run against waypost.

Written by the py-consul maintainers against real Consul agents; their
assertions encode real Consul's behaviour and are kept exactly as upstream
wrote them. Source: the py-consul 1.8.0 sdist (the version this repository
installs), which ships its tests:

* tests/api/test_snapshot.py     -> TestSnapshot
* tests/api/test_event.py        -> TestEvent
* tests/api/test_coordinates.py  -> TestCoordinates

Only the harness is adapted (tests/compat/conftest.py): `consul_obj` is a
fresh `waypost agent --dev` per test, `acl_consul` one with ACLs on (default
deny, an initial management token), as upstream starts `consul agent -dev`.
"""

# Upstream forms kept verbatim: pytest.raises(exc, fn, ...), list-comprehension
# asserts, a dict literal on one line.
# ruff: noqa: E501, RUF061

from __future__ import annotations

import time

import consul
import pytest

# -------------------------------------------------------- tests/api/test_snapshot.py


class TestSnapshot:
    def test_snapshot_save_and_restore(self, acl_consul) -> None:
        c, master_token, _consul_version = acl_consul

        c.kv.put("snapshot-test-key", "before-snapshot", token=master_token)

        snapshot = c.snapshot.save(token=master_token)
        assert isinstance(snapshot, bytes)
        assert snapshot[:2] == b"\x1f\x8b"  # gzip magic number

        c.kv.put("snapshot-test-key", "after-snapshot", token=master_token)

        assert c.snapshot.restore(snapshot, token=master_token) is True

        _index, value = c.kv.get("snapshot-test-key", token=master_token)
        assert value["Value"] == b"before-snapshot"

    def test_snapshot_requires_management_token(self, acl_consul) -> None:
        c, _master_token, _consul_version = acl_consul

        pytest.raises(consul.ACLPermissionDenied, c.snapshot.save, token="anonymous")


# ----------------------------------------------------------- tests/api/test_event.py


class TestEvent:
    def test_event(self, consul_obj) -> None:
        c, _consul_version = consul_obj

        assert c.event.fire("fooname", "foobody")
        _index, events = c.event.list()
        assert [x["Name"] == "fooname" for x in events]
        assert [x["Payload"] == "foobody" for x in events]

    def test_event_targeted(self, consul_obj) -> None:
        c, _consul_version = consul_obj

        assert c.event.fire("fooname", "foobody")
        _index, events = c.event.list(name="othername")
        assert events == []

        _index, events = c.event.list(name="fooname")
        assert [x["Name"] == "fooname" for x in events]
        assert [x["Payload"] == "foobody" for x in events]

    def test_event_fire_dc(self, consul_obj) -> None:
        c, _consul_version = consul_obj

        # the dev agent runs in dc1, so firing with the matching dc
        # should behave exactly like not specifying it at all
        assert c.event.fire("fooname", "foobody", dc="dc1")
        _index, events = c.event.list(name="fooname")
        assert [x["Name"] == "fooname" for x in events]
        assert [x["Payload"] == "foobody" for x in events]

    def test_event_list_node_service_tag_filters(self, consul_obj) -> None:
        c, _consul_version = consul_obj

        node = c.agent.self()["Config"]["NodeName"]

        assert c.event.fire("fooname", "foobody")

        # node/service/tag are accepted as regex filter query params by the
        # /v1/event/list endpoint (see
        # https://developer.hashicorp.com/consul/api-docs/event). On a
        # single dev-mode agent Consul does not actually exclude the event
        # from the response based on these filters (they filter which
        # agents *store* the event via gossip at fire time, not what a
        # given agent returns from its local buffer), so we can only
        # confirm here that passing them doesn't error and that matching
        # events are still returned.
        _index, events = c.event.list(name="fooname", node=node)
        assert [x["Name"] == "fooname" for x in events]

        _index, events = c.event.list(name="fooname", service="fooservice")
        assert [x["Name"] == "fooname" for x in events]

        _index, events = c.event.list(name="fooname", tag="footag")
        assert [x["Name"] == "fooname" for x in events]


# ----------------------------------------------------- tests/api/test_coordinates.py


class TestCoordinates:
    def test_coordinate(self, consul_obj) -> None:
        c, _consul_version = consul_obj
        c.coordinate.nodes()
        c.coordinate.datacenters()
        assert set(c.coordinate.datacenters()[0].keys()) == {"Datacenter", "Coordinates", "AreaID"}

    def test_coordinate_update(self, consul_obj) -> None:
        c, _consul_version = consul_obj

        # find our own node name via the datacenters endpoint, which is
        # populated as soon as the agent joins the WAN gossip pool
        datacenters = c.coordinate.datacenters()
        assert datacenters
        node = datacenters[0]["Coordinates"][0]["Node"]

        coord = {"Adjustment": 0, "Error": 1.5, "Height": 0, "Vec": [0, 0, 0, 0, 0, 0, 0, 0]}

        # writing a coordinate update is somewhat artificial in a
        # single-node dev-mode cluster (real updates normally come from the
        # serf gossip / RTT estimation loop), but it lets us exercise the
        # request/response contract of the endpoint.
        assert c.coordinate.update(node, coord) is True

        # coordinate.node/:node can 404 until the update has propagated
        # through the catalog, so poll for a bit rather than sleeping a
        # fixed, possibly-too-short amount of time.
        result = None
        for _ in range(20):
            _index, result = c.coordinate.node(node)
            if result:
                break
            time.sleep(0.5)

        assert result is not None
        entry = result[0]
        assert entry["Node"] == node
        assert entry["Coord"]["Error"] == coord["Error"]
        assert entry["Coord"]["Vec"] == coord["Vec"]
