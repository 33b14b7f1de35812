"""A/B: this checkout's agent against another revision's, interleaved.

    python bench/ab.py --base 3a8e90c [--base REV ...] [--rounds 3] [--duration 5]
                       [--only reads] [--acl]

Runs the workloads of `http_bench.py` (reads of a 10-instance service,
durable and --dev registrations with 64 connections, TTL passes) against an
agent from `--base` (checked out into a temporary git worktree) and one from
this checkout, alternating base/new each round, so that both see the same
machine noise. Prints the median of each side and new ÷ base, and writes its
section of bench/RESULTS.md. `--acl` (with `--only reads`): this checkout's
agent runs with `--acl-enabled --acl-default-policy deny`, and the reads
carry a token of a policy (`service_prefix "" read`, `node_prefix "" read`),
not the management token, so every request resolves the token and checks
its route's rule. A ratio within a few percent of 1.0 is noise on
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
GIT = ("git", "-C", str(ROOT))
WORKLOADS = ("reads", "register durable", "register dev", "ttl pass")


def run_side(
    src: Path | None, scratch: Path, duration: int, only: str | None, acl: bool = False
) -> dict[str, float]:
    """One round of the workloads against agents importing from `src`."""
    if only == "reads":
        return {"reads": run_reads(src, duration, acl=acl)}
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


ACL_MANAGEMENT = "bench-management-token"
READ_RULES = 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }'


def run_reads(src: Path | None, duration: int, *, acl: bool = False) -> float:
    env = {"PYTHONPATH": str(src)} if src is not None else None
    args = []
    if acl:
        args = [
            "--acl-enabled",
            "--acl-default-policy",
            "deny",
            "--acl-initial-management",
            ACL_MANAGEMENT,
        ]
    dev = AgentProcess(dev=True, node="bench", env=env, extra_args=args).start()
    try:
        headers = {}
        if acl:
            seed_reads(dev, ACL_MANAGEMENT)
            headers = {"X-Consul-Token": read_token(dev)}
        else:
            seed_reads(dev)
        return wrk(
            dev.url + "/v1/health/service/web?passing",
            connections=32,
            duration=duration,
            headers=headers,
        )["rps"]
    finally:
        dev.stop()


def read_token(agent: AgentProcess) -> str:
    import httpx

    auth = {"X-Consul-Token": ACL_MANAGEMENT}
    with httpx.Client(base_url=agent.url, headers=auth) as http:
        http.put(
            "/v1/acl/policy", json={"Name": "bench-read", "Rules": READ_RULES}
        ).raise_for_status()
        token = http.put("/v1/acl/token", json={"Policies": [{"Name": "bench-read"}]})
        token.raise_for_status()
        return str(token.json()["SecretID"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--base", required=True, action="append", help="git revision(s) to compare with"
    )
    parser.add_argument("--only", choices=["reads"], help="one workload")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--acl", action="store_true", help="this checkout's agent with ACLs on"
    )
    args = parser.parse_args()

    def short(rev: str) -> str:
        return subprocess.run(
            [*GIT, "rev-parse", "--short", rev],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    bases = [short(rev) for rev in args.base]
    this = f"{short('HEAD')} (this checkout{', ACLs on' if args.acl else ''})"
    sides = [*bases, this]
    workloads = ("reads",) if args.only else WORKLOADS
    runs = {side: {w: [] for w in workloads} for side in sides}
    with tempfile.TemporaryDirectory(prefix="waypost-ab-") as scratch_dir:
        scratch = Path(scratch_dir)
        trees = {rev: scratch / rev for rev in bases}
        for rev, tree in trees.items():
            subprocess.run(
                [*GIT, "worktree", "add", "--detach", str(tree), rev],
                check=True,
                capture_output=True,
            )
        try:
            for round_ in range(args.rounds):
                # Alternate the order, so no side always runs first.
                order = sides if round_ % 2 == 0 else sides[::-1]
                for side in order:
                    tree = trees.get(side)
                    src = tree / "src" if tree is not None else None
                    figures = run_side(
                        src,
                        scratch,
                        args.duration,
                        args.only,
                        acl=args.acl and tree is None,
                    )
                    print(f"round {round_ + 1} {side}: {figures}", flush=True)
                    for workload, value in figures.items():
                        runs[side][workload].append(value)
        finally:
            for tree in trees.values():
                subprocess.run(
                    [*GIT, "worktree", "remove", "--force", str(tree)],
                    check=False,
                    capture_output=True,
                )
    reference = sides[0]
    lines = [
        f"### A/B: {' vs '.join(sides)} ({environment()})",
        "",
        f"`python bench/ab.py {' '.join('--base ' + b for b in bases)}"
        f" --rounds {args.rounds} --duration {args.duration}"
        f"{' --only reads' if args.only else ''}{' --acl' if args.acl else ''}`:"
        " interleaved;"
        " medians of req/s (wrk, one agent process each).",
        "",
        "| workload | " + " | ".join(sides) + f" | last ÷ {reference} |",
        "| --- | " + " | ".join("---" for _ in sides) + " | --- |",
    ]
    for workload in workloads:
        medians = [statistics.median(runs[side][workload]) for side in sides]
        cells = " | ".join(f"{m:,.0f}" for m in medians)
        lines.append(f"| {workload} | {cells} | {medians[-1] / medians[0]:.2f} |")
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section("ab", table)


if __name__ == "__main__":
    main()
