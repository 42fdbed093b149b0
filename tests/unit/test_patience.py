"""Kaplan-Meier patience from censored waits, against synthetic callers of known patience.

Tolerances come from the sample size: each check allows 4 standard errors, the
Kaplan-Meier one from Greenwood's formula (Var Ŝ(t) = Ŝ(t)² Σ d_i / (n_i (n_i - d_i))),
the exponential rate's from its asymptotic variance (SE θ̂ = θ̂ / √events). With fixed
seeds the draws are the same every run; 4 SE keeps a correct estimator passing for any
seed but for 1 in ~16,000, while a biased one (the mean of the abandons) fails by far.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts
from televikar_pbx.domain.staffing.patience import (
    Observation,
    Survival,
    exponential_rate,
    kaplan_meier,
    observations,
)

MAX_WAIT_S = 45.0  # message capture: censors every caller still waiting then


def greenwood_se(curve: Survival, t: float) -> float:
    total = sum(
        d / (n * (n - d))
        for time, n, d in zip(curve.times, curve.at_risk, curve.events, strict=True)
        if time <= t and n > d
    )
    return curve.at(t) * math.sqrt(total)


def callers(patience: np.ndarray, seed: int) -> list[Observation]:
    """Each caller is answered after an exponential wait (mean 25 s) unless patience runs
    out first; nobody waits past MAX_WAIT_S (message capture)."""
    answer = np.random.default_rng(seed).exponential(25.0, len(patience))
    waits = np.minimum(np.minimum(patience, answer), MAX_WAIT_S)
    return [
        (float(w), bool(p <= min(a, MAX_WAIT_S)))
        for w, p, a in zip(waits, patience, answer, strict=True)
    ]


def test_a_worked_example_by_hand() -> None:
    # 5 callers: hung up at 5 s; answered at 10 s; hung up at 10 s; hung up at 20 s;
    # answered at 30 s. At 10 s four were waiting (the one answered then counts).
    curve = kaplan_meier([(5, True), (10, False), (10, True), (20, True), (30, False)])
    assert curve.times == (5, 10, 20)
    assert curve.at_risk == (5, 4, 2)
    assert curve.survival == pytest.approx((0.8, 0.6, 0.3))
    assert curve.at(4.99) == 1.0 and curve.at(5) == pytest.approx(0.8)
    assert curve.abandon_by(25) == pytest.approx(0.7)
    assert curve.at(1000) == pytest.approx(0.3)  # beyond the data: the last value
    assert curve.restricted_mean(20) == pytest.approx(5 * 1.0 + 5 * 0.8 + 10 * 0.6)
    assert exponential_rate([(5, True), (10, False), (10, True), (20, True), (30, False)]) == (
        pytest.approx(3 / 75),
        3,
        75.0,
    )


def test_exponential_patience_is_recovered() -> None:
    mean = 60.0
    patience = np.random.default_rng(17).exponential(mean, 20_000)
    data = callers(patience, seed=18)
    assert 0.1 < sum(a for _, a in data) / len(data) < 0.5  # heavily censored
    curve = kaplan_meier(data)
    for t in (5.0, 12.0, 20.0, 30.0, 40.0):
        assert curve.at(t) == pytest.approx(math.exp(-t / mean), abs=4 * greenwood_se(curve, t))
    theta, events, _ = exponential_rate(data)
    assert theta is not None
    assert theta == pytest.approx(1 / mean, abs=4 * theta / math.sqrt(events))
    # The naive estimate, the mean wait of those who hung up, is far too impatient.
    naive = np.mean([w for w, a in data if a])
    assert naive < 0.5 * mean


def test_weibull_patience_is_recovered_by_the_curve() -> None:
    # Shape 2, scale 50 s: few hang up in the first seconds, then many (not exponential).
    shape, scale = 2.0, 50.0
    patience = scale * np.random.default_rng(29).weibull(shape, 20_000)
    curve = kaplan_meier(callers(patience, seed=30))
    for t in (5.0, 12.0, 20.0, 30.0, 40.0):
        truth = math.exp(-((t / scale) ** shape))
        assert curve.at(t) == pytest.approx(truth, abs=4 * greenwood_se(curve, t))
    # A single exponential rate cannot: at 5 s it predicts far more hang-ups than seen.
    theta, _, _ = exponential_rate(callers(patience, seed=30))
    assert theta is not None
    assert 1 - math.exp(-theta * 5) > 3 * curve.abandon_by(5)


def test_uniform_patience_with_light_censoring() -> None:
    # Uniform on [0, 40 s): S(t) = 1 - t/40, a straight line; a 2,000-caller sample.
    patience = np.random.default_rng(41).uniform(0, 40, 2_000)
    curve = kaplan_meier(callers(patience, seed=42))
    for t in (10.0, 20.0, 30.0):
        assert curve.at(t) == pytest.approx(1 - t / 40, abs=4 * greenwood_se(curve, t))


def test_observations_from_calls() -> None:
    at = datetime(2026, 3, 3, 9, tzinfo=UTC)
    s = timedelta(seconds=1)
    calls = [
        CallFacts(at, at + 8 * s, at + 60 * s, Outcome.ANSWERED, 1),
        CallFacts(at, None, at + 30 * s, Outcome.ABANDONED),
        CallFacts(at, None, at + 90 * s, Outcome.MESSAGE, None, at + 45 * s),
        CallFacts(at, None, at + 2 * s, Outcome.NO_MESSAGE, None, at),
        CallFacts(at, None, at + 1 * s, Outcome.UNKNOWN_NUMBER),
    ]
    assert observations(calls) == [(8.0, False), (30.0, True), (45.0, False), (0.0, False)]


def test_empty_and_event_free_data() -> None:
    assert kaplan_meier([]).at(10) == 1.0
    assert exponential_rate([]) == (None, 0, 0.0)
    assert exponential_rate([(10.0, False)]) == (0.0, 0, 10.0)
    assert kaplan_meier([(10.0, False)]).at(100) == 1.0
    with pytest.raises(ValueError, match="finite"):
        kaplan_meier([(-1.0, True)])
