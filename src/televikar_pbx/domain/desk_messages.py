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
    CAPTURING = "capturing"  # answered by us: the message prompt plays
    RECORDING = "recording"  # message capture: the beep played, the recording runs
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
    # When the caller rang, if before the desk heard of it (the dialplan held the caller
    # while no desk was connected: a standby taking over). The caller's place in the
    # queue, its maximum wait and the rules of the hour count from then. None: now.
    rang_at: datetime | None = None


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
class AgentLegGone:
    """The leg we originated to an agent ended, for whatever reason (Q.850 ``cause``;
    ``None`` with ``cause_txt`` when the leg could not even be placed). The desk decides
    what it was: a missed offer, the agent hanging up, or a leg we had withdrawn."""

    call_id: str
    agent_id: int
    cause: int | None = None
    cause_txt: str | None = None
    # The leg failed on our side: we could not reach Asterisk to place it, or it ended
    # while we were not listening (recovery). Not the agent's missed offer.
    ours: bool = False


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    """Message capture: the prompt is over, the beep played, the recording runs."""

    call_id: str


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
class AgentPauseToggled:
    """The agent asked to pause if available, to resume if paused (``*47``); the desk
    answers with :class:`PauseToggled`."""

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
    | AgentLegGone
    | RecordingStarted
    | MessageRecorded
    | AnnouncementDone
)
AgentEvent = AgentLoggedIn | AgentLoggedOut | AgentPaused | AgentResumed | AgentPauseToggled
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
class FinishRecording:
    """The caller hung up during the recording and Asterisk has not said the recording
    ended (it may never: a recording started on a channel that was already hanging up):
    take what was recorded, if anything, and report :class:`MessageRecorded`."""

    call_id: str


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


@dataclass(frozen=True, slots=True)
class OfferMissed:
    """Journal the missed offer (with the agent leg's cause) and forget its leg."""

    call_id: str
    agent_id: int
    cause: int | None
    cause_txt: str | None


@dataclass(frozen=True, slots=True)
class KeepHangupCause:
    """The call ends with this hang-up cause (the agent's leg ended it)."""

    call_id: str
    cause: int | None
    cause_txt: str | None


@dataclass(frozen=True, slots=True)
class PauseToggled:
    """What :class:`AgentPauseToggled` became: ``True`` paused (now or after the call),
    ``False`` resumed, ``None`` nothing (the agent is logged out)."""

    agent_id: int
    paused: bool | None


Command = (
    StartWaiting
    | RingAgent
    | CancelOffer
    | ConnectCall
    | CaptureMessage
    | Announce
    | FinishRecording
    | HangUpCaller
    | HangUpAgent
    | CloseCall
    | AgentStateChanged
    | OfferMissed
    | KeepHangupCause
    | PauseToggled
)
