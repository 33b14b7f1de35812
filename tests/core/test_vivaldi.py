"""The Vivaldi client (serf's coordinate package): its arithmetic, its
refusals, and that it learns the true round trips of a small network."""

from __future__ import annotations

import math
import random

import pytest

from waypost.core.vivaldi import (
    DEFAULT_CONFIG,
    Client,
    Coordinate,
    apply_force,
    distance,
    origin,
    raw_distance,
)


def test_default_config_is_serfs() -> None:
    c = DEFAULT_CONFIG
    assert (c.dimensionality, c.vivaldi_error_max, c.vivaldi_ce, c.vivaldi_cc) == (
        8,
        1.5,
        0.25,
        0.25,
    )
    assert (c.adjustment_window_size, c.height_min) == (20, 10.0e-6)
    assert (c.latency_filter_size, c.gravity_rho) == (3, 150.0)
    start = origin()
    assert start.vec == (0.0,) * 8
    assert (start.error, start.adjustment, start.height) == (1.5, 0.0, 10.0e-6)


def _at(*vec: float, height: float = 0.0, adjustment: float = 0.0) -> Coordinate:
    padded = (*vec, *([0.0] * (8 - len(vec))))
    return Coordinate(vec=padded, error=1.5, adjustment=adjustment, height=height)


def test_distance_is_euclidean_plus_heights_plus_adjustments() -> None:
    a, b = _at(3.0, height=0.5), _at(0.0, 4.0, height=0.25)
    assert raw_distance(a, b) == pytest.approx(5.0 + 0.75)
    adjusted_a = _at(3.0, height=0.5, adjustment=0.1)
    assert distance(adjusted_a, b) == pytest.approx(5.85)
    # serf: an adjustment that would make the distance negative is ignored.
    negative = _at(0.0, adjustment=-10.0)
    assert distance(negative, _at(1.0)) == pytest.approx(1.0)


def test_apply_force_moves_away_and_keeps_the_height_floor() -> None:
    rng = random.Random(1)
    moved = apply_force(DEFAULT_CONFIG, 1.0, _at(1.0), _at(0.0), rng)
    assert moved.vec[0] == pytest.approx(2.0)
    pulled = apply_force(DEFAULT_CONFIG, -0.5, _at(1.0, height=0.0), _at(0.0), rng)
    assert pulled.vec[0] == pytest.approx(0.5)
    assert pulled.height == DEFAULT_CONFIG.height_min
    # On top of each other: a random direction, unit length.
    apart = apply_force(DEFAULT_CONFIG, 1.0, _at(), _at(), rng)
    assert math.sqrt(sum(x * x for x in apart.vec)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("other", "rtt", "message"),
    [
        (origin(), -0.1, "round trip time not in valid range"),
        (origin(), 10.5, "round trip time not in valid range"),
        (Coordinate(vec=(0.0,) * 4, error=1.5, height=0.0), 0.1, "dimensions"),
        (
            Coordinate(vec=(math.nan,) * 8, error=1.5, height=0.0),
            0.1,
            "invalid",
        ),
    ],
)
def test_bad_observations_are_refused(
    other: Coordinate, rtt: float, message: str
) -> None:
    client = Client(rng=random.Random(0))
    with pytest.raises(ValueError, match=message):
        client.update("n", other, rtt)
    assert client.coord == origin()


def test_latency_filter_uses_the_median_of_the_last_three() -> None:
    client = Client(rng=random.Random(0))
    assert [client._latency_filter("n", x) for x in (0.1, 0.9, 0.2, 0.3)] == [
        0.1,
        0.9,
        0.2,
        0.3,
    ]
    client.forget("n")
    assert client._latency_filter("n", 0.5) == 0.5


def test_one_observation_moves_towards_the_truth() -> None:
    """serf's TestClient_Update: from the origin, 10 ms to a node at the
    origin pushes the client out by force = cc * weight * (rtt - dist)."""
    client = Client(rng=random.Random(0))
    other = origin()
    before = distance(client.coord, other)
    after = client.update("other", other, 0.010)
    assert distance(after, other) > before
    assert after.error < DEFAULT_CONFIG.vivaldi_error_max


def test_a_small_network_learns_its_round_trips() -> None:
    """Nodes on a line 10 ms apart (serf's TestPerformance_Line): after a few
    thousand observations every estimate is within a few ms of the truth."""
    rng = random.Random(42)
    nodes = 6
    truth = [[abs(i - j) * 0.010 for j in range(nodes)] for i in range(nodes)]
    clients = [Client(rng=random.Random(i)) for i in range(nodes)]
    for _ in range(4000):
        i, j = rng.sample(range(nodes), 2)
        clients[i].update(str(j), clients[j].coord, truth[i][j])
    errors = [
        abs(distance(clients[i].coord, clients[j].coord) - truth[i][j])
        for i in range(nodes)
        for j in range(nodes)
        if i != j
    ]
    assert max(errors) < 0.005
    assert all(c.coord.error < 0.5 for c in clients)
    assert all(c.coord.is_valid() for c in clients)
