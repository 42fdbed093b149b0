"""The whole chain (measure, patience, Erlang A, backtest) against a simulated queue in
which Erlang A's assumptions hold: Poisson arrivals, exponential handle times and
patience, n agents first come first served, the maximum wait to message capture.

If the chain is right the backtest's error has no sign: over a week of hours the mean
error (predicted - measured) is near 0. One simulated hour has 50-120 calls, so an
hour's SL is noisy (per-hour errors of 5-8 pp, the MAE); the mean over 168 hours has a
standard error near 0.5 pp. What is left is the model's one approximation that these
queues exercise, the maximum wait folded into the leaving rate (plan._leaving_rate):
over five seeds it left a bias of -0.7..+1.4 pp (4 agents) and +0.8..+2.0 pp (7
agents, slightly optimistic) on SL12, where leaving the maximum wait out of the
dynamics made the model 5 pp pessimistic. So: 2 pp and 3 pp (the latter: the known
optimism of up to 2 pp plus 2 SE). Seeds and dates are fixed.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from datetime import UTC, date, datetime, timedelta

import pytest

from televikar_pbx.domain.calendar import Agreement, Calendar
from televikar_pbx.domain.directory import Customer, CustomerRules
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts
from televikar_pbx.domain.staffing.backtest import backtest
from televikar_pbx.domain.staffing.plan import Routing
from televikar_pbx.domain.staffing.profile import profile_of

S = timedelta(seconds=1)
MAX_WAIT_S = 45.0


def simulate(
    start: datetime,
    hours: int,
    *,
    per_hour: float,
    handle_s: float,
    patience_s: float,
    agents: int,
    seed: int,
) -> list[CallFacts]:
    """An M/M/n+M queue with a maximum wait, event by event; the calls' facts."""
    rng = random.Random(seed)
    end_s = hours * 3600.0
    events: list[tuple[float, int, int]] = []  # (time, kind 0 = agent free / 1 = give up, call)
    t = rng.expovariate(per_hour / 3600)
    arrivals: list[float] = []
    while t < end_s:
        arrivals.append(t)
        t += rng.expovariate(per_hour / 3600)
    waiting: deque[int] = deque()
    free = int(agents)
    facts: dict[int, CallFacts] = {}
    at = [start + a * S for a in arrivals]

    def answer(call: int, now: float) -> None:
        talk = rng.expovariate(1 / handle_s)
        answered = start + now * S
        facts[call] = CallFacts(at[call], answered, answered + talk * S, Outcome.ANSWERED, 1)
        heapq.heappush(events, (now + talk, 0, call))

    next_arrival = 0
    while next_arrival < len(arrivals) or events:
        if next_arrival < len(arrivals) and (not events or arrivals[next_arrival] <= events[0][0]):
            call, now = next_arrival, arrivals[next_arrival]
            next_arrival += 1
            if free:
                free -= 1
                answer(call, now)
            else:
                waiting.append(call)
                heapq.heappush(
                    events, (now + min(rng.expovariate(1 / patience_s), MAX_WAIT_S), 1, call)
                )
            continue
        now, kind, call = heapq.heappop(events)
        if kind == 1:  # gives up, or reaches the maximum wait
            if call in facts:
                continue  # answered before
            waiting.remove(call)
            if now - arrivals[call] < MAX_WAIT_S:
                facts[call] = CallFacts(at[call], None, start + now * S, Outcome.ABANDONED)
            else:
                left = start + now * S
                facts[call] = CallFacts(at[call], None, left + 30 * S, Outcome.MESSAGE, None, left)
            continue
        free += 1  # an agent is free: the first caller still waiting
        if waiting:
            free -= 1
            answer(waiting.popleft(), now)
    return [facts[call] for call in range(len(arrivals))]


@pytest.mark.parametrize(
    ("queue", "tolerance"),
    [
        ({"per_hour": 50.0, "handle_s": 240.0, "patience_s": 90.0, "agents": 4}, 2.0),
        ({"per_hour": 120.0, "handle_s": 180.0, "patience_s": 60.0, "agents": 7}, 3.0),
    ],
)
def test_backtest_of_a_simulated_erlang_a_week_has_no_bias(
    queue: dict[str, float], tolerance: float
) -> None:
    customer = Customer(
        1,
        "sim",
        "Sim",
        rules=CustomerRules(wrap_up_s=0.0),
        calendar=Calendar(agreement=Agreement(date(2020, 1, 1))),
    )
    start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; UTC keeps every day 24 hours
    history = simulate(start, 2 * 168, seed=1, **queue)
    week = start + timedelta(weeks=2)
    calls = simulate(week, 168, seed=2, **queue)
    profile = profile_of(customer, history, start=start, end=week)
    result = backtest(
        [profile], {1: calls}, [queue["agents"]] * 168,
        first_day=week.date(), last_day=week.date() + timedelta(days=6), timezone="UTC",
        routing=Routing((), [1]), presence_source="simulated",
    )  # fmt: skip
    assert result.compared_hours("sl12") == 168
    for name in ("sl12", "sl20", "lost"):
        errors = [e for h in result.hours if (e := h.error(name)) is not None]
        bias = sum(errors) / len(errors)
        assert bias == pytest.approx(0.0, abs=tolerance), (
            name,
            bias,
            result.mean_absolute_error(name),
        )
