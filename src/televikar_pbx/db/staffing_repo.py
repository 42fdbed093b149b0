"""What the staffing plan and its backtest read: every customer with its targets and the
facts of its calls over a span, and the agents with the customers they serve.

The calls come from ``CallRepository.ended_calls_between`` turned into facts by
``domain.call_facts.facts_of``: the same read and the same rules as the SLA figures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from televikar_pbx.db.agents_repo import AgentRepository
from televikar_pbx.db.calls_repo import CallRepository
from televikar_pbx.db.directory_repo import DirectoryRepository
from televikar_pbx.db.repo_base import Repository, require_aware
from televikar_pbx.domain.call_facts import facts_of
from televikar_pbx.domain.directory import Agent, Customer
from televikar_pbx.domain.reporting import ReportSettings
from televikar_pbx.domain.sla import CallFacts


@dataclass(frozen=True, slots=True)
class CustomerCalls:
    """One customer, its targets, and the facts of its calls that arrived in the span."""

    customer: Customer
    targets: ReportSettings
    calls: tuple[CallFacts, ...]


@dataclass(frozen=True, slots=True)
class StaffingHistory:
    start: dt.datetime
    end: dt.datetime
    customers: tuple[CustomerCalls, ...]
    agents: tuple[Agent, ...]


class StaffingRepository(Repository):
    """The history of all customers over a span, in the caller's unit of work."""

    async def history(self, start: dt.datetime, end: dt.datetime) -> StaffingHistory:
        """Every customer's ended calls that arrived in ``[start, end)``, its targets,
        and the agents as the directory has them now."""
        require_aware("start", start)
        require_aware("end", end)
        directory = DirectoryRepository(self.source)
        calls = CallRepository(self.source)
        settings = await directory.all_report_settings()
        found = []
        for customer in await directory.list_customers():
            times = await calls.ended_calls_between(customer.id, start, end)
            found.append(
                CustomerCalls(
                    customer,
                    settings.get(customer.id, ReportSettings()),
                    tuple(map(facts_of, times)),
                )
            )
        agents = await AgentRepository(self.source).list_agents()
        return StaffingHistory(start, end, tuple(found), agents)
