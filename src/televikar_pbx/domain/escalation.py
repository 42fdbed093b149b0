"""Escalation: an urgent message nobody acknowledges goes down the customer's list
(issue 14; no I/O, no clock).

Theory of operation
-------------------
A customer may set ``escalate_after`` (whole minutes, :func:`escalate_after`); without
it an urgent message goes to every recipient at once
(:func:`~televikar_pbx.domain.message_delivery.plan_deliveries`), as it always did.
With it, an urgent message goes to one *step* of the list at a time:

- **Steps** (:func:`steps`): the customer's recipients in list order (the repository
  gives them by position, then id), every scope: an urgent message reaches
  ``urgent_only`` and digest recipients too, as without escalation. Rows with the same
  non-empty ``name`` are one person, so one step, all their channels together (their
  e-mail and their SMS), in the place of their first row; a row without a name is a
  step of its own. The same (channel, address) twice is one delivery.
- **Start** (:func:`start`): step 1 now; the message is due for another look
  ``escalate_after`` later.
- **Due** (:func:`when_due`), and not acknowledged:

  - the next step that holds anyone not yet notified gets it now, logged as
    ``escalated to Kari Nordmann (step 2 of 3): not acknowledged within 10 min``, and
    the message is due again ``escalate_after`` after that;
  - no such step: ``escalation ended: nobody acknowledged``, and nothing is due again;
  - the customer switched escalation off meanwhile: everyone not yet notified gets it
    now, and it ends.

- **Acknowledged**: nothing more; the message is never due again.

The list is read when each step is due, so a list edited meanwhile counts as it stands;
someone already notified (``notified``: recipient keys with a delivery of the message)
is never notified twice.

The shell keeps :class:`Escalation` (steps done, when due) per message in the database
and carries out a :class:`Decision`: queue its deliveries, store its state and log its
note, in one transaction, claimed with a conditional UPDATE on the state it read (two
workers never take the same step).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from televikar_pbx.domain.message_delivery import Recipient, plan_deliveries

MAX_ESCALATE_AFTER_MIN = 24 * 60
"""A longer wait is no escalation of something urgent: refused."""

LOG_STATUS = "escalation"
"""The ``status`` of an escalation's lines in the message's log."""


def escalate_after(minutes: int | None) -> timedelta | None:
    """The customer's setting as a wait; None: no escalation. ``ValueError`` outside
    1..:data:`MAX_ESCALATE_AFTER_MIN`."""
    if minutes is None:
        return None
    if not 1 <= minutes <= MAX_ESCALATE_AFTER_MIN:
        raise ValueError(
            f"escalate after must be 1..{MAX_ESCALATE_AFTER_MIN} minutes, got {minutes}"
        )
    return timedelta(minutes=minutes)


@dataclass(frozen=True, slots=True)
class Step:
    """One person (or one unnamed address) of the list: every channel of theirs."""

    recipients: tuple[Recipient, ...]

    @property
    def who(self) -> str:
        return _who(self.recipients)


def _who(recipients: Iterable[Recipient]) -> str:
    return ", ".join(dict.fromkeys(r.name or r.address for r in recipients))


@dataclass(frozen=True, slots=True)
class Escalation:
    """A message's escalation as stored: ``step`` steps notified so far (1: the
    first), ``due_at`` when to look again; None: over (acknowledged, ended)."""

    step: int
    due_at: datetime | None

    def __post_init__(self) -> None:
        if self.step < 1:
            raise ValueError(f"escalation step counts from 1, got {self.step}")
        if self.due_at is not None and self.due_at.tzinfo is None:
            raise ValueError("due_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do now: queue ``notify`` (may be empty), store ``state``, log ``note``."""

    notify: tuple[Recipient, ...]
    state: Escalation
    note: str | None


def steps(customer_id: int, recipients: Iterable[Recipient]) -> tuple[Step, ...]:
    """The escalation steps of a customer's list (rules in the module's docstring);
    ``ForeignRecipient`` for another customer's recipient, as for any delivery."""
    order: list[list[Recipient]] = []
    by_name: dict[str, list[Recipient]] = {}
    for planned in plan_deliveries(customer_id, True, recipients):
        r = planned.recipient
        if not r.name:
            order.append([r])
        elif r.name in by_name:
            by_name[r.name].append(r)
        else:
            by_name[r.name] = [r]
            order.append(by_name[r.name])
    return tuple(Step(tuple(group)) for group in order)


def _minutes(wait: timedelta) -> str:
    return f"{wait.total_seconds() / 60:g} min"


def start(all_steps: tuple[Step, ...], after: timedelta | None, now: datetime) -> Decision | None:
    """An urgent message saved at ``now``: step 1, due again ``after`` later. None: no
    escalation (switched off, or nobody on the list): everyone at once, as always."""
    if after is None or not all_steps:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    first = all_steps[0]
    return Decision(
        first.recipients,
        Escalation(1, now + after),
        f"step 1 of {len(all_steps)}: {first.who}; the next in {_minutes(after)}"
        " unless acknowledged",
    )


def when_due(
    state: Escalation,
    all_steps: tuple[Step, ...],
    after: timedelta | None,
    now: datetime,
    *,
    acknowledged: bool,
    notified: Set[str],
) -> Decision | None:
    """What to do with a message whose escalation is ``state`` at ``now``; None: nothing
    (not due yet, or over). ``all_steps`` and ``after`` are the customer's as they stand
    now; ``notified`` the recipient keys (``Recipient.key``) that have a delivery."""
    if state.due_at is None or now < state.due_at:
        return None
    if acknowledged:  # the shell clears due_at when acknowledging; this is the backstop
        return Decision((), Escalation(state.step, None), None)
    remaining = [
        (number, tuple(r for r in step.recipients if r.key not in notified))
        for number, step in enumerate(all_steps[state.step :], start=state.step + 1)
    ]
    remaining = [(number, fresh) for number, fresh in remaining if fresh]
    if not remaining:
        return Decision((), Escalation(state.step, None), "escalation ended: nobody acknowledged")
    if after is None:  # switched off meanwhile: the rest at once, as without escalation
        rest = tuple(r for _, fresh in remaining for r in fresh)
        return Decision(
            rest,
            Escalation(remaining[-1][0], None),
            f"escalation switched off: the rest at once ({_who(rest)})",
        )
    number, fresh = remaining[0]
    waited = _minutes(after)
    return Decision(
        fresh,
        Escalation(number, now + after),
        f"escalated to {_who(fresh)} (step {number} of {len(all_steps)}):"
        f" not acknowledged within {waited}",
    )
