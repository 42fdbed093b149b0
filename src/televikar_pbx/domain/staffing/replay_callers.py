"""The replayed callers: what each recorded caller does in a replay (docs/staffing.md,
"Replay"; the simulation is :mod:`televikar_pbx.domain.staffing.replay`).

:func:`callers_of` makes a :class:`Caller` of each :class:`RecordedCall`: its arrival,
its patience (the recorded one for a caller who abandoned; censored otherwise:
``"infinite"`` or drawn from the day's Kaplan-Meier estimate, :func:`patience_draws`),
its talk (recorded, else its customer's mean talk of the day) and its stay in message
capture. :func:`ring_delay_s` measures the day's ring delay.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Literal

from televikar_pbx.domain.call_facts import CallTimes, facts_of
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts

Patience = Literal["infinite", "km"]
PATIENCE_MODELS: tuple[Patience, ...] = ("infinite", "km")
# When the day has no answered call to measure from.
DEFAULT_RING_S = 3.0
DEFAULT_TALK_S = 120.0

_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One ended call of the recorded day: its customer and its SLA facts, and when the
    agent who answered it was offered it (None: not answered, or not known)."""

    key: str
    customer_id: int
    facts: CallFacts
    offered_at: datetime | None = None


def recorded_call(customer_id: int, times: CallTimes, offered_at: datetime | None) -> RecordedCall:
    """A call as the call log gives it (``CallRepository.ended_calls_of_day``)."""
    return RecordedCall(str(times[0]), customer_id, facts_of(times), offered_at)


@dataclass(frozen=True, slots=True)
class Caller:
    """What a replayed caller does; all durations in whole microseconds."""

    key: str
    customer_id: int
    arrived_at: datetime
    patience_us: int | None  # None: waits until answered or sent to message capture
    talk_us: int
    capture_us: int  # message capture to the end of the call
    message_s: float  # the recorded message's length (0: no message)


def ring_delay_s(calls: Iterable[RecordedCall]) -> float:
    """The median of the day's offer-to-answer times (answered calls whose offer is
    known), else :data:`DEFAULT_RING_S`."""
    delays = [
        (c.facts.answered_at - c.offered_at) // _US
        for c in calls
        if c.facts.answered_at is not None and c.offered_at is not None
    ]
    return median(delays) / _US_PER_S if delays else DEFAULT_RING_S


def callers_of(
    calls: Sequence[RecordedCall], patience: Patience = "infinite", seed: int = 0
) -> list[Caller]:
    """The replayed callers of the recorded calls, in order of arrival (see the module
    docstring for what each does)."""
    talks: dict[int, list[int]] = {}
    for call in calls:
        f = call.facts
        if f.outcome is Outcome.ANSWERED and f.answered_at and f.ended_at:
            talks.setdefault(call.customer_id, []).append((f.ended_at - f.answered_at) // _US)
    everyone = [t for per_customer in talks.values() for t in per_customer]
    fallback = sum(everyone) // len(everyone) if everyone else round(DEFAULT_TALK_S * _US_PER_S)
    mean_talk = {cid: sum(ts) // len(ts) for cid, ts in talks.items()}
    draws = patience_draws(calls, seed) if patience == "km" else {}
    callers = []
    for call in sorted(calls, key=lambda c: (c.facts.arrived_at, c.key)):
        f = call.facts
        arrived, ended = f.arrived_at, f.ended_at or f.arrived_at
        talk = mean_talk.get(call.customer_id, fallback)
        patience_us, capture_us, message_s = draws.get(call.key), 0, 0.0
        if f.outcome is Outcome.ANSWERED and f.answered_at is not None:
            talk = (ended - f.answered_at) // _US
        elif f.outcome is Outcome.ABANDONED:
            patience_us = (ended - arrived) // _US
        elif f.overflowed_at is not None:  # message capture
            capture_us = (ended - f.overflowed_at) // _US
            if f.outcome is Outcome.MESSAGE:
                message_s = max(capture_us / _US_PER_S, 1.0)
        callers.append(
            Caller(call.key, call.customer_id, arrived, patience_us, talk, capture_us, message_s)
        )
    return callers


def patience_draws(calls: Sequence[RecordedCall], seed: int) -> dict[str, int | None]:
    """A patience for each offered caller whose patience was censored (not abandoned):
    drawn from the Kaplan-Meier estimate of the day's patience (abandons are events,
    other waits censored), conditional on exceeding the wait the caller showed; None
    (infinite) when the draw falls beyond the last abandon. One generator per call,
    seeded by ``seed`` and the call, so a draw does not depend on the other calls."""
    observed: list[tuple[int, bool]] = []  # (wait in µs, gave up)
    for call in calls:
        wait = call.facts.wait
        if wait is not None:
            observed.append((wait // _US, call.facts.outcome is Outcome.ABANDONED))
    steps = _kaplan_meier(observed)
    draws: dict[str, int | None] = {}
    for call in calls:
        wait = call.facts.wait
        if wait is None or call.facts.outcome is Outcome.ABANDONED:
            continue
        shown = wait // _US
        rng = random.Random(f"{seed}:{call.key}")
        draws[call.key] = _draw_beyond(steps, shown, rng.random())
    return draws


def _kaplan_meier(observed: list[tuple[int, bool]]) -> list[tuple[int, float]]:
    """The survival function's steps: (time, S just after it), in time order."""
    observed.sort()
    at_risk, steps, survival, i = len(observed), [], 1.0, 0
    while i < len(observed):
        time, events, leaving = observed[i][0], 0, 0
        while i < len(observed) and observed[i][0] == time:
            events += observed[i][1]
            leaving += 1
            i += 1
        if events:
            survival *= 1 - events / at_risk
            steps.append((time, survival))
        at_risk -= leaving
    return steps


def _draw_beyond(steps: list[tuple[int, float]], shown: int, u: float) -> int | None:
    """The first step time after ``shown`` where S(t)/S(shown) falls to ``u`` or below."""
    base = 1.0
    for time, survival in steps:
        if time <= shown:
            base = survival
        elif base > 0 and survival / base <= u:
            return time
    return None


def recorded_facts(calls: Iterable[RecordedCall]) -> dict[int, list[CallFacts]]:
    """The recorded calls' facts by customer, as :class:`ReplayResult` has them."""
    facts: dict[int, list[CallFacts]] = {}
    for call in calls:
        facts.setdefault(call.customer_id, []).append(call.facts)
    return facts
