"""Consistent-hash ring: balance, movement, build cost and lookup speed.

Compares waypost's HashRing with uhashring (160 vnodes, md5) and ``hash % N``
at N = 10, 100 and 1000 nodes, all measured in the same run, and writes the
table between ``<!-- ring:start -->`` and ``<!-- ring:end -->`` in
bench/RESULTS.md (other sections are left alone).

    .venv/bin/python bench/ring.py            # full run, writes RESULTS.md (~3 min)
    .venv/bin/python bench/ring.py --quick    # N = 10, 100, few trials; prints only

Balance and movement are exact, not sampled: shares are arc lengths over the
hash circle, and moved keys are the measure of the circle whose owner changed.
Only arcs that end at a point present in one ring but not the other can change
owner; the bench checks that every other point is identical before it relies
on that.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import math
import os
import platform
import random
import re
import statistics
import sys
import time
import tracemalloc
from array import array
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from importlib import metadata
from pathlib import Path

import mmh3
import msgspec
import uhashring  # type: ignore[import-untyped]  # ships no type hints
from xxhash import xxh3_64_intdigest

from waypost.ring import DEFAULT_VNODES, HASH_SPACE, HashRing

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
START, END = "<!-- ring:start -->", "<!-- ring:end -->"
MD5_SPACE = 1 << 128  # uhashring's circle: md5 digests as ints
LOOKUP_KEYS = [f"user-{i}" for i in range(20_000)]
MOD_MOVE_KEYS = [f"session-{i}" for i in range(200_000)]
_STARTED = time.perf_counter()
_LOAD_AT_START = os.getloadavg()[0]  # other work on the machine skews timings


class Row(msgspec.Struct, kw_only=True):
    """One ring at one N: every figure of a table line, filled in as measured."""

    n: int
    ring: str
    max_over_mean: float = math.nan
    moved_add: list[float] = msgspec.field(default_factory=list)  # × ideal
    moved_remove: list[float] = msgspec.field(default_factory=list)
    build_s: float = math.nan
    change_ms: float = math.nan  # one add plus one remove, after the build
    memory_mb: float = math.nan
    ns_lookup: float = math.nan
    trials: int = 0


class Circle:
    """A ring frozen as sorted points with their owners, for exact figures."""

    def __init__(
        self, points: Sequence[int], owners: Callable[[int], str], space: int
    ) -> None:
        self.points = points
        self.owners = owners  # owner of the point at an index
        self.space = space

    def owner_from(self, h: int) -> str:
        """Owner of the first point at or after ``h``, wrapping."""
        index = bisect_left(self.points, h)
        return self.owners(0 if index == len(self.points) else index)

    def before(self, h: int) -> int:
        """The last point below ``h``, as an unwrapped (maybe negative) int."""
        index = bisect_left(self.points, h)
        return self.points[index - 1] if index else self.points[-1] - self.space


def moved_share(old: Circle, new: Circle, changed: list[int]) -> float:
    """Exact share of the circle whose owner differs between two rings.

    ``changed`` are the points in one ring only. An arc of the merged rings
    ends at a point; arcs ending at a shared point keep their owner, so only
    the arcs ending at changed points are measured.
    """
    moved = 0
    for point in set(changed):
        start = max(old.before(point), new.before(point))
        if old.owner_from(point) != new.owner_from(point):
            moved += point - start
    return moved / old.space


# -- the three rings ----------------------------------------------------------


def ours_points(name: str, count: int = DEFAULT_VNODES) -> list[int]:
    """A node's points by the documented rule: xxh3_64(name, seed=i)."""
    data = name.encode()
    return [xxh3_64_intdigest(data, seed) for seed in range(count)]


def ours_circle(ring: HashRing) -> Circle:
    ring.get("apply pending changes")
    view = ring._view  # the bench reads the built arrays for exact figures
    names, owners = view.names, view.owners
    return Circle(view.positions, lambda i: names[owners[i]], HASH_SPACE)


