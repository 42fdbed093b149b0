"""Callers' patience, estimated from censored waits.

Theory of operation
-------------------
A caller's **patience** is how long they would wait before hanging up. We see it only
for callers who hung up (abandoned): their wait *is* their patience (an **event**). A
caller who was answered after 30 s, or taken to message capture after 45 s, was patient
for *at least* that long: their wait is a **censored** observation. The mean wait of the
abandons alone would say callers are impatient, since the patient ones were answered
before they could show it. So:

* :func:`observations` turns calls into ``(wait_s, abandoned)`` pairs, as above; calls
  that were not offered carry no wait and are left out.
* :func:`kaplan_meier`: the product-limit estimate of the survival curve
  ``S(t) = P(patience > t)``: at each distinct event time ``t_i`` with ``d_i`` abandons
  among ``n_i`` callers still waiting just before it, ``S`` drops by the factor
  ``1 - d_i / n_i``. A caller censored at exactly ``t_i`` is counted in ``n_i`` (the
  usual convention: the abandon happened first). ``P(abandon before t)`` is
  ``1 - S(t)``. Beyond the longest wait seen, ``S`` is unknown; the curve stays at its
  last value there.
* :func:`exponential_rate`: the rate ``θ`` of an exponential patience, the one number
  Erlang A takes: the maximum-likelihood estimate for censored exponential data,
  ``θ = events / exposure`` (abandons divided by the sum of all waits, censored ones
  included). It uses every caller and needs no curve; when patience is not exponential
  it is the rate that matches the observed abandons per second waited, which is what
  the queue feels at the waits it actually had (docs/staffing.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts

_CENSORED = (Outcome.ANSWERED, Outcome.MESSAGE, Outcome.NO_MESSAGE)

# (wait in seconds, abandoned): an abandon is an event, anything else a censored wait.
Observation = tuple[float, bool]


def observations(calls: Iterable[CallFacts]) -> list[Observation]:
    """Each offered call's wait and whether it ended in the caller hanging up."""
    found: list[Observation] = []
    for call in calls:
        wait = call.wait
        if wait is None:
            continue  # not offered
        if call.outcome is Outcome.ABANDONED:
            found.append((wait.total_seconds(), True))
        elif call.outcome in _CENSORED:
            found.append((wait.total_seconds(), False))
    return found


@dataclass(frozen=True, slots=True)
class Survival:
    """A Kaplan-Meier curve: ``S(t) = survival[i]`` for ``times[i] <= t < times[i+1]``,
    1.0 before the first event time. ``at_risk`` and ``events`` per event time."""

    times: tuple[float, ...]
    survival: tuple[float, ...]
    at_risk: tuple[int, ...]
    events: tuple[int, ...]
    observed: int  # callers behind the curve, censored included

    def at(self, t: float) -> float:
        """``P(patience > t)``."""
        i = int(np.searchsorted(self.times, t, side="right"))
        return 1.0 if i == 0 else self.survival[i - 1]

    def abandon_by(self, t: float) -> float:
        """``P(patience <= t)``: the share who would have hung up within ``t`` s."""
        return 1.0 - self.at(t)

    def restricted_mean(self, horizon: float) -> float:
        """``∫₀^horizon S(t) dt``: the mean of ``min(patience, horizon)``."""
        edges = [0.0, *(t for t in self.times if t < horizon), horizon]
        levels = [1.0, *self.survival[: len(edges) - 2]]
        return float(sum(s * (b - a) for s, a, b in zip(levels, edges, edges[1:], strict=False)))


def kaplan_meier(data: Sequence[Observation]) -> Survival:
    """The product-limit estimate of ``P(patience > t)`` from censored waits."""
    if not data:
        return Survival((), (), (), (), 0)
    waits = np.fromiter((w for w, _ in data), dtype=float, count=len(data))
    abandoned = np.fromiter((a for _, a in data), dtype=bool, count=len(data))
    if (waits < 0).any() or not np.isfinite(waits).all():
        raise ValueError("waits must be finite and not negative")
    times, inverse = np.unique(waits, return_inverse=True)
    events = np.bincount(inverse, weights=abandoned, minlength=len(times)).astype(int)
    leaving = np.bincount(inverse, minlength=len(times))
    # Callers still waiting just before each distinct wait: all who waited at least as long.
    at_risk = len(waits) - np.concatenate(([0], np.cumsum(leaving)[:-1]))
    has_event = events > 0
    factors = 1.0 - events[has_event] / at_risk[has_event]
    return Survival(
        times=tuple(float(t) for t in times[has_event]),
        survival=tuple(float(s) for s in np.cumprod(factors)),
        at_risk=tuple(int(n) for n in at_risk[has_event]),
        events=tuple(int(d) for d in events[has_event]),
        observed=len(data),
    )


def exponential_rate(data: Iterable[Observation]) -> tuple[float | None, int, float]:
    """``(θ, events, exposure)``: the censored-exponential MLE ``θ = events / exposure``
    (per second), the abandons and the seconds waited behind it. θ is None without any
    exposure; 0.0 when nobody hung up (patience not seen to end: Erlang A then needs a
    floor, see :mod:`.plan`)."""
    events = 0
    exposure = 0.0
    for wait, abandoned in data:
        exposure += wait
        events += abandoned
    return (events / exposure if exposure > 0 else None), events, exposure
