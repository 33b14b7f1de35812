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
# ruff: noqa: RUF061

from __future__ import annotations

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
