"""bench/fuzz_api.py --quick: schemathesis against real agents (SQLite and
--dev), then the accepted writes replayed on fresh ones.

Requests generated from our OpenAPI description, valid and invalid, for every
operation: no 5xx, every answer as described, the agent alive with no bug
logged, and the replayed agent's state equal to the fuzzed one's (so the
catalog holds exactly what the accepted requests wrote, the refused ones
changed nothing). Five examples per operation and mode; the full run's
figures are in bench/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "bench" / "fuzz_api.py"

pytestmark = pytest.mark.timeout(600)


def test_generated_requests_get_no_5xx_and_replay_to_the_same_state(
    tmp_path: Path,
) -> None:
    out = tmp_path / "fuzz.json"
    done = subprocess.run(
        [sys.executable, str(FUZZ), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    runs = json.loads(out.read_text())
    assert [run["store"] for run in runs] == ["sqlite", "dev"]
    for run in runs:
        assert run["requests"] >= 500, run
        assert set(run["by_mode"]) == {"positive", "negative"}, run
        assert run["server_errors"] == 0, run["failure_examples"]
        assert run["network_errors"] == 0, run["failure_examples"]
        assert run["failures"] == {}, run["failure_examples"]
        assert run["alive"], run
        assert run["bugs_logged"] == 0, run
        assert run["accepted_writes"] > 0, run
        assert run["replay_refused"] == [], run
        assert run["state_differences"] == [], run
    assert done.returncode == 0, done.stderr[-3000:]
