"""The staffing plan: agents needed per hour so that every customer meets its targets.

Theory of operation
-------------------
For each local hour of the plan (``domain.sla.periods``) every customer that we answer
then (service hours, agreement) brings its profile's figures for that hour of *its*
week (:mod:`.profile`): calls per hour ``λ_c``, handle time, patience rate ``θ_c``.

**The shared pool.** Agents serve several customers and take the most urgent caller
first, relative to the customer's answer target; with equal targets that is first come,
first served over all customers. So the pool is one Erlang A queue: ``λ`` the sum,
``1/μ`` the arrival-weighted mean handle time, ``θ`` the arrival-weighted mean patience
rate. A customer's callers wait in that line with *their own* patience: the customer's
figures are the pool's offered wait against ``θ_c`` (:meth:`ErlangA.figures`).

**Subsets of agents.** An agent may serve only some customers (``Agent.customer_ids``).
For customer ``c`` served by the agents ``A_c`` of all agents ``A``, the plan's ``n``
agents are taken to include ``⌊n·|A_c|/|A|⌋`` who serve ``c`` (the same mix as the
directory today), and the traffic they carry is ``c``'s own plus each other customer's
in proportion to the share of *its* agents that also serve ``c``
(``Σ_c' λ_c' |A_c ∩ A_c'| / |A_c'|``). With every agent serving every customer this
is the whole pool. It is an approximation (docs/staffing.md says where it is wrong).

**The search.** The figures only improve with more agents, so the smallest ``n`` that
meets every customer's targets is found by raising ``n`` from just under the offered
load until each customer in turn meets them (lowering it if that guess was already
enough). The **binding** customer is, of those who would miss a target with one agent
fewer, the one that would miss it by most (percentage points). The hour's own figures
are the customers' figures summed the way ``domain.sla`` sums calls (SL over offered -
short abandons, lost over offered).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from televikar_pbx.domain.directory import Agent
from televikar_pbx.domain.sla import Period, periods
from televikar_pbx.domain.staffing.erlang_a import ErlangA, Figures
from televikar_pbx.domain.staffing.profile import CustomerProfile

_S_PER_HOUR = 3600.0
# With no agent at all every caller goes to message capture at once (domain/acd.py, rule 4).
NOBODY = Figures(
    sl12=0.0, sl20=0.0, lost=0.0, short_abandons=0.0, messages=1.0, p_wait=1.0, mean_wait_s=0.0
)


@dataclass(frozen=True, slots=True)
class CustomerHour:
    """One customer in one hour of the plan: expected offered calls, the plan's agents
    who serve it, its predicted figures and whether they meet its targets."""

    customer_id: int
    name: str
    offered: float
    agents: int
    figures: Figures
    meets: bool


@dataclass(frozen=True, slots=True)
class HourPlan:
    """One hour: agents needed, the expected figures of all its calls, the binding
    customer (None when no calls are expected, or when none needed more than 0)."""

    period: Period
    offered: float
    handle_s: float | None
    patience_s: float | None
    agents: int
    binding: str | None
    figures: Figures | None
    customers: tuple[CustomerHour, ...]
    reachable: bool = True  # False: no number of agents up to the cap meets the targets


@dataclass(frozen=True, slots=True)
class Demand:
    """One customer's expected traffic in one hour (rates per second)."""

    profile: CustomerProfile
    arrival_rate: float
    handle_s: float
    patience_rate: float


class Routing:
    """Who serves whom, as shares: for customer ``c``, the share ``s_c`` of agents who
    serve it and, per other customer, the share of that one's traffic they carry."""

    def __init__(self, agents: Sequence[Agent], customer_ids: Sequence[int]) -> None:
        serving = {c: frozenset(a.id for a in agents if a.serves(c)) for c in customer_ids}
        everyone = frozenset(a.id for a in agents if a.customer_ids)
        self.share: dict[int, float] = {}
        self.carried: dict[int, dict[int, float]] = {}
        for c in customer_ids:
            mine = serving[c]
            if not everyone or not mine:
                # No agents known (or none for c): plan it as served by the whole pool.
                self.share[c] = 1.0
                self.carried[c] = {other: 1.0 for other in customer_ids}
                continue
            self.share[c] = len(mine) / len(everyone)
            self.carried[c] = {
                other: len(mine & serving[other]) / len(serving[other]) if serving[other] else 0.0
                for other in customer_ids
            }
        self.unserved = tuple(c for c in customer_ids if everyone and not serving[c])


