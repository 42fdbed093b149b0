"""What the agent desk's pages show live (issue 14): each agent's *card* (its state, and
the call its phone rings with or it talks to, with the customer's greeting) and the
supervisor's wallboard. Pure: built from the desk's frozen view, the directory and the
callers' numbers; the web layer pushes what changed.

The greeting is a one-line template per customer with three placeholders:
``{kunde}`` (the customer's display name), ``{agent}`` (the agent's name) and
``{hilsen}`` (the time of day's greeting in the customer's time zone: "God morgen"
05-10, "God dag" 10-17, "God kveld" otherwise). Without one the agent says
"{kunde}, dette er {agent}".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from televikar_pbx.domain.desk_messages import AgentState, CallState
from televikar_pbx.domain.desk_view import DeskView
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_forms import caller_id_withheld

DEFAULT_GREETING = "{kunde}, dette er {agent}"
PLACEHOLDERS = ("{kunde}", "{agent}", "{hilsen}")
MAX_GREETING = 200
WITHHELD = "skjult nummer"
_BRACED = re.compile(r"\{[^{}]*\}")


def time_of_day(local: time) -> str:
    if time(5) <= local < time(10):
        return "God morgen"
    if time(10) <= local < time(17):
        return "God dag"
    return "God kveld"


def check_greeting(template: str) -> str:
    """The template as stored, or ValueError saying what is wrong with it."""
    text = template.strip()
    if not text:
        raise ValueError("the greeting is empty")
    if len(text) > MAX_GREETING:
        raise ValueError(f"the greeting has more than {MAX_GREETING} characters")
    if "\n" in text or "\r" in text:
        raise ValueError("the greeting must be one line")
    unknown = sorted({m for m in _BRACED.findall(text) if m not in PLACEHOLDERS})
    if unknown:
        raise ValueError(f"unknown placeholder {unknown[0]}: use {', '.join(PLACEHOLDERS)}")
    return text


def render_greeting(template: str | None, customer: Customer, agent: str, now: datetime) -> str:
    """What the agent says, now, answering for ``customer``. Placeholders are replaced
    once each (a customer's name containing "{agent}" stays as it is)."""
    local = now.astimezone(ZoneInfo(customer.timezone)).time()
    values = {
        "{kunde}": customer.display_name,
        "{agent}": agent,
        "{hilsen}": time_of_day(local),
    }
    return _BRACED.sub(lambda m: values.get(m.group(0), m.group(0)), template or DEFAULT_GREETING)


def shown_number(caller_number: str | None) -> str:
    """The caller as the agent reads it: "+47 912 34 567" for a number that is one
    (Norwegian unless it says otherwise), as it came otherwise, "skjult nummer" if
    withheld."""
    if caller_id_withheld(caller_number):
        return WITHHELD
    text = str(caller_number).strip()
    try:
        parsed = phonenumbers.parse(text if not text.startswith("00") else "+" + text[2:], "NO")
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_valid_number(parsed):
        return text
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """What the shell knows of a call beyond the desk: its record and the caller."""

    record_id: int
    caller_number: str | None


@dataclass(frozen=True, slots=True)
class CallCard:
    call_id: str  # the caller leg's channel id
    record_id: int  # calls.id: what messages taken in the call point to
    customer_id: int
    customer_name: str
    caller: str  # the number, or "skjult nummer"
    caller_number: str | None  # as it came (None or empty when withheld)
    arrived_at: datetime
    greeting: str

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "record_id": self.record_id,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "caller": self.caller,
            "caller_withheld": self.caller == WITHHELD,
            "arrived_at": self.arrived_at.isoformat(),
            "greeting": self.greeting,
        }


@dataclass(frozen=True, slots=True)
class AgentCard:
    agent_id: int
    state: AgentState
    reachable: bool
    call: CallCard | None = None  # while offered or on the call
    wrap_up_until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "state": self.state.value,
            "reachable": self.reachable,
            "call": None if self.call is None else self.call.to_json(),
            "wrap_up_until": None if self.wrap_up_until is None else self.wrap_up_until.isoformat(),
        }


def agent_cards(
    view: DeskView,
    customers: Mapping[int, Customer],
    agent_names: Mapping[int, str],
    callers: Mapping[str, CallerInfo],
    now: datetime,
) -> dict[int, AgentCard]:
    """Every agent's card. The call shows while the phone rings (the screen pop) and
    during the call; the greeting is rendered for ``now``."""
    calls = {c.call_id: c for c in view.calls}
    cards: dict[int, AgentCard] = {}
    for agent in view.agents:
        card_call: CallCard | None = None
        call = calls.get(agent.call_id) if agent.call_id else None
        if (
            call is not None
            and agent.state in (AgentState.OFFERED, AgentState.ON_CALL)
            and call.customer_id is not None
            and (customer := customers.get(call.customer_id)) is not None
            and (caller := callers.get(call.call_id)) is not None
        ):
            card_call = CallCard(
                call_id=call.call_id,
                record_id=caller.record_id,
                customer_id=customer.id,
                customer_name=customer.display_name,
                caller=shown_number(caller.caller_number),
                caller_number=caller.caller_number,
                arrived_at=call.arrived_at,
                greeting=render_greeting(
                    customer.greeting, customer, agent_names.get(agent.agent_id, ""), now
                ),
            )
        cards[agent.agent_id] = AgentCard(
            agent.agent_id,
            agent.state,
            agent.reachable,
            card_call,
            agent.wrap_up_until if agent.state is AgentState.WRAP_UP else None,
        )
    return cards


WAITING = frozenset({CallState.QUEUED, CallState.OFFERED})


def wallboard(
    view: DeskView,
    customers: Mapping[int, Customer],
    agent_names: Mapping[int, str],
    now: datetime,
) -> dict[str, Any]:
    """Waiting callers per customer (how many, the longest wait in seconds) and every
    agent's state: what the supervisor's wallboard shows live. Customers in name order,
    agents by name."""
    waits: dict[int, list[float]] = {cid: [] for cid in customers}
    for call in view.calls:
        if call.customer_id in waits and call.state in WAITING:
            waits[call.customer_id].append(max(0.0, (now - call.arrived_at).total_seconds()))
    rows = [
        {
            "id": c.id,
            "name": c.display_name,
            "waiting": len(waits[c.id]),
            "longest_wait_s": round(max(waits[c.id], default=0.0), 1),
        }
        for c in sorted(customers.values(), key=lambda c: c.display_name.casefold())
    ]
    agents = [
        {
            "id": a.agent_id,
            "name": agent_names.get(a.agent_id, str(a.agent_id)),
            "state": a.state.value,
            "reachable": a.reachable,
        }
        for a in sorted(view.agents, key=lambda a: agent_names.get(a.agent_id, "").casefold())
    ]
    return {"at": now.isoformat(), "customers": rows, "agents": agents}
