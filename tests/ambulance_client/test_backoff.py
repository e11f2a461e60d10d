"""Backoff: the formula, checked exactly with a seeded rng (no sleeping)."""

from __future__ import annotations

import random

import pytest

from ambulink.ambulance_client.backoff import Backoff
from ambulink.errors import ConfigError


def test_raw_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(jitter=0.0, rng=random.Random(1))
    assert [backoff.delay(n) for n in range(9)] == [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert backoff.delay(10_000) == 5.0  # no overflow after a very long outage


def test_equal_jitter_matches_the_formula() -> None:
    backoff = Backoff(jitter=0.5, rng=random.Random(42))
    reference = random.Random(42)
    for failures in range(1, 12):
        raw = min(5.0, 0.25 * 2 ** (failures - 1))
        expected = raw / 2 + reference.uniform(0.0, raw / 2)
        assert backoff.delay(failures) == pytest.approx(expected)


@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0])
def test_delays_stay_within_bounds(jitter: float) -> None:
    backoff = Backoff(jitter=jitter, rng=random.Random(7))
    for failures in range(0, 40):
        raw = backoff.raw_delay(failures)
        for _ in range(200):
            d = backoff.delay(failures)
            assert raw * (1 - jitter) <= d <= raw <= 5.0
            assert d >= 0.0


def test_full_jitter_spreads_over_the_whole_range() -> None:
    backoff = Backoff(jitter=1.0, rng=random.Random(3))
    delays = [backoff.delay(10) for _ in range(2000)]
    assert min(delays) < 0.25 and max(delays) > 4.75  # uniform over [0, 5]


def test_same_seed_same_delays_and_reset() -> None:
    a, b = Backoff(rng=random.Random(9)), Backoff(rng=random.Random(9))
    seq_a = [a.next_delay() for _ in range(8)]
    assert seq_a == [b.next_delay() for _ in range(8)]
    assert a.failures == 8
    a.reset()
    assert a.failures == 0
    assert 0.125 <= a.next_delay() <= 0.25  # back to base after a success


@pytest.mark.parametrize(
    "kwargs", [{"base_s": 0.0}, {"cap_s": 0.1}, {"jitter": 1.5}, {"jitter": -0.1}]
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_negative_failures_are_refused() -> None:
    with pytest.raises(ValueError, match="failures"):
        Backoff().delay(-1)