def demands_at(profiles: Sequence[CustomerProfile], at: datetime) -> list[Demand]:
    """The traffic of each customer answered at ``at`` (its hour of the week)."""
    found = []
    for profile in profiles:
        slot = profile.slot(at)
        rate = profile.arrivals_per_hour[slot]
        if rate > 0 and profile.answerable(at):
            found.append(
                Demand(
                    profile, rate / _S_PER_HOUR, profile.handle_s[slot], profile.patience_rate[slot]
                )
            )
    return found


def staffing_plan(
    profiles: Sequence[CustomerProfile],
    *,
    first_day: date,
    last_day: date,
    timezone: str = "Europe/Oslo",
    agents: Sequence[Agent] = (),
) -> tuple[HourPlan, ...]:
    """The plan for every local hour of ``first_day``..``last_day`` (inclusive)."""
    routing = Routing(agents, [p.customer_id for p in profiles])
    return tuple(
        plan_hour(period, demands_at(profiles, period.start), routing)
        for period in periods(first_day, last_day, "hour", timezone)
    )


def plan_hour(period: Period, demands: Sequence[Demand], routing: Routing) -> HourPlan:
    """The smallest number of agents that meets every customer's targets in this hour."""
    if not demands:
        return HourPlan(period, 0.0, None, None, 0, None, None, ())
    model = _HourModel(demands, routing)
    load = model.arrival_rate * model.handle_s
    cap = math.ceil(load / min(routing.share[d.profile.customer_id] for d in demands)) * 2 + 50
    n = max(0, math.floor(load) - 1)
    reachable = True
    for demand in demands:
        while not model.meets(demand, n):
            if n >= cap:
                reachable = False
                break
            n += 1
    while reachable and n > 0 and all(model.meets(d, n - 1) for d in demands):
        n -= 1  # the first guess was more than enough: the least that is
    # Binding: of those who would miss a target with one agent fewer (or, unreachable,
    # with these), the one that would miss it by most.
    short_at = n - 1 if reachable else n
    failing = [d for d in demands if short_at >= 0 and not model.meets(d, short_at)]
    binding = max(failing, key=lambda d: model.shortfall(d, short_at), default=None)
    customers = tuple(model.customer_hour(d, n) for d in demands)
    return HourPlan(
        period=period,
        offered=model.arrival_rate * _S_PER_HOUR,
        handle_s=model.handle_s,
        patience_s=1 / model.patience_rate,
        agents=n,
        binding=None if binding is None else binding.profile.name,
        figures=combine(demands, [c.figures for c in customers]),
        customers=customers,
        reachable=reachable,
    )


def predict_hour(
    period: Period, demands: Sequence[Demand], routing: Routing, agents: float
) -> HourPlan:
    """The figures with ``agents`` present (a mean over the hour may be fractional: the
    figures are interpolated between the whole numbers around it)."""
    if not demands:
        return HourPlan(period, 0.0, None, None, 0, None, None, ())
    model = _HourModel(demands, routing)
    low = math.floor(agents)
    frac = agents - low
    customers = []
    for d in demands:
        below = model.customer_hour(d, low)
        if frac > 0:
            above = model.customer_hour(d, low + 1)
            below = CustomerHour(
                below.customer_id,
                below.name,
                below.offered,
                below.agents,
                _mix(below.figures, above.figures, frac),
                below.meets and above.meets,
            )
        customers.append(below)
    return HourPlan(
        period=period,
        offered=model.arrival_rate * _S_PER_HOUR,
        handle_s=model.handle_s,
        patience_s=1 / model.patience_rate,
        agents=round(agents),
        binding=None,
        figures=combine(demands, [c.figures for c in customers]),
        customers=tuple(customers),
    )


def combine(demands: Sequence[Demand], figures: Sequence[Figures]) -> Figures:
    """All customers' figures as one, weighted by their calls as ``domain.sla`` sums them."""
    offered = sum(d.arrival_rate for d in demands)
    in_sl = sum(
        d.arrival_rate * (1 - f.short_abandons) for d, f in zip(demands, figures, strict=True)
    )

    def over_offered(value: list[float]) -> float:
        return sum(d.arrival_rate * v for d, v in zip(demands, value, strict=True)) / offered

    def over_sl(value: list[float]) -> float:
        return (
            sum(
                d.arrival_rate * (1 - f.short_abandons) * v
                for d, f, v in zip(demands, figures, value, strict=True)
            )
            / in_sl
            if in_sl > 0
            else 0.0
        )

    return Figures(
        sl12=over_sl([f.sl12 for f in figures]),
        sl20=over_sl([f.sl20 for f in figures]),
        lost=over_offered([f.lost for f in figures]),
        short_abandons=over_offered([f.short_abandons for f in figures]),
        messages=over_offered([f.messages for f in figures]),
        p_wait=over_offered([f.p_wait for f in figures]),
        mean_wait_s=over_offered([f.mean_wait_s for f in figures]),
    )


