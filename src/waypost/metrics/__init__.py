"""The agent's metrics: plain counters and histograms, cheap enough for the
request path (one dict lookup, a bisect and a few additions).

Transports and stores record into `METRICS`; nothing here imports
prometheus-client: `export.py` renders these values (and the catalog's
gauges, `state.py`) as Consul's `/v1/agent/metrics` JSON or Prometheus text
when scraped. Imports nothing of waypost: any layer may record.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

#: Seconds: 100 µs to 10 s, the span of a read served from memory to a
#: blocking query's worst wait-free answer (waits run to minutes: +Inf).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Changes per store commit (group commit batches).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Counter:
    """A number that only goes up."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Histogram:
    """Observations in buckets, and their sum: all the request path pays
    (Consul's JSON Min, Max and Stddev are estimated from the buckets)."""

    __slots__ = ("bounds", "buckets", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        #: One slot per bound plus +Inf; not cumulative.
        self.buckets = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.buckets)


class Gauge:
    """A number that goes up and down (things in progress)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


Instrument = TypeVar("Instrument", Counter, Histogram, Gauge)


class Family(Generic[Instrument]):
    """One metric name and its children by label values.

    `name` follows Prometheus' conventions (`waypost_…_seconds`,
    `…_total` added on export); `consul_name` is Consul's, for the JSON
    of `/v1/agent/metrics` (timers there are in milliseconds).
    """

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...],
        make: Callable[[], Instrument],
        *,
        consul_name: str = "",
    ) -> None:
        self.name = name
        self.help = help_text
        self.labels = labels
        self.consul_name = consul_name
        self._make: Callable[[], Instrument] = make
        self.children: dict[tuple[str, ...], Instrument] = {}

    def labelled(self, *values: str) -> Instrument:
        """The child for these label values (keep it: lookups cost)."""
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self._make()
        return child

    def items(self) -> Iterator[tuple[tuple[str, ...], Instrument]]:
        return iter(list(self.children.items()))


class Metrics:
    """Every family the agent records, by name."""

    def __init__(self) -> None:
        self.counters: dict[str, Family[Counter]] = {}
        self.gauges: dict[str, Family[Gauge]] = {}
        self.histograms: dict[str, Family[Histogram]] = {}

    def counter(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...] = (),
        *,
        consul_name: str = "",
    ) -> Family[Counter]:
        family = self.counters.get(name)
        if family is None:
            family = self.counters[name] = Family(
                name, help_text, labels, Counter, consul_name=consul_name
            )
        return family

    def gauge(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...] = (),
        *,
        consul_name: str = "",
    ) -> Family[Gauge]:
        family = self.gauges.get(name)
        if family is None:
            family = self.gauges[name] = Family(
                name, help_text, labels, Gauge, consul_name=consul_name
            )
        return family

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...] = (),
        *,
        bounds: tuple[float, ...] = LATENCY_BUCKETS,
        consul_name: str = "",
    ) -> Family[Histogram]:
        family = self.histograms.get(name)
        if family is None:
            family = self.histograms[name] = Family(
                name,
                help_text,
                labels,
                lambda: Histogram(bounds),
                consul_name=consul_name,
            )
        return family


#: The process's metrics (one agent per process).
METRICS = Metrics()

# The families recorded outside HTTP and DNS, declared once here.
STORE_COMMIT_SECONDS = METRICS.histogram(
    "waypost_store_commit_duration_seconds",
    "Time to make one batch of changes durable (transaction and fsync).",
    consul_name="consul.raft.commitTime",
).labelled()
STORE_BATCH_SIZE = METRICS.histogram(
    "waypost_store_commit_batch_size",
    "Changes made durable by one commit (group commit).",
    bounds=BATCH_BUCKETS,
).labelled()
STORE_FAILURES = METRICS.counter(
    "waypost_store_commit_failures",
    "Commits that failed (the batch's changes were refused with 503).",
).labelled()
HEARTBEATS = METRICS.counter(
    "waypost_ttl_heartbeats",
    "TTL check updates received (pass, warn, fail, update).",
).labelled()
CHECK_RUNS = METRICS.counter(
    "waypost_check_runs",
    "Active check runs by check type and result.",
    ("type", "status"),
)
BLOCKING_QUERIES = METRICS.gauge(
    "consul_rpc_queries_blocking",
    "Blocking queries waiting for a change.",
    consul_name="consul.rpc.queries_blocking",
).labelled()

# Cluster mode (store/etcd*.py); children appear only when an agent uses etcd.
ETCD_REQUESTS = METRICS.histogram(
    "waypost_etcd_request_duration_seconds",
    "Round trips to etcd by RPC (cluster mode), retries on other members included.",
    ("method",),
)
_ETCD_REVISION = METRICS.gauge(
    "waypost_etcd_revision", "The newest etcd revision a response carried."
)
_REPLICA_REVISION = METRICS.gauge(
    "waypost_etcd_replica_revision", "The etcd revision this agent's catalog applied."
)
_REPLICA_LAG = METRICS.gauge(
    "waypost_etcd_replica_lag_revisions",
    "Revisions etcd has answered with that this agent's catalog has not applied.",
)


def etcd_revision(*, seen: int = 0, applied: int = 0) -> None:
    """Cluster mode: note a revision etcd answered with, or the replica applied."""
    newest = _ETCD_REVISION.labelled()
    replica = _REPLICA_REVISION.labelled()
    if seen > newest.value:
        newest.value = seen
    if applied:
        replica.value = applied
    _REPLICA_LAG.labelled().value = max(newest.value - replica.value, 0)
