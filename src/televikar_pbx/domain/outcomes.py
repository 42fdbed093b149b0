"""How a call ended: the one vocabulary the desk, the call log and the SLA maths share."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"  # caller hung up before an agent answered
    MESSAGE = "message"  # nobody could answer; the caller left a message
    NO_MESSAGE = "no_message"  # sent to message capture, recorded nothing
    UNKNOWN_NUMBER = "unknown_number"  # the dialled number belongs to no customer
    REJECTED = "rejected"  # policy: no agreement or booking, and no message taking
    FAILED = "failed"  # our side failed (ARI error, no channel, ...)
