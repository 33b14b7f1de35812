"""The lock test (issue 15): 20 real contender processes, SIGKILLed at
random and restarted for 60 s, one agent; the verdict in harness.py."""

from __future__ import annotations

import os
from pathlib import Path

from tests.locks import harness
from waypost.testing import run_agent

SECONDS = float(os.environ.get("WAYPOST_LOCK_SECONDS", "60"))


def test_a_lock_is_held_by_at_most_one_contender_ever(tmp_path: Path) -> None:
    with run_agent(dev=False, data_dir=tmp_path / "data") as agent:
        report = harness.run([agent], SECONDS, tmp_path)
    print("\nlock test, one agent:", report.summary())
    assert not report.problems, "\n".join(report.problems[:20])
    assert report.acquisitions >= 3
    assert report.expired_holders >= 1
