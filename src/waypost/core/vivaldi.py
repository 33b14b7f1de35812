"""Vivaldi network coordinates: hashicorp/serf's `coordinate` package.

A node's coordinate is a point in an 8-dimensional Euclidean space plus a
height (the access link) and an adjustment; the distance between two
coordinates estimates their round-trip time in seconds. Each observed RTT
moves the client's coordinate (`Client.update`): serf's median latency
filter, the Vivaldi spring update, the adjustment window and gravity
towards the origin, with serf's `DefaultConfig`. `distance` is serf's
`Coordinate.DistanceTo`, which Consul sorts `?near=` answers by.
No I/O: time arrives as seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import msgspec

#: serf's zeroThreshold: two coordinates closer than this are on top of
#: each other.
ZERO_THRESHOLD = 1.0e-6
#: serf's maxRTT: an observation outside [0, 10 s] is refused.
MAX_RTT = 10.0


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """serf's coordinate.Config, with its DefaultConfig values."""

    dimensionality: int = 8
    vivaldi_error_max: float = 1.5
    vivaldi_ce: float = 0.25
    vivaldi_cc: float = 0.25
    adjustment_window_size: int = 20
    height_min: float = 10.0e-6
    latency_filter_size: int = 3
    gravity_rho: float = 150.0


DEFAULT_CONFIG = Config()


class Coordinate(msgspec.Struct, frozen=True, kw_only=True):
    """serf's Coordinate; every field in seconds but `error` (dimensionless)."""

    vec: tuple[float, ...]
    error: float
    adjustment: float = 0.0
    height: float

    def is_valid(self) -> bool:
        return all(
            math.isfinite(x)
            for x in (*self.vec, self.error, self.adjustment, self.height)
        )

    def is_compatible_with(self, other: Coordinate) -> bool:
        return len(self.vec) == len(other.vec)


def origin(config: Config = DEFAULT_CONFIG) -> Coordinate:
    """serf's NewCoordinate: the origin, with the maximum error."""
    return Coordinate(
        vec=(0.0,) * config.dimensionality,
        error=config.vivaldi_error_max,
        adjustment=0.0,
        height=config.height_min,
    )


def raw_distance(a: Coordinate, b: Coordinate) -> float:
    """The Vivaldi distance in seconds, without the adjustments."""
    return _magnitude(_diff(a.vec, b.vec)) + a.height + b.height


def distance(a: Coordinate, b: Coordinate) -> float:
    """serf's DistanceTo, in seconds: adjusted, unless that goes negative."""
    raw = raw_distance(a, b)
    adjusted = raw + a.adjustment + b.adjustment
    return adjusted if adjusted > 0.0 else raw


def apply_force(
    config: Config, force: float, at: Coordinate, other: Coordinate, rng: random.Random
) -> Coordinate:
    """serf's ApplyForce: move `at` by `force` away from `other`."""
    unit, mag = _unit_vector_at(at.vec, other.vec, rng)
    vec = tuple(x + u * force for x, u in zip(at.vec, unit, strict=True))
    height = at.height
    if mag > ZERO_THRESHOLD:
        height = (at.height + other.height) * force / mag + at.height
        height = max(height, config.height_min)
    return msgspec.structs.replace(at, vec=vec, height=height)


class Client:
    """serf's coordinate.Client: this node's coordinate and its update."""

    def __init__(
        self, config: Config = DEFAULT_CONFIG, *, rng: random.Random | None = None
    ) -> None:
        self.config = config
        self.coord = origin(config)
        self._origin = origin(config)
        self._adjustment_index = 0
        self._adjustment_samples = [0.0] * config.adjustment_window_size
        self._latency_samples: dict[str, list[float]] = {}
        self._rng = rng or random.Random()
        #: How many times an update made the coordinate invalid (reset).
        self.resets = 0

    def update(self, node: str, other: Coordinate, rtt: float) -> Coordinate:
        """One observation: `rtt` seconds to `node`, whose coordinate is
        `other`. Raises ValueError as serf does for a bad observation."""
        if not other.is_compatible_with(self.coord):
            raise ValueError("dimensions aren't compatible")
        if not other.is_valid():
            raise ValueError("coordinate is invalid")
        if rtt < 0 or rtt > MAX_RTT:
            raise ValueError(
                f"round trip time not in valid range, duration {rtt}s is not a"
                f" positive value less than {MAX_RTT:g}s"
            )
        rtt = self._latency_filter(node, rtt)
        self._update_vivaldi(other, rtt)
        self._update_adjustment(other, rtt)
        self._update_gravity()
        if not self.coord.is_valid():
            self.resets += 1
            self.coord = origin(self.config)
            raise ValueError("coordinate invalid (NaN or Inf), reset to the origin")
        return self.coord

    def forget(self, node: str) -> None:
        """serf's ForgetNode: drop a departed node's latency samples."""
        self._latency_samples.pop(node, None)

    def _latency_filter(self, node: str, rtt: float) -> float:
        samples = self._latency_samples.setdefault(node, [])
        samples.append(rtt)
        if len(samples) > self.config.latency_filter_size:
            del samples[0]
        ordered = sorted(samples)
        return ordered[len(ordered) // 2]

    def _update_vivaldi(self, other: Coordinate, rtt: float) -> None:
        config = self.config
        dist = distance(self.coord, other)
        rtt = max(rtt, ZERO_THRESHOLD)
        wrongness = abs(dist - rtt) / rtt
        total_error = max(self.coord.error + other.error, ZERO_THRESHOLD)
        weight = self.coord.error / total_error
        error = config.vivaldi_ce * weight * wrongness + self.coord.error * (
            1.0 - config.vivaldi_ce * weight
        )
        error = min(error, config.vivaldi_error_max)
        self.coord = msgspec.structs.replace(self.coord, error=error)
        force = config.vivaldi_cc * weight * (rtt - dist)
        self.coord = apply_force(config, force, self.coord, other, self._rng)

    def _update_adjustment(self, other: Coordinate, rtt: float) -> None:
        size = self.config.adjustment_window_size
        if size == 0:
            return
        # The existing adjustments do not figure in: the raw distance.
        self._adjustment_samples[self._adjustment_index] = rtt - raw_distance(
            self.coord, other
        )
        self._adjustment_index = (self._adjustment_index + 1) % size
        adjustment = sum(self._adjustment_samples) / (2.0 * size)
        self.coord = msgspec.structs.replace(self.coord, adjustment=adjustment)

    def _update_gravity(self) -> None:
        dist = distance(self._origin, self.coord)
        force = -1.0 * (dist / self.config.gravity_rho) ** 2
        self.coord = apply_force(
            self.config, force, self.coord, self._origin, self._rng
        )


def _diff(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x - y for x, y in zip(a, b, strict=True)]


def _magnitude(vec: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in vec))


def _unit_vector_at(
    a: Sequence[float], b: Sequence[float], rng: random.Random
) -> tuple[list[float], float]:
    """A unit vector from `b` towards `a`, and their distance; on top of
    each other: a random direction (serf's unitVectorAt), distance 0."""
    ret = _diff(a, b)
    mag = _magnitude(ret)
    if mag > ZERO_THRESHOLD:
        return [x / mag for x in ret], mag
    ret = [rng.random() - 0.5 for _ in ret]
    mag = _magnitude(ret)
    if mag > ZERO_THRESHOLD:
        return [x / mag for x in ret], 0.0
    ret = [0.0] * len(ret)
    ret[0] = 1.0
    return ret, 0.0
