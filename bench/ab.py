"""A/B: this checkout's agent against another revision's, interleaved.

    python bench/ab.py --base 3a8e90c [--rounds 3] [--duration 5]

Runs the workloads of `http_bench.py` (reads of a 10-instance service,
durable and --dev registrations with 64 connections, TTL passes) against an
agent from `--base` (checked out into a temporary git worktree) and one from
this checkout, alternating base/new each round, so that both see the same
machine noise. Prints the median of each side and new ÷ base, and writes its
section of bench/RESULTS.md. A ratio within a few percent of 1.0 is noise on
this 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import environment, write_section
from http_bench import REGISTER_LUA, TTL_LUA, seed_reads, seed_ttl, wrk

from waypost.testing import AgentProcess

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("reads", "register durable", "register dev", "ttl pass")


def run_side(src: Path | None, scratch: Path, duration: int) -> dict[str, float]:
    """One round of every workload against agents importing from `src`."""
    env = {"PYTHONPATH": str(src)} if src is not None else None
    dev = AgentProcess(dev=True, node="bench", env=env).start()
    data = Path(tempfile.mkdtemp(dir=scratch))
    durable = AgentProcess(dev=False, data_dir=data, node="bench", env=env).start()
    try:
        seed_reads(dev)
        out = {
            "reads": wrk(
                dev.url + "/v1/health/service/web?passing",
                connections=32,
                duration=duration,
            )["rps"],
            "register durable": wrk(
                durable.url, connections=64, duration=duration, script=REGISTER_LUA
            )["rps"],
            "register dev": wrk(
                dev.url, connections=64, duration=duration, script=REGISTER_LUA
            )["rps"],
        }
        seed_ttl(dev, 1000)
        out["ttl pass"] = wrk(
            dev.url,
            connections=64,
            duration=duration,
            script=TTL_LUA.replace("%d", "1000"),
        )["rps"]
        return out
    finally:
        dev.stop()
        durable.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    base_rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    new_rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    runs: dict[str, dict[str, list[float]]] = {
        "base": {w: [] for w in WORKLOADS},
        "new": {w: [] for w in WORKLOADS},
    }
    with tempfile.TemporaryDirectory(prefix="waypost-ab-") as scratch_dir:
        scratch = Path(scratch_dir)
        tree = scratch / "base"
        subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "worktree",
                "add",
                "--detach",
                str(tree),
                base_rev,
            ],
            check=True,
            capture_output=True,
        )
        try:
            for round_ in range(args.rounds):
                order = ("base", "new") if round_ % 2 == 0 else ("new", "base")
                for side in order:
                    src = tree / "src" if side == "base" else None
                    figures = run_side(src, scratch, args.duration)
                    print(f"round {round_ + 1} {side}: {figures}", flush=True)
                    for workload, value in figures.items():
                        runs[side][workload].append(value)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )
    lines = [
        f"### A/B: base {base_rev} vs new {new_rev} ({environment()})",
        "",
        f"`python bench/ab.py --base {base_rev} --rounds {args.rounds}"
        f" --duration {args.duration}`: base {base_rev} vs new {new_rev},"
        " interleaved; medians of req/s (wrk, one agent process each).",
        "",
        f"| workload | base {base_rev} | new {new_rev} | new ÷ base |",
        "| --- | --- | --- | --- |",
    ]
    for workload in WORKLOADS:
        base = statistics.median(runs["base"][workload])
        new = statistics.median(runs["new"][workload])
        lines.append(f"| {workload} | {base:,.0f} | {new:,.0f} | {new / base:.2f} |")
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section("ab", table)


if __name__ == "__main__":
    main()
