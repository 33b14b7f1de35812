"""`/v1/agent/metrics`: the recorded families and the scrape-time gauges as
Consul's JSON (go-metrics' DisplayMetrics shape) or Prometheus text.

prometheus-client is imported here only, on the first scrape in Prometheus
format; the request path never touches it.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from waypost.metrics import METRICS, Family, Histogram, Metrics
from waypost.metrics.state import gauges

if TYPE_CHECKING:
    from waypost.registry import Registry

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# ---------------------------------------------------------------- Consul JSON


def consul_json(registry: Registry, metrics: Metrics = METRICS) -> dict[str, object]:
    """Consul's shape: Timestamp, Gauges, Points, Counters, Samples.

    Deliberate difference: Consul reports the last 10-second interval;
    waypost reports totals since the agent started (Rate: per second over
    that time), as Prometheus counters do. Timers are in milliseconds.
    """
    uptime = max(time.time() - registry.started_at, 1e-9)
    gauge_rows: list[dict[str, object]] = [
        {
            "Name": _json_name(g.name, g.consul_name),
            "Value": g.value,
            "Labels": g.labels,
        }
        for g in gauges(registry)
    ]
    for family in metrics.gauges.values():
        for values, gauge in family.items():
            gauge_rows.append(
                {
                    "Name": _json_name(family.name, family.consul_name),
                    "Value": gauge.value,
                    "Labels": dict(zip(family.labels, values, strict=True)),
                }
            )
    counters = [
        _aggregate(family, values, counter.value, counter.value, uptime)
        for family in metrics.counters.values()
        for values, counter in family.items()
    ]
    samples = [
        _sample(family, values, histogram, uptime)
        for family in metrics.histograms.values()
        for values, histogram in family.items()
        if histogram.count
    ]
    stamp = datetime.datetime.now(datetime.UTC)
    return {
        # Consul: time.Time truncated to the interval, Go's String() form.
        "Timestamp": stamp.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        "Gauges": gauge_rows,
        "Points": [],
        "Counters": counters,
        "Samples": samples,
    }


def _json_name(name: str, consul_name: str) -> str:
    if consul_name:
        return consul_name
    return name.replace("_", ".", 1) if name.startswith("waypost_") else name


def _aggregate(
    family: Family[Any],
    values: tuple[str, ...],
    count: float,
    total: float,
    uptime: float,
) -> dict[str, object]:
    return {
        "Name": _json_name(family.name, family.consul_name),
        "Count": int(count),
        "Rate": total / uptime,
        "Sum": total,
        "Min": 1 if count else 0,
        "Max": 1 if count else 0,
        "Mean": total / count if count else 0,
        "Stddev": 0,
        "Labels": dict(zip(family.labels, values, strict=True)),
    }


def _sample(
    family: Family[Histogram], values: tuple[str, ...], h: Histogram, uptime: float
) -> dict[str, object]:
    # Seconds → milliseconds for Consul's timers; other samples as they are.
    scale = 1000.0 if family.name.endswith("_seconds") else 1.0
    count = h.count
    low, high, deviation = _estimates(h)
    return {
        "Name": _json_name(family.name, family.consul_name),
        "Count": count,
        "Rate": h.sum * scale / uptime,
        "Sum": h.sum * scale,
        "Min": low * scale,
        "Max": high * scale,
        "Mean": h.sum / count * scale,
        "Stddev": deviation * scale,
        "Labels": dict(zip(family.labels, values, strict=True)),
    }


def _estimates(h: Histogram) -> tuple[float, float, float]:
    """Min, max and standard deviation from the buckets: each observation
    taken at its bucket's middle (the first bucket's: half its bound; past
    the last bound: that bound), min and max clamped to the mean."""
    bounds = h.bounds
    lows = (0.0, *bounds)
    highs = (*bounds, bounds[-1])
    filled = [i for i, n in enumerate(h.buckets) if n]
    mean = h.sum / h.count
    middles = [(lows[i] + highs[i]) / 2 for i in range(len(h.buckets))]
    variance = sum(h.buckets[i] * (middles[i] - mean) ** 2 for i in filled) / h.count
    return min(lows[filled[0]], mean), max(highs[filled[-1]], mean), math.sqrt(variance)


# ---------------------------------------------------------------- Prometheus


def prometheus_text(registry: Registry, metrics: Metrics = METRICS) -> bytes:
    """The Prometheus exposition format (0.0.4), process metrics included."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector

    collectors = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=collectors)
    PlatformCollector(registry=collectors)
    GCCollector(registry=collectors)
    collectors.register(_Collector(registry, metrics))  # type: ignore[arg-type]
    return bytes(generate_latest(collectors))


class _Collector:
    """prometheus-client's custom-collector protocol over our values."""

    def __init__(self, registry: Registry, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        from waypost import __version__
        from waypost.config import CONSUL_API_VERSION

        info = GaugeMetricFamily(
            "waypost_build_info", "waypost's version.", labels=["version", "consul_api"]
        )
        info.add_metric([__version__, CONSUL_API_VERSION], 1.0)
        yield info
        by_name: dict[str, GaugeMetricFamily] = {}
        for gauge in gauges(self.registry):
            family = by_name.get(gauge.name)
            if family is None:
                family = by_name[gauge.name] = GaugeMetricFamily(
                    gauge.name, gauge.help, labels=list(gauge.labels)
                )
            family.add_metric(list(gauge.labels.values()), gauge.value)
        yield from by_name.values()
        for gauges_family in self.metrics.gauges.values():
            out = GaugeMetricFamily(
                gauges_family.name,
                gauges_family.help,
                labels=list(gauges_family.labels),
            )
            for values, level in gauges_family.items():
                out.add_metric(list(values), level.value)
            yield out
        for counter_family in self.metrics.counters.values():
            counter_out = CounterMetricFamily(
                counter_family.name,
                counter_family.help,
                labels=list(counter_family.labels),
            )
            for values, counter in counter_family.items():
                counter_out.add_metric(list(values), counter.value)
            yield counter_out
        for histogram_family in self.metrics.histograms.values():
            histogram_out = HistogramMetricFamily(
                histogram_family.name,
                histogram_family.help,
                labels=list(histogram_family.labels),
            )
            for values, histogram in histogram_family.items():
                histogram_out.add_metric(
                    list(values), _cumulative(histogram), sum_value=histogram.sum
                )
            yield histogram_out


def _cumulative(histogram: Histogram) -> list[tuple[str, float]]:
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(
        (*histogram.bounds, math.inf), histogram.buckets, strict=True
    ):
        running += count
        buckets.append(("+Inf" if bound == math.inf else _float(bound), running))
    return buckets


def _float(bound: float) -> str:
    return repr(float(bound))
