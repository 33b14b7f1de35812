"""bench/dns_bench.py --quick: dnsperf against a real agent, every workload
answered, nothing lost (no speed asserted: bench/RESULTS.md has the figures)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dns_bench.py"

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        shutil.which("dnsperf") is None,
        reason="dnsperf is not installed (scripts/test installs Debian's)",
    ),
]


def test_quick_dns_bench_loses_no_query(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-write"],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    workloads = [
        row for row in rows if not row.startswith(("| workload", "| library", "| ---"))
    ]
    assert len(workloads) >= 6 + 2  # six workloads, two codecs
    for row in workloads[:6]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[1].replace(",", "")) > 0, row  # queries/s
        assert cells[5] == "0", row  # lost
