"""Escalation of urgent messages nobody acknowledged: the customers' setting, and the
pass the delivery worker makes each round (the rules: ``domain/escalation.py``).

A message escalating has ``escalation_step`` (steps notified so far) and
``escalate_at`` (when to look again), written with the message and its first step's
outbox rows in one transaction (``messages_repo``). A pass is one indexed query for the
messages whose ``escalate_at`` has come; then, per message, one transaction: the
customer's setting and list as they stand, the domain's decision, and, claimed by a
conditional UPDATE on the state that was read, the step's outbox rows and its line in
the message's log. Two workers (or a worker and an acknowledgement) never both act on
one step: on PostgreSQL the second UPDATE waits for the first transaction, then finds
the row changed and matches nothing; on SQLite the write lock serialises them, and the
transaction begins at the UPDATE, so it sees what the other committed. Acknowledging
(or resending) clears ``escalate_at``, so such a message is never due again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update

from televikar_pbx.db import models
from televikar_pbx.db.messages_repo import _enqueue, _log, _recipients, recipient
from televikar_pbx.db.repo_base import Repository, require_aware
from televikar_pbx.domain import escalation
from televikar_pbx.domain.messages import MessageStatus


@dataclass(frozen=True, slots=True)
class Escalated:
    """What a pass did to one message: its step now, deliveries queued, the log line."""

    message_id: int
    step: int
    deliveries: int
    note: str


@dataclass(frozen=True, slots=True)
class _Due:
    message_id: int
    customer_id: int
    state: escalation.Escalation
    acknowledged: bool


class EscalationRepository(Repository):
    async def escalate_after(self) -> dict[int, int | None]:
        """Each customer's wait in minutes; None: no escalation."""
        c = models.Customer
        async with self._unit() as s:
            return {cid: m for cid, m in await s.execute(select(c.id, c.escalate_after_min))}

    async def set_escalate_after(self, customer_id: int, minutes: int | None) -> None:
        """``ValueError`` outside 1..1440 (``domain.escalation.escalate_after``)."""
        escalation.escalate_after(minutes)
        async with self._unit() as s:
            await s.execute(
                update(models.Customer)
                .where(models.Customer.id == customer_id)
                .values(escalate_after_min=minutes)
            )

    async def escalate_due(self, now: dt.datetime, limit: int = 100) -> list[Escalated]:
        """One pass: every message whose escalation is due at ``now`` (up to ``limit``,
        the longest due first) takes its next step or ends."""
        require_aware("now", now)
        m = models.Message
        stmt = (
            select(m.id, m.customer_id, m.escalation_step, m.escalate_at, m.status)
            .where(m.escalate_at <= now)
            .order_by(m.escalate_at, m.id)
            .limit(limit)
        )
        async with self._unit() as s:
            due = [
                _Due(mid, cid, escalation.Escalation(step or 1, at), status == _ACKNOWLEDGED)
                for mid, cid, step, at, status in await s.execute(stmt)
            ]
        done: list[Escalated] = []
        for message in due:
            outcome = await self._step(message, now)
            if outcome is not None:
                done.append(outcome)
        return done

    async def _step(self, due: _Due, now: dt.datetime) -> Escalated | None:
        m, o = models.Message, models.OutboxItem
        async with self._unit() as s:
            minutes = await s.scalar(
                select(models.Customer.escalate_after_min).where(
                    models.Customer.id == due.customer_id
                )
            )
            try:
                after = escalation.escalate_after(minutes)
            except ValueError:  # written around set_escalate_after: as if switched off
                after = None
            steps = escalation.steps(
                due.customer_id, [recipient(r) for r in await _recipients(s, due.customer_id)]
            )
            had = await s.execute(
                select(o.channel, o.address).where(
                    o.message_id == due.message_id, o.generation == 0
                )
            )
            decision = escalation.when_due(
                due.state, steps, after, now,
                acknowledged=due.acknowledged,
                notified=frozenset(f"{channel}:{address}" for channel, address in had),
            )  # fmt: skip
            if decision is None:
                return None
            claim = update(m).where(
                m.id == due.message_id, m.escalation_step == due.state.step, m.escalate_at <= now
            )
            if decision.note is not None:  # it acts: not if acknowledged since the read
                claim = claim.where(m.status != _ACKNOWLEDGED)
            claimed = await s.scalar(
                claim.values(escalation_step=decision.state.step, escalate_at=decision.state.due_at)
                .returning(m.id)
                .execution_options(synchronize_session=False)
            )
            if claimed is None or decision.note is None:
                return None
            for r in decision.notify:
                await _enqueue(s, due.message_id, r, now)
            await _log(
                s, due.message_id, now, escalation.LOG_STATUS, "delivery", result=decision.note
            )
            return Escalated(
                due.message_id, decision.state.step, len(decision.notify), decision.note
            )


_ACKNOWLEDGED = MessageStatus.ACKNOWLEDGED.value
