"""Repositories: rows in, domain objects and records out.

A repository is built on either
- an ``AsyncSession``: it never commits; the caller owns the unit of work, typically
  ``async with sessionmaker.begin() as session``. After an error the session's
  transaction is dead: let the ``begin()`` block roll it back. Or on
- an ``async_sessionmaker``: each method is its own transaction, committed on return and
  rolled back on error (what the call service wants: one write per ARI event).

Writes are flushed, so database errors surface at the call that caused them, translated
into the exceptions of ``repo_base`` (``RepositoryError``, ``NotFound``, ``Conflict``, ...;
the hierarchy is in its docstring).

One module per area, all importable from here:

- ``directory_repo``: customers (numbers, rules, calendar, report settings, bookings)
  and, through ``agents_repo``, agents (phone secret and contact, customers, state).
- ``calls_repo``: the call log and each call's event journal.
- ``messages_repo``: messages callers left.
- ``sla_repo``: the hourly and daily SLA figures ``sla nightly`` stores.
- ``billing_repo``: what billing reads of a month (counts, bookings, prices).
- ``delivery_repo``: the customers' report e-mails, sent, failed or being sent.

- ``agent_log_repo``: the agents' availability log (logged in, paused, logged out).

``CallStoreRepository`` joins calls, messages and the availability log: the call
service's ``CallStore`` (the log is written through the same spool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from televikar_pbx.db.agent_log_repo import AGENT_LOG_OPS, AgentLogRepository
from televikar_pbx.db.agents_repo import AgentCredentials, AgentRepository
from televikar_pbx.db.billing_repo import BilledCustomer, BillingRepository
from televikar_pbx.db.calls_repo import CallRepository
from televikar_pbx.db.delivery_repo import DeliveryRepository
from televikar_pbx.db.directory_repo import (
    DEFAULT_TIMEZONE,
    KEEP,
    DirectoryRepository,
    load_directory,
)
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.repo_base import (
    CallNotFound,
    Conflict,
    MessageNotFound,
    NotFound,
    RepositoryError,
    SessionSource,
)
from televikar_pbx.db.sla_repo import SlaAggregateRecord, SlaRepository


class CallStoreRepository(CallRepository, MessageRepository, AgentLogRepository):
    """The call log, the messages and the agents' availability log on one object
    (``calls.ports.CallStore``)."""

    async def write_records(self, records: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """:meth:`CallRepository.write_records`, and the availability log's records
        (independent of the calls'), each in turn, in their order."""
        calls = [(op, fields) for op, fields in records if op not in AGENT_LOG_OPS]
        if calls:
            await super().write_records(calls)
        for op, fields in records:
            if op in AGENT_LOG_OPS:
                await getattr(self, op)(**fields)


__all__ = [
    "DEFAULT_TIMEZONE",
    "KEEP",
    "AgentCredentials",
    "AgentLogRepository",
    "AgentRepository",
    "BilledCustomer",
    "BillingRepository",
    "CallNotFound",
    "CallRepository",
    "CallStoreRepository",
    "Conflict",
    "DeliveryRepository",
    "DirectoryRepository",
    "MessageNotFound",
    "MessageRepository",
    "NotFound",
    "RepositoryError",
    "SessionSource",
    "SlaAggregateRecord",
    "SlaRepository",
    "load_directory",
]