def assert_only_node_changed(
    bigger: Circle, smaller: Circle, node_points: list[int]
) -> None:
    """Every point but the changed node's is the same in both rings."""
    points = bigger.points
    drop = sorted({bisect_left(points, p) for p in node_points})
    kept = array("Q") if isinstance(points, array) else []
    start = 0
    for index in drop:
        kept += points[start:index]
        start = index + 1
    kept += points[start:]
    assert kept == smaller.points, "points other than the node's moved"


def uhash_circle(ring: uhashring.HashRing) -> Circle:
    keys, owners = list(ring.runtime._keys), dict(ring.runtime._ring)
    # uhashring bisects right: a key equal to a point goes past it. Over a
    # 2^128 circle that changes no measurable share.
    return Circle(keys, lambda i: owners[keys[i]], MD5_SPACE)


class ModRing:
    """``names[xxh3_64(key) % N]``: the baseline every consistent hash beats."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)

    def get(self, key: str) -> str:
        return self.names[xxh3_64_intdigest(key.encode()) % len(self.names)]


# -- measurements -------------------------------------------------------------


def exact_max_over_mean(circle: Circle, nodes: int) -> float:
    shares: dict[str, int] = {}
    points = circle.points
    previous = points[-1] - circle.space
    for index, point in enumerate(points):
        owner = circle.owners(index)
        shares[owner] = shares.get(owner, 0) + point - previous
        previous = point
    return max(shares.values()) * nodes / circle.space


def measure_ours(
    names: list[str], trials: int, rnd: random.Random
) -> tuple[Row, HashRing]:
    row = Row(n=len(names), ring=f"waypost HashRing ({DEFAULT_VNODES} vnodes)")
    started = time.perf_counter()
    ring = HashRing(names)
    ring.get("build now")
    row.build_s = time.perf_counter() - started
    row.max_over_mean = ring.statistics().max_over_mean
    change = []
    for trial in range(trials):
        newcomer = f"new-{trial}-{rnd.getrandbits(32):08x}"
        before = ours_circle(ring)
        started = time.perf_counter()
        ring.add(newcomer)
        ring.get("apply")
        added = time.perf_counter() - started
        after = ours_circle(ring)
        points = ours_points(newcomer)
        assert_only_node_changed(after, before, points)
        row.moved_add.append(moved_share(before, after, points) * (len(names) + 1))
        ring.remove(newcomer)
        leaver = rnd.choice(names)
        before = ours_circle(ring)
        started = time.perf_counter()
        ring.remove(leaver)
        ring.get("apply")
        change.append(added + time.perf_counter() - started)
        after = ours_circle(ring)
        points = ours_points(leaver)
        assert_only_node_changed(before, after, points)
        row.moved_remove.append(moved_share(before, after, points) * len(names))
        ring.add(leaver)
    row.change_ms = statistics.median(change) * 1e3
    row.trials = trials
    return row, ring


def measure_uhash(
    names: list[str], trials: int, rnd: random.Random
) -> tuple[Row, uhashring.HashRing]:
    row = Row(n=len(names), ring="uhashring (160 vnodes, md5)")
    started = time.perf_counter()
    ring = uhashring.HashRing(list(names))
    row.build_s = time.perf_counter() - started
    row.max_over_mean = exact_max_over_mean(uhash_circle(ring), len(names))
    change = []
    for trial in range(trials):
        newcomer = f"new-{trial}-{rnd.getrandbits(32):08x}"
        before = uhash_circle(ring)
        started = time.perf_counter()
        ring.add_node(newcomer)
        added = time.perf_counter() - started
        after = uhash_circle(ring)
        points = list(ring.runtime._node_points[newcomer])
        row.moved_add.append(moved_share(before, after, points) * (len(names) + 1))
        ring.remove_node(newcomer)
        leaver = rnd.choice(names)
        before = uhash_circle(ring)
        points = list(ring.runtime._node_points[leaver])
        started = time.perf_counter()
        ring.remove_node(leaver)
        change.append(added + time.perf_counter() - started)
        after = uhash_circle(ring)
        row.moved_remove.append(moved_share(before, after, points) * len(names))
        ring.add_node(leaver)
    row.change_ms = statistics.median(change) * 1e3
    row.trials = trials
    return row, ring


def measure_mod(names: list[str], trials: int, rnd: random.Random) -> Row:
    row = Row(n=len(names), ring="hash % N (xxh3_64)")
    started = time.perf_counter()
    ModRing(names)
    row.build_s = time.perf_counter() - started
    # Residues of a uniform 64-bit hash: the largest class holds ceil(2^64/N).
    row.max_over_mean = -(-HASH_SPACE // len(names)) * len(names) / HASH_SPACE
    keys = MOD_MOVE_KEYS  # sampled: about N/(N+1) of keys move, so noise is tiny
    base = ModRing(names)
    before = [base.get(key) for key in keys]
    for trial in range(min(trials, 5)):
        grown = ModRing([*names, f"new-{trial}"])
        moved = sum(a != b for a, b in zip(before, map(grown.get, keys), strict=True))
        row.moved_add.append(moved / len(keys) * (len(names) + 1))
        leaver = rnd.choice(names)
        shrunk = ModRing([name for name in names if name != leaver])
        moved = sum(a != b for a, b in zip(before, map(shrunk.get, keys), strict=True))
        row.moved_remove.append(moved / len(keys) * len(names))
    row.change_ms = 0.0
    row.trials = min(trials, 5)
    return row


def retained_mb(build: Callable[[], object]) -> float:
    """Memory a built ring keeps, by tracemalloc (its build is slower traced)."""
    gc.collect()
    tracemalloc.start()
    try:
        kept = build()
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return current / 2**20


def build_ours(names: list[str]) -> HashRing:
    ring = HashRing(names)
    ring.get("build now")
    return ring


def lookup_ns(
    lookups: Mapping[str, Callable[[str], object]], repeats: int
) -> dict[str, float]:
    """Best time per lookup over interleaved rounds, so noise hits all alike."""
    best = dict.fromkeys(lookups, math.inf)
    keys = LOOKUP_KEYS
    for _ in range(repeats):
        for label, lookup in lookups.items():
            started = time.perf_counter_ns()
            for key in keys:
                lookup(key)
            best[label] = min(
                best[label], (time.perf_counter_ns() - started) / len(keys)
            )
    return best


def hash_ns(repeats: int) -> dict[str, float]:
    """The measurement that chose xxh3_64 for waypost's ring."""
    functions: dict[str, Callable[[str], object]] = {
        "xxhash.xxh3_64_intdigest": lambda k: xxh3_64_intdigest(k.encode()),
        "mmh3.hash64 (first half)": lambda k: mmh3.hash64(k, 0, True, False)[0],
        "mmh3.hash128": lambda k: mmh3.hash128(k, 0, True, False),
        "md5 as int (uhashring)": lambda k: int(
            hashlib.md5(k.encode()).hexdigest(), 16
        ),
    }
    return lookup_ns(functions, repeats)


