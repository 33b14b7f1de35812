"""The check scheduler: every active check of this agent, on one asyncio loop.

One heap of next-run times, one loop popping what is due. Each run is a task
that waits for a slot (a semaphore bounds concurrent probes), then runs under
its own timeout, so a slow or hanging target holds one slot for at most its
timeout and never delays the loop, the other checks or the HTTP API. The
first run of a check is staggered randomly over its interval (Consul's
lib.RandomStagger); later runs follow the interval with a little jitter, so
checks registered together do not stay in lock-step.

Results go to one function, `report(node, check_id, status, output)`; what
status that becomes (hysteresis) is decided there, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections.abc import Callable, Iterable

from waypost.core.catalog import Catalog
from waypost.core.model import Check, CheckDefinition, HealthStatus, check_type
from waypost.core.watch import Topic
from waypost.metrics import CHECK_RUNS
from waypost.runner.alias import alias_result, alias_topics
from waypost.runner.probes import ProbeResult, critical, probe_for

logger = logging.getLogger("waypost.runner")

CheckKey = tuple[str, str]  # (node, check_id)
Report = Callable[[str, str, HealthStatus, str], None]

#: Consul's default timeout for HTTP, TCP, gRPC and H2PING checks.
DEFAULT_TIMEOUT = 10.0
#: Consul's default for script checks (CheckMonitor).
SCRIPT_TIMEOUT = 30.0
#: Deliberate difference: Consul raises intervals under 1 s to 1 s
#: (checks.MinInterval); waypost allows down to 50 ms for fast detection.
MIN_INTERVAL = 0.05
#: Alias checks follow changes as they happen; this is the safety refresh
#: (Consul's maxDurationBetweenUpdates).
ALIAS_REFRESH = 60.0
#: How many probes may run at once.
DEFAULT_CONCURRENCY = 512
#: How long past its timeout a probe may run before it is cancelled.
OVERRUN_GRACE = 0.5
#: Later runs land within ±this fraction of the interval.
JITTER = 0.02

RUNNABLE = {"http", "tcp", "udp", "grpc", "h2ping", "script", "alias"}


class _Job:
    """One scheduled check; replaced (new generation) when its definition changes."""

    __slots__ = ("check", "generation", "interval", "running", "timeout", "topics")

    def __init__(self, check: Check, generation: int) -> None:
        self.check = check
        self.generation = generation
        definition = check.definition
        if check_type(definition) == "alias":
            self.interval = ALIAS_REFRESH
        else:
            self.interval = max(definition.interval or DEFAULT_TIMEOUT, MIN_INTERVAL)
        self.timeout = run_timeout(definition, self.interval)
        self.running = False
        self.topics: frozenset[Topic] = frozenset()


def run_timeout(definition: CheckDefinition, interval: float) -> float:
    """The check's Timeout, else Consul's default or the interval if smaller."""
    if definition.timeout:
        return definition.timeout
    default = SCRIPT_TIMEOUT if definition.args else DEFAULT_TIMEOUT
    return min(default, interval)


def is_runnable(
    check: Check,
    *,
    node: str,
    enable_scripts: bool,
    owns: Callable[[str, str], bool] | None = None,
) -> bool:
    """Only checks of a kind it runs that are this agent's: on its own node
    (Consul does the same), or, in cluster mode, those the ring gives it."""
    if owns is not None:
        if not owns(check.node, check.check_id):
            return False
    elif check.node != node:
        return False
    kind = check_type(check.definition)
    if kind == "script":
        return enable_scripts
    return kind in RUNNABLE


class CheckRunner:
    """Runs this agent's active checks and reports every result."""

    def __init__(
        self,
        *,
        node: str,
        report: Report,
        catalog: Catalog,
        enable_scripts: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.node = node
        #: Cluster mode: which checks this agent runs (None: its node's).
        self.owns: Callable[[str, str], bool] | None = None
        self.enable_scripts = enable_scripts
        self._report = report
        self._catalog = catalog
        self._jobs: dict[CheckKey, _Job] = {}
        self._heap: list[tuple[float, int, CheckKey]] = []
        self._generation = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._aliases: dict[Topic, set[CheckKey]] = {}
        self._stale_aliases: set[CheckKey] = set()
        self.runs = 0

    def __len__(self) -> int:
        return len(self._jobs)

    # ------------------------------------------------------------ schedule

    def sync(self, check: Check) -> None:
        """Start, restart or keep running a check after it was persisted."""
        key = (check.node, check.check_id)
        job = self._jobs.get(key)
        if not is_runnable(
            check, node=self.node, enable_scripts=self.enable_scripts, owns=self.owns
        ):
            if job is not None:
                self.remove(key)
            return
        if job is not None and job.check.definition == check.definition:
            job.check = check  # status, name, tags: keep the schedule
            return
        if job is not None:
            self.remove(key)
        self._generation += 1
        job = self._jobs[key] = _Job(check, self._generation)
        if check_type(check.definition) == "alias":
            self._follow(key, job)
            self._push(key, job, asyncio.get_running_loop().time())
        else:  # Consul's lib.RandomStagger: first run anywhere in one interval
            delay = random.uniform(0, job.interval)
            self._push(key, job, asyncio.get_running_loop().time() + delay)

    def resync(self, checks: Iterable[Check]) -> None:
        """Ownership changed: start the checks now ours, stop the others."""
        checks = list(checks)
        wanted = {(c.node, c.check_id) for c in checks}
        for key in [k for k in self._jobs if k not in wanted]:
            self.remove(key)
        for check in checks:
            self.sync(check)

    def remove(self, key: CheckKey) -> None:
        job = self._jobs.pop(key, None)
        if job is not None:
            self._unfollow(key, job)

    def _follow(self, key: CheckKey, job: _Job) -> None:
        """(Re)subscribe an alias to what it reads now."""
        topics = alias_topics(self._catalog, job.check)
        if topics == job.topics:
            return
        self._unfollow(key, job)
        job.topics = topics
        for topic in topics:
            self._aliases.setdefault(topic, set()).add(key)

    def _unfollow(self, key: CheckKey, job: _Job) -> None:
        for topic in job.topics:
            keys = self._aliases.get(topic)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._aliases[topic]
        job.topics = frozenset()

    def notice(self, topics: Iterable[Topic]) -> None:
        """Changes were committed: re-evaluate the aliases that read them."""
        if not self._aliases:
            return
        stale = {k for t in topics for k in self._aliases.get(t, ())}
        if stale and not self._stale_aliases:
            asyncio.get_running_loop().call_soon(self._refresh_aliases)
        self._stale_aliases |= stale

    def _refresh_aliases(self) -> None:
        stale, self._stale_aliases = self._stale_aliases, set()
        for key in stale:
            job = self._jobs.get(key)
            if job is not None:
                self._follow(key, job)
                self._deliver(key, job, alias_result(self._catalog, job.check))

    def _push(self, key: CheckKey, job: _Job, when: float) -> None:
        heapq.heappush(self._heap, (when, job.generation, key))
        if self._heap[0][2] == key:
            self._wake.set()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="waypost-checks")

    async def stop(self) -> None:
        """Stop the loop and every probe in flight; their results are dropped."""
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._jobs.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._heap and self._heap[0][0] <= now:
                _, generation, key = heapq.heappop(self._heap)
                job = self._jobs.get(key)
                if job is None or job.generation != generation or job.running:
                    continue
                job.running = True
                task = asyncio.create_task(self._execute(key, job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self._wake.clear()
            delay = self._heap[0][0] - loop.time() if self._heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _execute(self, key: CheckKey, job: _Job) -> None:
        try:
            async with self._slots:
                result = await self._probe(job)
            self.runs += 1
            CHECK_RUNS.labelled(
                check_type(job.check.definition), result.status.value
            ).inc()
            self._deliver(key, job, result)
        finally:
            job.running = False
            if self._jobs.get(key) is job:
                spread = job.interval * random.uniform(-JITTER, JITTER)
                when = asyncio.get_running_loop().time() + job.interval + spread
                self._push(key, job, when)

    async def _probe(self, job: _Job) -> ProbeResult:
        definition = job.check.definition
        if check_type(definition) == "alias":
            self._follow((job.check.node, job.check.check_id), job)
            return alias_result(self._catalog, job.check)
        probe = probe_for(definition)
        if probe is None:  # pragma: no cover - is_runnable let it in
            return critical("waypost cannot run this check")
        try:
            # Each probe keeps its own timeout (and says so in Consul's
            # words); this one only catches a probe that overruns it.
            async with asyncio.timeout(job.timeout + OVERRUN_GRACE):
                return await probe(definition, job.timeout)
        except TimeoutError:
            return critical(f"Timed out ({job.timeout:g}s) running check")
        except Exception as exc:  # a probe bug must not stop the loop
            logger.exception("check %r: probe failed", job.check.check_id)
            return critical(f"waypost: probe failed: {exc}")

    def _deliver(self, key: CheckKey, job: _Job, result: ProbeResult) -> None:
        if self._jobs.get(key) is not job:
            return  # deregistered or redefined while it ran
        try:
            self._report(key[0], key[1], result.status, result.output)
        except Exception:  # the check may be gone; the next sync removes it
            logger.debug("check %r: result not recorded", key, exc_info=True)
