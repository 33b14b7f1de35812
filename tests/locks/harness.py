"""The lock test's harness: contenders killed at random, and the verdict.

`run(agents, seconds)` starts 20 contender processes (tests/locks/
contender.py) spread over the agents, SIGKILLs one at random every 0.3 to
1.5 s and starts a new one in its place, while an observer follows the key
with blocking queries. Then it reads the shared log and checks:

- in the registry's index order, acquisitions never overlap: LockIndex
  only grows, and each acquisition comes after the release (or the
  invalidation) that ended the one before; no live holder ever lost its
  lock; and on the one machine clock, a holder started releasing before the
  next one held it;
- every lock held by a killed process was free again within its session's
  expiry (Consul's: 2 x TTL after the last renew) and could be taken again
  after its lock-delay.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from waypost.testing import AgentProcess

CONTENDER = str(Path(__file__).with_name("contender.py"))
CONTENDERS = 20
TTL = 10.0
LOCK_DELAY = 1.0
#: Consul's structs.SessionTTLMultiplier.
EXPIRES_AFTER = 2 * TTL
#: The agent's timer and a loaded machine (2 shared cores).
SLACK = 2.0


@dataclass
class Kill:
    at: float
    name: str
    session: str
    was_holder: bool
    freed_at: float | None = None
    free_index: int | None = None
    next_acquired_at: float | None = None


@dataclass
class Report:
    acquisitions: int = 0
    releases: int = 0
    kills: int = 0
    holder_kills: int = 0
    restarts: int = 0
    #: Holders killed in their critical section: freed by expiry alone.
    expired_holders: int = 0
    max_free_seconds: float = 0.0
    max_reacquire_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"acquisitions={self.acquisitions} releases={self.releases}"
            f" kills={self.kills} (holders: {self.holder_kills}, of which"
            f" freed by session expiry: {self.expired_holders})"
            f" restarts={self.restarts}"
            f" max time to free={self.max_free_seconds:.2f}s"
            f" max time to next acquisition={self.max_reacquire_seconds:.2f}s"
        )


class Observer(threading.Thread):
    """Follows the key with blocking queries: (time, Session, ModifyIndex)."""

    def __init__(self, agent: AgentProcess, key: str) -> None:
        super().__init__(daemon=True)
        self.url = agent.url
        self.key = key
        self.seen: list[tuple[float, str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        index = 0
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                response = http.get(
                    f"/v1/kv/{self.key}", params={"index": index, "wait": "1s"}
                )
                now = time.monotonic()
                index = int(response.headers.get("X-Consul-Index", index))
                if response.status_code == 200:
                    entry = response.json()[0]
                    state = (now, entry.get("Session", ""), entry["ModifyIndex"])
                else:
                    state = (now, "", index)
                if not self.seen or self.seen[-1][1:] != state[1:]:
                    self.seen.append(state)

    def holder(self) -> str:
        return self.seen[-1][1] if self.seen else ""


def _read_log(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class Contenders:
    def __init__(self, agents: list[AgentProcess], key: str, log: Path) -> None:
        self.agents = agents
        self.key = key
        self.log = log
        self.procs: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
        self.generation = 0
        #: Contenders' tracebacks, if any (a failed run shows them).
        self.errors = (log.parent / "contenders.err").open("ab")

    def start(self, slot: int) -> None:
        self.generation += 1
        name = f"c{slot}-{self.generation}"
        agent = self.agents[slot % len(self.agents)]
        args = [sys.executable, CONTENDER, agent.host, str(agent.port)]
        proc = subprocess.Popen(
            [*args, self.key, str(self.log), name],
            stdout=subprocess.DEVNULL,
            stderr=self.errors,
        )
        self.procs[slot] = (name, proc)

    def sessions(self) -> dict[str, str]:
        """name -> session ID, from the log."""
        return {
            str(e["name"]): str(e["session"])
            for e in _read_log(self.log)
            if e["event"] == "session"
        }

    def kill(self, slot: int) -> str:
        name, proc = self.procs[slot]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return name

    def stop(self) -> None:
        for _, proc in self.procs.values():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.errors.close()


def run(
    agents: list[AgentProcess], seconds: float, workdir: Path, *, seed: int = 0
) -> Report:
    rng = random.Random(seed or None)
    key = f"locks/{os.getpid()}-{time.monotonic_ns()}"
    log = workdir / "locks.log"
    observer = Observer(agents[0], key)
    observer.start()
    contenders = Contenders(agents, key, log)
    for slot in range(CONTENDERS):
        contenders.start(slot)
    kills: list[Kill] = []
    report = Report()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            # The chaos is random on purpose: these waits order nothing.
            time.sleep(rng.uniform(0.3, 1.5))
            slot = rng.randrange(CONTENDERS)
            sessions = contenders.sessions()
            name = contenders.procs[slot][0]
            session = sessions.get(name, "")
            holder = observer.holder()
            was_holder = bool(session) and holder == session
            force = time.monotonic() > deadline - seconds * 2 / 3 and holder
            if force and not any(_expiring(k, observer) for k in kills):
                # No holder killed in its critical section yet: kill the
                # holder, so the time to free is measured in every run.
                for other, (candidate, _) in contenders.procs.items():
                    if sessions.get(candidate) == holder:
                        slot, name = other, candidate
                        session, was_holder = holder, True
            contenders.kill(slot)
            kills.append(Kill(time.monotonic(), name, session, was_holder))
            contenders.start(slot)
            report.restarts += 1
    finally:
        ended = time.monotonic()
        contenders.stop()
    # Every killed holder's session expires (2 x TTL after its last renew).
    wait_until = time.monotonic() + EXPIRES_AFTER + SLACK + 5
    while time.monotonic() < wait_until:
        pending = [k for k in kills if k.was_holder and not _freed(k, observer)]
        if not pending:
            break
        time.sleep(0.2)
    observer.stop.set()
    observer.join(5)
    _judge(report, _read_log(log), kills, observer, ended)
    return report


def _expiring(kill: Kill, observer: Observer) -> bool:
    """A holder killed in its critical section (not while releasing): its
    lock is still held a second after the kill, or it is too early to say."""
    if not kill.was_holder:
        return False
    if kill.freed_at is None and not _freed(kill, observer):
        return True
    return (kill.freed_at or 0.0) - kill.at > 1.0


def _freed(kill: Kill, observer: Observer) -> bool:
    for at, session, index in list(observer.seen):
        if at >= kill.at and session != kill.session:
            kill.freed_at, kill.free_index = at, index
            return True
    return False


@dataclass
class Holding:
    """One acquisition, from the log: indexes and times of its steps."""

    name: str
    session: str
    lock_index: int
    start: int
    acquired_at: float
    releasing_at: float | None = None
    end: int | None = None


def _holdings(log: list[dict[str, object]]) -> list[Holding]:
    """Each process's lines are in its program order: pair them up."""
    current: dict[str, Holding] = {}
    holdings: list[Holding] = []
    for e in log:
        session, event = str(e.get("session", "")), e["event"]
        if event == "acquired":
            holding = Holding(
                name=str(e["name"]),
                session=session,
                lock_index=int(e["lock_index"]),  # type: ignore[call-overload]
                start=int(e["index"]),  # type: ignore[call-overload]
                acquired_at=float(e["t"]),  # type: ignore[arg-type]
            )
            current[session] = holding
            holdings.append(holding)
        elif event == "releasing" and session in current:
            current[session].releasing_at = float(e["t"])  # type: ignore[arg-type]
        elif event == "released" and session in current:
            current.pop(session).end = int(e["index"])  # type: ignore[call-overload]
    return sorted(holdings, key=lambda h: h.start)


