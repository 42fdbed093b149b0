"""The call journal's vocabulary: every entry type, in one place.

Every state change of a call is appended to its journal (table ``call_events``); the
calls table is its summary. Writers (the call service, the fallback import, recovery)
and readers (recovery's outcome rules, the SQL that finds where a caller left the queue)
name entry types only through :class:`JournalEntry`. The values are what is stored, so
they never change; ``docs/desk.md`` explains each.
"""

from __future__ import annotations

from enum import StrEnum


class JournalEntry(StrEnum):
    ARRIVED = "arrived"  # data: dialled, caller, forwarded_from
    OFFERED = "offered"  # agent_id: the agent whose phone rings
    OFFER_MISSED = "offer_missed"  # agent_id; data: cause, cause_txt
    AGENT_ANSWERED = "agent_answered"  # agent_id: the agent leg answered
    ANSWERED = "answered"  # agent_id: caller and agent bridged
    MESSAGE_CAPTURE = "message_capture"  # data: reason
    ANNOUNCEMENT = "announcement"  # data: announcement
    ADOPTED = "adopted"  # taken back after a restart; data: state, capture
    ENDED = "ended"  # data: outcome (recovered_from when closed by recovery)


# Where a caller who was never answered stops waiting: the wait of such a call ends at
# the first of these entries (or at its end, when it has none).
QUEUE_EXITS: frozenset[JournalEntry] = frozenset(
    {JournalEntry.MESSAGE_CAPTURE, JournalEntry.ANNOUNCEMENT}
)