# -- report -------------------------------------------------------------------


def environment() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    packages = ", ".join(
        f"{name} {version(name)}" for name in ("waypost", "xxhash", "uhashring", "mmh3")
    )
    return (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.platform()}, {platform.machine()} {os.cpu_count()} cores (nproc), "
        f"{platform.python_implementation()} {platform.python_version()}, {packages},"
        f" load average {_LOAD_AT_START:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )


def ratio(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.fmean(values):.3f} / {max(values):.3f}"


def render(rows: list[Row], hashes: dict[str, float], args: argparse.Namespace) -> str:
    lines = [
        f"### Consistent-hash ring ({environment()})",
        "",
        f"`.venv/bin/python bench/ring.py{' --quick' if args.quick else ''}`."
        " Node names `node-0000`...; max/mean is the busiest node's exact share"
        " of the hash circle over the mean. Moved is the exact share of the"
        " circle that changed owner on one add (ideal 1/(N+1)) or one remove"
        " (ideal 1/N), as a multiple of the ideal: mean / worst over the trials"
        " (random newcomer names, random leavers; `hash % N` samples"
        f" {len(MOD_MOVE_KEYS):,} keys). Lookup: best of {args.repeats}"
        f" interleaved rounds over {len(LOOKUP_KEYS):,} keys. Change: median"
        " time of one add plus one remove on the built ring. Memory: tracemalloc,"
        " retained after the build.",
        "",
        "| N | ring | max/mean | moved add ×ideal | moved remove ×ideal"
        " | trials | build s | change ms | memory MiB | ns/lookup | ×uhashring |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    uhash = {row.n: row.ns_lookup for row in rows if row.ring.startswith("uhash")}
    for row in rows:
        lines.append(
            f"| {row.n} | {row.ring} | {row.max_over_mean:.3f}"
            f" | {ratio(row.moved_add)} | {ratio(row.moved_remove)} | {row.trials}"
            f" | {row.build_s:.3f} | {row.change_ms:.1f} | {row.memory_mb:.1f}"
            f" | {row.ns_lookup:.0f} | {row.ns_lookup / uhash[row.n]:.2f} |"
        )
    ours = next((r for r in rows if r.n == 100 and r.ring.startswith("waypost")), None)
    if ours is not None:
        worst_moved = max(ours.moved_add + ours.moved_remove)
        checks = [
            (
                "max/mean ≤ 1.05",
                ours.max_over_mean <= 1.05,
                f"{ours.max_over_mean:.3f}",
            ),
            ("moved ≤ 1.1× ideal (worst)", worst_moved <= 1.1, f"{worst_moved:.3f}"),
            (
                "lookup ≤ 0.3× uhashring",
                ours.ns_lookup <= 0.3 * uhash[100],
                f"{ours.ns_lookup / uhash[100]:.2f}×",
            ),
        ]
        lines += [
            "",
            "Targets at N = 100: "
            + "; ".join(
                f"{name}: {value} {'met' if ok else 'MISSED'}"
                for name, ok, value in checks
            )
            + ".",
        ]
    if args.capped:
        lines += [
            "",
            f"N = 1000 ran {args.trials_1000} trials instead of {args.trials}"
            " to keep the run short (each waypost change there copies ~4M points).",
        ]
    lines += [
        "",
        "Key hash, ns per call on the same keys (the choice of xxh3_64): "
        + ", ".join(f"{name} {ns:.0f}" for name, ns in hashes.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace our section of RESULTS.md, or append it; others stay as they are."""
    content = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"{START}\n{text.rstrip()}\n\n{END}"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if pattern.search(content):
        content = pattern.sub(lambda _: section, content, count=1)
    else:
        content = content.rstrip() + f"\n\n{section}\n"
    RESULTS.write_text(content)


def log(message: str) -> None:
    print(
        f"{time.perf_counter() - _STARTED:6.1f}s {message}", file=sys.stderr, flush=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=10,100; few trials")
    parser.add_argument("--write", action="store_true", help="write even with --quick")
    args = parser.parse_args(argv)
    sizes = (10, 100) if args.quick else (10, 100, 1000)
    args.trials = 5 if args.quick else 30
    args.trials_1000 = 30
    args.capped = 1000 in sizes and args.trials_1000 < args.trials
    args.repeats = 3 if args.quick else 7
    rnd = random.Random(4)
    rows: list[Row] = []
    for n in sizes:
        names = [f"node-{i:04d}" for i in range(n)]
        trials = args.trials_1000 if n == 1000 else args.trials
        log(f"N={n}: waypost, {trials} trials")
        ours, ring = measure_ours(names, trials, rnd)
        log(f"N={n}: uhashring, hash % N")
        uhash, other = measure_uhash(names, trials, rnd)
        mod = measure_mod(names, trials, rnd)
        log(f"N={n}: memory, lookups")
        ours.memory_mb = retained_mb(partial(build_ours, names))
        uhash.memory_mb = retained_mb(partial(uhashring.HashRing, names))
        mod.memory_mb = retained_mb(partial(ModRing, names))
        speeds = lookup_ns(
            {"ours": ring.get, "uhash": other.get_node, "mod": ModRing(names).get},
            args.repeats,
        )
        ours.ns_lookup, uhash.ns_lookup, mod.ns_lookup = (
            speeds["ours"],
            speeds["uhash"],
            speeds["mod"],
        )
        rows += [ours, uhash, mod]
        del ring, other
    text = render(rows, hash_ns(args.repeats), args)
    print(text)
    if not args.quick or args.write:
        write_section(text)
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
