"""bench/attack.py --quick: every attack runs against a real agent, which
answers the attacks with the limits' statuses and the reads throughout.

Tiny sizes and no speed asserted (bench/RESULTS.md has the figures).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ATTACK = ROOT / "bench" / "attack.py"
PHASES = (
    "baseline",
    "slowloris",
    "flood-one",
    "flood-many",
    "big-headers",
    "pipeline",
    "pipeline-stall",
)

pytestmark = pytest.mark.timeout(240)


def test_quick_attacks_leave_the_agent_answering(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ATTACK), "--quick", "--no-write"],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-4000:]
    rows = {
        line.split("|")[1].strip(): line.split("|")
        for line in done.stdout.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip() in PHASES
    }
    assert set(rows) == set(PHASES), report[-4000:]
    for name, cells in rows.items():
        kept_alive, new_connection = int(cells[2].replace(",", "")), int(cells[7])
        assert kept_alive > 0 and new_connection > 0, (name, cells)
    seen = {
        line.split("**")[1]: line
        for line in done.stdout.splitlines()
        if line.startswith("- **")
    }
    assert "answered 429" in seen["flood-one"]
    assert "answered 431" in seen["big-headers"]
    assert "answered out of order: 0" in seen["pipeline"]
