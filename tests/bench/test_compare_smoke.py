"""bench/compare.py --quick: every phase against real etcd and ZooKeeper servers.

Runs the script as a user would (its own process, so the peers' gRPC and kazoo
threads stay out of this one). etcd and ZooKeeper come from Debian's packages,
which the script installs when missing; only a machine that has neither them
nor root with apt-get skips. Sizes are tiny and no speed target is asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "bench" / "compare.py"
PHASES = ("register", "heartbeat", "discover", "notify", "detect", "footprint")
PEERS_MISSING = 3  # compare.py's exit status when etcd/ZooKeeper can't be had

pytestmark = pytest.mark.timeout(240)  # a first run may apt-get install both


def test_quick_comparison_runs_every_phase_on_all_three(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(COMPARE), "--quick", "--no-write"],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode == PEERS_MISSING:
        pytest.skip(done.stdout.strip().splitlines()[-1])
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-4000:]
    for phase in PHASES:
        assert f"✓ {phase}" in done.stdout, report[-4000:]
    table = done.stdout[done.stdout.index("waypost vs etcd vs ZooKeeper") :]
    for row in ("register/s, 64 callers", "notify: others woken", "RSS bytes"):
        line = next(line for line in table.splitlines() if row in line)
        assert line.count("│") >= 8 and " - " not in line, line  # all three measured