def _mix(a: Figures, b: Figures, frac: float) -> Figures:
    def mix(x: float, y: float) -> float:
        return x + (y - x) * frac

    return Figures(
        sl12=mix(a.sl12, b.sl12),
        sl20=mix(a.sl20, b.sl20),
        lost=mix(a.lost, b.lost),
        short_abandons=mix(a.short_abandons, b.short_abandons),
        messages=mix(a.messages, b.messages),
        p_wait=mix(a.p_wait, b.p_wait),
        mean_wait_s=mix(a.mean_wait_s, b.mean_wait_s),
    )


def _leaving_rate(demand: Demand) -> float:
    """The rate at which the customer's waiting callers leave the queue without an agent,
    for the queue's dynamics: patience ``Exp(θ)`` cut at the maximum wait ``M`` (message
    capture) as the exponential of the same mean, ``θ / (1 - e^{-θM})``. Without it the
    queue would keep callers the desk has sent to messages (docs/staffing.md)."""
    theta, most = demand.patience_rate, demand.profile.max_wait_s
    return theta if math.isinf(most) else theta / -math.expm1(-theta * most)


class _HourModel:
    """One hour's queues: the pool and each customer's sub-pool, with a cache of the
    Erlang A queues already solved (customers served by the same agents share one)."""

    def __init__(self, demands: Sequence[Demand], routing: Routing) -> None:
        self.routing = routing
        self.arrival_rate = sum(d.arrival_rate for d in demands)
        self.handle_s = sum(d.arrival_rate * d.handle_s for d in demands) / self.arrival_rate
        self.patience_rate = (
            sum(d.arrival_rate * d.patience_rate for d in demands) / self.arrival_rate
        )
        self._pools: dict[int, tuple[float, float, float]] = {}
        for d in demands:
            carried = routing.carried[d.profile.customer_id]
            weights = [(o, carried.get(o.profile.customer_id, 0.0)) for o in demands]
            lam = sum(o.arrival_rate * w for o, w in weights)
            work = sum(o.arrival_rate * w * o.handle_s for o, w in weights)
            theta = sum(o.arrival_rate * w * _leaving_rate(o) for o, w in weights)
            self._pools[d.profile.customer_id] = (lam, lam / work, theta / lam)
        self._queues: dict[tuple[int, float, float, float], ErlangA] = {}
        self._figures: dict[tuple[int, int], Figures] = {}

    def agents_for(self, demand: Demand, n: int) -> int:
        return math.floor(self.routing.share[demand.profile.customer_id] * n + 1e-9)

    def figures(self, demand: Demand, n: int) -> Figures:
        key = (demand.profile.customer_id, n)
        found = self._figures.get(key)
        if found is None:
            lam, mu, theta = self._pools[demand.profile.customer_id]
            agents = self.agents_for(demand, n)
            if agents == 0:
                # The desk's rule 4: no agent serving the customer is logged in, so every
                # caller is taken to message capture at once (no wait, not lost).
                found = self._figures[key] = NOBODY
                return found
            queue_key = (agents, lam, mu, theta)
            queue = self._queues.get(queue_key)
            if queue is None:
                queue = self._queues[queue_key] = ErlangA(agents, lam, mu, theta)
            found = queue.figures(demand.patience_rate, demand.profile.max_wait_s)
            self._figures[key] = found
        return found

    def meets(self, demand: Demand, n: int) -> bool:
        f = self.figures(demand, n)
        targets = demand.profile.targets
        return (
            100 * f.sl12 >= targets.sl12_target
            and 100 * f.sl20 >= targets.sl20_target
            and 100 * f.lost <= targets.lost_target
        )

    def shortfall(self, demand: Demand, n: int) -> float:
        """How far, in percentage points, the customer's worst figure misses its target."""
        f = self.figures(demand, n)
        targets = demand.profile.targets
        return max(
            targets.sl12_target - 100 * f.sl12,
            targets.sl20_target - 100 * f.sl20,
            100 * f.lost - targets.lost_target,
        )

    def customer_hour(self, demand: Demand, n: int) -> CustomerHour:
        return CustomerHour(
            customer_id=demand.profile.customer_id,
            name=demand.profile.name,
            offered=demand.arrival_rate * _S_PER_HOUR,
            agents=self.agents_for(demand, n),
            figures=self.figures(demand, n),
            meets=self.meets(demand, n),
        )
