"""What a logged call tells the SLA figures and the call log: where its wait ends, and
its :class:`~televikar_pbx.domain.sla.CallFacts`. The one place of both rules.

**Wait** (docs/metrics.md): from arrival to the agent's answer; a caller nobody answered
stops waiting when the call leaves the queue without an agent (the first journal entry in
:data:`~televikar_pbx.domain.journal.QUEUE_EXITS`: message capture or an announcement),
else at the hang-up. A message or no_message call's wait therefore ends where capture
began, not when the recording ends.

The call log (``db.calls_repo``) finds the queue exit in SQL from ``QUEUE_EXITS`` and
hands each ended call over as :data:`CallTimes`; :func:`facts_of` turns it into facts.
"""

from __future__ import annotations

import datetime as dt

from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts

# Outcomes whose wait ends where the call left the queue (see the module docstring); for
# the others the SLA reads the answer or the hang-up, so the queue exit is not needed.
WAIT_ENDS_AT_QUEUE_EXIT: tuple[Outcome, ...] = (Outcome.MESSAGE, Outcome.NO_MESSAGE)
_NOT_ANSWERED = (Outcome.ABANDONED, *WAIT_ENDS_AT_QUEUE_EXIT)
_OUTCOMES = {o.value: o for o in Outcome}

# An ended call as the call log reads it for the SLA: (id, arrived_at, answered_at,
# ended_at, outcome, agent_id, left_queue_at), left_queue_at being the first QUEUE_EXITS
# entry (None: none, or not looked up). A plain tuple, not a NamedTuple: a night may have
# a million, and the cyclic GC stops tracking tuples of plain values.
CallTimes = tuple[
    int, dt.datetime, dt.datetime | None, dt.datetime, str, int | None, dt.datetime | None
]


def wait_ends(
    answered_at: dt.datetime | None, left_queue_at: dt.datetime | None, ended_at: dt.datetime | None
) -> dt.datetime | None:
    """Where a call's wait ends: the answer, else leaving the queue, else the end; None
    while the call goes on."""
    return answered_at or left_queue_at or ended_at


def facts_of(times: CallTimes) -> CallFacts:
    """The SLA facts of an ended call (a million times a night: no enum lookup by value,
    one object per call). ValueError, naming the call, for facts that cannot be."""
    id_, arrived, answered, ended, value, agent, left_queue = times
    try:
        outcome = _OUTCOMES.get(value) or Outcome(value)
        if outcome in WAIT_ENDS_AT_QUEUE_EXIT:
            return CallFacts(
                arrived, None, ended, outcome, agent, wait_ends(None, left_queue, ended)
            )
        if outcome in _NOT_ANSWERED:
            answered = None
        return CallFacts(arrived, answered, ended, outcome, agent)
    except ValueError as exc:
        raise ValueError(f"call {id_}: {exc}") from None
