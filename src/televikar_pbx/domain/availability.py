"""The agents' availability log: which of three desk states each agent was in, when.

The staffing backtest needs how many agents were really available each past hour; the
desk's own state (``AgentState``) is finer than that and changes at every call. This
module folds it into three *availabilities*:

* ``available``: logged in and not paused (idle, offered a call, on a call or in
  wrap-up: the agent counts towards staffing);
* ``paused``: logged in, paused (by the agent, the operator or three missed offers);
* ``logged_out``.

An agent on a call (or in wrap-up) who asked to pause or log out keeps its desk state
until the call is over, but from the request on the desk offers it no new call and no
longer counts it as staffing its customers (``AgentSlot.present``): its availability
is what it asked for, from the moment it asked (:meth:`AgentDesk.availability`).

:class:`AvailabilityTracker` remembers the availability last logged per agent and says
which changes are worth a row: a desk state change within ``available`` (idle → on
call → wrap-up) is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from televikar_pbx.domain.desk_messages import AgentState


class Availability(StrEnum):
    AVAILABLE = "available"
    PAUSED = "paused"
    LOGGED_OUT = "logged_out"


def availability_of(state: AgentState) -> Availability:
    """The availability an agent in desk state ``state`` has."""
    if state is AgentState.LOGGED_OUT:
        return Availability.LOGGED_OUT
    if state is AgentState.PAUSED:
        return Availability.PAUSED
    return Availability.AVAILABLE


class AvailabilityTracker:
    """What was logged last per agent; which desk changes are news."""

    def __init__(self) -> None:
        self._logged: dict[int, Availability] = {}

    def changed(self, agent_id: int, availability: Availability) -> bool:
        """The agent's availability now: whether that is news (it is then taken as
        logged)."""
        if self._logged.get(agent_id) is availability:
            return False
        self._logged[agent_id] = availability
        return True

    def sync(
        self, availabilities: Iterable[tuple[int, Availability]]
    ) -> list[tuple[int, Availability]]:
        """Every agent's availability (the service starts, the directory was reloaded):
        those that are news, in the order given."""
        return [(a, now) for a, now in availabilities if self.changed(a, now)]

    def forget(self) -> None:
        """Everything logged was closed (the service stops): a later sync logs all."""
        self._logged.clear()
