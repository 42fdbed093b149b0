"""The desk's vocabulary: states, events (past tense) and commands (imperative).

Small frozen dataclasses; :mod:`televikar_pbx.domain.acd` holds the rules that connect
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from televikar_pbx.domain.directory import HoldStyle
from televikar_pbx.domain.outcomes import Outcome


class CallState(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    CAPTURING = "capturing"  # answered by us: prompt, beep, recording
    ANNOUNCING = "announcing"  # answered by us: an announcement, then hang-up
    ENDED = "ended"


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    IDLE = "idle"
    OFFERED = "offered"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


# --- events (past tense) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerArrived:
    call_id: str
    customer_id: int | None  # None: the dialled number belongs to no customer


@dataclass(frozen=True, slots=True)
class OfferFailed:
    call_id: str
    agent_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class AgentAnswered:
    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    call_id: str


@dataclass(frozen=True, slots=True)
class AgentHungUp:
    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class MessageRecorded:
    call_id: str
    duration_s: float  # 0 when nothing was recorded


@dataclass(frozen=True, slots=True)
class AnnouncementDone:
    call_id: str


@dataclass(frozen=True, slots=True)
class CallAdopted:
    """A call in progress that Asterisk still has in our application after our process
    restarted or lost its ARI connection, taken back in the state it was in: ``QUEUED``
    (waiting since ``arrived_at``, to be routed again), ``CONNECTED`` (talking with
    ``agent_id``) or ``CAPTURING`` (the message capture goes on)."""

    call_id: str
    customer_id: int
    arrived_at: datetime
    state: CallState
    agent_id: int | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (wrap-ups end, maximum waits run out)."""


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    agent_id: int


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    agent_id: int


@dataclass(frozen=True, slots=True)
class AgentPaused:
    agent_id: int


@dataclass(frozen=True, slots=True)
class AgentResumed:
    agent_id: int


@dataclass(frozen=True, slots=True)
class PhoneReachable:
    """The agent's phone registered or answers qualify requests again."""

    agent_id: int


@dataclass(frozen=True, slots=True)
class PhoneUnreachable:
    agent_id: int


CallEvent = (
    CallerArrived
    | OfferFailed
    | AgentAnswered
    | CallerHungUp
    | AgentHungUp
    | MessageRecorded
    | AnnouncementDone
)
AgentEvent = AgentLoggedIn | AgentLoggedOut | AgentPaused | AgentResumed
PhoneEvent = PhoneReachable | PhoneUnreachable
Event = CallEvent | AgentEvent | PhoneEvent | CallAdopted | Tick


# --- commands (imperative) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartWaiting:
    """Let the queued caller hear ringing (not answered), music or an announcement."""

    call_id: str
    hold_style: HoldStyle
    media: str | None = None


@dataclass(frozen=True, slots=True)
class RingAgent:
    call_id: str
    agent_id: int
    timeout_s: float


@dataclass(frozen=True, slots=True)
class CancelOffer:
    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class ConnectCall:
    """Answer the caller and bridge it with the agent leg."""

    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class CaptureMessage:
    """Answer, play the prompt (``None``: ours), beep, record; then report
    :class:`MessageRecorded`."""

    call_id: str
    reason: str  # no_agent, max_wait, closed, outside_agreement
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class Announce:
    """Answer and play an announcement; then report :class:`AnnouncementDone`."""

    call_id: str
    announcement: str  # unknown-number, rejected, closed


@dataclass(frozen=True, slots=True)
class HangUpCaller:
    call_id: str


@dataclass(frozen=True, slots=True)
class HangUpAgent:
    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class CloseCall:
    call_id: str
    outcome: Outcome
    ended_at: datetime


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    agent_id: int
    state: AgentState
    reason: str


Command = (
    StartWaiting
    | RingAgent
    | CancelOffer
    | ConnectCall
    | CaptureMessage
    | Announce
    | HangUpCaller
    | HangUpAgent
    | CloseCall
    | AgentStateChanged
)
