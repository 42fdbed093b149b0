"""The desk seen from outside: frozen snapshots for presence, the control API and
status. Readers get copies, never the desk's live slots, so nothing outside the desk can
change (or half-read) its state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from televikar_pbx.domain.desk_messages import AgentState, CallState

WAITING_STATES = frozenset({CallState.QUEUED, CallState.OFFERED})


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: int
    state: AgentState
    call_id: str | None
    misses: int  # missed offers in a row
    reachable: bool
    wrap_up_until: datetime | None = None  # in wrap-up: when it ends


@dataclass(frozen=True, slots=True)
class CallView:
    call_id: str
    customer_id: int | None
    arrived_at: datetime
    state: CallState
    agent_id: int | None

    @property
    def waiting(self) -> bool:
        """Queued, or queued while an agent's phone rings."""
        return self.state in WAITING_STATES


@dataclass(frozen=True, slots=True)
class DeskView:
    agents: tuple[AgentView, ...]
    calls: tuple[CallView, ...]  # in order of arrival

    def agent(self, agent_id: int) -> AgentView | None:
        return next((a for a in self.agents if a.agent_id == agent_id), None)


class DeskViewer(Protocol):
    def view(self) -> DeskView: ...
