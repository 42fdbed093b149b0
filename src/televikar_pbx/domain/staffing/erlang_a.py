"""The Erlang A queue (M/M/n+M): Poisson arrivals, exponential handle times, n agents,
exponential patience; its stationary figures in the terms of docs/metrics.md.

Theory of operation
-------------------
Rates are per second: arrivals ``λ``, service ``μ`` (1 / mean handle time), patience
``θ`` (1 / mean patience). With ``k`` callers in the system the birth rate is ``λ``; the
death rate is ``kμ`` while ``k ≤ n`` and ``nμ + (k-n)θ`` above (agents busy, the
waiting abandon). The stationary probabilities, in logs so that ``n`` of a few hundred
stays finite (``c = nμ/θ``)::

    log π_k     = k log(λ/μ) - lnΓ(k+1)                              k ≤ n
    log π_{n+j} = log π_n + j log(λ/θ) - lnΓ(c+j+1) + lnΓ(c+1)       j ≥ 1

summed until the terms fall 45 e-folds under the largest. An arrival sees them
(PASTA): with ``k < n`` it is answered at once; with ``n + j`` it waits behind ``j``.

**The wait of a caller who finds j waiting.** Under first come, first served the ``j``
ahead leave (served or gone) at rate ``nμ + iθ`` while ``i`` remain, and the caller is
taken by the next agent after that: the *offered* wait ``V`` (what an infinitely patient
caller would wait) is a sum of exponentials with rates ``nμ + iθ``, ``i = 0..j``. It has
a closed form, with ``x = 1 - e^{-θt}`` and ``I`` the regularised incomplete beta
function (:func:`scipy.special.betainc`)::

    P(V ≤ t | j) = I_x(j+1, c)

The caller has patience ``τ ~ Exp(θ')`` (``θ' = θ`` for the pool; a customer's own rate
for that customer's callers, who queue in the same line) and is answered within ``t``
when ``V ≤ t`` and ``V < τ``::

    P(answered within t | j) = c · Γ(c+j+1) Γ(c+d) / (Γ(c+1) Γ(c+d+j+1)) · I_x(j+1, c+d)

with ``d = θ'/θ`` (for ``d = 1`` the factor is ``nμ / (nμ + (j+1)θ)``, the classic
probability to be served). Still waiting at ``t``: ``e^{-θ't} (1 - P(V ≤ t | j))``;
hung up by ``t``: what is neither. The mean of ``min(wait, M)`` is
``P(hung up by M) / θ'`` (for ``M = ∞``: ``P(Ab) = θ E[W]``, Mandelbaum & Zeltyn).

**In our metrics' terms** (:meth:`ErlangA.figures`): a *short abandon* hangs up within
12 s; *lost* hangs up after 12 s and before the customer's maximum wait ``M`` (at ``M``
the caller is taken to message capture: offered, not answered, not lost); SL12 and SL20
divide the answered within 12 / 20 s by (offered - short abandons). The maximum wait is
applied exactly to the caller's own fate; the queue's dynamics (``θ`` here) have none,
so a caller of the plan (``plan._leaving_rate``) passes a leaving rate that folds the
maximum wait in, and the caller's own patience as ``patience_rate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc, gammaln, logsumexp

from televikar_pbx.domain.metrics import SHORT_ABANDON_S, SL12_S, SL20_S

# Terms this many e-folds under the largest are dropped (e^-45 ≈ 3e-20).
_TAIL_LOG = 45.0


@dataclass(frozen=True, slots=True)
class Figures:
    """Predicted figures of one hour, as shares 0..1 of offered calls (SL: of offered -
    short abandons) and seconds, like ``domain.sla.PeriodFigures`` measures them."""

    sl12: float
    sl20: float
    lost: float
    short_abandons: float
    messages: float
    p_wait: float
    mean_wait_s: float


class ErlangA:
    """The stationary M/M/n+M queue of ``agents`` at rates ``λ``, ``μ``, ``θ`` (per s)."""

    __slots__ = (
        "_log_tail",
        "_waiting",
        "abandon_rate",
        "agents",
        "arrival_rate",
        "p_immediate",
        "service_rate",
    )

    def __init__(
        self, agents: int, arrival_rate: float, service_rate: float, abandon_rate: float
    ) -> None:
        if agents < 0:
            raise ValueError(f"agents must be 0 or more, got {agents}")
        for name, value in (("arrival_rate", arrival_rate), ("service_rate", service_rate)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and not negative, got {value}")
        if not math.isfinite(abandon_rate) or abandon_rate <= 0:
            raise ValueError(
                f"abandon_rate must be positive (θ → 0 is Erlang C), got {abandon_rate}"
            )
        if service_rate == 0 and agents > 0:
            raise ValueError("service_rate must be positive when there are agents")
        self.agents = agents
        self.arrival_rate = arrival_rate
        self.service_rate = service_rate
        self.abandon_rate = abandon_rate
        # π_k for k < n (one number: P(answered at once)) and π_{n+j}, j = 0..J.
        self.p_immediate, self._waiting = self._stationary()
        self._log_tail: dict[float, NDArray[np.float64]] = {}

    def _stationary(self) -> tuple[float, NDArray[np.float64]]:
        n, lam, mu, theta = self.agents, self.arrival_rate, self.service_rate, self.abandon_rate
        if lam == 0:
            return (1.0, np.zeros(1)) if n > 0 else (0.0, np.ones(1))
        k = np.arange(n + 1, dtype=float)
        log_low = k * (math.log(lam / mu) if n else 0.0) - gammaln(k + 1)
        c = n * mu / theta
        peak = max(0, math.ceil((lam - n * mu) / theta))
        size = peak + 64
        while True:
            j = np.arange(1, size + 1, dtype=float)
            log_high = (
                log_low[n] + j * math.log(lam / theta) - (gammaln(c + j + 1) - gammaln(c + 1))
            )
            top = max(float(log_low.max()), float(log_high.max()))
            if log_high[-1] < top - _TAIL_LOG and size > peak:
                break
            size *= 2
        logs = np.concatenate((log_low, log_high))
        probs = np.exp(logs - logsumexp(logs))
        return float(probs[:n].sum()), probs[n:]

    @property
    def p_wait(self) -> float:
        """P(an arrival waits): all agents busy (Erlang C's figure, with abandonment)."""
        return float(self._waiting.sum())

    @property
    def mean_queue(self) -> float:
        """E[Q], the mean number waiting."""
        return float(np.arange(len(self._waiting)) @ self._waiting)

    def offered_wait_by(self, t: float) -> float:
        """P(V ≤ t): an infinitely patient arrival would be answered within ``t`` s."""
        return self.p_immediate + float(self._waiting @ self._v_cdf(t))

    def answered_within(self, t: float, patience_rate: float | None = None) -> float:
        """P(answered with wait ≤ t) of an arrival whose patience rate is ``patience_rate``
        (default the queue's own θ); ``t`` may be ``math.inf``."""
        d = self._d(patience_rate)
        return self.p_immediate + float(self._waiting @ self._answered(t, d))

    def abandoned_by(self, t: float, patience_rate: float | None = None) -> float:
        """P(the arrival hangs up with wait ≤ t); ``t = math.inf`` is P(Ab)."""
        rate = self.abandon_rate if patience_rate is None else patience_rate
        d = self._d(patience_rate)
        if math.isinf(t):
            still = np.zeros(len(self._waiting))
        else:
            still = math.exp(-rate * t) * (1.0 - self._v_cdf(t))
        return float(self._waiting @ (1.0 - self._answered(t, d) - still))

    def waiting_at(self, t: float, patience_rate: float | None = None) -> float:
        """P(the arrival is still waiting, neither answered nor gone, at ``t`` s)."""
        rate = self.abandon_rate if patience_rate is None else patience_rate
        return float(self._waiting @ (math.exp(-rate * t) * (1.0 - self._v_cdf(t))))

    def mean_wait(self, patience_rate: float | None = None, max_wait_s: float = math.inf) -> float:
        """E[min(wait, max_wait_s)] over all arrivals, answered or not (seconds).

        ``P(hung up by M) / θ'`` in general; without a maximum wait, for the queue's own
        callers, Little's ``E[Q] / λ``, which stays exact as θ → 0 (the quotient loses
        digits there: it divides a difference of near-equal numbers by a tiny rate).
        """
        if patience_rate is None and math.isinf(max_wait_s):
            return self.mean_queue / self.arrival_rate if self.arrival_rate else 0.0
        rate = self.abandon_rate if patience_rate is None else patience_rate
        return self.abandoned_by(max_wait_s, patience_rate) / rate

    def figures(self, patience_rate: float | None = None, max_wait_s: float = math.inf) -> Figures:
        """The hour's figures as docs/metrics.md defines them (see the module docstring).

        The plan's inner loop: the offered wait's CDF and the answered shares at 12 s,
        20 s and the maximum wait come from one vectorised call each.
        """
        rate = self.abandon_rate if patience_rate is None else patience_rate
        d = self._d(patience_rate)
        short_at = min(SHORT_ABANDON_S, max_wait_s)
        times = np.array([short_at, min(SL20_S, max_wait_s), max_wait_s])
        v_cdf = self._v_cdf_at(times)  # rows: the three times; columns: j
        answered = self._answered_at(times, d)
        # At t = ∞ (no maximum wait) x = 1: V ≤ ∞ surely, and e^{-θ'∞} = 0; no NaN.
        still = np.exp(-rate * times)[:, None] * (1.0 - v_cdf)
        w = self._waiting
        gone_by = (1.0 - answered - still) @ w
        short, gone = float(gone_by[0]), float(gone_by[2])
        answered_by = self.p_immediate + answered @ w
        in_sl = 1.0 - short
        mean_wait = (
            self.mean_queue / self.arrival_rate
            if patience_rate is None and math.isinf(max_wait_s) and self.arrival_rate
            else gone / rate
        )
        # SL12's limit is the short-abandon limit (12 s): the same row.
        assert SL12_S == SHORT_ABANDON_S
        return Figures(
            sl12=float(answered_by[0]) / in_sl,
            sl20=float(answered_by[1]) / in_sl,
            lost=gone - short,
            short_abandons=short,
            messages=float(still[2] @ w),
            p_wait=self.p_wait,
            mean_wait_s=mean_wait,
        )

    def _v_cdf_at(self, times: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(V ≤ t | j) for each of ``times`` (rows) and j (columns)."""
        size = len(self._waiting)
        if self.agents == 0:
            return np.zeros((len(times), size))
        x = -np.expm1(-self.abandon_rate * times)
        return np.asarray(betainc(self._j1()[None, :], self._c(), x[:, None]), dtype=float)

    def _answered_at(self, times: NDArray[np.float64], d: float) -> NDArray[np.float64]:
        """P(answered within t | j) for each of ``times`` (rows) and j (columns)."""
        size = len(self._waiting)
        if self.agents == 0:
            return np.zeros((len(times), size))
        x = -np.expm1(-self.abandon_rate * times)
        share = np.exp(self._coef(d))
        tail = np.asarray(betainc(self._j1()[None, :], self._c() + d, x[:, None]), dtype=float)
        found: NDArray[np.float64] = share[None, :] * tail
        return found

    def _d(self, patience_rate: float | None) -> float:
        if patience_rate is None:
            return 1.0
        if not math.isfinite(patience_rate) or patience_rate <= 0:
            raise ValueError(f"patience_rate must be positive, got {patience_rate}")
        return patience_rate / self.abandon_rate

    def _c(self) -> float:
        return self.agents * self.service_rate / self.abandon_rate

    def _j1(self) -> NDArray[np.float64]:
        return np.arange(1, len(self._waiting) + 1, dtype=float)

    def _v_cdf(self, t: float) -> NDArray[np.float64]:
        """P(V ≤ t | j) per j."""
        if self.agents == 0:
            return np.zeros(len(self._waiting))
        if math.isinf(t):
            return np.ones(len(self._waiting))
        x = -math.expm1(-self.abandon_rate * t)
        return np.asarray(betainc(self._j1(), self._c(), x), dtype=float)

    def _coef(self, d: float) -> NDArray[np.float64]:
        """log of P(answered at all | j) per j, for patience rate d·θ (cached per d)."""
        coef = self._log_tail.get(d)
        if coef is None:
            c, j1 = self._c(), self._j1()
            coef = (
                math.log(c) + gammaln(c + j1) + gammaln(c + d)
                - gammaln(c + 1) - gammaln(c + d + j1)
            )  # fmt: skip
            self._log_tail[d] = coef
        return coef

    def _answered(self, t: float, d: float) -> NDArray[np.float64]:
        """P(answered within t | j) per j, for patience rate d·θ."""
        if self.agents == 0:
            return np.zeros(len(self._waiting))
        share = np.exp(self._coef(d))
        if math.isinf(t):
            return share
        x = -math.expm1(-self.abandon_rate * t)
        found: NDArray[np.float64] = share * np.asarray(
            betainc(self._j1(), self._c() + d, x), dtype=float
        )
        return found
