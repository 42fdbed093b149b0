"""What a call left open by a previous run of the service becomes: the rules recovery
(``calls/recovery.py``) applies, as pure functions of the facts it gathered from the
database row, its journal and Asterisk."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from televikar_pbx.domain.acd import MIN_MESSAGE_S
from televikar_pbx.domain.desk_messages import CallState
from televikar_pbx.domain.journal import JournalEntry
from televikar_pbx.domain.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class OpenCallFacts:
    """What is known of an open call row when the service comes back."""

    journal: frozenset[JournalEntry]
    has_customer: bool  # the dialled number named a customer
    answered: bool  # the row has an answer time (an agent took the call)
    has_agent: bool = False  # the row names the agent who answered

    @classmethod
    def of(
        cls, journal: Collection[str], *, customer_id: int | None, answered_at: object,
        agent_id: int | None = None,
    ) -> OpenCallFacts:  # fmt: skip
        entries = frozenset(JournalEntry(t) for t in journal if t in _VALUES)
        return cls(entries, customer_id is not None, answered_at is not None, agent_id is not None)

    @property
    def announced(self) -> bool:
        """The caller heard (or was to hear) an announcement: unknown number, rejected."""
        return JournalEntry.ANNOUNCEMENT in self.journal or not self.has_customer

    @property
    def capturing(self) -> bool:
        return JournalEntry.MESSAGE_CAPTURE in self.journal


_VALUES = frozenset(e.value for e in JournalEntry)


def announced_outcome(facts: OpenCallFacts) -> Outcome:
    return Outcome.REJECTED if facts.has_customer else Outcome.UNKNOWN_NUMBER


def keeps_message(facts: OpenCallFacts, recorded_s: float) -> bool:
    """Whether a recording found after a restart is kept as the call's message."""
    return facts.has_customer and recorded_s >= MIN_MESSAGE_S


def recovered_outcome(facts: OpenCallFacts, message_kept: bool = False) -> Outcome:
    """The outcome of a call whose caller is gone: answered; a message (one was kept,
    see :func:`keeps_message`) or none; announced; else abandoned."""
    if facts.answered:
        return Outcome.ANSWERED
    if facts.capturing:
        return Outcome.MESSAGE if message_kept else Outcome.NO_MESSAGE
    if facts.announced:
        return announced_outcome(facts)
    return Outcome.ABANDONED


def adoption_state(facts: OpenCallFacts) -> CallState | None:
    """How a call whose caller is still in Asterisk is taken back; ``None``: it is ended
    (with :func:`announced_outcome`: the announcement was nearly over)."""
    if facts.announced:
        return None
    if facts.capturing:
        return CallState.CAPTURING
    if facts.answered and facts.has_agent:
        return CallState.CONNECTED
    return CallState.QUEUED


def capture_phase(*, recording_live: bool, prompt_playing: bool) -> str:
    """Where an adopted message capture stands: ``recording`` (goes on), ``prompt``
    (the prompt plays on; the recording follows) or ``restart`` (between the two, or
    already recorded: the spool tells)."""
    if recording_live:
        return "recording"
    return "prompt" if prompt_playing else "restart"


def recovered_end(
    cdr_end: datetime | None, now: datetime, arrived_at: datetime, answered_at: datetime | None
) -> datetime:
    """When a lost call ended: the CDR's end, else now; never before it began."""
    return max(cdr_end or now, answered_at or arrived_at)
