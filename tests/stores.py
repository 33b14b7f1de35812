"""Which store the suite runs on (`WAYPOST_TEST_STORE=etcd`: every `--dev`
agent on a real etcd cluster), and the tests that hold for one agent only."""

from __future__ import annotations

import os

import pytest

ON_ETCD = os.environ.get("WAYPOST_TEST_STORE") == "etcd"


def single_agent_only(reason: str) -> pytest.MarkDecorator:
    """Skip on the etcd store: the behaviour differs in cluster mode, by design."""
    return pytest.mark.skipif(ON_ETCD, reason=f"cluster mode: {reason}")


STATUS_IS_ETCD = single_agent_only(
    "/v1/status and the leader in /v1/agent/self describe the etcd members"
)