def _judge(
    report: Report,
    log: list[dict[str, object]],
    kills: list[Kill],
    observer: Observer,
    ended: float,
) -> None:
    holdings = _holdings(log)
    report.acquisitions = len(holdings)
    report.releases = sum(h.end is not None for h in holdings)
    report.kills = len(kills)
    report.holder_kills = sum(k.was_holder for k in kills)
    problems = report.problems
    problems += [
        f"a live holder lost its lock: {e}" for e in log if e["event"] == "lost"
    ]
    freed = {k.session: k for k in kills if k.was_holder}
    for holding in holdings:
        if holding.end is None and holding.session in freed:
            holding.end = freed[holding.session].free_index
    for before, after in itertools.pairwise(holdings):
        if after.lock_index <= before.lock_index:
            problems.append(f"LockIndex did not grow: {before} then {after}")
        if before.end is not None and before.end >= after.start:
            problems.append(f"overlap in index order: {before} then {after}")
        if before.releasing_at is not None and before.releasing_at > after.acquired_at:
            problems.append(f"overlap on the clock: {before} then {after}")
    for kill in kills:
        if not kill.was_holder:
            continue
        if kill.freed_at is None:
            problems.append(f"a killed holder's lock was never freed: {kill}")
            continue
        free = kill.freed_at - kill.at
        report.max_free_seconds = max(report.max_free_seconds, free)
        # Freed at once: its release was already on its way when killed.
        report.expired_holders += free > TTL
        if free > EXPIRES_AFTER + SLACK:
            problems.append(f"freed {free:.2f}s after the kill: {kill}")
        later = [h.acquired_at for h in holdings if h.acquired_at > kill.at]
        if later:
            again = min(later) - kill.at
            report.max_reacquire_seconds = max(report.max_reacquire_seconds, again)
            if again > EXPIRES_AFTER + LOCK_DELAY + 2 * SLACK:
                problems.append(f"taken again {again:.2f}s after the kill: {kill}")
        elif kill.at + EXPIRES_AFTER + LOCK_DELAY + 2 * SLACK < ended:
            problems.append(f"never taken again after the kill: {kill}")
