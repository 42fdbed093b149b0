"""Erlang A (M/M/n+M) against published values of its limits and a brute-force check.

No published *Erlang A* table whose digits we could verify was found (Mandelbaum &
Zeltyn, "The Palm/Erlang-A Queue, with Applications to Call Centers" (2005/2007) give
the formulas and 4CallCenters screenshots, not a table we could read reliably). So:

* **θ → 0 is Erlang C.** Published examples: (1) Call Centre Helper, "Erlang C Formula -
  Made Simple": 100 calls in 30 min, handle time 3 min (10 Erlangs), 14 agents:
  probability to wait 17.4 %, 88.8 % answered within 20 s. (2) The Erlang C example of
  Wikipedia's "Erlang (unit)" article as reproduced with Maxima (λ = 0.2 /s, 240 s, 55
  agents): E_C = 0.2387, mean wait 8.184 s, P(wait ≤ 15 s) = 0.8459.
* **θ → ∞ is Erlang B** (a caller who finds every agent busy leaves at once): the
  standard Erlang B table (e.g. in Cooper, "Introduction to Queueing Theory"; any
  traffic table): 10 lines carry 4.461 E at 1 % and 6.216 E at 5 % blocking; 30 lines
  20.337 E at 1 %, 21.932 E at 2 %, 24.802 E at 5 %.
* **θ = μ** makes the number in system Poisson(λ/μ) exactly (every caller leaves at
  rate μ, waiting or served: M/M/∞).
* **Brute force**: the stationary distribution from the CTMC generator solved with
  numpy (truncated far out), and each waiting caller's fate from the matrix
  exponential of its own absorbing chain (scipy.linalg.expm), against the closed forms.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.stats import poisson

from televikar_pbx.domain.staffing.erlang_a import ErlangA

TINY_THETA = 1e-9  # per second: patience of ~30 years, Erlang C to 1e-6


def erlang_c_limit(agents: int, erlangs: float, aht_s: float) -> ErlangA:
    return ErlangA(agents, erlangs / aht_s, 1 / aht_s, TINY_THETA)


def test_erlang_c_limit_call_centre_helper_example() -> None:
    q = erlang_c_limit(14, 10.0, 180.0)
    assert q.p_wait == pytest.approx(0.174, abs=5e-4)
    assert q.offered_wait_by(20) == pytest.approx(0.888, abs=5e-4)
    # And the exact Erlang C closed form, to many digits.
    b = 1.0
    for k in range(1, 15):
        b = 10 * b / (k + 10 * b)
    c = 14 * b / (14 - 10 * (1 - b))
    assert q.p_wait == pytest.approx(c, rel=1e-6)
    assert q.offered_wait_by(20) == pytest.approx(1 - c * math.exp(-(14 - 10) * 20 / 180), rel=1e-6)


def test_erlang_c_limit_wikipedia_example() -> None:
    q = ErlangA(55, 0.2, 1 / 240, TINY_THETA)
    assert q.p_wait == pytest.approx(0.2387, abs=5e-5)
    assert q.mean_wait() == pytest.approx(8.184, abs=5e-4)
    assert q.offered_wait_by(15) == pytest.approx(0.8459, abs=5e-5)
    # Nobody is patient enough to matter: answered within t is the offered wait's CDF.
    assert q.answered_within(15) == pytest.approx(q.offered_wait_by(15), abs=1e-6)


@pytest.mark.parametrize(
    ("lines", "erlangs", "blocking"),
    [
        (10, 4.461, 0.01),
        (10, 6.216, 0.05),
        (30, 20.337, 0.01),
        (30, 21.932, 0.02),
        (30, 24.802, 0.05),
    ],
)
def test_erlang_b_limit_published_table(lines: int, erlangs: float, blocking: float) -> None:
    # Patience of a microsecond against a handle time of 100 s.
    q = ErlangA(lines, erlangs / 100, 1 / 100, 1e6)
    assert q.abandoned_by(math.inf) == pytest.approx(blocking, abs=5e-5)
    assert q.p_wait == pytest.approx(blocking, abs=5e-5)


@pytest.mark.parametrize(("agents", "erlangs"), [(1, 0.5), (10, 8.0), (50, 55.0), (300, 290.0)])
def test_patience_equal_to_service_is_poisson(agents: int, erlangs: float) -> None:
    aht = 180.0
    q = ErlangA(agents, erlangs / aht, 1 / aht, 1 / aht)
    assert q.p_wait == pytest.approx(poisson.sf(agents - 1, erlangs), rel=1e-9)
    k = np.arange(agents, agents + 2000)
    mean_queue = float(((k - agents) * poisson.pmf(k, erlangs)).sum())
    assert q.mean_queue == pytest.approx(mean_queue, rel=1e-9, abs=1e-15)


def brute_force(agents: int, lam: float, mu: float, theta: float, size: int = 400) -> np.ndarray:
    """π from the truncated generator: πQ = 0, Σπ = 1, solved by least squares."""
    q = np.zeros((size, size))
    for k in range(size - 1):
        q[k, k + 1] = lam
        q[k + 1, k] = min(k + 1, agents) * mu + max(0, k + 1 - agents) * theta
    np.fill_diagonal(q, -q.sum(axis=1))
    a = np.vstack([q.T, np.ones(size)])
    b = np.zeros(size + 1)
    b[-1] = 1
    pi, *_ = np.linalg.lstsq(a, b, rcond=None)
    return pi


def tagged_fate(
    agents: int, mu: float, theta: float, patience: float, ahead: int, t: float
) -> tuple[float, float]:
    """(P answered by t, P hung up by t) of a caller behind ``ahead`` others, by expm of
    its own chain: states 'i ahead' (i = ahead..0), then answered, then gone."""
    size = ahead + 3
    answered, gone = ahead + 1, ahead + 2
    g = np.zeros((size, size))
    for s in range(ahead + 1):
        i = ahead - s  # callers still ahead
        g[s, s + 1 if i > 0 else answered] = agents * mu + i * theta
        g[s, gone] = patience
    np.fill_diagonal(g, -g.sum(axis=1))
    p = expm(g * t)[0]
    return float(p[answered]), float(p[gone])


@pytest.mark.parametrize(
    ("agents", "lam", "mu", "theta", "patience"),
    [
        (5, 4 / 180, 1 / 180, 1 / 60, None),  # loaded, impatient
        (12, 11 / 180, 1 / 180, 1 / 300, None),  # patient callers near the load
        (8, 10 / 240, 1 / 240, 1 / 90, 1 / 30),  # a customer more impatient than the pool
        (3, 1 / 60, 1 / 200, 1 / 45, 1 / 200),  # overloaded: only patience keeps it stable
    ],
)
def test_against_brute_force(
    agents: int, lam: float, mu: float, theta: float, patience: float | None
) -> None:
    q = ErlangA(agents, lam, mu, theta)
    pi = brute_force(agents, lam, mu, theta)
    assert q.p_wait == pytest.approx(pi[agents:].sum(), abs=1e-10)
    waiting = pi[agents:]
    assert q.mean_queue == pytest.approx(float(np.arange(len(waiting)) @ waiting), rel=1e-8)
    rate = theta if patience is None else patience
    for t in (5.0, 12.0, 20.0, 45.0):
        fates = [tagged_fate(agents, mu, theta, rate, j, t) for j in range(60)]
        answered = pi[:agents].sum() + sum(w * f[0] for w, f in zip(waiting, fates, strict=False))
        gone = sum(w * f[1] for w, f in zip(waiting, fates, strict=False))
        assert q.answered_within(t, patience) == pytest.approx(answered, abs=1e-8)
        assert q.abandoned_by(t, patience) == pytest.approx(gone, abs=1e-8)


def test_little_and_the_abandonment_identity() -> None:
    """P(Ab) = θ·E[W] and E[W] = E[Q]/λ (Mandelbaum & Zeltyn, section 4.6)."""
    q = ErlangA(20, 22 / 180, 1 / 180, 1 / 90)
    p_ab = q.abandoned_by(math.inf)
    assert p_ab == pytest.approx(q.abandon_rate * q.mean_wait(), rel=1e-12)
    assert q.mean_wait() == pytest.approx(q.mean_queue / q.arrival_rate, rel=1e-9)
    # Every caller is answered or hangs up in the end.
    assert q.answered_within(math.inf) + p_ab == pytest.approx(1.0, abs=1e-12)


def test_figures_follow_docs_metrics() -> None:
    q = ErlangA(10, 100 / 1800, 1 / 180, 1 / 120)
    f = q.figures(max_wait_s=45.0)
    short = q.abandoned_by(12)
    assert f.short_abandons == pytest.approx(short)
    assert f.lost == pytest.approx(q.abandoned_by(45) - short)  # hung up after 12 s, before 45 s
    assert f.sl12 == pytest.approx(q.answered_within(12) / (1 - short))
    assert f.sl20 == pytest.approx(q.answered_within(20) / (1 - short))
    assert f.messages == pytest.approx(q.waiting_at(45))
    # Offered = answered + short + lost + messages (everyone waiting at 45 s goes to capture).
    assert q.answered_within(45) + q.abandoned_by(45) + f.messages == pytest.approx(1.0, abs=1e-12)
    unlimited = q.figures()
    assert unlimited.messages == 0.0 and unlimited.lost > f.lost


def test_more_agents_never_hurt() -> None:
    lam, mu, theta = 30 / 180, 1 / 180, 1 / 100
    figures = [ErlangA(n, lam, mu, theta).figures(max_wait_s=45) for n in range(20, 45)]
    for worse, better in pairwise(figures):
        assert better.sl12 >= worse.sl12 and better.sl20 >= worse.sl20
        assert better.lost <= worse.lost and better.mean_wait_s <= worse.mean_wait_s


def test_stable_for_hundreds_of_agents() -> None:
    q = ErlangA(600, 590 / 180, 1 / 180, 1 / 120)
    f = q.figures(max_wait_s=45)
    for value in (f.sl12, f.sl20, f.lost, f.p_wait, f.mean_wait_s):
        assert math.isfinite(value) and value >= 0
    assert 0.5 < f.sl20 <= 1.0


def test_no_agents_and_no_calls() -> None:
    nobody = ErlangA(0, 10 / 3600, 1 / 180, 1 / 60)
    assert nobody.answered_within(math.inf) == 0.0
    assert nobody.abandoned_by(math.inf) == pytest.approx(1.0)
    quiet = ErlangA(3, 0.0, 1 / 180, 1 / 60)
    assert quiet.p_wait == 0.0 and quiet.answered_within(0) == 1.0


@pytest.mark.parametrize("theta", [0.0, -1.0, math.nan])
def test_patience_rate_must_be_positive(theta: float) -> None:
    with pytest.raises(ValueError, match="abandon_rate"):
        ErlangA(3, 1.0, 1.0, theta)
